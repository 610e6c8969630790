"""The matching loop: trades against the best opposite level, dry runs, taker settlement.

docs/engine-semantics.md, PlaceOrder steps 5-6 and the Dry run paragraph, implemented on the
flat arrays of `engine.core.layout`. Every kernel function takes the state by reference
(``sp``, see `kernelapi.state_ref`; ``st = load_state(sp)`` is its `CoreState`) followed by its
own scalars.
"""

from __future__ import annotations

from engine.core.book import fail, forget_order, rest_order, unrest_order
from engine.core.codes import (
    BUY,
    EXP_BUDGET_EXHAUSTED,
    EXP_IOC_REMAINDER,
    EXP_MAX_FILLS,
    EXP_NO_LIQUIDITY,
    EXP_PROTECTION,
    EXP_STP,
    SELL,
    STOP_BOOK_EMPTY,
    STOP_BUDGET,
    STOP_FILLED,
    STOP_LIMIT,
    STOP_MAX_FILLS,
    STOP_STP,
    STP_DECREMENT,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
)
from engine.core.events import (
    emit_iceberg,
    emit_order_end,
    emit_stp,
    hold_txn,
    new_txn,
    next_row,
    post_release,
)
from engine.core.kernelapi import kernel, load_state, nonneg
from engine.core.layout import (
    B_AVAILABLE,
    B_HELD_ORDERS,
    CF_MAX_FILLS,
    ERR_NEGATIVE_BALANCE,
    ERR_NEGATIVE_HOLD,
    EV_EXPIRED,
    EV_TRADE,
    K_ACCOUNT,
    K_MARKET,
    K_NEXT,
    M_BASE,
    M_BURST_FIRST,
    M_BURST_LAST,
    M_LAST_PRICE,
    M_LAST_TRADE,
    M_LOT,
    M_MAKER_PPM,
    M_QTL,
    M_QUOTE,
    M_TAKER_PPM,
    M_WORST_PPM,
    MAX,
    O_DISPLAY,
    O_HOLD,
    O_ID,
    O_PRICE,
    O_QTY,
    O_VISIBLE,
    S_FEES,
    V_HEAD,
    V_PRICE,
    k_side,
)
from engine.core.money import fee, lots_for_budget, required_buy


@kernel
def refresh_if_needed(sp, seq, s):
    """An iceberg whose slice ran out (and has more) goes to the back with a new slice."""
    q = sp.ords[s, O_QTY]
    if q > 0 and sp.ords[s, O_VISIBLE] == 0:
        d = sp.ords[s, O_DISPLAY]
        vis = d if d < q else q
        sp.ords[s, O_VISIBLE] = vis
        unrest_order(sp, s)
        rest_order(sp, s)
        emit_iceberg(
            sp.ev,
            sp.ctr,
            seq,
            sp.ords[s, O_ID],
            sp.olnk[s, K_MARKET],
            sp.ords[s, O_PRICE],
            vis,
            q - vis,
        )


@kernel
def end_slot(sp, seq, s, kind, reason):
    """OrderCancelled/OrderExpired of a resting order, the release of its hold, and removal."""
    olnk = sp.olnk  # locals: each is used again after emit_order_end's stores
    ords = sp.ords
    ev = sp.ev
    ctr = sp.ctr
    a = olnk[s, K_ACCOUNT]
    m = olnk[s, K_MARKET]
    emit_order_end(ev, ctr, kind, seq, ords[s, O_ID], a, m, ords[s, O_QTY], reason)
    asset = sp.mkt[m, M_QUOTE] if k_side(olnk, s) == BUY else sp.mkt[m, M_BASE]
    hold_txn(ev, ctr, sp.bal, seq, a, asset, -ords[s, O_HOLD])
    ords[s, O_HOLD] = 0
    unrest_order(sp, s)
    forget_order(sp, s)


@kernel
def execute_trade(
    sp,
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
    st = load_state(sp)
    ms = nonneg(ms)
    m = nonneg(m)
    price = st.ords[ms, O_PRICE]
    qtl = st.mkt[m, M_QTL]
    base = nonneg(st.mkt[m, M_BASE])
    quote = nonneg(st.mkt[m, M_QUOTE])
    n = price * f * qtl  # <= the maker's notional <= MAX
    base_atoms = f * st.mkt[m, M_LOT]
    maker_fee = fee(n, st.mkt[m, M_MAKER_PPM])
    taker_fee = fee(n, st.mkt[m, M_TAKER_PPM])
    trade_id = st.mkt[m, M_LAST_TRADE] + 1
    st.mkt[m, M_LAST_TRADE] = trade_id
    st.mkt[m, M_LAST_PRICE] = price
    if st.mkt[m, M_BURST_FIRST] == 0:
        st.mkt[m, M_BURST_FIRST] = price
    st.mkt[m, M_BURST_LAST] = price
    maker_acct = nonneg(st.olnk[ms, K_ACCOUNT])
    taker_acct = nonneg(taker_acct)
    r = next_row(st.ev, st.ctr, EV_TRADE, seq)
    st.ev[r, 2] = trade_id
    st.ev[r, 3] = m
    st.ev[r, 4] = price
    st.ev[r, 5] = f
    st.ev[r, 6] = n
    st.ev[r, 7] = st.ords[ms, O_ID]
    st.ev[r, 8] = maker_acct
    st.ev[r, 9] = taker_oid
    st.ev[r, 10] = taker_acct
    st.ev[r, 11] = taker_side
    st.ev[r, 12] = maker_fee
    st.ev[r, 13] = taker_fee
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
    # The trade's transaction: its postings are not written as rows, the decoder derives them
    # from this row (engine.core.eventrows: quote, base, buyer fee, seller fee, release).
    st.ev[r, 14] = new_txn(st.ctr)
    st.ev[r, 15] = 0
    st.bal[buyer, quote, B_HELD_ORDERS] -= n
    st.bal[seller, quote, B_AVAILABLE] += n
    st.bal[seller, base, B_HELD_ORDERS] -= base_atoms
    st.bal[buyer, base, B_AVAILABLE] += base_atoms
    if buyer_fee > 0:
        st.bal[buyer, quote, B_HELD_ORDERS] -= buyer_fee
        st.sysb[quote, S_FEES] += buyer_fee
    if seller_fee > 0:
        st.bal[seller, quote, B_AVAILABLE] -= seller_fee
        st.sysb[quote, S_FEES] += seller_fee
    maker_left = st.ords[ms, O_QTY] - f
    maker_hold = st.ords[ms, O_HOLD]
    if taker_side == SELL:
        # The maker buys: its hold drops to the commitment of what is left.
        keep = required_buy(price, maker_left, qtl, st.mkt[m, M_WORST_PPM])
        excess = maker_hold - n - maker_fee - keep
        if excess < 0:
            fail(st.ctr, ERR_NEGATIVE_HOLD)
        elif excess > 0:  # the release posting (derived from the row, like the others)
            st.ev[r, 15] = excess
            st.bal[maker_acct, quote, B_HELD_ORDERS] -= excess
            st.bal[maker_acct, quote, B_AVAILABLE] += excess
            if st.bal[maker_acct, quote, B_HELD_ORDERS] < 0:
                fail(st.ctr, ERR_NEGATIVE_BALANCE)
        maker_hold = keep
    else:
        maker_hold -= base_atoms
    if (
        st.bal[buyer, quote, B_HELD_ORDERS] < 0
        or st.bal[seller, base, B_HELD_ORDERS] < 0
        or st.bal[seller, quote, B_AVAILABLE] < 0
    ):
        fail(st.ctr, ERR_NEGATIVE_BALANCE)
    if maker_hold < 0:
        fail(st.ctr, ERR_NEGATIVE_HOLD)
    st.ords[ms, O_QTY] = maker_left
    st.ords[ms, O_HOLD] = maker_hold
    st.ords[ms, O_VISIBLE] -= f
    if maker_left == 0:
        unrest_order(sp, ms)
        forget_order(sp, ms)
    else:
        refresh_if_needed(sp, seq, ms)
    if taker_side == BUY:
        return n + taker_fee
    return base_atoms


@kernel
def prevent(
    sp,
    seq,
    m,
    taker_oid,
    taker_acct,
    stp,
    quote_bounded,
    ms,
    f,
):
    """Self-trade prevention against maker ``ms``. Returns (lots the taker loses, stop?)."""
    st = load_state(sp)
    emit_stp(st.ev, st.ctr, seq, m, taker_acct, taker_oid, st.ords[ms, O_ID], f, stp)
    mode = stp
    if mode == STP_DECREMENT and quote_bounded:
        mode = STP_EXPIRE_TAKER  # no base quantity to decrement
    if mode == STP_EXPIRE_TAKER:
        return 0, True
    if mode == STP_EXPIRE_MAKER or mode == STP_EXPIRE_BOTH:  # noqa: SIM109
        end_slot(sp, seq, ms, EV_EXPIRED, EXP_STP)
        return 0, mode == STP_EXPIRE_BOTH
    q = st.ords[ms, O_QTY] - f
    st.ords[ms, O_QTY] = q
    st.ords[ms, O_VISIBLE] -= f
    if q == 0:
        end_slot(sp, seq, ms, EV_EXPIRED, EXP_STP)
        return f, False
    if k_side(st.olnk, ms) == BUY:
        keep = required_buy(st.ords[ms, O_PRICE], q, st.mkt[m, M_QTL], st.mkt[m, M_WORST_PPM])
        asset = st.mkt[m, M_QUOTE]
    else:
        keep = q * st.mkt[m, M_LOT]
        asset = st.mkt[m, M_BASE]
    hold_txn(st.ev, st.ctr, st.bal, seq, taker_acct, asset, keep - st.ords[ms, O_HOLD])
    st.ords[ms, O_HOLD] = keep
    refresh_if_needed(sp, seq, ms)
    return f, False


@kernel
def match(
    sp,
    seq,
    m,
    taker_oid,
    taker_acct,
    side,
    lim,
    left,
    quote_bounded,
    budget,
    hold,
    stp,
):
    """The matching loop (PlaceOrder step 5); ``lim`` = limit or protection price (0 = none).
    Returns (left, budget, hold, steps, stop, trades)."""
    m = nonneg(m)
    opp = nonneg(2 * m + 1 - side)
    max_fills = sp.ctr[CF_MAX_FILLS]
    cost_per_tick_lot = sp.mkt[m, M_QTL]
    taker_ppm = sp.mkt[m, M_TAKER_PPM]
    fills = 0
    trades = 0
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
        n_levels = sp.bkn[opp]
        if n_levels == 0:
            stop = STOP_BOOK_EMPTY
            break
        lv = nonneg(sp.bkl[opp, n_levels - 1])
        price = sp.lvl[lv, V_PRICE]
        if lim > 0 and ((side == BUY and price > lim) or (side == SELL and price < lim)):
            stop = STOP_LIMIT
            break
        ms = nonneg(sp.lvl[lv, V_HEAD])
        maker_qty = sp.ords[ms, O_VISIBLE]
        if quote_bounded:
            f = lots_for_budget(price * cost_per_tick_lot, taker_ppm, budget, maker_qty)
            if f == 0:
                stop = STOP_BUDGET
                break
        else:
            f = left if left < maker_qty else maker_qty
        fills += 1
        if stp != 0 and sp.olnk[ms, K_ACCOUNT] == taker_acct:
            lost, ends = prevent(
                sp,
                seq,
                m,
                taker_oid,
                taker_acct,
                stp,
                quote_bounded,
                ms,
                f,
            )
            left -= lost
            if ends or (lost > 0 and left == 0):
                stop = STOP_STP
                break
            continue
        cost = execute_trade(
            sp,
            seq,
            m,
            taker_oid,
            taker_acct,
            side,
            ms,
            f,
        )
        trades += 1
        hold -= cost
        if quote_bounded:
            budget -= cost
        else:
            left -= f
    return left, budget, hold, fills, stop, trades


@kernel
def dry_run(sp, m, side, lim, left, account, stp):
    """Walk the opposite side as the matching loop would, without changing the book. Returns
    (left, cost): cost = sum of notional + taker fee, saturated at MAX + 1.

    A level is walked in passes over its queue: pass 0 takes each order's visible lots; an
    iceberg then refreshes, so pass k >= 1 takes its k-th new slice, computed from its open,
    visible and display lots (no scratch state: the book is read-only here)."""
    st = load_state(sp)
    opp = 2 * m + 1 - side
    max_fills = st.ctr[CF_MAX_FILLS]
    qtl = st.mkt[m, M_QTL]
    taker_ppm = st.mkt[m, M_TAKER_PPM]
    steps = 0
    cost = 0
    pos = st.bkn[opp] - 1
    while pos >= 0 and left > 0 and steps < max_fills:
        lv = st.bkl[opp, pos]
        price = st.lvl[lv, V_PRICE]
        if lim > 0 and ((side == BUY and price > lim) or (side == SELL and price < lim)):
            break
        k = 0
        while left > 0 and steps < max_fills:
            more = False
            s = st.lvl[lv, V_HEAD]
            while s >= 0 and left > 0 and steps < max_fills:
                own = stp != 0 and st.olnk[s, K_ACCOUNT] == account
                if k == 0:
                    rem = st.ords[s, O_QTY]
                    vis = st.ords[s, O_VISIBLE]
                else:
                    # Lots left before this pass; only icebergs reach a later pass.
                    d = st.ords[s, O_DISPLAY]
                    rem = st.ords[s, O_QTY] - st.ords[s, O_VISIBLE] - (k - 1) * d
                    if own and stp == STP_EXPIRE_MAKER:
                        rem = 0
                    vis = d if d < rem else rem
                if rem > 0:
                    f = left if left < vis else vis
                    steps += 1
                    if own and (stp == STP_EXPIRE_TAKER or stp == STP_EXPIRE_BOTH):  # noqa: SIM109
                        return left, cost
                    if own and stp == STP_EXPIRE_MAKER:
                        rem = 0
                    else:
                        if not own and cost <= MAX:
                            n = price * f * qtl
                            cost += n + fee(n, taker_ppm)
                            if cost > MAX:
                                cost = MAX + 1
                        left -= f
                        rem -= f
                    if rem > 0:
                        more = True
                s = st.olnk[s, K_NEXT]
            k += 1
            if not more:
                break
        pos -= 1
    return left, cost


@kernel
def settle_taker(
    sp,
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
    trades,
    stop,
    asset,
):
    """PlaceOrder step 6: expire or keep resting, then release what the taker no longer needs.
    Returns (rests, hold kept by the resting order)."""
    # Resolution (as the reference): a quote-bounded taker whose budget is exactly spent is
    # filled, like one stopped by the budget after at least one trade.
    if quote_bounded:
        filled = budget == 0 or (stop == STOP_BUDGET and trades > 0)
    else:
        filled = left == 0 and stop != STOP_STP
    rests = False
    keep = 0
    if not filled:
        if rest_ok and stop != STOP_MAX_FILLS and stop != STOP_STP:
            rests = True
            if side == BUY:
                keep = required_buy(p, left, sp.mkt[m, M_QTL], sp.mkt[m, M_WORST_PPM])
            else:
                keep = left * sp.mkt[m, M_LOT]
        else:
            if stop == STOP_MAX_FILLS:
                reason = EXP_MAX_FILLS
            elif stop == STOP_STP:
                reason = EXP_STP
            elif is_limit:
                reason = EXP_IOC_REMAINDER
            elif stop == STOP_LIMIT:
                reason = EXP_PROTECTION
            elif stop == STOP_BOOK_EMPTY:
                reason = EXP_NO_LIQUIDITY
            else:
                reason = EXP_BUDGET_EXHAUSTED
            emit_order_end(sp.ev, sp.ctr, EV_EXPIRED, seq, oid, account, m, left, reason)
    release = hold - keep
    ctr = sp.ctr
    if release < 0:
        fail(ctr, ERR_NEGATIVE_HOLD)
    elif release > 0:
        post_release(sp.ev, ctr, sp.bal, seq, new_txn(ctr), account, asset, release)
    return rests, keep
