"""Order commands other than placement: CancelOrder, AmendOrder, CancelAll, and the
journal-time commands (Tick, dead-man's switch, cancel-on-disconnect) with the expiry sweep
that runs before every command."""

from __future__ import annotations

from engine.reference.model import Account, Market, Order, notional, notional_overflows
from engine.reference.placing import Placing
from engine.reference.state import MAX
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOnDisconnect,
    CancelOrder,
    CancelReason,
    CancelReplaceOrder,
    CommandRejected,
    DeadMansSwitchFired,
    DeadMansSwitchSet,
    ExpireReason,
    MarketState,
    OrderAmended,
    OrderCancelled,
    OrderType,
    Reject,
    SetDeadMansSwitch,
    Side,
    Tick,
)


class OrderCommands(Placing):
    """docs/engine-semantics.md, sections CancelOrder to "Journal time"."""

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

    # ---------------------------------------------------------------------------------------
    # CancelOrder, CancelAll, cancel-on-disconnect

    def _cancel_one(self, market: Market, order: Order, reason: CancelReason) -> None:
        self._end_open(market, order, OrderCancelled, reason)

    def _cancel(self, c: CancelOrder) -> bool:
        """True when the order was cancelled (False: refused, nothing changed)."""

        def reject(reason: Reject) -> bool:
            self._order_rejected(c.account_id, c.market_id, c.order_id, c.client_order_id, reason)
            return False

        found = self._preamble(c.market_id, c.account_id, trading=False)
        if isinstance(found, Reject):
            return reject(found)
        market, account = found
        order = self._find_target(account, market, c.order_id, c.client_order_id)
        if order is None:
            return reject(Reject.UNKNOWN_ORDER)
        self._cancel_one(market, order, CancelReason.USER)
        return True

    def _cancel_replace(self, c: CancelReplaceOrder) -> None:
        """The cancel, then (if it succeeded, or ``allow_failure``) the placement, which sees
        the hold the cancel released."""
        if self._cancel(c.cancel()) or c.allow_failure:
            self._place(c.place)

    def _cancel_account(self, account: Account, market_id: int, reason: CancelReason) -> None:
        """Cancel the account's open orders (in ``market_id``, -1 = all) by ascending id."""
        targets = sorted(
            (o for o in account.orders.values() if market_id in (-1, o.market_id)),
            key=lambda o: o.order_id,
        )
        for order in targets:
            self._cancel_one(self.markets[order.market_id], order, reason)

    def _cancel_all(self, c: CancelAll) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            return self._order_rejected(c.account_id, c.market_id, 0, 0, Reject.UNKNOWN_ACCOUNT)
        if c.market_id != -1 and c.market_id not in self.markets:
            return self._order_rejected(c.account_id, c.market_id, 0, 0, Reject.UNKNOWN_MARKET)
        self._cancel_account(account, c.market_id, CancelReason.CANCEL_ALL)
        return None

    def _cancel_on_disconnect(self, c: CancelOnDisconnect) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            return self._order_rejected(c.account_id, -1, 0, 0, Reject.UNKNOWN_ACCOUNT)
        self._cancel_account(account, -1, CancelReason.DISCONNECT)
        return None

    # ---------------------------------------------------------------------------------------
    # Journal time: the sweep before every command, Tick, dead-man's switch

    def _sweep(self) -> None:
        """Dead-man's switches due (by time, then account), then GTD orders due (by expiry,
        then order id): the first command at or after a deadline acts on it."""
        now = self._now
        due = sorted((self.accounts[i].dms, i) for i in self.armed if self.accounts[i].dms <= now)
        for fire_at, account_id in due:
            account = self.accounts[account_id]
            account.dms = 0
            self.armed.discard(account_id)
            self._emit(DeadMansSwitchFired, account_id=account_id, fire_at_ns=fire_at)
            self._cancel_account(account, -1, CancelReason.DEAD_MANS_SWITCH)
        expiring = sorted(
            (o.expire_at, o.order_id) for o in self.gtd.values() if o.expire_at <= now
        )
        for _at, order_id in expiring:
            order = self.orders[order_id]
            self._expire_open(self.markets[order.market_id], order, ExpireReason.GTD)

    def _tick(self, c: Tick) -> None:
        """Nothing but journal time: the sweep has already run."""

    def _set_dead_mans_switch(self, c: SetDeadMansSwitch) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            reason = Reject.UNKNOWN_ACCOUNT
        elif c.fire_at_ns < 0 or (c.fire_at_ns != 0 and c.fire_at_ns <= self._now):
            reason = Reject.INVALID_EXPIRY
        else:
            account.dms = c.fire_at_ns
            if c.fire_at_ns:
                self.armed.add(c.account_id)
            else:
                self.armed.discard(c.account_id)
            self._emit(DeadMansSwitchSet, account_id=c.account_id, fire_at_ns=c.fire_at_ns)
            return
        self._emit(CommandRejected, command=type(c).__name__, reason=reason)

    # ---------------------------------------------------------------------------------------
    # AmendOrder

    def _check_amend(self, c: AmendOrder) -> Reject | tuple[Order, int, int, int]:
        """On success: (order, new p ticks, new q lots, new hold atoms)."""
        found = self._preamble(c.market_id, c.account_id, trading=True)
        if isinstance(found, Reject):
            return found
        market, account = found
        order = self._find_target(account, market, c.order_id, c.client_order_id)
        if order is None:
            return Reject.UNKNOWN_ORDER
        if order.pending:
            return Reject.INVALID_AMEND
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
        if market.max_qty and q > market.max_qty:
            return Reject.ORDER_TOO_LARGE
        if (p, q) == (order.p, order.q):
            return Reject.INVALID_AMEND
        if account.frozen and not (p == order.p and q < order.q):
            return Reject.ACCOUNT_FROZEN  # frozen: only a pure decrease (less exposure)
        if notional_overflows(p, q, market.qtl):
            return Reject.NOTIONAL_OVERFLOW
        if notional(p, q, market.qtl) < market.min_notional:
            return Reject.MIN_NOTIONAL
        limit = self.tier_limit(account, market)
        if limit and notional(p, q, market.qtl) > limit and not (p == order.p and q < order.q):
            return Reject.TIER_TRADE_LIMIT  # only a pure decrease may stay above the limit
        if p != order.p:
            if order.order_type == OrderType.LIMIT_MAKER and market.crosses(order.side, p):
                return Reject.TAKER_NOT_ALLOWED
            if self._outside_band(market, p):
                return Reject.PRICE_OUTSIDE_BAND
            # Resolution: the side's level count is taken before the order leaves its level.
            if self._level_unavailable(market, order.side, p):
                return Reject.BOOK_FULL
        keeps_priority = p == order.p and q < order.q
        if (
            market.state == MarketState.POST_ONLY
            and not keeps_priority
            and market.crosses(order.side, p)
        ):
            return Reject.MARKET_POST_ONLY
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
            order.visible = min(order.visible, q)
            return None
        rests = self._take(
            market, order, limited=True, protect=None, quote_bounded=False, may_rest=True
        )
        if not rests:
            self._unregister(order)
        self._run_triggers(market)
        return None
