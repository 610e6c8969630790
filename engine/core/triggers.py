"""Conditional orders in the compiled core: trigger books, trailing lists, the cascade.

docs/engine-semantics.md, "Conditional orders". Stop and take-profit orders wait on
trigger-price levels in two extra book sides per market (``trigger_book``): the falling side
(fires when a trade is at or below the trigger; best = highest trigger, keyed like bids) and
the rising side (at or above; best = lowest, keyed like asks), so the next order to fire is
always at the end of a sorted array and levels keep time (= order id) priority. Trailing
stops move their trigger with every new extreme, so they live in a per-market list in
ascending order id and are scanned per trade burst.
"""

from __future__ import annotations

from engine.core.book import (
    best_level,
    check_not_crossed,
    forget_order,
    level_drop,
    level_find,
    level_get_or_add,
    open_order,
    queue_push,
    queue_unlink,
    rest_order,
)
from engine.core.codes import (
    BUY,
    EXP_FOK_UNFILLABLE,
    FOK,
    GTC,
    GTD,
    MARKET,
    SELL,
    STOP_LIMIT_TYPE,
    STOP_MARKET,
    TP_LIMIT,
    TRAIL_LIMIT,
    TRAIL_MARKET,
)
from engine.core.events import emit_order_end, hold_txn, next_row
from engine.core.kernelapi import kernel, load_state
from engine.core.layout import (
    C_FIFO_HEAD,
    C_FIFO_TAIL,
    C_NEXT_GTD,
    CF_MAX_LEVELS,
    CF_MAX_MARKETS,
    CF_MAX_TRIGGERS,
    EV_EXPIRED,
    EV_TRIGGERED,
    F_DELTA_SHIFT,
    F_FIRE,
    F_PENDING,
    K_ACCOUNT,
    K_FLAGS,
    K_LEVEL,
    K_MARKET,
    K_NEXT,
    K_PREV,
    M_BASE,
    M_BURST_FIRST,
    M_BURST_LAST,
    M_LAST_PRICE,
    M_PROT,
    M_QTL,
    M_QUOTE,
    M_TICK,
    M_TRAIL_HEAD,
    M_TRAIL_TAIL,
    M_WORST_PPM,
    O_DISPLAY,
    O_EXPIRE,
    O_EXTREME,
    O_HOLD,
    O_ID,
    O_OFFSET,
    O_PRICE,
    O_QTY,
    O_TRIGGER,
    O_VISIBLE,
    R_DELTA,
    R_OFFSET,
    R_STOP,
    V_HEAD,
    V_PRICE,
    k_delta,
    k_fire,
    k_pending,
    k_side,
    k_stp,
    k_tif,
    k_type,
)
from engine.core.matching import dry_run, end_slot, match, settle_taker
from engine.core.money import bps_of, required_buy


@kernel
def is_market_kind(otype):
    # MARKET, and the odd conditional types: STOP_MARKET 3, TAKE_PROFIT_MARKET 5, TRAILING 7
    return otype == MARKET or (otype >= STOP_MARKET and otype % 2 == 1)


@kernel
def falls(otype, side):
    """A conditional order firing on a falling price (sell stops, buy take-profits)."""
    stop_like = otype <= STOP_LIMIT_TYPE or otype >= TRAIL_MARKET  # (otype is conditional here)
    return stop_like == (side == SELL)


@kernel
def trigger_book(ctr, m, falling):
    """Book side index of a market's falling (key side BUY) or rising (SELL) trigger book."""
    return 2 * ctr[CF_MAX_MARKETS] + 2 * m + (0 if falling else 1)


@kernel
def protection_price(lvl, bkl, bkn, mkt, m, side):
    """A market order's protection price from the best opposite price (0 = none)."""
    bps = mkt[m, M_PROT]
    if bps == 0:
        return 0
    lv = best_level(bkl, bkn, 2 * m + 1 - side)
    if lv < 0:
        return 0
    best = lvl[lv, V_PRICE]
    dev = bps_of(best, bps)
    return best + dev if side == BUY else best - dev


@kernel
def note_gtd(ords, olnk, ctr, s):
    """Keep C_NEXT_GTD a lower bound of every open GTD order's expiry."""
    if k_tif(olnk, s) == GTD and ords[s, O_EXPIRE] < ctr[C_NEXT_GTD]:
        ctr[C_NEXT_GTD] = ords[s, O_EXPIRE]


@kernel
def trailing_trigger(side, extreme, delta):
    dev = bps_of(extreme, delta)
    return extreme - dev if side == SELL else extreme + dev


@kernel
def pending_trigger(ords, olnk, s):
    """Trigger price (ticks) of the waiting conditional order ``s``."""
    if k_type(olnk, s) >= TRAIL_MARKET:
        return trailing_trigger(k_side(olnk, s), ords[s, O_EXTREME], k_delta(olnk, s))
    return ords[s, O_TRIGGER]


@kernel
def add_pending(sp, cr, s):
    """Register the new conditional order in slot ``s`` as open and waiting."""
    st = load_state(sp)
    m = st.olnk[s, K_MARKET]
    side = k_side(st.olnk, s)
    otype = k_type(st.olnk, s)
    tick = st.mkt[m, M_TICK]
    st.olnk[s, K_FLAGS] = st.olnk[s, K_FLAGS] | F_PENDING | (cr[R_DELTA] << F_DELTA_SHIFT)
    st.ords[s, O_OFFSET] = cr[R_OFFSET] // tick
    st.ords[s, O_EXTREME] = 0
    st.olnk[s, K_LEVEL] = -1
    if otype >= TRAIL_MARKET:
        last = st.mkt[m, M_LAST_PRICE]
        st.ords[s, O_EXTREME] = last
        tail = st.mkt[m, M_TRAIL_TAIL]
        st.olnk[s, K_PREV] = tail
        st.olnk[s, K_NEXT] = -1
        if tail < 0:
            st.mkt[m, M_TRAIL_HEAD] = s
        else:
            st.olnk[tail, K_NEXT] = s
        st.mkt[m, M_TRAIL_TAIL] = s
    else:
        trigger = cr[R_STOP] // tick
        st.ords[s, O_TRIGGER] = trigger
        tx = trigger_book(st.ctr, m, falls(otype, side))
        lv = level_get_or_add(st.lvl, st.bkl, st.bkn, st.lfree, st.ctr, tx, tx & 1, trigger)
        if lv >= 0:
            queue_push(st.lvl, st.olnk, lv, s)
    open_order(sp, s)
    note_gtd(st.ords, st.olnk, st.ctr, s)


@kernel
def remove_pending(sp, s):
    """Take a waiting conditional order out of its trigger book or trailing list."""
    st = load_state(sp)
    m = st.olnk[s, K_MARKET]
    st.olnk[s, K_FLAGS] = st.olnk[s, K_FLAGS] & ~F_PENDING
    if k_type(st.olnk, s) >= TRAIL_MARKET:
        prev = st.olnk[s, K_PREV]
        nxt = st.olnk[s, K_NEXT]
        if prev < 0:
            st.mkt[m, M_TRAIL_HEAD] = nxt
        else:
            st.olnk[prev, K_NEXT] = nxt
        if nxt < 0:
            st.mkt[m, M_TRAIL_TAIL] = prev
        else:
            st.olnk[nxt, K_PREV] = prev
        return
    lv = st.olnk[s, K_LEVEL]
    queue_unlink(st.lvl, st.olnk, lv, s)
    st.olnk[s, K_LEVEL] = -1
    if st.lvl[lv, V_HEAD] < 0:
        tx = trigger_book(st.ctr, m, falls(k_type(st.olnk, s), k_side(st.olnk, s)))
        level_drop(st.lvl, st.bkl, st.bkn, st.lfree, st.ctr, tx, tx & 1, lv)


@kernel
def end_any(sp, seq, s, kind, reason):
    """Cancel or expire an open order, resting or waiting: event, release, removal."""
    if not k_pending(sp.olnk, s):
        end_slot(sp, seq, s, kind, reason)
        return
    a = sp.olnk[s, K_ACCOUNT]
    m = sp.olnk[s, K_MARKET]
    emit_order_end(sp.ev, sp.ctr, kind, seq, sp.ords[s, O_ID], a, m, sp.ords[s, O_QTY], reason)
    asset = sp.mkt[m, M_QUOTE] if k_side(sp.olnk, s) == BUY else sp.mkt[m, M_BASE]
    hold_txn(sp.ev, sp.ctr, sp.bal, seq, a, asset, -sp.ords[s, O_HOLD])
    sp.ords[s, O_HOLD] = 0
    remove_pending(sp, s)
    forget_order(sp, s)


@kernel
def trailing_step(ords, olnk, s, price):
    """One trade price seen by a trailing stop; True when it fires."""
    ext = ords[s, O_EXTREME]
    side = k_side(olnk, s)
    if (price > ext) if side == SELL else (price < ext):
        ords[s, O_EXTREME] = price
        return False
    t = trailing_trigger(side, ext, k_delta(olnk, s))
    return price <= t if side == SELL else price >= t


@kernel
def fifo_push(olnk, ctr, s):
    olnk[s, K_NEXT] = -1
    tail = ctr[C_FIFO_TAIL]
    if tail < 0:
        ctr[C_FIFO_HEAD] = s
    else:
        olnk[tail, K_NEXT] = s
    ctr[C_FIFO_TAIL] = s


@kernel
def collect(sp, m, first, last, room):
    """Queue (C_FIFO) the orders a burst from ``first`` to ``last`` fires, in firing order
    (falling: trigger descending; rising: ascending; then order id), at most ``room``."""
    st = load_state(sp)
    lo = first if first < last else last
    hi = first if first > last else last
    firing = 0  # trailing stops flagged F_FIRE and not yet queued
    s = st.mkt[m, M_TRAIL_HEAD]
    while s >= 0:
        fires = trailing_step(st.ords, st.olnk, s, first) or trailing_step(
            st.ords, st.olnk, s, last
        )
        if fires:
            st.olnk[s, K_FLAGS] = st.olnk[s, K_FLAGS] | F_FIRE
            firing += 1
        s = st.olnk[s, K_NEXT]
    count = 0
    for falling in (True, False):
        tx = trigger_book(st.ctr, m, falling)
        while count < room:
            cand = -1
            cx = 0
            lv = best_level(st.bkl, st.bkn, tx)
            if lv >= 0:
                x = st.lvl[lv, V_PRICE]
                if (x >= lo) if falling else (x <= hi):
                    cand = st.lvl[lv, V_HEAD]
                    cx = x
            t = st.mkt[m, M_TRAIL_HEAD] if firing > 0 else -1
            while t >= 0:
                if k_fire(st.olnk, t) and falls(k_type(st.olnk, t), k_side(st.olnk, t)) == falling:
                    x = pending_trigger(st.ords, st.olnk, t)
                    better = (x > cx) if falling else (x < cx)
                    if cand < 0 or better or (x == cx and st.ords[t, O_ID] < st.ords[cand, O_ID]):
                        cand = t
                        cx = x
                t = st.olnk[t, K_NEXT]
            if cand < 0:
                break
            if k_fire(st.olnk, cand):
                st.olnk[cand, K_FLAGS] = st.olnk[cand, K_FLAGS] & ~F_FIRE
                firing -= 1
            remove_pending(sp, cand)
            fifo_push(st.olnk, st.ctr, cand)
            count += 1
    s = st.mkt[m, M_TRAIL_HEAD] if firing > 0 else -1
    while s >= 0:
        st.olnk[s, K_FLAGS] = st.olnk[s, K_FLAGS] & ~F_FIRE
        s = st.olnk[s, K_NEXT]
    return count


@kernel
def execute_triggered(sp, seq, s):
    """A fired conditional order enters as a taker with its own order id."""
    st = load_state(sp)
    m = st.olnk[s, K_MARKET]
    a = st.olnk[s, K_ACCOUNT]
    side = k_side(st.olnk, s)
    otype = k_type(st.olnk, s)
    tif = k_tif(st.olnk, s)
    stp = k_stp(st.olnk, s)
    oid = st.ords[s, O_ID]
    q = st.ords[s, O_QTY]
    hold = st.ords[s, O_HOLD]
    trigger = pending_trigger(st.ords, st.olnk, s)
    limit = 0
    if otype == STOP_LIMIT_TYPE or otype == TP_LIMIT or otype == TRAIL_LIMIT:  # noqa: SIM109
        limit = st.ords[s, O_PRICE]
        if otype == TRAIL_LIMIT:
            if side == BUY:
                x = trigger + st.ords[s, O_OFFSET]
                limit = x if x < limit else limit
            else:
                x = trigger - st.ords[s, O_OFFSET]
                limit = x if x > limit else limit
    r = next_row(st.ev, st.ctr, EV_TRIGGERED, seq)
    st.ev[r, 2] = oid
    st.ev[r, 3] = a
    st.ev[r, 4] = m
    st.ev[r, 5] = trigger
    st.ev[r, 6] = st.mkt[m, M_LAST_PRICE]
    st.ev[r, 7] = limit
    asset = st.mkt[m, M_QUOTE] if side == BUY else st.mkt[m, M_BASE]
    if limit == 0:
        quote_bounded = side == BUY
        lim = protection_price(st.lvl, st.bkl, st.bkn, st.mkt, m, side)
        left, budget, hold, _steps, stop, trades = match(
            sp,
            seq,
            m,
            oid,
            a,
            side,
            lim,
            q,
            quote_bounded,
            hold,
            hold,
            stp,
        )
        settle_taker(
            sp,
            seq,
            oid,
            a,
            m,
            side,
            False,
            False,
            quote_bounded,
            0,
            left,
            budget,
            hold,
            trades,
            stop,
            asset,
        )
        st.ords[s, O_HOLD] = 0
        forget_order(sp, s)
        return
    if side == BUY and limit != st.ords[s, O_PRICE]:
        keep = required_buy(limit, q, st.mkt[m, M_QTL], st.mkt[m, M_WORST_PPM])
        hold_txn(st.ev, st.ctr, st.bal, seq, a, asset, keep - hold)
        hold = keep
    st.ords[s, O_PRICE] = limit
    if tif == FOK:  # noqa: SIM102
        if dry_run(sp, m, side, limit, q, a, stp)[0] > 0:
            emit_order_end(st.ev, st.ctr, EV_EXPIRED, seq, oid, a, m, q, EXP_FOK_UNFILLABLE)
            hold_txn(st.ev, st.ctr, st.bal, seq, a, asset, -hold)
            st.ords[s, O_HOLD] = 0
            forget_order(sp, s)
            return
    own = 2 * m + side
    may_rest = (tif == GTC or tif == GTD) and (  # noqa: SIM109
        st.bkn[own] < st.ctr[CF_MAX_LEVELS]
        or level_find(st.lvl, st.bkl, st.bkn, own, side, limit) >= 0
    )
    left, budget, hold, _steps, stop, trades = match(
        sp,
        seq,
        m,
        oid,
        a,
        side,
        limit,
        q,
        False,
        0,
        hold,
        stp,
    )
    rests, keep = settle_taker(
        sp,
        seq,
        oid,
        a,
        m,
        side,
        may_rest,
        True,
        False,
        limit,
        left,
        budget,
        hold,
        trades,
        stop,
        asset,
    )
    if rests:
        st.ords[s, O_QTY] = left
        st.ords[s, O_HOLD] = keep
        st.ords[s, O_DISPLAY] = 0
        st.ords[s, O_VISIBLE] = left
        rest_order(sp, s)
        check_not_crossed(st.lvl, st.bkl, st.bkn, st.ctr, m)
    else:
        st.ords[s, O_QTY] = 0
        st.ords[s, O_HOLD] = 0
        forget_order(sp, s)


@kernel(inline=True)
def can_fire(st, m):
    """Whether market ``m`` holds anything a trade can trigger: a trailing stop or a trigger
    book level."""
    return (
        st.mkt[m, M_TRAIL_HEAD] >= 0
        or st.bkn[trigger_book(st.ctr, m, True)] > 0
        or st.bkn[trigger_book(st.ctr, m, False)] > 0
    )


@kernel
def run_triggers(sp, seq, m):
    """After a taker in market ``m``: fire what its burst triggered, then what those bursts
    trigger, at most CF_MAX_TRIGGERS orders."""
    st = load_state(sp)
    fired = 0
    queued = 0
    max_triggers = st.ctr[CF_MAX_TRIGGERS]
    while True:
        first = st.mkt[m, M_BURST_FIRST]
        if first != 0:
            last = st.mkt[m, M_BURST_LAST]
            st.mkt[m, M_BURST_FIRST] = 0
            st.mkt[m, M_BURST_LAST] = 0
            if can_fire(st, m):  # else nothing can fire (the common case, see after_taker)
                room = max_triggers - fired - queued
                queued += collect(sp, m, first, last, room)
        s = st.ctr[C_FIFO_HEAD]
        if s < 0:
            return
        nxt = st.olnk[s, K_NEXT]
        st.ctr[C_FIFO_HEAD] = nxt
        if nxt < 0:
            st.ctr[C_FIFO_TAIL] = -1
        queued -= 1
        fired += 1
        execute_triggered(sp, seq, s)


@kernel(inline=True)
def after_taker(sp, seq, m):
    """End a taker's command in market ``m``: run the triggers its burst may fire.

    Inlined at each taker so the common case pays no call: no queued trigger and either no
    burst or nothing in the market that can fire (the burst is cleared as run_triggers would)."""
    if sp.ctr[C_FIFO_HEAD] >= 0:
        run_triggers(sp, seq, m)
    elif sp.mkt[m, M_BURST_FIRST] != 0:
        if can_fire(sp, m):
            run_triggers(sp, seq, m)
        else:
            sp.mkt[m, M_BURST_FIRST] = 0
            sp.mkt[m, M_BURST_LAST] = 0
