"""The hot command handlers: place, cancel and cancel-all (the batch loop is engine/core/kernel.py).

Each handler validates (engine/core/validation.py, the contract's check order), emits a
single OrderRejected on the first failure (nothing changed), or applies the command.
"""

from __future__ import annotations

from engine.core.book import (
    check_not_crossed,
    open_order,
    order_alloc,
    rest_order,
)
from engine.core.codes import (
    BUY,
    CANCEL_ALL,
    CANCEL_DISCONNECT,
    CANCEL_USER,
    EXP_FOK_UNFILLABLE,
    FOK,
    GTC,
    GTD,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    REJ_UNKNOWN_ACCOUNT,
    REJ_UNKNOWN_MARKET,
    REJ_UNKNOWN_ORDER,
    STOP_FILLED,
    STOP_MARKET,
)
from engine.core.events import emit_order_end, emit_rejected, hold_in_row, hold_txn, next_row
from engine.core.hashindex import coid_find, oid_find
from engine.core.kernelapi import kernel, load_state, nonneg, unlikely
from engine.core.layout import (
    A_HEAD,
    CF_HASH_MASK,
    CMD_DISCONNECT,
    EV_ACCEPTED,
    EV_ACCEPTED_X,
    EV_CANCELLED,
    EV_EXPIRED,
    K_ACCOUNT,
    K_ANEXT,
    K_FLAGS,
    K_MARKET,
    M_BASE,
    M_LOT,
    M_QUOTE,
    O_COID,
    O_DISPLAY,
    O_EXPIRE,
    O_HOLD,
    O_ID,
    O_PRICE,
    O_QTY,
    O_VISIBLE,
    R_ACCOUNT,
    R_COID,
    R_DELTA,
    R_DISPLAY,
    R_EXPIRE,
    R_KIND,
    R_MARKET,
    R_OFFSET,
    R_ORDER_ID,
    R_PRICE,
    R_QTY,
    R_QUOTE_QTY,
    R_SEQ,
    R_SIDE,
    R_STOP,
    R_STP,
    R_TARGET_COID,
    R_TIF,
    R_TYPE,
    pack_flags,
)
from engine.core.matching import dry_run, match, settle_taker
from engine.core.triggers import (
    add_pending,
    after_taker,
    end_any,
    note_gtd,
    protection_price,
)
from engine.core.validation import (
    account_ok,
    crosses,
    market_ok,
    place_check,
    preamble,
)


@kernel(inline=True)
def new_slot(ords, olnk, ofree, ctr, cr, p, q, hold):
    """A slot filled in from the PlaceOrder row ``cr`` (not yet in a book or index), or -1."""
    s = order_alloc(ofree, ctr)
    if s < 0:
        return s
    m = cr[R_MARKET]
    ords[s, O_ID] = cr[R_SEQ]
    ords[s, O_PRICE] = p
    ords[s, O_QTY] = q
    ords[s, O_HOLD] = hold
    ords[s, O_COID] = cr[R_COID]
    ords[s, O_EXPIRE] = cr[R_EXPIRE]
    ords[s, O_DISPLAY] = 0
    ords[s, O_VISIBLE] = q
    olnk[s, K_ACCOUNT] = cr[R_ACCOUNT]
    olnk[s, K_MARKET] = m
    olnk[s, K_FLAGS] = pack_flags(cr[R_SIDE], cr[R_TYPE], cr[R_TIF], cr[R_STP])
    return s


@kernel(inline=True)
def place_as(sp, cr, otype):
    """PlaceOrder, ``otype`` being ``cr[R_TYPE]`` (see `place_limit`)."""
    seq = cr[R_SEQ]
    a = cr[R_ACCOUNT]
    m = cr[R_MARKET]
    reason, p, q, hold = place_check(sp, cr, otype)
    if unlikely(reason != 0):
        emit_rejected(sp.ev, sp.ctr, seq, a, m, 0, cr[R_COID], reason)
        return
    a = nonneg(a)  # valid now (place_check)
    m = nonneg(m)
    side = cr[R_SIDE]
    tif = cr[R_TIF]
    quote_qty = cr[R_QUOTE_QTY]
    stp = cr[R_STP]
    asset = sp.mkt[m, M_QUOTE] if side == BUY else sp.mkt[m, M_BASE]
    ev = sp.ev  # one load for the run of stores below (sp.X loads at each access)
    ctr = sp.ctr
    r = next_row(ev, ctr, EV_ACCEPTED, seq)
    ev[r, 2] = seq
    ev[r, 3] = a
    ev[r, 4] = m
    ev[r, 5] = cr[R_COID]
    ev[r, 6] = side
    ev[r, 7] = otype
    ev[r, 8] = tif
    ev[r, 9] = cr[R_PRICE]
    ev[r, 10] = cr[R_QTY]
    ev[r, 11] = quote_qty
    ev[r, 12] = hold
    accepted = r
    if (
        cr[R_STOP] != 0
        or cr[R_DELTA] != 0
        or cr[R_OFFSET] != 0
        or cr[R_DISPLAY] != 0
        or cr[R_EXPIRE] != 0
        or stp != 0
    ):
        r = next_row(ev, ctr, EV_ACCEPTED_X, seq)
        ev[r, 2] = cr[R_STOP]
        ev[r, 3] = cr[R_DELTA]
        ev[r, 4] = cr[R_OFFSET]
        ev[r, 5] = cr[R_DISPLAY]
        ev[r, 6] = cr[R_EXPIRE]
        ev[r, 7] = stp
    hold_in_row(ev, ctr, sp.bal, accepted, a, asset, hold)
    lot = sp.mkt[m, M_LOT]
    if otype >= STOP_MARKET:
        s = new_slot(sp.ords, sp.olnk, sp.ofree, sp.ctr, cr, p, q, hold)
        if s >= 0:
            add_pending(sp, cr, s)
        return
    is_limit = otype != MARKET
    fok = otype == LIMIT and tif == FOK
    if fok and dry_run(sp, m, side, p, q, a, stp)[0] > 0:
        emit_order_end(sp.ev, sp.ctr, EV_EXPIRED, seq, seq, a, m, q, EXP_FOK_UNFILLABLE)
        hold_txn(sp.ev, sp.ctr, sp.bal, seq, a, asset, -hold)
        return
    rest_ok = otype == LIMIT_MAKER or (otype == LIMIT and (tif == GTC or tif == GTD))  # noqa: SIM109
    if rest_ok and not crosses(sp.lvl, sp.bkl, sp.bkn, m, side, p):
        # A resting limit that does not cross: the matching loop would stop before its first
        # step and the settlement would keep the whole hold (required_buy(p, q) or q lots,
        # what place_check held): no event, no release. Skips both calls (half of (c)).
        rests = True
        left = q
        keep = hold
    else:
        quote_bounded = otype == MARKET and side == BUY and q == 0
        left = q
        budget = quote_qty
        trades = 0
        stop = STOP_FILLED
        if otype != LIMIT_MAKER:
            lim = p if is_limit else protection_price(sp.lvl, sp.bkl, sp.bkn, sp.mkt, m, side)
            left, budget, hold, _steps, stop, trades = match(
                sp,
                seq,
                m,
                seq,
                a,
                side,
                lim,
                left,
                quote_bounded,
                budget,
                hold,
                stp,
            )
        rests, keep = settle_taker(
            sp,
            seq,
            seq,
            a,
            m,
            side,
            rest_ok,
            is_limit,
            quote_bounded,
            p,
            left,
            budget,
            hold,
            trades,
            stop,
            asset,
        )
    if rests:
        ords = sp.ords
        s = new_slot(ords, sp.olnk, sp.ofree, sp.ctr, cr, p, left, keep)
        if s < 0:
            return
        display = cr[R_DISPLAY] // lot if cr[R_DISPLAY] != 0 else 0  # no division when 0
        ords[s, O_DISPLAY] = display
        ords[s, O_VISIBLE] = left if display == 0 or left < display else display
        rest_order(sp, s)
        open_order(sp, s)
        note_gtd(sp.ords, sp.olnk, sp.ctr, s)
        check_not_crossed(sp.lvl, sp.bkl, sp.bkn, sp.ctr, m)
    after_taker(sp, seq, m)


@kernel
def place(sp, cr):
    """PlaceOrder of any type."""
    place_as(sp, cr, cr[R_TYPE])


@kernel
def place_limit(sp, cr):
    """PlaceOrder of a LIMIT order (the caller has read ``cr[R_TYPE] == LIMIT``): the same
    code as `place` compiled with the type as a constant, so the checks and branches of the
    other types fold away. Most placements are limits ((c): all of them; (b): 55 %)."""
    place_as(sp, cr, LIMIT)


@kernel
def find_target(sp, a, m, oid, coid):
    """CancelOrder/AmendOrder target slot, or -1 (UNKNOWN_ORDER)."""
    olnk = sp.olnk
    mask = sp.ctr[CF_HASH_MASK]
    if oid != 0:
        s = oid_find(sp.oidx, sp.ords, mask, oid)
    elif coid != 0:
        s = coid_find(sp.idx, sp.ords, olnk, mask, a, coid)
    else:
        return -1
    if s < 0 or olnk[s, K_ACCOUNT] != a or olnk[s, K_MARKET] != m:
        return -1
    return s


@kernel
def cancel_slot(sp, seq, s, reason):
    """OrderCancelled of an open order (resting or pending), release, removal."""
    end_any(sp, seq, s, EV_CANCELLED, reason)


@kernel
def cancel(sp, cr):
    """CancelOrder (and the cancel half of a CancelReplaceOrder row ``cr``, a `row_ref`):
    True when cancelled."""
    seq = cr[R_SEQ]
    a = cr[R_ACCOUNT]
    m = cr[R_MARKET]
    oid = cr[R_ORDER_ID]
    coid = cr[R_TARGET_COID]
    reason = preamble(sp, a, m, False)
    if unlikely(reason != 0):
        emit_rejected(sp.ev, sp.ctr, seq, a, m, oid, coid, reason)
        return False
    s = find_target(sp, a, m, oid, coid)
    if s < 0:
        emit_rejected(sp.ev, sp.ctr, seq, a, m, oid, coid, REJ_UNKNOWN_ORDER)
        return False
    cancel_slot(sp, seq, s, CANCEL_USER)
    return True


@kernel
def cancel_all(sp, c, i):
    """CancelAll, and CancelOnDisconnect (every market, reason DISCONNECT)."""
    st = load_state(sp)
    seq = c[i, R_SEQ]
    a = c[i, R_ACCOUNT]
    m = c[i, R_MARKET]
    reason = CANCEL_DISCONNECT if c[i, R_KIND] == CMD_DISCONNECT else CANCEL_ALL
    if not account_ok(st.acct, st.ctr, a):
        emit_rejected(st.ev, st.ctr, seq, a, m, 0, 0, REJ_UNKNOWN_ACCOUNT)
        return
    if m != -1 and not market_ok(st.mkt, st.ctr, m):
        emit_rejected(st.ev, st.ctr, seq, a, m, 0, 0, REJ_UNKNOWN_MARKET)
        return
    s = st.acct[a, A_HEAD]
    while s >= 0:
        nxt = st.olnk[s, K_ANEXT]
        if m == -1 or st.olnk[s, K_MARKET] == m:
            cancel_slot(sp, seq, s, reason)
        s = nxt
