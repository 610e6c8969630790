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
from engine.core.events import emit_order_end, hold_txn, next_row
from engine.core.layout import (
    BUY,
    C_FIFO_HEAD,
    C_FIFO_TAIL,
    C_NEXT_GTD,
    CF_MAX_LEVELS,
    CF_MAX_MARKETS,
    CF_MAX_TRIGGERS,
    EV_EXPIRED,
    EV_TRIGGERED,
    EXP_FOK_UNFILLABLE,
    F_DELTA_SHIFT,
    F_FIRE,
    F_PENDING,
    FOK,
    GTC,
    GTD,
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
    MARKET,
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
    SELL,
    STOP_LIMIT_TYPE,
    STOP_MARKET,
    TP_LIMIT,
    TRAIL_LIMIT,
    TRAIL_MARKET,
    V_HEAD,
    V_PRICE,
    k_delta,
    k_fire,
    k_pending,
    k_side,
    k_stp,
    k_tif,
    k_type,
    kernel,
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
def add_pending(ords, olnk, idx, lvl, bkl, bkp, bkn, mkt, acct, ctr, lfree, c, i, s):
    """Register the new conditional order in slot ``s`` as open and waiting."""
    m = olnk[s, K_MARKET]
    side = k_side(olnk, s)
    otype = k_type(olnk, s)
    tick = mkt[m, M_TICK]
    olnk[s, K_FLAGS] = olnk[s, K_FLAGS] | F_PENDING | (c[i, R_DELTA] << F_DELTA_SHIFT)
    ords[s, O_OFFSET] = c[i, R_OFFSET] // tick
    ords[s, O_EXTREME] = 0
    olnk[s, K_LEVEL] = -1
    if otype >= TRAIL_MARKET:
        last = mkt[m, M_LAST_PRICE]
        ords[s, O_EXTREME] = last
        tail = mkt[m, M_TRAIL_TAIL]
        olnk[s, K_PREV] = tail
        olnk[s, K_NEXT] = -1
        if tail < 0:
            mkt[m, M_TRAIL_HEAD] = s
        else:
            olnk[tail, K_NEXT] = s
        mkt[m, M_TRAIL_TAIL] = s
    else:
        trigger = c[i, R_STOP] // tick
        ords[s, O_TRIGGER] = trigger
        tx = trigger_book(ctr, m, falls(otype, side))
        lv = level_get_or_add(lvl, bkl, bkp, bkn, lfree, ctr, tx, tx & 1, trigger)
        if lv >= 0:
            queue_push(lvl, olnk, lv, s)
    open_order(ords, olnk, idx, acct, ctr, s)
    note_gtd(ords, olnk, ctr, s)


@kernel
def remove_pending(ords, olnk, lvl, bkl, bkp, bkn, mkt, ctr, lfree, s):
    """Take a waiting conditional order out of its trigger book or trailing list."""
    m = olnk[s, K_MARKET]
    olnk[s, K_FLAGS] = olnk[s, K_FLAGS] & ~F_PENDING
    if k_type(olnk, s) >= TRAIL_MARKET:
        prev = olnk[s, K_PREV]
        nxt = olnk[s, K_NEXT]
        if prev < 0:
            mkt[m, M_TRAIL_HEAD] = nxt
        else:
            olnk[prev, K_NEXT] = nxt
        if nxt < 0:
            mkt[m, M_TRAIL_TAIL] = prev
        else:
            olnk[nxt, K_PREV] = prev
        return
    lv = olnk[s, K_LEVEL]
    queue_unlink(lvl, olnk, lv, s)
    olnk[s, K_LEVEL] = -1
    if lvl[lv, V_HEAD] < 0:
        tx = trigger_book(ctr, m, falls(k_type(olnk, s), k_side(olnk, s)))
        level_drop(lvl, bkl, bkp, bkn, lfree, ctr, tx, tx & 1, lv)


@kernel
def end_any(
    ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, ofree, lfree, ev, seq, s, kind, reason
):
    """Cancel or expire an open order, resting or waiting: event, release, removal."""
    if not k_pending(olnk, s):
        end_slot(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, mkt, acct, ctr, ofree, lfree, ev,
                 seq, s, kind, reason)  # fmt: skip
        return
    a = olnk[s, K_ACCOUNT]
    m = olnk[s, K_MARKET]
    emit_order_end(ev, ctr, kind, seq, ords[s, O_ID], a, m, ords[s, O_QTY], reason)
    asset = mkt[m, M_QUOTE] if k_side(olnk, s) == BUY else mkt[m, M_BASE]
    hold_txn(ev, ctr, bal, seq, a, asset, -ords[s, O_HOLD])
    ords[s, O_HOLD] = 0
    remove_pending(ords, olnk, lvl, bkl, bkp, bkn, mkt, ctr, lfree, s)
    forget_order(ords, olnk, idx, acct, ctr, ofree, s)


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
def collect(ords, olnk, lvl, bkl, bkp, bkn, mkt, ctr, lfree, m, first, last, room):
    """Queue (C_FIFO) the orders a burst from ``first`` to ``last`` fires, in firing order
    (falling: trigger descending; rising: ascending; then order id), at most ``room``."""
    lo = first if first < last else last
    hi = first if first > last else last
    firing = 0  # trailing stops flagged F_FIRE and not yet queued
    s = mkt[m, M_TRAIL_HEAD]
    while s >= 0:
        fires = trailing_step(ords, olnk, s, first) or trailing_step(ords, olnk, s, last)
        if fires:
            olnk[s, K_FLAGS] = olnk[s, K_FLAGS] | F_FIRE
            firing += 1
        s = olnk[s, K_NEXT]
    count = 0
    for falling in (True, False):
        tx = trigger_book(ctr, m, falling)
        while count < room:
            cand = -1
            cx = 0
            lv = best_level(bkl, bkn, tx)
            if lv >= 0:
                x = lvl[lv, V_PRICE]
                if (x >= lo) if falling else (x <= hi):
                    cand = lvl[lv, V_HEAD]
                    cx = x
            t = mkt[m, M_TRAIL_HEAD] if firing > 0 else -1
            while t >= 0:
                if k_fire(olnk, t) and falls(k_type(olnk, t), k_side(olnk, t)) == falling:
                    x = pending_trigger(ords, olnk, t)
                    better = (x > cx) if falling else (x < cx)
                    if cand < 0 or better or (x == cx and ords[t, O_ID] < ords[cand, O_ID]):
                        cand = t
                        cx = x
                t = olnk[t, K_NEXT]
            if cand < 0:
                break
            if k_fire(olnk, cand):
                olnk[cand, K_FLAGS] = olnk[cand, K_FLAGS] & ~F_FIRE
                firing -= 1
            remove_pending(ords, olnk, lvl, bkl, bkp, bkn, mkt, ctr, lfree, cand)
            fifo_push(olnk, ctr, cand)
            count += 1
    s = mkt[m, M_TRAIL_HEAD] if firing > 0 else -1
    while s >= 0:
        olnk[s, K_FLAGS] = olnk[s, K_FLAGS] & ~F_FIRE
        s = olnk[s, K_NEXT]
    return count


@kernel
def execute_triggered(
    ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree, ev, seq, s
):
    """A fired conditional order enters as a taker with its own order id."""
    m = olnk[s, K_MARKET]
    a = olnk[s, K_ACCOUNT]
    side = k_side(olnk, s)
    otype = k_type(olnk, s)
    tif = k_tif(olnk, s)
    stp = k_stp(olnk, s)
    oid = ords[s, O_ID]
    q = ords[s, O_QTY]
    hold = ords[s, O_HOLD]
    trigger = pending_trigger(ords, olnk, s)
    limit = 0
    if otype == STOP_LIMIT_TYPE or otype == TP_LIMIT or otype == TRAIL_LIMIT:  # noqa: SIM109
        limit = ords[s, O_PRICE]
        if otype == TRAIL_LIMIT:
            if side == BUY:
                x = trigger + ords[s, O_OFFSET]
                limit = x if x < limit else limit
            else:
                x = trigger - ords[s, O_OFFSET]
                limit = x if x > limit else limit
    r = next_row(ev, ctr, EV_TRIGGERED, seq)
    ev[r, 2] = oid
    ev[r, 3] = a
    ev[r, 4] = m
    ev[r, 5] = trigger
    ev[r, 6] = mkt[m, M_LAST_PRICE]
    ev[r, 7] = limit
    asset = mkt[m, M_QUOTE] if side == BUY else mkt[m, M_BASE]
    if limit == 0:
        quote_bounded = side == BUY
        lim = protection_price(lvl, bkl, bkn, mkt, m, side)
        left, budget, hold, _steps, stop, trades = match(
            ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree, ev,
            seq, m, oid, a, side, lim, q, quote_bounded, hold, hold, stp,
        )  # fmt: skip
        settle_taker(ev, ctr, bal, mkt, seq, oid, a, m, side, False, False, quote_bounded, 0,
                     left, budget, hold, trades, stop, asset)  # fmt: skip
        ords[s, O_HOLD] = 0
        forget_order(ords, olnk, idx, acct, ctr, ofree, s)
        return
    if side == BUY and limit != ords[s, O_PRICE]:
        keep = required_buy(limit, q, mkt[m, M_QTL], mkt[m, M_WORST_PPM])
        hold_txn(ev, ctr, bal, seq, a, asset, keep - hold)
        hold = keep
    ords[s, O_PRICE] = limit
    if tif == FOK:  # noqa: SIM102
        if dry_run(ords, olnk, lvl, bkl, bkn, mkt, ctr, m, side, limit, q, a, stp)[0] > 0:
            emit_order_end(ev, ctr, EV_EXPIRED, seq, oid, a, m, q, EXP_FOK_UNFILLABLE)
            hold_txn(ev, ctr, bal, seq, a, asset, -hold)
            ords[s, O_HOLD] = 0
            forget_order(ords, olnk, idx, acct, ctr, ofree, s)
            return
    own = 2 * m + side
    may_rest = (tif == GTC or tif == GTD) and (  # noqa: SIM109
        bkn[own] < ctr[CF_MAX_LEVELS] or level_find(bkl, bkp, bkn, own, side, limit) >= 0
    )
    left, budget, hold, _steps, stop, trades = match(
        ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree, ev,
        seq, m, oid, a, side, limit, q, False, 0, hold, stp,
    )  # fmt: skip
    rests, keep = settle_taker(ev, ctr, bal, mkt, seq, oid, a, m, side, may_rest, True, False,
                               limit, left, budget, hold, trades, stop, asset)  # fmt: skip
    if rests:
        ords[s, O_QTY] = left
        ords[s, O_HOLD] = keep
        ords[s, O_DISPLAY] = 0
        ords[s, O_VISIBLE] = left
        rest_order(ords, olnk, lvl, bkl, bkp, bkn, lfree, ctr, s)
        check_not_crossed(lvl, bkl, bkn, ctr, m)
    else:
        ords[s, O_QTY] = 0
        ords[s, O_HOLD] = 0
        forget_order(ords, olnk, idx, acct, ctr, ofree, s)


@kernel
def run_triggers(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree, lfree,
                 ev, seq, m):  # fmt: skip
    """After a taker in market ``m``: fire what its burst triggered, then what those bursts
    trigger, at most CF_MAX_TRIGGERS orders."""
    fired = 0
    queued = 0
    max_triggers = ctr[CF_MAX_TRIGGERS]
    while True:
        first = mkt[m, M_BURST_FIRST]
        if first != 0:
            last = mkt[m, M_BURST_LAST]
            mkt[m, M_BURST_FIRST] = 0
            mkt[m, M_BURST_LAST] = 0
            room = max_triggers - fired - queued
            queued += collect(ords, olnk, lvl, bkl, bkp, bkn, mkt, ctr, lfree, m, first, last,
                              room)  # fmt: skip
        s = ctr[C_FIFO_HEAD]
        if s < 0:
            return
        nxt = olnk[s, K_NEXT]
        ctr[C_FIFO_HEAD] = nxt
        if nxt < 0:
            ctr[C_FIFO_TAIL] = -1
        queued -= 1
        fired += 1
        execute_triggered(ords, olnk, idx, lvl, bkl, bkp, bkn, bal, sysb, mkt, acct, ctr, ofree,
                          lfree, ev, seq, s)  # fmt: skip
