"""Journal time in the compiled core: the sweep that runs before every command.

docs/engine-semantics.md, "Journal time". Deadlines are rare, so nothing is indexed by time:
``C_NEXT_DMS`` and ``C_NEXT_GTD`` are lower bounds of the next deadline, and only a command
whose timestamp reaches one pays for a scan (of accounts, or of order slots). The sweep works
one order at a time and stops when the event buffer could not hold the next step, so a
resumed sweep simply continues (it is idempotent up to the point reached).
"""

from __future__ import annotations

from engine.core.codes import CANCEL_DMS, EXP_GTD, GTD
from engine.core.events import next_row
from engine.core.kernelapi import kernel, load_state
from engine.core.layout import (
    A_DMS,
    A_EXISTS,
    A_HEAD,
    A_OPEN,
    C_EV_POS,
    C_NEXT_DMS,
    C_NEXT_GTD,
    C_ORDER_HWM,
    CF_EV_CAP,
    CF_MAX_ACCOUNTS,
    EV_CANCELLED,
    EV_DMS_FIRED,
    EV_EXPIRED,
    INT64_MAX,
    K_ANEXT,
    O_EXPIRE,
    O_ID,
    k_tif,
)
from engine.core.triggers import end_any


@kernel
def next_dms(acct, ctr):
    t = INT64_MAX
    for a in range(1, ctr[CF_MAX_ACCOUNTS]):
        x = acct[a, A_DMS]
        if x > 0 and x < t:
            t = x
    return t


@kernel
def sweep(sp, seq, now):
    """Fire due dead-man's switches, then expire due GTD orders. False = drain and resume."""
    st = load_state(sp)
    capacity = st.ctr[CF_EV_CAP]
    while st.ctr[C_NEXT_DMS] <= now:
        best = -1
        fire_at = INT64_MAX
        for a in range(1, st.ctr[CF_MAX_ACCOUNTS]):
            x = st.acct[a, A_DMS]
            if x > 0 and x <= now and x < fire_at and st.acct[a, A_EXISTS] != 0:
                best = a
                fire_at = x
        if best < 0:
            st.ctr[C_NEXT_DMS] = next_dms(st.acct, st.ctr)
            break
        if capacity - st.ctr[C_EV_POS] < 1 + 2 * st.acct[best, A_OPEN]:
            return False
        st.acct[best, A_DMS] = 0
        r = next_row(st.ev, st.ctr, EV_DMS_FIRED, seq)
        st.ev[r, 2] = best
        st.ev[r, 3] = fire_at
        s = st.acct[best, A_HEAD]
        while s >= 0:
            nxt = st.olnk[s, K_ANEXT]
            end_any(sp, seq, s, EV_CANCELLED, CANCEL_DMS)
            s = nxt
        st.ctr[C_NEXT_DMS] = next_dms(st.acct, st.ctr)
    if st.ctr[C_NEXT_GTD] > now:
        return True
    hwm = st.ctr[C_ORDER_HWM]
    while True:
        best = -1
        for s in range(hwm):
            if st.ords[s, O_ID] != 0 and k_tif(st.olnk, s) == GTD and st.ords[s, O_EXPIRE] <= now:  # noqa: SIM102
                if (
                    best < 0
                    or st.ords[s, O_EXPIRE] < st.ords[best, O_EXPIRE]
                    or (
                        st.ords[s, O_EXPIRE] == st.ords[best, O_EXPIRE]
                        and st.ords[s, O_ID] < st.ords[best, O_ID]
                    )
                ):
                    best = s
        if best < 0:
            break
        if capacity - st.ctr[C_EV_POS] < 2:
            return False
        end_any(sp, seq, best, EV_EXPIRED, EXP_GTD)
    t = INT64_MAX
    for s in range(hwm):
        if st.ords[s, O_ID] != 0 and k_tif(st.olnk, s) == GTD and st.ords[s, O_EXPIRE] < t:
            t = st.ords[s, O_EXPIRE]
    st.ctr[C_NEXT_GTD] = t
    return True
