"""The matching loop: trades against the best opposite level, dry runs, taker settlement.

docs/engine-semantics.md, PlaceOrder steps 5-6 and the Dry run paragraph, implemented on the
flat arrays of `engine.core.layout`. Every kernel function takes the state arrays in the
order of `CoreArrays.kernel_args` (ords .. ev) followed by its own scalars.
"""

from __future__ import annotations

from engine.core.book import fail, forget_order, unrest_order
from engine.core.events import emit_order_end, emit_posting, new_txn, next_row, post_release
from engine.core.layout import (
    B_AVAILABLE,
    B_FEES,
    B_HELD_ORDERS,
    BUY,
    CF_MAX_FILLS,
    ERR_NEGATIVE_BALANCE,
    ERR_NEGATIVE_HOLD,
    EV_EXPIRED,
    EV_TRADE,
    EXP_BUDGET_EXHAUSTED,
    EXP_IOC_REMAINDER,
    EXP_MAX_FILLS,
    EXP_NO_LIQUIDITY,
    K_ACCOUNT,
    K_NEXT,
    M_BASE,
    M_LAST_TRADE,
    M_LOT,
    M_MAKER_PPM,
    M_QTL,
    M_QUOTE,
    M_TAKER_PPM,
    M_WORST_PPM,
    MAX,
    O_HOLD,
    O_ID,
    O_PRICE,
    O_QTY,
    P_FEE,
    P_TRADE_BASE,
    P_TRADE_QUOTE,
    S_FEES,
    SELL,
    STOP_BOOK_EMPTY,
    STOP_BUDGET,
    STOP_FILLED,
    STOP_LIMIT,
    STOP_MAX_FILLS,
    V_HEAD,
    V_PRICE,
    kernel,
)
from engine.core.money import fee, lots_for_budget, required_buy


@kernel
def execute_trade(
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
    taker_oid,
    taker_acct,
    taker_side,
    ms,
    f,
):
    """Fill ``f`` lots of maker slot ``ms`` at its price: Trade event, the trade's transaction,
    the maker's hold and queue updates. Returns what leaves the taker's hold (buy: notional +
    taker fee in quote atoms; sell: base atoms)."""
    price = ords[ms, O_PRICE]
    qtl = mkt[m, M_QTL]
    base = mkt[m, M_BASE]
    quote = mkt[m, M_QUOTE]
    n = price * f * qtl  # <= the maker's notional <= MAX
    base_atoms = f * mkt[m, M_LOT]
    maker_fee = fee(n, mkt[m, M_MAKER_PPM])
    taker_fee = fee(n, mkt[m, M_TAKER_PPM])
    trade_id = mkt[m, M_LAST_TRADE] + 1
    mkt[m, M_LAST_TRADE] = trade_id
    maker_acct = olnk[ms, K_ACCOUNT]
    r = next_row(ev, ctr, EV_TRADE, seq)
    ev[r, 2] = trade_id
    ev[r, 3] = m
    ev[r, 4] = price
    ev[r, 5] = f
    ev[r, 6] = n
    ev[r, 7] = ords[ms, O_ID]
    ev[r, 8] = maker_acct
    ev[r, 9] = taker_oid
    ev[r, 10] = taker_acct
    ev[r, 11] = taker_side
    ev[r, 12] = maker_fee
    ev[r, 13] = taker_fee
    if taker_side == BUY:
        buyer = taker_acct
        seller = maker_acct
        buyer_fee = taker_fee
        seller_fee = maker_fee
    else:
        buyer = maker_acct
        seller = taker_acct
        buyer_fee = maker_fee
        seller_fee = taker_fee
    txn = new_txn(ctr)
    emit_posting(
        ev, ctr, seq, txn, P_TRADE_QUOTE, quote, buyer, B_HELD_ORDERS, seller, B_AVAILABLE, n
    )
    bal[buyer, quote, B_HELD_ORDERS] -= n
    bal[seller, quote, B_AVAILABLE] += n
    emit_posting(
        ev,
        ctr,
        seq,
        txn,
        P_TRADE_BASE,
        base,
        seller,
        B_HELD_ORDERS,
        buyer,
        B_AVAILABLE,
        base_atoms,
    )
    bal[seller, base, B_HELD_ORDERS] -= base_atoms
    bal[buyer, base, B_AVAILABLE] += base_atoms
    if buyer_fee > 0:
        emit_posting(ev, ctr, seq, txn, P_FEE, quote, buyer, B_HELD_ORDERS, 0, B_FEES, buyer_fee)
        bal[buyer, quote, B_HELD_ORDERS] -= buyer_fee
        sysb[quote, S_FEES] += buyer_fee
    if seller_fee > 0:
        emit_posting(ev, ctr, seq, txn, P_FEE, quote, seller, B_AVAILABLE, 0, B_FEES, seller_fee)
        bal[seller, quote, B_AVAILABLE] -= seller_fee
        sysb[quote, S_FEES] += seller_fee
    maker_left = ords[ms, O_QTY] - f
    maker_hold = ords[ms, O_HOLD]
    if taker_side == SELL:
        # The maker buys: its hold drops to the commitment of what is left.
        keep = required_buy(price, maker_left, qtl, mkt[m, M_WORST_PPM])
        excess = maker_hold - n - maker_fee - keep
        if excess < 0:
            fail(ctr, ERR_NEGATIVE_HOLD)
        elif excess > 0:
            post_release(ev, ctr, bal, seq, txn, maker_acct, quote, excess)
        maker_hold = keep
    else:
        maker_hold -= base_atoms
    if (
        bal[buyer, quote, B_HELD_ORDERS] < 0
        or bal[seller, base, B_HELD_ORDERS] < 0
        or bal[seller, quote, B_AVAILABLE] < 0
    ):
        fail(ctr, ERR_NEGATIVE_BALANCE)
    if maker_hold < 0:
        fail(ctr, ERR_NEGATIVE_HOLD)
    ords[ms, O_QTY] = maker_left
    ords[ms, O_HOLD] = maker_hold
    if maker_left == 0:
        unrest_order(ords, olnk, lvl, bkl, bkp, bkn, lfree, ctr, ms)
        forget_order(ords, olnk, idx, acct, ctr, ofree, ms)
    if taker_side == BUY:
        return n + taker_fee
    return base_atoms


@kernel
def match(
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
    taker_oid,
    taker_acct,
    side,
    is_limit,
    p,
    left,
    quote_bounded,
    budget,
    hold,
):
    """The matching loop (PlaceOrder step 5). Returns (left, budget, hold, fills, stop)."""
    opp = 2 * m + 1 - side
    max_fills = ctr[CF_MAX_FILLS]
    cost_per_tick_lot = mkt[m, M_QTL]
    taker_ppm = mkt[m, M_TAKER_PPM]
    fills = 0
    stop = STOP_FILLED
    while True:
        if quote_bounded:
            if budget <= 0:
                break
        elif left <= 0:
            break
        if fills >= max_fills:
            stop = STOP_MAX_FILLS
            break
        n_levels = bkn[opp]
        if n_levels == 0:
            stop = STOP_BOOK_EMPTY
            break
        lv = bkl[opp, n_levels - 1]
        price = lvl[lv, V_PRICE]
        if is_limit and ((side == BUY and price > p) or (side == SELL and price < p)):
            stop = STOP_LIMIT
            break
        ms = lvl[lv, V_HEAD]
        maker_qty = ords[ms, O_QTY]
        if quote_bounded:
            f = lots_for_budget(price * cost_per_tick_lot, taker_ppm, budget, maker_qty)
            if f == 0:
                stop = STOP_BUDGET
                break
        else:
            f = left if left < maker_qty else maker_qty
        cost = execute_trade(
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
            taker_oid,
            taker_acct,
            side,
            ms,
            f,
        )
        hold -= cost
        if quote_bounded:
            budget -= cost
        else:
            left -= f
        fills += 1
    return left, budget, hold, fills, stop


@kernel
def dry_run(ords, olnk, lvl, bkl, bkn, mkt, ctr, m, side, is_limit, p, left):
    """Walk the opposite side as the matching loop would, without changing anything.
    Returns (left, cost): cost = sum of notional + taker fee, saturated at MAX + 1."""
    opp = 2 * m + 1 - side
    max_fills = ctr[CF_MAX_FILLS]
    qtl = mkt[m, M_QTL]
    taker_ppm = mkt[m, M_TAKER_PPM]
    fills = 0
    cost = 0
    pos = bkn[opp] - 1
    while pos >= 0 and left > 0 and fills < max_fills:
        lv = bkl[opp, pos]
        price = lvl[lv, V_PRICE]
        if is_limit and ((side == BUY and price > p) or (side == SELL and price < p)):
            break
        s = lvl[lv, V_HEAD]
        while s >= 0 and left > 0 and fills < max_fills:
            maker_qty = ords[s, O_QTY]
            f = left if left < maker_qty else maker_qty
            if cost <= MAX:
                n = price * f * qtl
                cost += n + fee(n, taker_ppm)
                if cost > MAX:
                    cost = MAX + 1
            left -= f
            fills += 1
            s = olnk[s, K_NEXT]
        pos -= 1
    return left, cost


@kernel
def settle_taker(
    ev,
    ctr,
    bal,
    mkt,
    seq,
    oid,
    account,
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
):
    """PlaceOrder step 6: expire or keep resting, then release what the taker no longer needs.
    Returns (rests, hold kept by the resting order)."""
    # Resolution (as the reference): a quote-bounded taker whose budget is exactly spent is
    # filled, like one stopped by the budget after at least one fill.
    filled = (budget == 0 or (stop == STOP_BUDGET and fills > 0)) if quote_bounded else left == 0
    rests = False
    keep = 0
    if not filled:
        if rest_ok and stop != STOP_MAX_FILLS:
            rests = True
            if side == BUY:
                keep = required_buy(p, left, mkt[m, M_QTL], mkt[m, M_WORST_PPM])
            else:
                keep = left * mkt[m, M_LOT]
        else:
            if stop == STOP_MAX_FILLS:
                reason = EXP_MAX_FILLS
            elif is_limit:
                reason = EXP_IOC_REMAINDER
            elif stop == STOP_BOOK_EMPTY or stop == STOP_LIMIT:  # noqa: SIM109 (numba)
                reason = EXP_NO_LIQUIDITY
            else:
                reason = EXP_BUDGET_EXHAUSTED
            emit_order_end(ev, ctr, EV_EXPIRED, seq, oid, account, m, left, reason)
    release = hold - keep
    if release < 0:
        fail(ctr, ERR_NEGATIVE_HOLD)
    elif release > 0:
        post_release(ev, ctr, bal, seq, new_txn(ctr), account, asset, release)
    return rests, keep
