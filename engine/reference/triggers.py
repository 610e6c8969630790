"""Conditional orders of the reference model: trigger evaluation and triggered execution.

docs/engine-semantics.md, "Conditional orders". A conditional order waits outside the book
(its hold taken at placement) until a trade burst -- the fills of one taker, from its first
trade price to its last -- satisfies its condition; it then enters as a taker with the same
order id. Bursts of triggered orders are evaluated in turn (a cascade), at most
``max_triggers_per_command`` orders firing per command.
"""

from __future__ import annotations

from collections import deque

from engine.reference.matching import Matching
from engine.reference.model import Market, Order, bps_of
from engine.schema import (
    ExpireReason,
    OrderExpired,
    OrderTriggered,
    OrderType,
    Side,
    TimeInForce,
)

TRAILING = (OrderType.TRAILING_STOP_MARKET, OrderType.TRAILING_STOP_LIMIT)
LIMIT_KINDS = (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT, OrderType.TRAILING_STOP_LIMIT)


def trailing_trigger(side: int, extreme: int, delta_bps: int) -> int:
    """Sell: the peak minus the delta; buy: the trough plus the delta (ticks, delta floored)."""
    dev = bps_of(extreme, delta_bps)
    return extreme - dev if side == Side.SELL else extreme + dev


def condition_holds(order: Order, price: int) -> bool:
    """Would a trade at ``price`` fire this (non-trailing) conditional order?"""
    return price <= order.trigger if order.falls else price >= order.trigger


class Triggers(Matching):
    def _protection(self, market: Market, side: int) -> int | None:
        """A market order's protection price from the best opposite price at arrival."""
        if market.protection_bps == 0:
            return None
        best = market.best(1 - side)
        if best is None:
            return None
        dev = bps_of(best, market.protection_bps)
        return best + dev if side == Side.BUY else best - dev

    def _trailing_step(self, order: Order, price: int) -> bool:
        """One trade price seen by a trailing stop: a new extreme moves the trigger, otherwise
        the condition is tested. True when it fires."""
        if (price > order.extreme) if order.side == Side.SELL else (price < order.extreme):
            order.extreme = price
            order.trigger = trailing_trigger(order.side, price, order.delta_bps)
            return False
        return condition_holds(order, price)

    def _collect(self, market: Market, first: int, last: int, room: int) -> list[Order]:
        """The orders a burst from ``first`` to ``last`` fires, in firing order, at most
        ``room`` of them (taken out of the pending table)."""
        lo, hi = min(first, last), max(first, last)
        falls: list[Order] = []
        rises: list[Order] = []
        for order in market.trailing.values():
            # A burst's prices are monotone, so its first and last price decide exactly what
            # the trades in between would have.
            if self._trailing_step(order, first) or self._trailing_step(order, last):
                (falls if order.falls else rises).append(order)
        falling, rising = market.trigger_books
        for price in reversed(falling.keys()):
            if price < lo:
                break
            falls.extend(falling[price].values())
        for price in rising:
            if price > hi:
                break
            rises.extend(rising[price].values())
        falls.sort(key=lambda o: (-o.trigger, o.order_id))
        rises.sort(key=lambda o: (o.trigger, o.order_id))
        chosen = (falls + rises)[: max(room, 0)]
        for order in chosen:
            market.unwait(order)
            order.pending = False
        return chosen

    def _run_triggers(self, market: Market) -> None:
        """After a taker: fire what its burst triggered, then what those bursts trigger."""
        fired = 0
        queue: deque[Order] = deque()
        while True:
            if market.burst is not None:
                first, last = market.burst
                market.burst = None
                room = self.config.max_triggers_per_command - fired - len(queue)
                queue.extend(self._collect(market, first, last, room))
            if not queue:
                return
            fired += 1
            self._execute_triggered(market, queue.popleft())

    def _execute_triggered(self, market: Market, order: Order) -> None:
        limit = 0
        if order.order_type in LIMIT_KINDS:
            limit = order.p
            if order.order_type == OrderType.TRAILING_STOP_LIMIT:
                if order.side == Side.BUY:
                    limit = min(order.trigger + order.offset, order.p)
                else:
                    limit = max(order.trigger - order.offset, order.p)
        self._emit(
            OrderTriggered,
            order_id=order.order_id,
            account_id=order.account_id,
            market_id=order.market_id,
            trigger_price_atoms=order.trigger * market.tick,
            last_price_atoms=market.last_price * market.tick,
            price_atoms=limit * market.tick,
        )
        if limit == 0:
            rests = self._take(
                market,
                order,
                limited=False,
                protect=self._protection(market, order.side),
                quote_bounded=order.side == Side.BUY,
                may_rest=False,
            )
        else:
            if order.side == Side.BUY and limit != order.p:
                keep = market.required(limit, order.q)
                self._release(market, order, order.hold - keep)
                order.hold = keep
            order.p = limit
            if order.time_in_force == TimeInForce.FOK:
                left, _cost = self._dry_run(market, order, limit, order.q)
                if left > 0:
                    self._emit(
                        OrderExpired,
                        order_id=order.order_id,
                        account_id=order.account_id,
                        market_id=order.market_id,
                        remaining_qty_atoms=order.q * market.lot,
                        reason=ExpireReason.FOK_UNFILLABLE,
                    )
                    self._release(market, order, order.hold)
                    order.hold = 0
                    self._unregister(order)
                    return
            # Resolution: a triggered limit that cannot get a price level on its full side
            # takes what it can and expires the rest (IOC_REMAINDER).
            may_rest = order.time_in_force in (
                TimeInForce.GTC,
                TimeInForce.GTD,
            ) and not self._level_unavailable(market, order.side, limit)
            rests = self._take(
                market, order, limited=True, protect=None, quote_bounded=False, may_rest=may_rest
            )
        if not rests:
            self._unregister(order)

    def _trigger_level_unavailable(self, market: Market, order: Order) -> bool:
        """Stop and take-profit orders wait on trigger-price levels (two sides per market:
        falling and rising), bounded like book levels; trailing stops are not levelled."""
        if order.order_type in TRAILING:
            return False
        book = market.trigger_books[0 if order.falls else 1]
        return order.trigger not in book and len(book) >= self.config.max_levels_per_side

    def _level_unavailable(self, market: Market, side: int, p: int) -> bool:
        """A new level at p would not fit on a full side."""
        levels = market.levels(side)
        return p not in levels and len(levels) >= self.config.max_levels_per_side
