"""The hot command handlers and the batch loop (one njit call per batch of command rows).

Each handler validates in the contract's check order (docs/engine-semantics.md), emits a
single OrderRejected on the first failure (nothing changed), or applies the command.
"""

from __future__ import annotations

from engine.core.book import (
    best_level,
    check_not_crossed,
    forget_order,
    level_find,
    open_order,
    order_alloc,
    rest_order,
    unrest_order,
)
from engine.core.events import emit_order_end, emit_rejected, hold_txn, next_row
from engine.core.hashindex import coid_find, oid_find
from engine.core.layout import (
    A_EXISTS,
    A_HEAD,
    A_OPEN,
    B_AVAILABLE,
    BUY,
    C_OPEN_ORDERS,
    CANCEL_ALL,
    CANCEL_USER,
    CF_HASH_MASK,
    CF_MAX_ACCOUNTS,
    CF_MAX_LEVELS,
    CF_MAX_MARKETS,
    CF_MAX_OPEN,
    CF_MAX_ORDERS,
    EV_ACCEPTED,
    EV_CANCELLED,
    EV_EXPIRED,
    EXP_FOK_UNFILLABLE,
    FOK,
    GTC,
    K_ACCOUNT,
    K_ANEXT,
    K_MARKET,
    K_SIDE,
    K_TYPE,
    LIMIT,
    LIMIT_MAKER,
    M_BASE,
    M_EXISTS,
    M_LOT,
    M_MIN_NOTIONAL,
    M_QTL,
    M_QUOTE,
    M_TICK,
    M_WORST_PPM,
    MARKET,
    MAX,
    O_COID,
    O_HOLD,
    O_ID,
    O_PRICE,
    O_QTY,
    R_ACCOUNT,
    R_COID,
    R_MARKET,
    R_ORDER_ID,
    R_PRICE,
    R_QTY,
    R_QUOTE_QTY,
    R_SEQ,
    R_SIDE,
    R_TARGET_COID,
    R_TIF,
    R_TYPE,
    REJ_BOOK_FULL,
    REJ_DUPLICATE_COID,
    REJ_INSUFFICIENT_FUNDS,
    REJ_INVALID_COID,
    REJ_INVALID_ORDER_TYPE,
    REJ_INVALID_PRICE,
    REJ_INVALID_QTY,
    REJ_INVALID_SIDE,
    REJ_INVALID_TIF,
    REJ_MIN_NOTIONAL,
    REJ_NOTIONAL_OVERFLOW,
    REJ_PRICE_OFF_TICK,
    REJ_QTY_OFF_LOT,
    REJ_TAKER_NOT_ALLOWED,
    REJ_TOO_MANY_OPEN,
    REJ_UNKNOWN_ACCOUNT,
    REJ_UNKNOWN_MARKET,
    REJ_UNKNOWN_ORDER,
    SELL,
    STOP_FILLED,
    V_PRICE,
    kernel,
)
from engine.core.matching import dry_run, match, settle_taker
from engine.core.money import notional_fits, required_buy


@kernel
def market_ok(mkt, ctr, m):
    return 0 <= m < ctr[CF_MAX_MARKETS] and mkt[m, M_EXISTS] != 0


@kernel
def account_ok(acct, ctr, a):
    return 1 <= a < ctr[CF_MAX_ACCOUNTS] and acct[a, A_EXISTS] != 0


@kernel
def crosses(lvl, bkl, bkn, m, side, p):
    """Would a limit at ``p`` take liquidity (buy: p >= best ask; sell: p <= best bid)?"""
    lv = best_level(bkl, bkn, 2 * m + 1 - side)
    if lv < 0:
        return False
    best = lvl[lv, V_PRICE]
    return p >= best if side == BUY else p <= best


@kernel
def place_check(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, c, i):
    """PlaceOrder checks 1-7. Returns (reason, p, q, hold); reason 0 = accepted."""
    a = c[i, R_ACCOUNT]
    m = c[i, R_MARKET]
    side = c[i, R_SIDE]
    otype = c[i, R_TYPE]
    tif = c[i, R_TIF]
    price = c[i, R_PRICE]
    qty = c[i, R_QTY]
    quote_qty = c[i, R_QUOTE_QTY]
    coid = c[i, R_COID]
    if not market_ok(mkt, ctr, m):
        return REJ_UNKNOWN_MARKET, 0, 0, 0
    if not account_ok(acct, ctr, a):
        return REJ_UNKNOWN_ACCOUNT, 0, 0, 0
    if side != BUY and side != SELL:
        return REJ_INVALID_SIDE, 0, 0, 0
    if otype != LIMIT and otype != MARKET and otype != LIMIT_MAKER:
        return REJ_INVALID_ORDER_TYPE, 0, 0, 0
    if tif < 0 or tif > 2 or (otype == LIMIT_MAKER and tif != GTC):
        return REJ_INVALID_TIF, 0, 0, 0
    tick = mkt[m, M_TICK]
    lot = mkt[m, M_LOT]
    qtl = mkt[m, M_QTL]
    p = 0
    q = 0
    if otype != MARKET:
        if price < 1 or price > MAX:
            return REJ_INVALID_PRICE, 0, 0, 0
        if price % tick != 0:
            return REJ_PRICE_OFF_TICK, 0, 0, 0
        if qty < 1 or qty > MAX:
            return REJ_INVALID_QTY, 0, 0, 0
        if qty % lot != 0:
            return REJ_QTY_OFF_LOT, 0, 0, 0
        if quote_qty != 0:
            return REJ_INVALID_QTY, 0, 0, 0
        p = price // tick
        q = qty // lot
        if not notional_fits(p, q, qtl):
            return REJ_NOTIONAL_OVERFLOW, 0, 0, 0
        if p * q * qtl < mkt[m, M_MIN_NOTIONAL]:
            return REJ_MIN_NOTIONAL, 0, 0, 0
    else:
        if price != 0:
            return REJ_INVALID_PRICE, 0, 0, 0
        if side == BUY and (qty == 0) == (quote_qty == 0):
            return REJ_INVALID_QTY, 0, 0, 0
        if side == SELL or qty != 0:
            if qty < 1 or qty > MAX:
                return REJ_INVALID_QTY, 0, 0, 0
            if qty % lot != 0:
                return REJ_QTY_OFF_LOT, 0, 0, 0
            if quote_qty != 0:
                return REJ_INVALID_QTY, 0, 0, 0
            q = qty // lot
        else:
            if quote_qty < 1 or quote_qty > MAX:
                return REJ_INVALID_QTY, 0, 0, 0
            if quote_qty < mkt[m, M_MIN_NOTIONAL]:
                return REJ_MIN_NOTIONAL, 0, 0, 0
    if coid < 0:
        return REJ_INVALID_COID, 0, 0, 0
    if coid != 0 and coid_find(idx, ords, olnk, ctr[CF_HASH_MASK], a, coid) >= 0:
        return REJ_DUPLICATE_COID, 0, 0, 0
    if otype == LIMIT_MAKER and crosses(lvl, bkl, bkn, m, side, p):
        return REJ_TAKER_NOT_ALLOWED, 0, 0, 0
    if acct[a, A_OPEN] >= ctr[CF_MAX_OPEN]:
        return REJ_TOO_MANY_OPEN, 0, 0, 0
    if ctr[C_OPEN_ORDERS] >= ctr[CF_MAX_ORDERS]:
        return REJ_BOOK_FULL, 0, 0, 0
    own = 2 * m + side
    if (
        (otype == LIMIT_MAKER or (otype == LIMIT and tif == GTC))
        and bkn[own] >= ctr[CF_MAX_LEVELS]
        and level_find(bkl, bkp, bkn, own, side, p) < 0
    ):
        return REJ_BOOK_FULL, 0, 0, 0
    if side == SELL:
        hold = q * lot
        asset = mkt[m, M_BASE]
    else:
        asset = mkt[m, M_QUOTE]
        if otype != MARKET:
            hold = required_buy(p, q, qtl, mkt[m, M_WORST_PPM])
        elif q == 0:
            hold = quote_qty
        else:
            hold = dry_run(ords, olnk, lvl, bkl, bkn, mkt, ctr, m, side, False, 0, q)[1]
    if hold > bal[a, asset, B_AVAILABLE]:
        return REJ_INSUFFICIENT_FUNDS, 0, 0, 0
    return 0, p, q, hold


@kernel
def place(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree, ev, c, i):
    seq = c[i, R_SEQ]
    a = c[i, R_ACCOUNT]
    m = c[i, R_MARKET]
    reason, p, q, hold = place_check(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, c, i)
    if reason != 0:
        emit_rejected(ev, ctr, seq, a, m, 0, c[i, R_COID], reason)
        return
    side = c[i, R_SIDE]
    otype = c[i, R_TYPE]
    tif = c[i, R_TIF]
    quote_qty = c[i, R_QUOTE_QTY]
    asset = mkt[m, M_QUOTE] if side == BUY else mkt[m, M_BASE]
    r = next_row(ev, ctr, EV_ACCEPTED, seq)
    ev[r, 2] = seq
    ev[r, 3] = a
    ev[r, 4] = m
    ev[r, 5] = c[i, R_COID]
    ev[r, 6] = side
    ev[r, 7] = otype
    ev[r, 8] = tif
    ev[r, 9] = c[i, R_PRICE]
    ev[r, 10] = c[i, R_QTY]
    ev[r, 11] = quote_qty
    ev[r, 12] = hold
    hold_txn(ev, ctr, bal, seq, a, asset, hold)
    is_limit = otype != MARKET
    fok = otype == LIMIT and tif == FOK
    if fok and dry_run(ords, olnk, lvl, bkl, bkn, mkt, ctr, m, side, True, p, q)[0] > 0:
        emit_order_end(ev, ctr, EV_EXPIRED, seq, seq, a, m, q, EXP_FOK_UNFILLABLE)
        hold_txn(ev, ctr, bal, seq, a, asset, -hold)
        return
    quote_bounded = otype == MARKET and side == BUY and q == 0
    left = q
    budget = quote_qty
    fills = 0
    stop = STOP_FILLED
    if otype != LIMIT_MAKER:
        left, budget, hold, fills, stop = match(
            ords,
            olnk,
            idx,
            lvl,
            bkl,
            bkp,
            bkn,
            bal,
            sysb,
            mkt,
            acct,
            ctr,
            ofree,
            lfree,
            ev,
            seq,
            m,
            seq,
            a,
            side,
            is_limit,
            p,
            left,
            quote_bounded,
            budget,
            hold,
        )
    rest_ok = otype == LIMIT_MAKER or (otype == LIMIT and tif == GTC)
    rests, keep = settle_taker(
        ev,
        ctr,
        bal,
        mkt,
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
        fills,
        stop,
        asset,
    )
    if rests:
        s = order_alloc(ofree, ctr)
        if s < 0:
            return
        ords[s, O_ID] = seq
        ords[s, O_PRICE] = p
        ords[s, O_QTY] = left
        ords[s, O_HOLD] = keep
        ords[s, O_COID] = c[i, R_COID]
        olnk[s, K_ACCOUNT] = a
        olnk[s, K_MARKET] = m
        olnk[s, K_SIDE] = side
        olnk[s, K_TYPE] = otype
        rest_order(ords, olnk, lvl, bkl, bkp, bkn, lfree, ctr, s)
        open_order(ords, olnk, idx, acct, ctr, s)
        check_not_crossed(lvl, bkl, bkn, ctr, m)


@kernel
def find_target(ords, olnk, idx, ctr, a, m, oid, coid):
    """CancelOrder/AmendOrder target slot, or -1 (UNKNOWN_ORDER)."""
    mask = ctr[CF_HASH_MASK]
    if oid != 0:
        s = oid_find(idx, ords, mask, oid)
    elif coid != 0:
        s = coid_find(idx, ords, olnk, mask, a, coid)
    else:
        return -1
    if s < 0 or olnk[s, K_ACCOUNT] != a or olnk[s, K_MARKET] != m:
        return -1
    return s


@kernel
def cancel_slot(
    ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, ofree, lfree, ev, seq, s, reason
):
    a = olnk[s, K_ACCOUNT]
    m = olnk[s, K_MARKET]
    side = olnk[s, K_SIDE]
    emit_order_end(ev, ctr, EV_CANCELLED, seq, ords[s, O_ID], a, m, ords[s, O_QTY], reason)
    asset = mkt[m, M_QUOTE] if side == BUY else mkt[m, M_BASE]
    hold_txn(ev, ctr, bal, seq, a, asset, -ords[s, O_HOLD])
    unrest_order(ords, olnk, lvl, bkl, bkp, bkn, lfree, ctr, s)
    forget_order(ords, olnk, idx, acct, ctr, ofree, s)


@kernel
def cancel(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree, ev, c, i):
    seq = c[i, R_SEQ]
    a = c[i, R_ACCOUNT]
    m = c[i, R_MARKET]
    oid = c[i, R_ORDER_ID]
    coid = c[i, R_TARGET_COID]
    if not market_ok(mkt, ctr, m):
        emit_rejected(ev, ctr, seq, a, m, oid, coid, REJ_UNKNOWN_MARKET)
        return
    if not account_ok(acct, ctr, a):
        emit_rejected(ev, ctr, seq, a, m, oid, coid, REJ_UNKNOWN_ACCOUNT)
        return
    s = find_target(ords, olnk, idx, ctr, a, m, oid, coid)
    if s < 0:
        emit_rejected(ev, ctr, seq, a, m, oid, coid, REJ_UNKNOWN_ORDER)
        return
    cancel_slot(
        ords,
        olnk,
        idx,
        lvl,
        bkl,
        bkp,
        bkn,
        bal,
        mkt,
        acct,
        ctr,
        ofree,
        lfree,
        ev,
        seq,
        s,
        CANCEL_USER,
    )


@kernel
def cancel_all(
    ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree, ev, c, i
):
    seq = c[i, R_SEQ]
    a = c[i, R_ACCOUNT]
    m = c[i, R_MARKET]
    if not account_ok(acct, ctr, a):
        emit_rejected(ev, ctr, seq, a, m, 0, 0, REJ_UNKNOWN_ACCOUNT)
        return
    if m != -1 and not market_ok(mkt, ctr, m):
        emit_rejected(ev, ctr, seq, a, m, 0, 0, REJ_UNKNOWN_MARKET)
        return
    s = acct[a, A_HEAD]
    while s >= 0:
        nxt = olnk[s, K_ANEXT]
        if m == -1 or olnk[s, K_MARKET] == m:
            cancel_slot(
                ords,
                olnk,
                idx,
                lvl,
                bkl,
                bkp,
                bkn,
                bal,
                mkt,
                acct,
                ctr,
                ofree,
                lfree,
                ev,
                seq,
                s,
                CANCEL_ALL,
            )
        s = nxt
