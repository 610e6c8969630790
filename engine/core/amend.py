"""AmendOrder (docs/engine-semantics.md, AmendOrder)."""

from __future__ import annotations

from engine.core.book import (
    check_not_crossed,
    forget_order,
    level_find,
    move_order,
    rest_order,
    unrest_order,
)
from engine.core.codes import (
    BUY,
    LIMIT_MAKER,
    REJ_BAND,
    REJ_BOOK_FULL,
    REJ_FROZEN,
    REJ_INSUFFICIENT_FUNDS,
    REJ_INVALID_AMEND,
    REJ_INVALID_PRICE,
    REJ_INVALID_QTY,
    REJ_MIN_NOTIONAL,
    REJ_NOTIONAL_OVERFLOW,
    REJ_POST_ONLY,
    REJ_PRICE_OFF_TICK,
    REJ_QTY_OFF_LOT,
    REJ_TAKER_NOT_ALLOWED,
    REJ_TIER_LIMIT,
    REJ_TOO_LARGE,
    REJ_UNKNOWN_ORDER,
    ST_POST_ONLY,
)
from engine.core.events import emit_amended, emit_rejected, hold_in_row
from engine.core.handlers import find_target
from engine.core.kernelapi import kernel, nonneg, unlikely
from engine.core.layout import (
    A_FROZEN,
    B_AVAILABLE,
    CF_MAX_LEVELS,
    K_ACCOUNT,
    M_BAND,
    M_BASE,
    M_LOT,
    M_LOT_DIV,
    M_MAXQ,
    M_MIN_NOTIONAL,
    M_QTL,
    M_QUOTE,
    M_STATE,
    M_TICK_DIV,
    M_WORST_PPM,
    MAX,
    O_DISPLAY,
    O_HOLD,
    O_ID,
    O_PRICE,
    O_QTY,
    O_VISIBLE,
    R_ACCOUNT,
    R_MARKET,
    R_NEW_PRICE,
    R_NEW_QTY,
    R_ORDER_ID,
    R_SEQ,
    R_TARGET_COID,
    k_pending,
    k_side,
    k_stp,
    k_type,
)
from engine.core.matching import match, settle_taker
from engine.core.money import exact_div_by, notional_fits, required_buy
from engine.core.triggers import after_taker
from engine.core.validation import crosses, outside_band, preamble, tier_limit


@kernel(inline=True)
def amend_check(sp, cr):
    """Checks in contract order. Returns (reason, slot, p, q, new_hold); reason 0 = valid."""
    a = cr[R_ACCOUNT]
    m = cr[R_MARKET]
    new_price = cr[R_NEW_PRICE]
    new_qty = cr[R_NEW_QTY]
    reason = preamble(sp, a, m, True)
    if unlikely(reason != 0):
        return reason, -1, 0, 0, 0
    a = nonneg(a)
    m = nonneg(m)
    s = find_target(sp, a, m, cr[R_ORDER_ID], cr[R_TARGET_COID])
    if unlikely(s < 0):
        return REJ_UNKNOWN_ORDER, -1, 0, 0, 0
    if unlikely(k_pending(sp.olnk, s)):
        return REJ_INVALID_AMEND, -1, 0, 0, 0
    lot = sp.mkt[m, M_LOT]
    qtl = sp.mkt[m, M_QTL]
    cur_p = sp.ords[s, O_PRICE]
    cur_q = sp.ords[s, O_QTY]
    if unlikely(new_price < 0 or new_price > MAX):
        return REJ_INVALID_PRICE, -1, 0, 0, 0
    p = cur_p
    if new_price != 0:
        p = exact_div_by(new_price, sp.mkt, m, M_TICK_DIV)
        if unlikely(p < 0):
            return REJ_PRICE_OFF_TICK, -1, 0, 0, 0
    if unlikely(new_qty < 0 or new_qty > MAX):
        return REJ_INVALID_QTY, -1, 0, 0, 0
    q = cur_q
    if new_qty != 0:
        q = exact_div_by(new_qty, sp.mkt, m, M_LOT_DIV)
        if unlikely(q < 0):
            return REJ_QTY_OFF_LOT, -1, 0, 0, 0
    if unlikely(sp.mkt[m, M_MAXQ] != 0 and q > sp.mkt[m, M_MAXQ]):
        return REJ_TOO_LARGE, -1, 0, 0, 0
    if unlikely(p == cur_p and q == cur_q):
        return REJ_INVALID_AMEND, -1, 0, 0, 0
    if unlikely(sp.acct[a, A_FROZEN] != 0 and not (p == cur_p and q < cur_q)):
        return REJ_FROZEN, -1, 0, 0, 0  # frozen: only a pure decrease (less exposure)
    if unlikely(not notional_fits(p, q, qtl)):
        return REJ_NOTIONAL_OVERFLOW, -1, 0, 0, 0
    if unlikely(p * q * qtl < sp.mkt[m, M_MIN_NOTIONAL]):
        return REJ_MIN_NOTIONAL, -1, 0, 0, 0
    limit = tier_limit(sp.mkt, sp.acct, a, m)
    if unlikely(limit != 0 and p * q * qtl > limit and not (p == cur_p and q < cur_q)):
        return REJ_TIER_LIMIT, -1, 0, 0, 0  # only a pure decrease may stay above the limit
    side = k_side(sp.olnk, s)
    if p != cur_p:
        if unlikely(
            k_type(sp.olnk, s) == LIMIT_MAKER and crosses(sp.lvl, sp.bkl, sp.bkn, m, side, p)
        ):
            return REJ_TAKER_NOT_ALLOWED, -1, 0, 0, 0
        if unlikely(sp.mkt[m, M_BAND] != 0 and outside_band(sp, m, p)):
            return REJ_BAND, -1, 0, 0, 0
        own = 2 * m + side
        if unlikely(
            sp.bkn[own] >= sp.ctr[CF_MAX_LEVELS]
            and level_find(sp.lvl, sp.bkl, sp.bkn, own, side, p) < 0
        ):
            return REJ_BOOK_FULL, -1, 0, 0, 0
    keeps = p == cur_p and q < cur_q
    if unlikely(
        sp.mkt[m, M_STATE] == ST_POST_ONLY
        and not keeps
        and crosses(sp.lvl, sp.bkl, sp.bkn, m, side, p)
    ):
        return REJ_POST_ONLY, -1, 0, 0, 0
    if side == BUY:
        new_hold = required_buy(p, q, qtl, sp.mkt[m, M_WORST_PPM])
        asset = sp.mkt[m, M_QUOTE]
    else:
        new_hold = q * lot
        asset = sp.mkt[m, M_BASE]
    if unlikely(new_hold - sp.ords[s, O_HOLD] > sp.bal[a, asset, B_AVAILABLE]):
        return REJ_INSUFFICIENT_FUNDS, -1, 0, 0, 0
    return 0, s, p, q, new_hold


@kernel(inline=True)
def set_resting(ords, s, p, q, hold):
    """The amended slot's price, quantity and hold before it rests again; an iceberg shows
    its display size or what is left, whichever is less."""
    ords[s, O_PRICE] = p
    ords[s, O_QTY] = q
    ords[s, O_HOLD] = hold
    d = ords[s, O_DISPLAY]
    ords[s, O_VISIBLE] = q if d == 0 or q < d else d


@kernel
def amend(sp, cr):
    seq = cr[R_SEQ]
    a = cr[R_ACCOUNT]
    m = cr[R_MARKET]
    reason, s, p, q, new_hold = amend_check(sp, cr)
    if unlikely(reason != 0):
        emit_rejected(sp.ev, sp.ctr, seq, a, m, cr[R_ORDER_ID], cr[R_TARGET_COID], reason)
        return
    a = nonneg(a)  # valid now (amend_check)
    m = nonneg(m)
    s = nonneg(s)
    oid = sp.ords[s, O_ID]
    side = k_side(sp.olnk, s)
    asset = sp.mkt[m, M_QUOTE] if side == BUY else sp.mkt[m, M_BASE]
    hold = sp.ords[s, O_HOLD]
    cur_q = sp.ords[s, O_QTY]
    if p == sp.ords[s, O_PRICE] and q < cur_q:
        # Pure decrease: keeps its place in the queue.
        ev = sp.ev
        ctr = sp.ctr
        r = emit_amended(ev, ctr, seq, oid, a, m, p, q, True, new_hold)
        hold_in_row(ev, ctr, sp.bal, r, a, asset, new_hold - hold)
        ords = sp.ords
        ords[s, O_QTY] = q
        ords[s, O_HOLD] = new_hold
        if ords[s, O_VISIBLE] > q:
            ords[s, O_VISIBLE] = q
        return
    ev = sp.ev
    ctr = sp.ctr
    r = emit_amended(ev, ctr, seq, oid, a, m, p, q, False, new_hold)
    hold_in_row(ev, ctr, sp.bal, r, a, asset, new_hold - hold)
    if not crosses(sp.lvl, sp.bkl, sp.bkn, m, side, p):
        # A price that does not cross: the matching loop would stop before its first step and
        # the settlement would keep new_hold (required_buy(p, q) or q lots): no event, and
        # the order moves from its level to the new price's in one pass.
        set_resting(sp.ords, s, p, q, new_hold)
        move_order(sp, s)
        check_not_crossed(sp.lvl, sp.bkl, sp.bkn, sp.ctr, m)
    else:
        unrest_order(sp, s)
        left, budget, hold_left, _steps, stop, trades = match(
            sp,
            seq,
            m,
            oid,
            sp.olnk[s, K_ACCOUNT],
            side,
            p,
            q,
            False,
            0,
            new_hold,
            k_stp(sp.olnk, s),
        )
        rests, keep = settle_taker(
            sp,
            seq,
            oid,
            a,
            m,
            side,
            True,
            True,
            False,
            p,
            left,
            budget,
            hold_left,
            trades,
            stop,
            asset,
        )
        ords = sp.ords
        if rests:
            set_resting(ords, s, p, left, keep)
            rest_order(sp, s)
            check_not_crossed(sp.lvl, sp.bkl, sp.bkn, sp.ctr, m)
        else:
            ords[s, O_QTY] = 0
            ords[s, O_HOLD] = 0
            forget_order(sp, s)
    after_taker(sp, seq, m)
