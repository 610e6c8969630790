"""Validation of a PlaceOrder row: the contract's check order (docs/engine-semantics.md).

Split from the handlers because it is a quarter of a plain limit order's time and its own
concern: every check here reads state and changes nothing, so a failure leaves the book as it
was and the handler emits one OrderRejected.
"""

from __future__ import annotations

from engine.core.book import (
    best_level,
    level_find,
)
from engine.core.codes import (
    BUY,
    FOK,
    GTC,
    GTD,
    IOC,
    LIMIT,
    LIMIT_MAKER,
    MARKET,
    MAX_TRAILING_DELTA,
    REJ_BAND,
    REJ_BOOK_FULL,
    REJ_CANCEL_ONLY,
    REJ_DISPLAY,
    REJ_DUPLICATE_COID,
    REJ_EXPIRY,
    REJ_FROZEN,
    REJ_HALTED,
    REJ_INSUFFICIENT_FUNDS,
    REJ_INVALID_COID,
    REJ_INVALID_ORDER_TYPE,
    REJ_INVALID_PRICE,
    REJ_INVALID_QTY,
    REJ_INVALID_SIDE,
    REJ_INVALID_TIF,
    REJ_MIN_NOTIONAL,
    REJ_NO_REFERENCE,
    REJ_NOTIONAL_OVERFLOW,
    REJ_POST_ONLY,
    REJ_PRICE_OFF_TICK,
    REJ_QTY_OFF_LOT,
    REJ_STOP_PRICE,
    REJ_STP_MODE,
    REJ_TAKER_NOT_ALLOWED,
    REJ_TIER_LIMIT,
    REJ_TOO_LARGE,
    REJ_TOO_MANY_OPEN,
    REJ_TRAILING,
    REJ_UNKNOWN_ACCOUNT,
    REJ_UNKNOWN_MARKET,
    SELL,
    ST_CANCEL_ONLY,
    ST_HALTED,
    ST_POST_ONLY,
    STOP_MARKET,
    STP_DECREMENT,
    TP_LIMIT,
    TRAIL_LIMIT,
    TRAIL_MARKET,
)
from engine.core.hashindex import coid_find
from engine.core.kernelapi import kernel, load_state, nonneg, unlikely
from engine.core.layout import (
    A_EXISTS,
    A_FROZEN,
    A_OPEN,
    A_TIER,
    B_AVAILABLE,
    C_OPEN_ORDERS,
    CF_HASH_MASK,
    CF_MAX_ACCOUNTS,
    CF_MAX_LEVELS,
    CF_MAX_MARKETS,
    CF_MAX_OPEN,
    CF_MAX_ORDERS,
    M_BAND,
    M_BASE,
    M_EXISTS,
    M_LAST_PRICE,
    M_LOT,
    M_LOT_DIV,
    M_MAXQ,
    M_MIN_NOTIONAL,
    M_QTL,
    M_QUOTE,
    M_STATE,
    M_TICK,
    M_TICK_DIV,
    M_TIER_LIMIT,
    M_WORST_PPM,
    MAX,
    R_ACCOUNT,
    R_COID,
    R_DELTA,
    R_DISPLAY,
    R_EXPIRE,
    R_MARKET,
    R_OFFSET,
    R_PRICE,
    R_QTY,
    R_QUOTE_QTY,
    R_SIDE,
    R_STOP,
    R_STP,
    R_TIF,
    R_TS,
    V_PRICE,
)
from engine.core.matching import dry_run
from engine.core.money import bps_of, exact_div, exact_div_by, notional_fits, required_buy
from engine.core.triggers import (
    falls,
    is_market_kind,
    protection_price,
    trigger_book,
)


@kernel
def market_ok(mkt, ctr, m):
    return 0 <= m < ctr[CF_MAX_MARKETS] and mkt[m, M_EXISTS] != 0


@kernel
def account_ok(acct, ctr, a):
    return 1 <= a < ctr[CF_MAX_ACCOUNTS] and acct[a, A_EXISTS] != 0


@kernel
def preamble(sp, a, m, trading):
    """The checks every order command starts with, in contract order: the market, the
    account, and for the commands that may trade (place, amend) the market state. Returns the
    rejection reason, 0 = passed."""
    st = load_state(sp)
    if unlikely(not market_ok(st.mkt, st.ctr, m)):
        return REJ_UNKNOWN_MARKET
    if unlikely(not account_ok(st.acct, st.ctr, a)):
        return REJ_UNKNOWN_ACCOUNT
    if unlikely(trading and st.mkt[m, M_STATE] == ST_HALTED):
        return REJ_HALTED
    if unlikely(trading and st.mkt[m, M_STATE] == ST_CANCEL_ONLY):
        return REJ_CANCEL_ONLY
    return 0


@kernel
def crosses(lvl, bkl, bkn, m, side, p):
    """Would a limit at ``p`` take liquidity (buy: p >= best ask; sell: p <= best bid)?"""
    lv = best_level(bkl, bkn, 2 * m + 1 - side)
    if lv < 0:
        return False
    best = lvl[lv, V_PRICE]
    return p >= best if side == BUY else p <= best


@kernel
def outside_band(sp, m, p):
    """Price band: is ``p`` further than the band from the reference price (the last trade,
    else the floor of the mid when both sides exist)? Callers test ``mkt[m, M_BAND] != 0``
    first: most markets have no band, and the call is then skipped."""
    st = load_state(sp)
    band = st.mkt[m, M_BAND]
    if band == 0:
        return False
    ref = st.mkt[m, M_LAST_PRICE]
    if ref == 0:
        bid = best_level(st.bkl, st.bkn, 2 * m)
        ask = best_level(st.bkl, st.bkn, 2 * m + 1)
        if bid < 0 or ask < 0:
            return False
        ref = (st.lvl[bid, V_PRICE] + st.lvl[ask, V_PRICE]) // 2
    dev = bps_of(ref, band)
    return p < ref - dev or p > ref + dev


@kernel
def tier_limit(mkt, acct, a, m):
    """The largest order notional (quote atoms) account ``a``'s KYC tier may have in market
    ``m``; 0 = no limit (no tier, or none set for the tier and the market's quote asset)."""
    tier = acct[a, A_TIER] - 1
    if tier < 0:
        return 0
    return mkt[m, M_TIER_LIMIT + tier]


@kernel
def over_tier_limit(sp, m, otype, p, q, quote_qty, limit):
    """Tier trade limit ``limit`` > 0 (docs/engine-semantics.md): an order priced by a limit
    is valued at it, a market buy by its quote budget, any other order by quantity at the
    market's last trade price (none yet: it cannot be valued, so it is over). Callers test
    `tier_limit` first: most accounts have no limit, and the call is then skipped."""
    mkt = load_state(sp).mkt
    qtl = mkt[m, M_QTL]
    if not is_market_kind(otype):
        return p * q * qtl > limit  # fits: checked by place_fields
    if q == 0:
        return quote_qty > limit
    last = mkt[m, M_LAST_PRICE]
    if last == 0 or not notional_fits(last, q, qtl):
        return True
    return last * q * qtl > limit


@kernel(inline=True)
def place_fields(sp, cr, otype):
    """PlaceOrder checks 2-3 (``otype`` is ``cr[R_TYPE]``, see `place_check`). Returns
    (reason, p, q)."""
    mkt = sp.mkt
    m = nonneg(cr[R_MARKET])  # valid: the preamble passed
    side = cr[R_SIDE]
    tif = cr[R_TIF]
    price = cr[R_PRICE]
    qty = cr[R_QTY]
    quote_qty = cr[R_QUOTE_QTY]
    expire = cr[R_EXPIRE]
    if unlikely(side != BUY and side != SELL):
        return REJ_INVALID_SIDE, 0, 0
    if unlikely(otype < 0 or otype > TRAIL_LIMIT):
        return REJ_INVALID_ORDER_TYPE, 0, 0
    if unlikely(tif < 0 or tif > GTD or (otype == LIMIT_MAKER and tif != GTC and tif != GTD)):
        return REJ_INVALID_TIF, 0, 0
    if unlikely(cr[R_STP] < 0 or cr[R_STP] > STP_DECREMENT):
        return REJ_STP_MODE, 0, 0
    if tif == GTD:
        if unlikely(expire <= cr[R_TS]):
            return REJ_EXPIRY, 0, 0
    elif unlikely(expire != 0):
        return REJ_EXPIRY, 0, 0
    tick = nonneg(mkt[m, M_TICK])  # >= 1 (market creation): unsigned division
    lot = nonneg(mkt[m, M_LOT])  # >= 1 (market creation): unsigned division
    qtl = mkt[m, M_QTL]
    p = 0
    q = 0
    if not is_market_kind(otype):
        if unlikely(price < 1 or price > MAX):
            return REJ_INVALID_PRICE, 0, 0
        p = exact_div_by(price, mkt, m, M_TICK_DIV)
        if unlikely(p < 0):
            return REJ_PRICE_OFF_TICK, 0, 0
        if unlikely(qty < 1 or qty > MAX):
            return REJ_INVALID_QTY, 0, 0
        q = exact_div_by(qty, mkt, m, M_LOT_DIV)
        if unlikely(q < 0):
            return REJ_QTY_OFF_LOT, 0, 0
        if unlikely(quote_qty != 0):
            return REJ_INVALID_QTY, 0, 0
        if unlikely(not notional_fits(p, q, qtl)):
            return REJ_NOTIONAL_OVERFLOW, 0, 0
        if unlikely(p * q * qtl < mkt[m, M_MIN_NOTIONAL]):
            return REJ_MIN_NOTIONAL, 0, 0
    else:
        if unlikely(price != 0):
            return REJ_INVALID_PRICE, 0, 0
        by_quote = otype != MARKET and side == BUY
        if otype == MARKET and side == BUY:
            if (qty == 0) == (quote_qty == 0):
                return REJ_INVALID_QTY, 0, 0
            by_quote = quote_qty != 0
        if not by_quote:
            if unlikely(qty < 1 or qty > MAX):
                return REJ_INVALID_QTY, 0, 0
            q = exact_div_by(qty, mkt, m, M_LOT_DIV)
            if unlikely(q < 0):
                return REJ_QTY_OFF_LOT, 0, 0
            if unlikely(quote_qty != 0):
                return REJ_INVALID_QTY, 0, 0
        else:
            if unlikely(qty != 0 or quote_qty < 1 or quote_qty > MAX):
                return REJ_INVALID_QTY, 0, 0
            if unlikely(quote_qty < mkt[m, M_MIN_NOTIONAL]):
                return REJ_MIN_NOTIONAL, 0, 0
    if unlikely(mkt[m, M_MAXQ] != 0 and q > mkt[m, M_MAXQ]):
        return REJ_TOO_LARGE, 0, 0
    stop = cr[R_STOP]
    if otype >= STOP_MARKET and otype <= TP_LIMIT:
        if unlikely(stop < 1 or stop > MAX or exact_div(stop, tick) < 0):
            return REJ_STOP_PRICE, 0, 0
    elif unlikely(stop != 0):
        return REJ_STOP_PRICE, 0, 0
    delta = cr[R_DELTA]
    if otype >= TRAIL_MARKET:
        if unlikely(delta < 1 or delta > MAX_TRAILING_DELTA):
            return REJ_TRAILING, 0, 0
    elif unlikely(delta != 0):
        return REJ_TRAILING, 0, 0
    offset = cr[R_OFFSET]
    if otype == TRAIL_LIMIT:
        if unlikely(offset < 0 or offset > MAX):
            return REJ_INVALID_PRICE, 0, 0
        if unlikely(exact_div(offset, tick) < 0):
            return REJ_PRICE_OFF_TICK, 0, 0
    elif unlikely(offset != 0):
        return REJ_INVALID_PRICE, 0, 0
    display = cr[R_DISPLAY]
    if display != 0 and (
        (otype != LIMIT and otype != LIMIT_MAKER)
        or (tif != GTC and tif != GTD)
        or display < 1
        or display >= qty
        or exact_div(display, lot) < 0
    ):
        return REJ_DISPLAY, 0, 0
    return 0, p, q


@kernel(inline=True)
def place_check(sp, cr, otype):
    """PlaceOrder checks 1-7. Returns (reason, p, q, hold); reason 0 = accepted.

    ``otype`` is ``cr[R_TYPE]``, passed in so that a caller that knows it (the limit-order
    copy of place) compiles the checks with the type as a constant."""
    a = cr[R_ACCOUNT]
    m = cr[R_MARKET]
    side = cr[R_SIDE]
    tif = cr[R_TIF]
    quote_qty = cr[R_QUOTE_QTY]
    coid = cr[R_COID]
    reason = preamble(sp, a, m, True)
    if reason != 0:
        return reason, 0, 0, 0
    a = nonneg(a)
    m = nonneg(m)
    if unlikely(sp.acct[a, A_FROZEN] != 0):
        return REJ_FROZEN, 0, 0, 0
    state = sp.mkt[m, M_STATE]
    reason, p, q = place_fields(sp, cr, otype)
    if reason != 0:
        return reason, 0, 0, 0
    limit = tier_limit(sp.mkt, sp.acct, a, m)
    if unlikely(limit != 0 and over_tier_limit(sp, m, otype, p, q, quote_qty, limit)):
        return REJ_TIER_LIMIT, 0, 0, 0
    if unlikely(coid < 0):
        return REJ_INVALID_COID, 0, 0, 0
    if unlikely(
        coid != 0 and coid_find(sp.idx, sp.ords, sp.olnk, sp.ctr[CF_HASH_MASK], a, coid) >= 0
    ):
        return REJ_DUPLICATE_COID, 0, 0, 0
    if unlikely(otype == LIMIT_MAKER and crosses(sp.lvl, sp.bkl, sp.bkn, m, side, p)):
        return REJ_TAKER_NOT_ALLOWED, 0, 0, 0
    resting_tif = tif != IOC and tif != FOK  # GTC or GTD (tif is valid here)
    if state == ST_POST_ONLY and (
        (otype != LIMIT and otype != LIMIT_MAKER)
        or not resting_tif
        or crosses(sp.lvl, sp.bkl, sp.bkn, m, side, p)
    ):
        return REJ_POST_ONLY, 0, 0, 0
    if unlikely(
        (otype == LIMIT or otype == LIMIT_MAKER)  # noqa: SIM109
        and sp.mkt[m, M_BAND] != 0
        and outside_band(sp, m, p)
    ):
        return REJ_BAND, 0, 0, 0
    if otype >= STOP_MARKET:
        last = sp.mkt[m, M_LAST_PRICE]
        if otype >= TRAIL_MARKET:
            if unlikely(last == 0):
                return REJ_NO_REFERENCE, 0, 0, 0
        elif last != 0:
            trigger = cr[R_STOP] // sp.mkt[m, M_TICK]
            if (last <= trigger) if falls(otype, side) else (last >= trigger):
                return REJ_STOP_PRICE, 0, 0, 0
    if unlikely(sp.acct[a, A_OPEN] >= sp.ctr[CF_MAX_OPEN]):
        return REJ_TOO_MANY_OPEN, 0, 0, 0
    if unlikely(sp.ctr[C_OPEN_ORDERS] >= sp.ctr[CF_MAX_ORDERS]):
        return REJ_BOOK_FULL, 0, 0, 0
    own = 2 * m + side
    if unlikely(
        (otype == LIMIT_MAKER or (otype == LIMIT and resting_tif))
        and sp.bkn[own] >= sp.ctr[CF_MAX_LEVELS]
        and level_find(sp.lvl, sp.bkl, sp.bkn, own, side, p) < 0
    ):
        return REJ_BOOK_FULL, 0, 0, 0
    if otype >= STOP_MARKET and otype <= TP_LIMIT:
        tx = trigger_book(sp.ctr, m, falls(otype, side))
        key_side = tx & 1
        trigger = cr[R_STOP] // sp.mkt[m, M_TICK]
        if unlikely(
            sp.bkn[tx] >= sp.ctr[CF_MAX_LEVELS]
            and level_find(sp.lvl, sp.bkl, sp.bkn, tx, key_side, trigger) < 0
        ):
            return REJ_BOOK_FULL, 0, 0, 0
    if side == SELL:
        hold = q * sp.mkt[m, M_LOT]
        asset = sp.mkt[m, M_BASE]
    else:
        asset = sp.mkt[m, M_QUOTE]
        if not is_market_kind(otype):
            hold = required_buy(p, q, sp.mkt[m, M_QTL], sp.mkt[m, M_WORST_PPM])
        elif q == 0:
            hold = quote_qty
        else:
            lim = protection_price(sp.lvl, sp.bkl, sp.bkn, sp.mkt, m, side)
            hold = dry_run(sp, m, side, lim, q, a, cr[R_STP])[1]
    if unlikely(hold > sp.bal[a, asset, B_AVAILABLE]):
        return REJ_INSUFFICIENT_FUNDS, 0, 0, 0
    return 0, p, q, hold
