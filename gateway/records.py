"""The gateway's read-model records: an order, a trade, a prevented match, a user-stream report
and an account's view, as the dialect answers for them.

Plain data, shared by the store that folds them from engine events (`gateway.store`), the
durable history index (`gateway.history`), the read-model snapshots and the wire renderers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import msgspec

NEW, PARTIALLY_FILLED, FILLED = "NEW", "PARTIALLY_FILLED", "FILLED"
CANCELED, EXPIRED, EXPIRED_IN_MATCH = "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"


class OrderRecord(msgspec.Struct, gc=False, array_like=True):
    """An order as the gateway answers for it.

    The read-model records are msgspec Structs with ``gc=False``: plain data that never forms
    a reference cycle, kept by the hundred thousand, so the cyclic collector must not walk
    them (as tracked objects they made each young collection a ~12 ms pause)."""

    order_id: int
    account_id: int
    market_id: int
    client_order_id: int
    side: int
    order_type: int
    time_in_force: int
    price: int
    orig_qty: int
    orig_quote_qty: int
    time_ns: int
    executed: int = 0
    cum_quote: int = 0
    status: str = NEW
    update_ns: int = 0
    stop_price: int = 0
    trailing_delta: int = 0
    iceberg_qty: int = 0
    stp_mode: int = 0
    working_ns: int = 0
    """0: working (on the book or taking) since ``time_ns``; -1: a conditional order waiting
    for its trigger (not on the book); else the journal time it was triggered."""
    prevented_qty: int = 0
    """Quantity removed by self-trade prevention; open = orig - executed - prevented."""
    prevented_match_id: int = -1
    """The last prevented match this order was part of (-1: none)."""
    prevented_matches: list[PreventedMatch] | None = None
    """As the taker: the matches its own command prevented (for the order.place answer)."""

    @property
    def is_open(self) -> bool:
        return self.status in (NEW, PARTIALLY_FILLED)

    @property
    def is_working(self) -> bool:
        return self.working_ns != -1

    @property
    def working_time_ns(self) -> int:
        """When it started working (-1 while waiting for its trigger)."""
        return self.time_ns if self.working_ns == 0 else self.working_ns


class PreventedMatch(msgspec.Struct, gc=False, array_like=True):
    """One self-trade prevention, as the dialect reports it in the taker's ``preventedMatches``
    (quantities are None where the mode leaves that side untouched)."""

    match_id: int
    maker_order_id: int
    price: int
    taker_qty: int | None
    maker_qty: int | None


class TradeRecord(msgspec.Struct, gc=False, array_like=True):
    market_id: int
    trade_id: int
    order_id: int
    price: int
    qty: int
    quote: int
    commission: int
    is_buyer: bool
    is_maker: bool
    time_ns: int


class Report(msgspec.Struct, gc=False):
    """One order change for the user data stream (rendered only for watched accounts)."""

    order: OrderRecord
    exec_type: str
    time_ns: int
    last_qty: int = 0
    last_price: int = 0
    commission: int = 0
    trade_id: int = -1
    is_maker: bool = False
    snapshot: tuple[int, int, int, int, str] = (0, 0, 0, 0, "")
    """(price, orig_qty, executed, cum_quote, status) at the time of the change."""
    working_ns: int = 0
    """The order's working time at the change (-1: waiting for its trigger)."""
    prevented: tuple[int, int, int, int] | None = None
    """TRADE_PREVENTION: (prevented match id, prevented quantity so far, quantity prevented by
    this match, the other order's id)."""


@dataclass(slots=True)
class AccountView:
    balances: dict[int, list[int]] = field(default_factory=dict)
    """asset_id -> [available, held_orders, held_withdrawals]."""
    open_orders: dict[int, OrderRecord] = field(default_factory=dict)
    open_client_ids: dict[int, int] = field(default_factory=dict)
    """client_order_id -> order_id among open orders (0 never stored)."""
    pending_orders: deque[tuple[int, OrderRecord]] = field(default_factory=deque)
    """(batch seq, order) closed but not yet in the history index, in closing order."""
    pending_trades: deque[tuple[int, TradeRecord]] = field(default_factory=deque)
    """(batch seq, trade) not yet in the history index."""
    update_ns: int = 0
