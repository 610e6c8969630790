"""PlaceOrder in the reference model: the checks in contract order, then acceptance.

docs/engine-semantics.md, "PlaceOrder". Every check returns a reason before anything changes.
"""

from __future__ import annotations

from engine.reference.model import Account, Market, Order, bps_of, notional, notional_overflows
from engine.reference.state import MAX
from engine.reference.triggers import (
    LIMIT_KINDS,
    TRAILING,
    Triggers,
    condition_holds,
    trailing_trigger,
)
from engine.schema import (
    CONDITIONAL_TYPES,
    MAX_CLIENT_ORDER_ID,
    MAX_TRAILING_DELTA_BPS,
    ExpireReason,
    MarketState,
    OrderAccepted,
    OrderExpired,
    OrderRejected,
    OrderType,
    PlaceOrder,
    Reject,
    Side,
    StpMode,
    TimeInForce,
)

RESTING_TIFS = (TimeInForce.GTC, TimeInForce.GTD)
MARKET_KINDS = (
    OrderType.MARKET,
    OrderType.STOP_MARKET,
    OrderType.TAKE_PROFIT_MARKET,
    OrderType.TRAILING_STOP_MARKET,
)


class Placing(Triggers):
    _now: int

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

    def _outside_band(self, market: Market, p: int) -> bool:
        if market.band_bps == 0:
            return False
        ref = market.reference_price()
        if ref is None:
            return False
        dev = bps_of(ref, market.band_bps)
        return p < ref - dev or p > ref + dev

    def _check_fields(self, c: PlaceOrder, market: Market) -> Reject | tuple[int, int]:
        """Checks 2-3 (types, time in force, STP, expiry, prices and quantities, conditional
        parameters, iceberg). Returns (p ticks, q lots)."""
        if c.side not in (Side.BUY, Side.SELL):
            return Reject.INVALID_SIDE
        if not 0 <= c.order_type <= OrderType.TRAILING_STOP_LIMIT:
            return Reject.INVALID_ORDER_TYPE
        if not 0 <= c.time_in_force <= TimeInForce.GTD:
            return Reject.INVALID_TIME_IN_FORCE
        if c.order_type == OrderType.LIMIT_MAKER and c.time_in_force not in RESTING_TIFS:
            return Reject.INVALID_TIME_IN_FORCE
        if not 0 <= c.stp_mode <= StpMode.DECREMENT:
            return Reject.INVALID_STP_MODE
        if c.time_in_force == TimeInForce.GTD:
            if c.expire_at_ns <= self._now:
                return Reject.INVALID_EXPIRY
        elif c.expire_at_ns != 0:
            return Reject.INVALID_EXPIRY

        def check_qty() -> Reject | None:
            if not 1 <= c.qty_atoms <= MAX:
                return Reject.INVALID_QTY
            if c.qty_atoms % market.lot:
                return Reject.QTY_OFF_LOT
            if c.quote_qty_atoms != 0:
                return Reject.INVALID_QTY
            return None

        p = q = 0
        if c.order_type not in MARKET_KINDS:
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
            by_quote = c.order_type != OrderType.MARKET and c.side == Side.BUY
            if c.order_type == OrderType.MARKET and c.side == Side.BUY:
                if (c.qty_atoms != 0) == (c.quote_qty_atoms != 0):
                    return Reject.INVALID_QTY
                by_quote = c.quote_qty_atoms != 0
            if not by_quote:
                if (reason := check_qty()) is not None:
                    return reason
                q = c.qty_atoms // market.lot
            else:
                if c.qty_atoms != 0 or not 1 <= c.quote_qty_atoms <= MAX:
                    return Reject.INVALID_QTY
                if c.quote_qty_atoms < market.min_notional:
                    return Reject.MIN_NOTIONAL
        if market.max_qty and q > market.max_qty:
            return Reject.ORDER_TOO_LARGE

        stop_kind = c.order_type in CONDITIONAL_TYPES and c.order_type not in TRAILING
        if stop_kind:
            if not 1 <= c.stop_price_atoms <= MAX or c.stop_price_atoms % market.tick:
                return Reject.INVALID_STOP_PRICE
        elif c.stop_price_atoms != 0:
            return Reject.INVALID_STOP_PRICE
        if c.order_type in TRAILING:
            if not 1 <= c.trailing_delta_bps <= MAX_TRAILING_DELTA_BPS:
                return Reject.INVALID_TRAILING_DELTA
        elif c.trailing_delta_bps != 0:
            return Reject.INVALID_TRAILING_DELTA
        if c.order_type == OrderType.TRAILING_STOP_LIMIT:
            if not 0 <= c.limit_offset_atoms <= MAX:
                return Reject.INVALID_PRICE
            if c.limit_offset_atoms % market.tick:
                return Reject.PRICE_OFF_TICK
        elif c.limit_offset_atoms != 0:
            return Reject.INVALID_PRICE
        if c.display_qty_atoms != 0 and (
            c.order_type not in (OrderType.LIMIT, OrderType.LIMIT_MAKER)
            or c.time_in_force not in RESTING_TIFS
            or not 1 <= c.display_qty_atoms < c.qty_atoms
            or c.display_qty_atoms % market.lot
        ):
            return Reject.INVALID_DISPLAY_QTY
        return p, q

    def _over_tier_limit(
        self, c: PlaceOrder, market: Market, account: Account, p: int, q: int
    ) -> bool:
        """Tier trade limit (docs/engine-semantics.md): a priced order is valued at its limit,
        a market buy by quote at its budget, any other by quantity at the last trade price
        (before the market's first trade it cannot be valued, so it is over)."""
        limit = self.tier_limit(account, market)
        if limit == 0:
            return False
        if c.order_type not in MARKET_KINDS:
            return notional(p, q, market.qtl) > limit
        if q == 0:
            return c.quote_qty_atoms > limit
        if market.last_price == 0 or notional_overflows(market.last_price, q, market.qtl):
            return True
        return notional(market.last_price, q, market.qtl) > limit

    def _preamble(
        self, market_id: int, account_id: int, *, trading: bool
    ) -> Reject | tuple[Market, Account]:
        """The checks every order command starts with, in contract order: the market, the
        account, and for the commands that may trade (place, amend) the market state."""
        market = self.markets.get(market_id)
        if market is None:
            return Reject.UNKNOWN_MARKET
        account = self.accounts.get(account_id)
        if account is None:
            return Reject.UNKNOWN_ACCOUNT
        if trading and market.state == MarketState.HALTED:
            return Reject.MARKET_HALTED
        if trading and market.state == MarketState.CANCEL_ONLY:
            return Reject.MARKET_CANCEL_ONLY
        return market, account

    def _check_place(self, c: PlaceOrder) -> Reject | tuple[int, int, int]:
        """Checks 1-7, first failure wins. On success: (p ticks, q lots, hold atoms)."""
        found = self._preamble(c.market_id, c.account_id, trading=True)
        if isinstance(found, Reject):
            return found
        market, account = found
        if account.frozen:
            return Reject.ACCOUNT_FROZEN
        fields = self._check_fields(c, market)
        if isinstance(fields, Reject):
            return fields
        p, q = fields
        if self._over_tier_limit(c, market, account, p, q):
            return Reject.TIER_TRADE_LIMIT

        if not 0 <= c.client_order_id <= MAX_CLIENT_ORDER_ID:
            return Reject.INVALID_CLIENT_ORDER_ID
        if c.client_order_id != 0 and c.client_order_id in account.by_client_id:
            return Reject.DUPLICATE_CLIENT_ORDER_ID

        if c.order_type == OrderType.LIMIT_MAKER and market.crosses(c.side, p):
            return Reject.TAKER_NOT_ALLOWED
        if market.state == MarketState.POST_ONLY and (
            c.order_type not in (OrderType.LIMIT, OrderType.LIMIT_MAKER)
            or c.time_in_force not in RESTING_TIFS
            or market.crosses(c.side, p)
        ):
            return Reject.MARKET_POST_ONLY
        if c.order_type in (OrderType.LIMIT, OrderType.LIMIT_MAKER) and self._outside_band(
            market, p
        ):
            return Reject.PRICE_OUTSIDE_BAND
        pending = self._pending_order(c, market, p, q)
        if pending is not None:
            if pending.order_type in TRAILING:
                if market.last_price == 0:
                    return Reject.NO_REFERENCE_PRICE
            elif market.last_price and condition_holds(pending, market.last_price):
                return Reject.INVALID_STOP_PRICE

        # Resolution: both counts apply to every order type (market and IOC/FOK included).
        if len(account.orders) >= self.config.max_open_orders_per_account:
            return Reject.TOO_MANY_OPEN_ORDERS
        if len(self.orders) >= self.config.max_orders:
            return Reject.BOOK_FULL
        may_rest = c.order_type == OrderType.LIMIT_MAKER or (
            c.order_type == OrderType.LIMIT and c.time_in_force in RESTING_TIFS
        )
        if may_rest and self._level_unavailable(market, c.side, p):
            return Reject.BOOK_FULL
        if pending is not None and self._trigger_level_unavailable(market, pending):
            return Reject.BOOK_FULL

        hold = self._place_hold(c, market, account, p, q)
        if isinstance(hold, Reject):
            return hold
        return p, q, hold

    def _pending_order(self, c: PlaceOrder, market: Market, p: int, q: int) -> Order | None:
        """The conditional order as it would wait (trigger set), or None for other types."""
        if c.order_type not in CONDITIONAL_TYPES:
            return None
        order = self._new_order(c, p, q, 0)
        order.pending = True
        if c.order_type in TRAILING:
            order.extreme = market.last_price
            order.trigger = trailing_trigger(c.side, market.last_price, c.trailing_delta_bps)
        else:
            order.trigger = c.stop_price_atoms // market.tick
        return order

    def _new_order(self, c: PlaceOrder, p: int, q: int, hold: int) -> Order:
        market = self.markets[c.market_id]
        display = c.display_qty_atoms // market.lot
        return Order(
            order_id=self._seq,
            account_id=c.account_id,
            market_id=c.market_id,
            side=int(c.side),
            order_type=int(c.order_type),
            p=p,
            q=q,
            hold=hold,
            client_order_id=c.client_order_id,
            time_in_force=int(c.time_in_force),
            expire_at=c.expire_at_ns,
            stp=int(c.stp_mode),
            display=display,
            visible=min(display, q) if display else q,
            delta_bps=c.trailing_delta_bps,
            offset=c.limit_offset_atoms // market.tick,
            quote_qty=c.quote_qty_atoms,
        )

    def _place_hold(
        self, c: PlaceOrder, market: Market, account: Account, p: int, q: int
    ) -> Reject | int:
        """Check 7: the hold (see Holds), refused when above the available balance."""
        if c.side == Side.SELL:
            hold = q * market.lot
        elif c.order_type not in MARKET_KINDS:
            hold = market.required(p, q)
        elif c.quote_qty_atoms != 0:
            hold = c.quote_qty_atoms
        else:
            probe = self._new_order(c, p, q, 0)
            hold = self._dry_run(market, probe, self._protection(market, Side.BUY), q)[1]
        held_asset = market.quote if c.side == Side.BUY else market.base
        if hold > account.available(held_asset):
            return Reject.INSUFFICIENT_FUNDS
        return hold

    def _place(self, c: PlaceOrder) -> None:
        checked = self._check_place(c)
        if isinstance(checked, Reject):
            return self._order_rejected(c.account_id, c.market_id, 0, c.client_order_id, checked)
        p, q, hold = checked
        market = self.markets[c.market_id]
        order = self._pending_order(c, market, p, q) or self._new_order(c, p, q, 0)
        order.hold = hold
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
            stop_price_atoms=c.stop_price_atoms,
            trailing_delta_bps=c.trailing_delta_bps,
            limit_offset_atoms=c.limit_offset_atoms,
            display_qty_atoms=c.display_qty_atoms,
            expire_at_ns=c.expire_at_ns,
            stp_mode=c.stp_mode,
        )
        self._hold(market, order, hold)

        if order.pending:
            market.wait(order)
            self._register(order)
            return None

        if c.order_type == OrderType.LIMIT and c.time_in_force == TimeInForce.FOK:
            left, _cost = self._dry_run(market, order, p, q)
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

        is_market = c.order_type == OrderType.MARKET
        rests = self._take(
            market,
            order,
            limited=not is_market,
            protect=self._protection(market, c.side) if is_market else None,
            quote_bounded=is_market and c.quote_qty_atoms != 0,
            may_rest=not is_market and c.time_in_force in RESTING_TIFS,
        )
        if rests:
            self._register(order)
        self._run_triggers(market)
        return None


__all__ = ["LIMIT_KINDS", "Placing"]
