"""The batch loop: one njit call runs many hot command rows.

``run_batch(rows, start, stop, reset_events, state_only, st)`` (``st``: `CoreArrays.state`)
processes rows ``start..stop`` and returns ``(next_row, status, event_rows_written)``. It
stops early, before touching the row, when the row is an admin command (``ST_ADMIN``: the
wrapper handles it in Python), when the event buffer could not hold the row's worst case
(``ST_CAPACITY``: drain and call again), or on a sequence that does not increase
(``ST_SEQ``). After a command that broke an always-on invariant it returns ``ST_INVARIANT``
(``ctr[C_ERROR]`` says which).
A range that is not inside ``rows`` (``start < 0`` or ``stop`` past the end) runs nothing
and returns ``ST_BAD_ROW``: the loop indexes rows without numba's negative-index wraparound.
"""

from __future__ import annotations

from engine.core.amend import amend
from engine.core.arrays import ROWS_PER_ORDER, ROWS_PER_STEP
from engine.core.book import fail
from engine.core.codes import LIMIT
from engine.core.handlers import cancel, cancel_all, place, place_limit
from engine.core.kernelapi import kernel, nonneg, row_ref, state_ref
from engine.core.layout import (
    C_ACCOUNTS,
    C_ERROR,
    C_ERROR_SEQ,
    C_EV_POS,
    C_LAST_SEQ,
    C_NEXT_DMS,
    C_NEXT_GTD,
    C_OPEN_ORDERS,
    CF_EV_CAP,
    CF_MAX_FILLS,
    CF_MAX_OPEN,
    CF_MAX_TRIGGERS,
    CMD_ADMIN,
    CMD_AMEND,
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_DISCONNECT,
    CMD_PLACE,
    CMD_REPLACE,
    CMD_TICK,
    ERR_EVENT_BOUND,
    R_ALLOW_FAILURE,
    R_KIND,
    R_SEQ,
    R_TS,
    R_TYPE,
    ST_ADMIN,
    ST_CAPACITY,
    ST_DONE,
    ST_INVARIANT,
    ST_SEQ,
)
from engine.core.prefetch import DEEP_BOOK_ORDERS, MANY_ACCOUNTS, prefetch_ahead
from engine.core.timers import sweep

ST_BAD_ROW = 5


@kernel
def run_batch(
    c,
    start,
    stop,
    reset_events,
    state_only,
    st,
):
    """Run rows ``start..stop``; returns (next row, status, event rows written by this call).
    ``reset_events`` first empties the event buffer (its rows are overwritten).

    ``state_only`` (replay, recovery: nothing reads the events) empties it again after every
    command, so each command writes its rows over the first few of the buffer, which stay in
    the first-level cache. Otherwise a batch's rows stream through megabytes of buffer (a
    command may only start with its worst case free, ~51,000 rows at the default limits, so
    the buffer is 13 MB) and evict the book the next commands read. The rows-written count
    then covers only the rows still in the buffer. Kernels only write event rows, never read
    them: the state is the same in both modes."""
    sp = state_ref(st)
    if start < 0 or stop > c.shape[0]:
        return start, ST_BAD_ROW, 0
    if reset_events or state_only:
        st.ctr[C_EV_POS] = 0
    first_row = st.ctr[C_EV_POS]
    bound_order = (ROWS_PER_STEP * st.ctr[CF_MAX_FILLS] + ROWS_PER_ORDER) * (
        1 + st.ctr[CF_MAX_TRIGGERS]
    )
    bound_all = 2 * st.ctr[CF_MAX_OPEN] + 1
    capacity = st.ctr[CF_EV_CAP]
    deep_book = st.ctr[C_OPEN_ORDERS] >= DEEP_BOOK_ORDERS
    many_accounts = st.ctr[C_ACCOUNTS] >= MANY_ACCOUNTS
    i = nonneg(start)  # rows are indexed without numba's negative-index wraparound
    while i < stop:
        prefetch_ahead(sp, c, i, stop, deep_book, many_accounts)
        kind = c[i, R_KIND]
        seq = c[i, R_SEQ]
        if seq <= st.ctr[C_LAST_SEQ]:
            return i, ST_SEQ, st.ctr[C_EV_POS] - first_row
        now = c[i, R_TS]
        if (st.ctr[C_NEXT_DMS] <= now or st.ctr[C_NEXT_GTD] <= now) and not sweep(sp, seq, now):
            return i, ST_CAPACITY, st.ctr[C_EV_POS] - first_row
        if kind == CMD_ADMIN:
            return i, ST_ADMIN, st.ctr[C_EV_POS] - first_row
        if kind == CMD_TICK:
            st.ctr[C_LAST_SEQ] = seq
            i += 1
            continue
        need = bound_all if kind == CMD_CANCEL_ALL or kind == CMD_DISCONNECT else bound_order  # noqa: SIM109
        if kind == CMD_REPLACE:  # the cancel's two rows, then the placement's bound
            need += 2
        before = st.ctr[C_EV_POS]
        if capacity - before < need:
            return i, ST_CAPACITY, st.ctr[C_EV_POS] - first_row
        if kind == CMD_AMEND:
            st.ctr[C_LAST_SEQ] = seq
            amend(sp, row_ref(c, i))
        elif kind == CMD_PLACE:
            st.ctr[C_LAST_SEQ] = seq
            if c[i, R_TYPE] == LIMIT:
                place_limit(sp, row_ref(c, i))
            else:
                place(sp, row_ref(c, i))
        elif kind == CMD_CANCEL:
            st.ctr[C_LAST_SEQ] = seq
            cancel(sp, row_ref(c, i))
        elif kind == CMD_REPLACE:
            if i + 1 >= stop or c[i + 1, R_KIND] != CMD_PLACE or c[i + 1, R_SEQ] != seq:
                return i, ST_BAD_ROW, st.ctr[C_EV_POS] - first_row
            st.ctr[C_LAST_SEQ] = seq
            cancelled = cancel(sp, row_ref(c, i))
            if not cancelled:
                st.ev[st.ctr[C_EV_POS] - 1, 7] = 1  # the refusal is the cancel half's
            i += 1  # the placement row
            if cancelled or c[i - 1, R_ALLOW_FAILURE] != 0:
                place(sp, row_ref(c, i))
        elif kind == CMD_CANCEL_ALL or kind == CMD_DISCONNECT:  # noqa: SIM109
            st.ctr[C_LAST_SEQ] = seq
            cancel_all(
                sp,
                c,
                i,
            )
        else:
            return i, ST_BAD_ROW, st.ctr[C_EV_POS] - first_row
        i += 1
        if st.ctr[C_EV_POS] - before > need:  # the bound's proof, checked (arrays.py)
            fail(st.ctr, ERR_EVENT_BOUND)
        if state_only:
            st.ctr[C_EV_POS] = 0
        if st.ctr[C_ERROR] != 0:
            st.ctr[C_ERROR_SEQ] = seq
            return i, ST_INVARIANT, st.ctr[C_EV_POS] - first_row
    return i, ST_DONE, st.ctr[C_EV_POS] - first_row
