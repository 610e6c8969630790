"""The matching loop of the reference model: fills, self-trade prevention, icebergs, dry runs.

docs/engine-semantics.md, PlaceOrder steps 5-6, "Self-trade prevention", "Icebergs" and the
"Dry run" paragraph. Triggers are evaluated by the caller after the loop (`triggers.py`).
"""

from __future__ import annotations

from engine.reference.model import Market, Order, fee, notional
from engine.reference.state import AVAILABLE, HELD_ORDERS, EngineState, _Txn
from engine.schema import (
    Bucket,
    CancelReason,
    ExpireReason,
    IcebergRefreshed,
    OrderCancelled,
    OrderExpired,
    PostingReason,
    SelfTradePrevented,
    Side,
    StpMode,
    Trade,
)

# Why a taker's matching loop stopped.
FILLED = "filled"  # nothing left (quote-bounded: budget exactly spent)
MAX_FILLS = "max_fills"  # max_fills_per_order steps done while something was left
BOOK_EMPTY = "book_empty"
LIMIT = "limit"  # the best opposite price is worse than the limit (or the protection price)
BUDGET = "budget"  # quote-bounded: the budget left cannot buy one lot at the best price
STP = "stp"  # self-trade prevention ended the taker


class Matching(EngineState):
    """Fills and the taker's loop; shared by placement, amends and triggered orders."""

    @staticmethod
    def _affordable(market: Market, p: int, max_q: int, budget: int) -> int:
        """Largest k in 0..max_q with notional(p, k) + fee(notional(p, k), taker) <= budget.

        The cost is strictly increasing in k and at least k * p * qtl, so k lies in
        0..min(max_q, budget // (p * qtl)); binary search that range for the last affordable k.
        """
        unit = p * market.qtl
        lo, hi = 0, min(max_q, budget // unit)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            n = mid * unit
            if n + fee(n, market.taker_ppm) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _dry_run(
        self, market: Market, taker: Order, limit_p: int | None, q: int
    ) -> tuple[int, int]:
        """Predict a taker's loop without touching anything: (lots left, quote cost).

        Mirrors `_take` step by step: icebergs refresh to the back of their level with a new
        slice, own makers are skipped, decremented or stop the walk as the taker's STP mode
        says, and every step (fill or prevention) counts towards max fills.
        """
        left, cost, steps = q, 0, 0
        max_fills = self.config.max_fills_per_order
        opposite = market.levels(1 - taker.side)
        prices = list(opposite) if taker.side == Side.BUY else list(reversed(opposite))
        for price in prices:
            if left == 0 or steps >= max_fills:
                break
            if limit_p is not None and (
                price > limit_p if taker.side == Side.BUY else price < limit_p
            ):
                break
            queue = [[o, o.q, o.visible] for o in opposite[price]]
            while queue and left > 0 and steps < max_fills:
                o, rem, vis = queue.pop(0)
                f = min(left, vis)
                steps += 1
                if taker.stp != StpMode.NONE and o.account_id == taker.account_id:
                    if taker.stp in (StpMode.EXPIRE_TAKER, StpMode.EXPIRE_BOTH):
                        return left, cost
                    if taker.stp == StpMode.EXPIRE_MAKER:
                        continue
                else:
                    n = notional(price, f, market.qtl)
                    cost += n + fee(n, market.taker_ppm)
                left, rem, vis = left - f, rem - f, vis - f
                if rem > 0:
                    if vis == 0:
                        queue.append([o, rem, min(o.display, rem)])
                    else:
                        queue.insert(0, [o, rem, vis])
        return left, cost

    # ---------------------------------------------------------------------------------------
    # One fill, one prevention

    def _note_trade(self, market: Market, price: int) -> None:
        market.last_price = price
        first = market.burst[0] if market.burst else price
        market.burst = (first, price)

    def _refresh_if_needed(self, market: Market, maker: Order) -> None:
        """An iceberg whose slice ran out (and has more) goes to the back with a new slice."""
        if maker.q > 0 and maker.visible == 0:
            maker.visible = min(maker.display, maker.q)
            market.remove(maker)
            market.add(maker)
            self._emit(
                IcebergRefreshed,
                order_id=maker.order_id,
                market_id=market.market_id,
                price_atoms=maker.p * market.tick,
                visible_qty_atoms=maker.visible * market.lot,
                hidden_qty_atoms=(maker.q - maker.visible) * market.lot,
            )

    def _trade(self, market: Market, taker: Order, maker: Order, fill: int) -> None:
        """One fill at the maker's price: Trade event, then the trade's transaction."""
        n = notional(maker.p, fill, market.qtl)
        base = fill * market.lot
        maker_fee = fee(n, market.maker_ppm)
        taker_fee = fee(n, market.taker_ppm)
        market.last_trade_id += 1
        self._note_trade(market, maker.p)
        self._emit(
            Trade,
            trade_id=market.last_trade_id,
            market_id=market.market_id,
            price_atoms=maker.p * market.tick,
            qty_atoms=base,
            quote_atoms=n,
            maker_order_id=maker.order_id,
            maker_account_id=maker.account_id,
            taker_order_id=taker.order_id,
            taker_account_id=taker.account_id,
            taker_side=taker.side,
            maker_fee_atoms=maker_fee,
            taker_fee_atoms=taker_fee,
        )
        if taker.side == Side.BUY:
            buyer, seller, buyer_fee, seller_fee = taker, maker, taker_fee, maker_fee
        else:
            buyer, seller, buyer_fee, seller_fee = maker, taker, maker_fee, taker_fee
        b, s = buyer.account_id, seller.account_id
        txn = _Txn(self)
        txn.post(PostingReason.TRADE_QUOTE, market.quote, (b, HELD_ORDERS), (s, AVAILABLE), n)
        txn.post(PostingReason.TRADE_BASE, market.base, (s, HELD_ORDERS), (b, AVAILABLE), base)
        txn.post(PostingReason.FEE, market.quote, (b, HELD_ORDERS), (0, Bucket.FEES), buyer_fee)
        txn.post(PostingReason.FEE, market.quote, (s, AVAILABLE), (0, Bucket.FEES), seller_fee)
        buyer.hold -= n + buyer_fee
        seller.hold -= base
        maker.q -= fill
        maker.visible -= fill
        if maker is buyer:
            keep = market.required(maker.p, maker.q)
            excess = maker.hold - keep
            txn.post(
                PostingReason.ORDER_RELEASE, market.quote, (b, HELD_ORDERS), (b, AVAILABLE), excess
            )
            maker.hold = keep
        assert buyer.hold >= 0 and seller.hold >= 0
        if maker.q == 0:
            market.remove(maker)
            self._unregister(maker)
        else:
            self._refresh_if_needed(market, maker)

    def _expire_open(self, market: Market, order: Order, reason: ExpireReason) -> None:
        """OrderExpired of an open order (resting or pending), then the release of its hold."""
        self._end_open(market, order, OrderExpired, reason)

    def _end_open(
        self,
        market: Market,
        order: Order,
        event: type[OrderCancelled] | type[OrderExpired],
        reason: CancelReason | ExpireReason,
    ) -> None:
        """End an open order: its OrderCancelled/OrderExpired, the release of its whole hold,
        and its removal from the book or the conditional table."""
        self._emit(
            event,
            order_id=order.order_id,
            account_id=order.account_id,
            market_id=order.market_id,
            remaining_qty_atoms=order.q * market.lot,
            reason=reason,
        )
        self._release(market, order, order.hold)
        order.hold = 0
        self._close(market, order)

    def _close(self, market: Market, order: Order) -> None:
        """Take an open order out of the book or the conditional table, and forget it."""
        if order.pending:
            market.unwait(order)
        else:
            market.remove(order)
        self._unregister(order)

    def _prevent(
        self, market: Market, taker: Order, maker: Order, fill: int, quote_bounded: bool
    ) -> bool:
        """Self-trade prevention at the head of the book; True when the taker must stop."""
        mode = taker.stp
        self._emit(
            SelfTradePrevented,
            market_id=market.market_id,
            account_id=taker.account_id,
            taker_order_id=taker.order_id,
            maker_order_id=maker.order_id,
            qty_atoms=fill * market.lot,
            stp_mode=mode,
        )
        if mode == StpMode.DECREMENT and quote_bounded:
            mode = StpMode.EXPIRE_TAKER  # no base quantity to decrement
        if mode == StpMode.EXPIRE_TAKER:
            return True
        if mode in (StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH):
            self._expire_open(market, maker, ExpireReason.SELF_TRADE_PREVENTED)
            return mode == StpMode.EXPIRE_BOTH
        assert mode == StpMode.DECREMENT
        taker.q -= fill
        maker.q -= fill
        maker.visible -= fill
        if maker.q == 0:
            self._expire_open(market, maker, ExpireReason.SELF_TRADE_PREVENTED)
        else:
            keep = market.commitment(maker.side, maker.p, maker.q)
            self._release(market, maker, maker.hold - keep)
            maker.hold = keep
            self._refresh_if_needed(market, maker)
        return taker.q == 0

    # ---------------------------------------------------------------------------------------
    # The taker's loop

    def _take(
        self,
        market: Market,
        taker: Order,
        *,
        limited: bool,
        protect: int | None,
        quote_bounded: bool,
        may_rest: bool,
    ) -> bool:
        """PlaceOrder steps 5-6 for a taker not in the book (taker.hold = its current hold;
        quote-bounded: taker.q is unused and taker.hold is the budget left). ``protect`` is a
        market order's protection price. Returns whether the taker rests; the caller registers
        it (or unregisters an order already registered that does not)."""
        side, opposite = taker.side, 1 - taker.side
        limit_p = taker.p if limited else protect
        steps = trades = 0
        while True:
            # Resolution: the loop condition is tested first, so a taker with nothing left is
            # filled even at max fills, and one with something left after max fills stops
            # MAX_FILLS without looking at the book.
            if (taker.hold if quote_bounded else taker.q) == 0:
                stop = FILLED
                break
            if steps >= self.config.max_fills_per_order:
                stop = MAX_FILLS
                break
            best = market.best(opposite)
            if best is None:
                stop = BOOK_EMPTY
                break
            if limit_p is not None and (best > limit_p if side == Side.BUY else best < limit_p):
                stop = LIMIT
                break
            maker = market.levels(opposite)[best][0]
            if quote_bounded:
                fill = self._affordable(market, best, maker.visible, taker.hold)
                if fill == 0:
                    stop = BUDGET
                    break
            else:
                fill = min(taker.q, maker.visible)
            steps += 1
            if taker.stp != StpMode.NONE and maker.account_id == taker.account_id:
                if self._prevent(market, taker, maker, fill, quote_bounded):
                    stop = STP
                    break
                continue
            if not quote_bounded:
                taker.q -= fill
            self._trade(market, taker, maker, fill)
            trades += 1

        filled = stop == FILLED or (quote_bounded and stop == BUDGET and trades > 0)
        rests = not filled and may_rest and stop not in (MAX_FILLS, STP)
        keep = market.commitment(side, taker.p, taker.q) if rests else 0
        if not filled and not rests:
            if stop == MAX_FILLS:
                reason = ExpireReason.MAX_FILLS
            elif stop == STP:
                reason = ExpireReason.SELF_TRADE_PREVENTED
            elif limited:
                reason = ExpireReason.IOC_REMAINDER
            elif stop == LIMIT:
                reason = ExpireReason.PRICE_PROTECTION
            elif stop == BOOK_EMPTY:
                reason = ExpireReason.NO_LIQUIDITY
            else:
                assert stop == BUDGET and quote_bounded
                reason = ExpireReason.BUDGET_EXHAUSTED
            self._emit(
                OrderExpired,
                order_id=taker.order_id,
                account_id=taker.account_id,
                market_id=taker.market_id,
                remaining_qty_atoms=0 if quote_bounded else taker.q * market.lot,
                reason=reason,
            )
        assert taker.hold >= keep, (taker.hold, keep)
        self._release(market, taker, taker.hold - keep)
        taker.hold = keep
        if rests:
            taker.visible = min(taker.display, taker.q) if taker.display else taker.q
            market.add(taker)
        return rests
