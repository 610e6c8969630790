"""Journal time in the compiled core: the sweep that runs before every command.

docs/engine-semantics.md, "Journal time". Deadlines are rare, so nothing is indexed by time:
``C_NEXT_DMS`` and ``C_NEXT_GTD`` are lower bounds of the next deadline, and only a command
whose timestamp reaches one pays for a scan (of accounts, or of order slots). The sweep works
one order at a time and stops when the event buffer could not hold the next step, so a
resumed sweep simply continues (it is idempotent up to the point reached).
"""

from __future__ import annotations

from engine.core.events import next_row
from engine.core.layout import (
    A_DMS,
    A_EXISTS,
    A_HEAD,
    A_OPEN,
    C_EV_POS,
    C_NEXT_DMS,
    C_NEXT_GTD,
    C_ORDER_HWM,
    CANCEL_DMS,
    CF_EV_CAP,
    CF_MAX_ACCOUNTS,
    EV_CANCELLED,
    EV_DMS_FIRED,
    EV_EXPIRED,
    EXP_GTD,
    GTD,
    INT64_MAX,
    K_ANEXT,
    O_EXPIRE,
    O_ID,
    k_tif,
    kernel,
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
def sweep(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, ofree, lfree, ev, seq, now):
    """Fire due dead-man's switches, then expire due GTD orders. False = drain and resume."""
    capacity = ctr[CF_EV_CAP]
    while ctr[C_NEXT_DMS] <= now:
        best = -1
        fire_at = INT64_MAX
        for a in range(1, ctr[CF_MAX_ACCOUNTS]):
            x = acct[a, A_DMS]
            if x > 0 and x <= now and x < fire_at and acct[a, A_EXISTS] != 0:
                best = a
                fire_at = x
        if best < 0:
            ctr[C_NEXT_DMS] = next_dms(acct, ctr)
            break
        if capacity - ctr[C_EV_POS] < 1 + 2 * acct[best, A_OPEN]:
            return False
        acct[best, A_DMS] = 0
        r = next_row(ev, ctr, EV_DMS_FIRED, seq)
        ev[r, 2] = best
        ev[r, 3] = fire_at
        s = acct[best, A_HEAD]
        while s >= 0:
            nxt = olnk[s, K_ANEXT]
            end_any(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, ofree, lfree, ev,
                    seq, s, EV_CANCELLED, CANCEL_DMS)  # fmt: skip
            s = nxt
        ctr[C_NEXT_DMS] = next_dms(acct, ctr)
    if ctr[C_NEXT_GTD] > now:
        return True
    hwm = ctr[C_ORDER_HWM]
    while True:
        best = -1
        for s in range(hwm):
            if ords[s, O_ID] != 0 and k_tif(olnk, s) == GTD and ords[s, O_EXPIRE] <= now:  # noqa: SIM102
                if (
                    best < 0
                    or ords[s, O_EXPIRE] < ords[best, O_EXPIRE]
                    or (
                        ords[s, O_EXPIRE] == ords[best, O_EXPIRE]
                        and ords[s, O_ID] < ords[best, O_ID]
                    )
                ):
                    best = s
        if best < 0:
            break
        if capacity - ctr[C_EV_POS] < 2:
            return False
        end_any(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, ofree, lfree, ev,
                seq, best, EV_EXPIRED, EXP_GTD)  # fmt: skip
    t = INT64_MAX
    for s in range(hwm):
        if ords[s, O_ID] != 0 and k_tif(olnk, s) == GTD and ords[s, O_EXPIRE] < t:
            t = ords[s, O_EXPIRE]
    ctr[C_NEXT_GTD] = t
    return True
