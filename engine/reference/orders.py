"""Order commands: PlaceOrder, CancelOrder, AmendOrder, CancelAll, and the matching loop."""

from __future__ import annotations

from engine.reference.model import (
    Account,
    Market,
    Order,
    fee,
    notional,
    notional_overflows,
)
from engine.reference.state import AVAILABLE, HELD_ORDERS, MAX, EngineState, _Txn
from engine.schema import (
    MAX_CLIENT_ORDER_ID,
    AmendOrder,
    Bucket,
    CancelAll,
    CancelOrder,
    CancelReason,
    ExpireReason,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    PlaceOrder,
    PostingReason,
    Reject,
    Side,
    TimeInForce,
    Trade,
)

# Why a taker's matching loop stopped.
FILLED = "filled"  # nothing left (quote-bounded: budget exactly spent)
MAX_FILLS = "max_fills"  # max_fills_per_order fills done while something was left
BOOK_EMPTY = "book_empty"
LIMIT = "limit"  # the best opposite price is worse than the limit
BUDGET = "budget"  # quote-bounded: the budget left cannot buy one lot at the best price


class OrderCommands(EngineState):
    """docs/engine-semantics.md, sections PlaceOrder to CancelAll."""

    def _order_rejected(
        self, account_id: int, market_id: int, order_id: int, client_order_id: int, reason: Reject
    ) -> None:
        self._emit(
            OrderRejected,
            account_id=account_id,
            market_id=market_id,
            order_id=order_id,
            client_order_id=client_order_id,
            reason=reason,
        )

    def _find_target(
        self, account: Account, market: Market, order_id: int, client_order_id: int
    ) -> Order | None:
        """CancelOrder / AmendOrder target: by order_id if non-zero, else by client_order_id."""
        if order_id != 0:
            order = self.orders.get(order_id)
        elif client_order_id != 0:
            order = account.by_client_id.get(client_order_id)
        else:
            return None
        if order is None or order.account_id != account.account_id:
            return None
        if order.market_id != market.market_id:
            return None
        return order

    def _level_unavailable(self, market: Market, side: int, p: int) -> bool:
        """A new level at p would not fit on a full side."""
        levels = market.levels(side)
        return p not in levels and len(levels) >= self.config.max_levels_per_side

    def _dry_run(self, market: Market, side: int, limit_p: int | None, q: int) -> tuple[int, int]:
        """Predict a taker's fills without touching anything: (lots left, taker's quote cost).

        The cost is the sum of notional + taker fee over the fills (what a buyer would pay).
        """
        left, cost = q, 0
        for fills, maker in enumerate(market.walk(side)):
            if left == 0 or fills >= self.config.max_fills_per_order:
                break
            if limit_p is not None and (
                maker.p > limit_p if side == Side.BUY else maker.p < limit_p
            ):
                break
            fill = min(left, maker.q)
            n = notional(maker.p, fill, market.qtl)
            cost += n + fee(n, market.taker_ppm)
            left -= fill
        return left, cost

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

    # ---------------------------------------------------------------------------------------
    # Matching

    def _trade(self, market: Market, taker: Order, maker: Order, fill: int) -> None:
        """One fill at the maker's price: Trade event, then the trade's transaction."""
        n = notional(maker.p, fill, market.qtl)
        base = fill * market.lot
        maker_fee = fee(n, market.maker_ppm)
        taker_fee = fee(n, market.taker_ppm)
        market.last_trade_id += 1
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

    def _take(
        self, market: Market, taker: Order, *, limited: bool, quote_bounded: bool, may_rest: bool
    ) -> bool:
        """PlaceOrder steps 5-6 for a taker not in the book (taker.hold = its current hold;
        quote-bounded: taker.q is unused and taker.hold is the budget left). Returns whether
        the taker rests; the caller registers it (or unregisters an amended order that does not).
        """
        side, opposite = taker.side, 1 - taker.side
        fills = 0
        while True:
            # Resolution: the loop condition is tested first, so a taker with nothing left is
            # filled even at max fills, and one with something left after max fills stops
            # MAX_FILLS without looking at the book. A quote-bounded taker whose budget is
            # exactly spent (0) is filled.
            if (taker.hold if quote_bounded else taker.q) == 0:
                stop = FILLED
                break
            if fills >= self.config.max_fills_per_order:
                stop = MAX_FILLS
                break
            best = market.best(opposite)
            if best is None:
                stop = BOOK_EMPTY
                break
            if limited and (best > taker.p if side == Side.BUY else best < taker.p):
                stop = LIMIT
                break
            maker = market.levels(opposite)[best][0]
            if quote_bounded:
                fill = self._affordable(market, best, maker.q, taker.hold)
                if fill == 0:
                    stop = BUDGET
                    break
            else:
                fill = min(taker.q, maker.q)
                taker.q -= fill
            self._trade(market, taker, maker, fill)
            fills += 1

        filled = stop == FILLED or (quote_bounded and stop == BUDGET and fills > 0)
        rests = not filled and may_rest and stop != MAX_FILLS
        keep = market.commitment(side, taker.p, taker.q) if rests else 0
        if not filled and not rests:
            if stop == MAX_FILLS:
                reason = ExpireReason.MAX_FILLS
            elif taker.order_type != OrderType.MARKET:
                reason = ExpireReason.IOC_REMAINDER
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
            market.add(taker)
        return rests

    # ---------------------------------------------------------------------------------------
    # PlaceOrder

    def _check_place(self, c: PlaceOrder) -> Reject | tuple[int, int, int]:
        """Checks 1-7, first failure wins. On success: (p ticks, q lots, hold atoms)."""
        market = self.markets.get(c.market_id)
        if market is None:
            return Reject.UNKNOWN_MARKET
        account = self.accounts.get(c.account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        if c.side not in (Side.BUY, Side.SELL):
            return Reject.INVALID_SIDE
        if c.order_type not in (OrderType.LIMIT, OrderType.MARKET, OrderType.LIMIT_MAKER):
            return Reject.INVALID_ORDER_TYPE
        if c.time_in_force not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK):
            return Reject.INVALID_TIME_IN_FORCE
        if c.order_type == OrderType.LIMIT_MAKER and c.time_in_force != TimeInForce.GTC:
            return Reject.INVALID_TIME_IN_FORCE

        def check_qty() -> Reject | None:
            if not 1 <= c.qty_atoms <= MAX:
                return Reject.INVALID_QTY
            if c.qty_atoms % market.lot:
                return Reject.QTY_OFF_LOT
            if c.quote_qty_atoms != 0:
                return Reject.INVALID_QTY
            return None

        p = q = 0
        quote_bounded = False
        if c.order_type != OrderType.MARKET:
            if not 1 <= c.price_atoms <= MAX:
                return Reject.INVALID_PRICE
            if c.price_atoms % market.tick:
                return Reject.PRICE_OFF_TICK
            if (reason := check_qty()) is not None:
                return reason
            p, q = c.price_atoms // market.tick, c.qty_atoms // market.lot
            if notional_overflows(p, q, market.qtl):
                return Reject.NOTIONAL_OVERFLOW
            if notional(p, q, market.qtl) < market.min_notional:
                return Reject.MIN_NOTIONAL
        else:
            if c.price_atoms != 0:
                return Reject.INVALID_PRICE
            if c.side == Side.BUY and (c.qty_atoms != 0) == (c.quote_qty_atoms != 0):
                return Reject.INVALID_QTY
            if c.side == Side.SELL or c.qty_atoms != 0:
                if (reason := check_qty()) is not None:
                    return reason
                q = c.qty_atoms // market.lot
            else:
                quote_bounded = True
                if not 1 <= c.quote_qty_atoms <= MAX:
                    return Reject.INVALID_QTY
                if c.quote_qty_atoms < market.min_notional:
                    return Reject.MIN_NOTIONAL

        if not 0 <= c.client_order_id <= MAX_CLIENT_ORDER_ID:
            return Reject.INVALID_CLIENT_ORDER_ID
        if c.client_order_id != 0 and c.client_order_id in account.by_client_id:
            return Reject.DUPLICATE_CLIENT_ORDER_ID

        if c.order_type == OrderType.LIMIT_MAKER and market.crosses(c.side, p):
            return Reject.TAKER_NOT_ALLOWED

        # Resolution: both counts apply to every order type (market and IOC/FOK included).
        if len(account.orders) >= self.config.max_open_orders_per_account:
            return Reject.TOO_MANY_OPEN_ORDERS
        if len(self.orders) >= self.config.max_orders:
            return Reject.BOOK_FULL
        may_rest = c.order_type == OrderType.LIMIT_MAKER or (
            c.order_type == OrderType.LIMIT and c.time_in_force == TimeInForce.GTC
        )
        if may_rest and self._level_unavailable(market, c.side, p):
            return Reject.BOOK_FULL

        if c.side == Side.SELL:
            hold = q * market.lot
        elif c.order_type != OrderType.MARKET:
            hold = market.required(p, q)
        elif quote_bounded:
            hold = c.quote_qty_atoms
        else:
            hold = self._dry_run(market, Side.BUY, None, q)[1]
        held_asset = market.quote if c.side == Side.BUY else market.base
        if hold > account.available(held_asset):
            return Reject.INSUFFICIENT_FUNDS
        return p, q, hold

    def _place(self, c: PlaceOrder) -> None:
        checked = self._check_place(c)
        if isinstance(checked, Reject):
            return self._order_rejected(c.account_id, c.market_id, 0, c.client_order_id, checked)
        p, q, hold = checked
        market = self.markets[c.market_id]
        order = Order(
            order_id=self._seq,
            account_id=c.account_id,
            market_id=c.market_id,
            side=int(c.side),
            order_type=int(c.order_type),
            p=p,
            q=q,
            hold=hold,
            client_order_id=c.client_order_id,
        )
        self._emit(
            OrderAccepted,
            order_id=order.order_id,
            account_id=c.account_id,
            market_id=c.market_id,
            client_order_id=c.client_order_id,
            side=c.side,
            order_type=c.order_type,
            time_in_force=c.time_in_force,
            price_atoms=c.price_atoms,
            qty_atoms=c.qty_atoms,
            quote_qty_atoms=c.quote_qty_atoms,
            hold_atoms=hold,
        )
        self._hold(market, order, hold)

        if c.order_type == OrderType.LIMIT and c.time_in_force == TimeInForce.FOK:
            left, _cost = self._dry_run(market, c.side, p, q)
            if left > 0:
                self._emit(
                    OrderExpired,
                    order_id=order.order_id,
                    account_id=c.account_id,
                    market_id=c.market_id,
                    remaining_qty_atoms=c.qty_atoms,
                    reason=ExpireReason.FOK_UNFILLABLE,
                )
                self._release(market, order, hold)
                return None

        if c.order_type == OrderType.LIMIT_MAKER:
            market.add(order)
            self._register(order)
            return None

        rests = self._take(
            market,
            order,
            limited=c.order_type == OrderType.LIMIT,
            quote_bounded=c.order_type == OrderType.MARKET and c.quote_qty_atoms != 0,
            may_rest=c.order_type == OrderType.LIMIT and c.time_in_force == TimeInForce.GTC,
        )
        if rests:
            self._register(order)
        return None

    # ---------------------------------------------------------------------------------------
    # CancelOrder, AmendOrder, CancelAll

    def _cancel_one(self, market: Market, order: Order, reason: CancelReason) -> None:
        self._emit(
            OrderCancelled,
            order_id=order.order_id,
            account_id=order.account_id,
            market_id=order.market_id,
            remaining_qty_atoms=order.q * market.lot,
            reason=reason,
        )
        self._release(market, order, order.hold)
        order.hold = 0
        market.remove(order)
        self._unregister(order)

    def _cancel(self, c: CancelOrder) -> None:
        def reject(reason: Reject) -> None:
            self._order_rejected(c.account_id, c.market_id, c.order_id, c.client_order_id, reason)

        market = self.markets.get(c.market_id)
        if market is None:
            return reject(Reject.UNKNOWN_MARKET)
        account = self.accounts.get(c.account_id)
        if account is None:
            return reject(Reject.UNKNOWN_ACCOUNT)
        order = self._find_target(account, market, c.order_id, c.client_order_id)
        if order is None:
            return reject(Reject.UNKNOWN_ORDER)
        self._cancel_one(market, order, CancelReason.USER)
        return None

    def _check_amend(self, c: AmendOrder) -> Reject | tuple[Order, int, int, int]:
        """On success: (order, new p ticks, new q lots, new hold atoms)."""
        market = self.markets.get(c.market_id)
        if market is None:
            return Reject.UNKNOWN_MARKET
        account = self.accounts.get(c.account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        order = self._find_target(account, market, c.order_id, c.client_order_id)
        if order is None:
            return Reject.UNKNOWN_ORDER
        if not 0 <= c.new_price_atoms <= MAX:
            return Reject.INVALID_PRICE
        if c.new_price_atoms % market.tick:
            return Reject.PRICE_OFF_TICK
        if not 0 <= c.new_qty_atoms <= MAX:
            return Reject.INVALID_QTY
        if c.new_qty_atoms % market.lot:
            return Reject.QTY_OFF_LOT
        p = c.new_price_atoms // market.tick if c.new_price_atoms else order.p
        q = c.new_qty_atoms // market.lot if c.new_qty_atoms else order.q
        if (p, q) == (order.p, order.q):
            return Reject.INVALID_AMEND
        if notional_overflows(p, q, market.qtl):
            return Reject.NOTIONAL_OVERFLOW
        if notional(p, q, market.qtl) < market.min_notional:
            return Reject.MIN_NOTIONAL
        if p != order.p:
            if order.order_type == OrderType.LIMIT_MAKER and market.crosses(order.side, p):
                return Reject.TAKER_NOT_ALLOWED
            # Resolution: the side's level count is taken before the order leaves its level.
            if self._level_unavailable(market, order.side, p):
                return Reject.BOOK_FULL
        hold = market.commitment(order.side, p, q)
        held_asset = market.quote if order.side == Side.BUY else market.base
        if hold - order.hold > account.available(held_asset):
            return Reject.INSUFFICIENT_FUNDS
        return order, p, q, hold

    def _amend(self, c: AmendOrder) -> None:
        checked = self._check_amend(c)
        if isinstance(checked, Reject):
            return self._order_rejected(
                c.account_id, c.market_id, c.order_id, c.client_order_id, checked
            )
        order, p, q, hold = checked
        market = self.markets[c.market_id]
        keeps_priority = p == order.p and q < order.q
        if not keeps_priority:
            market.remove(order)
        self._emit(
            OrderAmended,
            order_id=order.order_id,
            account_id=order.account_id,
            market_id=order.market_id,
            price_atoms=p * market.tick,
            qty_atoms=q * market.lot,
            priority_kept=keeps_priority,
            hold_atoms=hold,
        )
        if hold < order.hold:
            self._release(market, order, order.hold - hold)
        else:
            self._hold(market, order, hold - order.hold)
        order.p, order.q, order.hold = p, q, hold
        if keeps_priority:
            return None
        rests = self._take(market, order, limited=True, quote_bounded=False, may_rest=True)
        if not rests:
            self._unregister(order)
        return None

    def _cancel_all(self, c: CancelAll) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            return self._order_rejected(c.account_id, c.market_id, 0, 0, Reject.UNKNOWN_ACCOUNT)
        if c.market_id != -1 and c.market_id not in self.markets:
            return self._order_rejected(c.account_id, c.market_id, 0, 0, Reject.UNKNOWN_MARKET)
        targets = sorted(
            (o for o in account.orders.values() if c.market_id in (-1, o.market_id)),
            key=lambda o: o.order_id,
        )
        for order in targets:
            self._cancel_one(self.markets[order.market_id], order, CancelReason.CANCEL_ALL)
        return None
