"""Order lifecycle from events: what back-office sees in the ``orders`` table.

An order is born by ``OrderAccepted``, shrinks by ``Trade``, changes by ``OrderAmended`` and ends
``filled``, ``cancelled`` or ``expired``. The same tracker runs in the in-memory book (replay) and
in the PostgreSQL projector, so the two sources cannot disagree by construction of the rules,
only by a bug in storage, which the tests look for.

Only open orders can change, so a projector resuming after a crash needs nothing but the open
orders (loaded from PostgreSQL) to continue exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from engine.schema import (
    CONDITIONAL_TYPES,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderTriggered,
    OrderType,
    SelfTradePrevented,
    StpMode,
    Trade,
)

OPEN: Final = "open"
FILLED: Final = "filled"
CANCELLED: Final = "cancelled"
EXPIRED: Final = "expired"
STATUSES: Final = (OPEN, FILLED, CANCELLED, EXPIRED)


class OrderStateError(AssertionError):
    """An event refers to an order the tracker does not hold open: the event stream has a gap,
    or the projector resumed without the open orders it needs."""


@dataclass(slots=True)
class OrderState:
    """One order's row. Field order is the ``orders`` table's column order."""

    order_id: int
    account_id: int
    market_id: int
    client_order_id: int
    side: int
    order_type: int
    time_in_force: int
    price_atoms: int
    """Current limit price (an amend changes it); 0 for market orders."""
    qty_atoms: int
    """Quantity at acceptance."""
    quote_qty_atoms: int
    open_qty_atoms: int
    filled_qty_atoms: int
    filled_quote_atoms: int
    fee_atoms: int
    """Fees this order paid (quote atoms), maker and taker fills together."""
    status: str
    close_reason: int | None
    """CancelReason or ExpireReason of the closing event; None while open or when filled."""
    accepted_seq: int
    accepted_ts_ns: int
    updated_seq: int
    updated_ts_ns: int
    # Migration 2 (the gateway's history reads these; the dialect's fields, folded exactly as
    # the gateway's read model folds them, `gateway.store`):
    orig_qty_atoms: int = 0
    """The dialect's origQty: the accepted quantity, after an amend the new quantity plus what
    was filled or prevented before it."""
    stop_price_atoms: int = 0
    trailing_delta_bps: int = 0
    display_qty_atoms: int = 0
    """Iceberg display quantity."""
    stp_mode: int = 0
    working_ts_ns: int = 0
    """0: working since acceptance; -1: a conditional order waiting for its trigger; else the
    journal time it was triggered."""
    prevented_qty_atoms: int = 0
    """Quantity self-trade prevention took off this order (DECREMENT: the prevented quantity;
    the EXPIRE modes: the open quantity they expired)."""
    prevented_match_id: int = -1
    """The last prevented match (per market, 0, 1, 2, ...) this order was part of; -1: none."""

    def row(self) -> tuple[object, ...]:
        # explicit, not dataclasses.astuple: that deep-copies every field (10x slower), and
        # this runs once per touched order per chunk in the projector's hot path
        return (
            self.order_id,
            self.account_id,
            self.market_id,
            self.client_order_id,
            self.side,
            self.order_type,
            self.time_in_force,
            self.price_atoms,
            self.qty_atoms,
            self.quote_qty_atoms,
            self.open_qty_atoms,
            self.filled_qty_atoms,
            self.filled_quote_atoms,
            self.fee_atoms,
            self.status,
            self.close_reason,
            self.accepted_seq,
            self.accepted_ts_ns,
            self.updated_seq,
            self.updated_ts_ns,
            self.orig_qty_atoms,
            self.stop_price_atoms,
            self.trailing_delta_bps,
            self.display_qty_atoms,
            self.stp_mode,
            self.working_ts_ns,
            self.prevented_qty_atoms,
            self.prevented_match_id,
        )

    def open_base_atoms(self) -> int:
        """Base quantity still open as the dialect counts it (0 for a quote-budget order)."""
        q = self.orig_qty_atoms
        return max(0, q - self.filled_qty_atoms - self.prevented_qty_atoms) if q else 0

    @classmethod
    def from_row(cls, row: tuple[object, ...] | list[object]) -> OrderState:
        return cls(*row)  # type: ignore[arg-type]


COLUMNS: Final = tuple(OrderState.__dataclass_fields__)
assert len(COLUMNS) == 28, "OrderState.row() lists every field explicitly"


class OrderTracker:
    """Applies order events; `touched` collects the orders changed since the last `take`."""

    def __init__(
        self,
        open_orders: dict[int, OrderState] | None = None,
        *,
        keep_closed: bool = False,
        stp_next_ids: dict[int, int] | None = None,
    ) -> None:
        self.open: dict[int, OrderState] = dict(open_orders or {})
        self.stp_next_ids: dict[int, int] = dict(stp_next_ids or {})
        """market_id -> next prevented match id (the dialect numbers them 0, 1, ... per market)."""
        self.stp_touched: set[int] = set()
        """Markets whose next match id moved since the last `take_stp_ids`."""
        self.closed: dict[int, OrderState] = {}
        """Filled, cancelled and expired orders, kept only with ``keep_closed`` (replay)."""
        self._keep_closed = keep_closed
        self.touched: dict[int, OrderState] = {}
        self._command_orders: list[OrderState] = []
        self._entered_as_market: set[int] = set()

    def _get(self, order_id: int, seq: int) -> OrderState:
        order = self.open.get(order_id)
        if order is None:
            raise OrderStateError(f"seq {seq}: order {order_id} is not open in the ledger")
        return order

    def _touch(self, order: OrderState, seq: int, ts_ns: int) -> None:
        order.updated_seq = seq
        order.updated_ts_ns = ts_ns
        self.touched[order.order_id] = order

    def _close(self, order: OrderState, status: str, reason: int | None) -> None:
        order.status = status
        order.close_reason = reason
        del self.open[order.order_id]
        if self._keep_closed:
            self.closed[order.order_id] = order

    def accepted(self, ev: OrderAccepted, ts_ns: int) -> None:
        if ev.order_id in self.open:
            raise OrderStateError(f"seq {ev.seq}: order {ev.order_id} accepted twice")
        order = OrderState(
            ev.order_id,
            ev.account_id,
            ev.market_id,
            ev.client_order_id,
            ev.side,
            ev.order_type,
            ev.time_in_force,
            ev.price_atoms,
            ev.qty_atoms,
            ev.quote_qty_atoms,
            ev.qty_atoms,
            0,
            0,
            0,
            OPEN,
            None,
            ev.seq,
            ts_ns,
            ev.seq,
            ts_ns,
            ev.qty_atoms,
        )
        # as the gateway's read model: the issue-3 fields only for the kinds that carry them
        if ev.order_type > OrderType.LIMIT_MAKER or ev.display_qty_atoms or ev.stp_mode:
            order.stop_price_atoms = ev.stop_price_atoms
            order.trailing_delta_bps = ev.trailing_delta_bps
            order.display_qty_atoms = ev.display_qty_atoms
            order.stp_mode = ev.stp_mode
            if ev.order_type in CONDITIONAL_TYPES:
                order.working_ts_ns = -1
        self.open[ev.order_id] = order
        self._command_orders.append(order)
        self.touched[ev.order_id] = order

    def trade(self, ev: Trade, ts_ns: int) -> None:
        for order_id, fee in (
            (ev.maker_order_id, ev.maker_fee_atoms),
            (ev.taker_order_id, ev.taker_fee_atoms),
        ):
            order = self._get(order_id, ev.seq)
            order.filled_qty_atoms += ev.qty_atoms
            order.filled_quote_atoms += ev.quote_atoms
            order.fee_atoms += fee
            if order.qty_atoms or order.open_qty_atoms:  # not a market buy by quote amount
                order.open_qty_atoms -= ev.qty_atoms
                if order.open_qty_atoms < 0:
                    raise OrderStateError(f"seq {ev.seq}: order {order_id} overfilled")
            self._touch(order, ev.seq, ts_ns)
            if order.open_qty_atoms == 0 and order.qty_atoms:
                self._close(order, FILLED, None)

    def amended(self, ev: OrderAmended, ts_ns: int) -> None:
        order = self._get(ev.order_id, ev.seq)
        order.price_atoms = ev.price_atoms
        order.open_qty_atoms = ev.qty_atoms
        order.orig_qty_atoms = order.filled_qty_atoms + order.prevented_qty_atoms + ev.qty_atoms
        self._touch(order, ev.seq, ts_ns)
        self._command_orders.append(order)

    def ended(self, ev: OrderCancelled | OrderExpired, ts_ns: int) -> None:
        order = self._get(ev.order_id, ev.seq)
        order.open_qty_atoms = 0
        self._touch(order, ev.seq, ts_ns)
        self._close(order, CANCELLED if isinstance(ev, OrderCancelled) else EXPIRED, ev.reason)

    def triggered(self, ev: OrderTriggered, ts_ns: int) -> None:
        """A conditional order enters as a taker: as a market order (price 0) or at the limit
        it was given (a trailing stop limit's is computed at trigger time)."""
        order = self._get(ev.order_id, ev.seq)
        order.price_atoms = ev.price_atoms
        order.working_ts_ns = ts_ns
        if ev.price_atoms == 0:
            self._entered_as_market.add(order.order_id)
        self._touch(order, ev.seq, ts_ns)
        self._command_orders.append(order)

    def self_trade_prevented(self, ev: SelfTradePrevented, ts_ns: int) -> None:
        """DECREMENT shrinks both orders by the prevented quantity without a trade (an order
        brought to 0 gets its own OrderExpired). A quote-bounded taker has no base quantity and
        treats DECREMENT as EXPIRE_TAKER (docs/engine-semantics.md), so nothing shrinks then.
        The other modes change orders only through their own expiry events.

        The dialect's prevented quantity and match id are counted as the gateway counts them
        (`gateway.store.Store._prevented`)."""
        self._prevented_fields(ev, ts_ns)
        if ev.stp_mode != StpMode.DECREMENT:
            return
        taker = self._get(ev.taker_order_id, ev.seq)
        if not taker.qty_atoms:
            return
        for order in (taker, self._get(ev.maker_order_id, ev.seq)):
            order.open_qty_atoms -= ev.qty_atoms
            if order.open_qty_atoms < 0:
                raise OrderStateError(f"seq {ev.seq}: order {order.order_id} decremented below 0")
            self._touch(order, ev.seq, ts_ns)

    def _prevented_fields(self, ev: SelfTradePrevented, ts_ns: int) -> None:
        taker = self._get(ev.taker_order_id, ev.seq)
        maker = self._get(ev.maker_order_id, ev.seq)
        match_id = self.stp_next_ids.get(ev.market_id, 0)
        self.stp_next_ids[ev.market_id] = match_id + 1
        self.stp_touched.add(ev.market_id)
        mode = ev.stp_mode
        if mode == StpMode.DECREMENT and not taker.orig_qty_atoms:
            mode = StpMode.EXPIRE_TAKER
        taker_qty = maker_qty = None
        if mode == StpMode.DECREMENT:
            taker_qty = maker_qty = ev.qty_atoms
        else:
            if mode in (StpMode.EXPIRE_TAKER, StpMode.EXPIRE_BOTH):
                taker_qty = taker.open_base_atoms()
            if mode in (StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH):
                maker_qty = maker.open_base_atoms()
        for order, qty in ((taker, taker_qty), (maker, maker_qty)):
            if qty is not None:
                order.prevented_qty_atoms += qty
                order.prevented_match_id = match_id
                self._touch(order, ev.seq, ts_ns)

    def take_stp_ids(self) -> list[tuple[int, int]]:
        """(market_id, next match id) of the markets whose counter moved since the last call."""
        out = [(m, self.stp_next_ids[m]) for m in sorted(self.stp_touched)]
        self.stp_touched = set()
        return out

    def end_command(self) -> None:
        """A market order never rests: still open at the end of its command means it spent
        its quote budget (a market buy by quote amount with no expiry event), i.e. filled. The
        same holds for a conditional order that entered as a market order this command."""
        for order in self._command_orders:
            entered_as_market = order.order_id in self._entered_as_market
            if order.status == OPEN and (order.order_type == OrderType.MARKET or entered_as_market):
                order.open_qty_atoms = 0
                self._close(order, FILLED, None)
        self._command_orders.clear()
        self._entered_as_market.clear()

    def take(self) -> list[OrderState]:
        """The orders changed since the last call, in order id order."""
        out = [self.touched[k] for k in sorted(self.touched)]
        self.touched = {}
        return out
