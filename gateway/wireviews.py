"""The dialect's order and trade objects as msgspec Structs: the schema of those answers, and
the fast path that renders a whole history page in one encoder call.

Why: a 500-row ``allOrders`` page spent most of its CPU building 500 dicts of 20 keys (and the
transport then walked each dict again to encode it). A Struct is built from positional values
(no per-key hashing), and `msgspec` encodes a list of them straight to JSON in C. The field
order *is* the key order of the answer, and ``rename="camel"`` derives the dialect's names from
the snake_case fields, so this class is the single source of truth: `gateway.wire.order` (the
dict other answers extend) is `msgspec.to_builtins` of the same Struct. Optional fields default
to ``UNSET``, which the encoder omits, as the dialect omits them.

`tests/test_wire_bytes.py` pins the bytes of these answers to what the per-order dict renderer
produced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from gateway.clientids import ClientIdBook
from gateway.dialect import SIDE_NAMES, STP_NAMES, TIF_NAMES, TYPE_NAMES
from gateway.markets import Market
from gateway.records import OrderRecord, TradeRecord

NS_PER_MS: Final = 1_000_000
_encode: Final = msgspec.json.Encoder().encode


class OrderView(msgspec.Struct, rename="camel", gc=False):
    """order.status / allOrders / GET /api/v3/order shape (key order is the dialect's)."""

    symbol: str
    order_id: int
    order_list_id: int
    client_order_id: str
    price: str
    orig_qty: str
    executed_qty: str
    cummulative_quote_qty: str  # sic: the dialect's spelling
    status: str
    time_in_force: str
    type: str
    side: str
    stop_price: str
    iceberg_qty: str
    time: int
    update_time: int
    is_working: bool
    working_time: int
    orig_quote_order_qty: str
    self_trade_prevention_mode: str
    trailing_delta: int | UnsetType = UNSET
    trailing_time: int | UnsetType = UNSET
    prevented_match_id: int | UnsetType = UNSET
    prevented_quantity: str | UnsetType = UNSET


class AckResult(msgspec.Struct, rename="camel", gc=False):
    """order.place's ACK answer."""

    symbol: str
    order_id: int
    order_list_id: int
    client_order_id: str
    transact_time: int


class Fill(msgspec.Struct, rename="camel", gc=False):
    """One fill of a FULL order.place answer."""

    price: str
    qty: str
    commission: str
    commission_asset: str
    trade_id: int


class PlacedResult(msgspec.Struct, rename="camel", gc=False):
    """order.place's RESULT and FULL answers (FULL adds ``fills``): built positionally and
    encoded in C on the order-entry hot path, where a 16-key dict per order was measurable."""

    symbol: str
    order_id: int
    order_list_id: int
    client_order_id: str
    transact_time: int
    price: str
    orig_qty: str
    executed_qty: str
    orig_quote_order_qty: str
    cummulative_quote_qty: str  # sic: the dialect's spelling
    status: str
    time_in_force: str
    type: str
    side: str
    working_time: int
    self_trade_prevention_mode: str
    stop_price: str | UnsetType = UNSET
    iceberg_qty: str | UnsetType = UNSET
    trailing_delta: int | UnsetType = UNSET
    trailing_time: int | UnsetType = UNSET
    prevented_quantity: str | UnsetType = UNSET
    fills: list[Fill] | UnsetType = UNSET
    prevented_matches: list[dict[str, Any]] | UnsetType = UNSET


class TradeView(msgspec.Struct, rename="camel", gc=False):
    """myTrades shape."""

    symbol: str
    id: int
    order_id: int
    order_list_id: int
    price: str
    qty: str
    quote_qty: str
    commission: str
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool
    is_best_match: bool


def order_views(rows: Iterable[OrderRecord], m: Market, ids: ClientIdBook) -> list[OrderView]:
    """The orders of one market, rendered (lookups bound once per page, not once per order)."""
    symbol, price, qty, display = m.wire, m.price, m.qty, ids.display
    p, q = m.memo_lookups()  # one dict lookup per amount; a miss renders and remembers
    tif_name, type_name, side_name, stp_name = (
        TIF_NAMES.get,
        TYPE_NAMES.get,
        SIDE_NAMES.get,
        STP_NAMES.get,
    )
    out = []
    for o in rows:
        working_ns = o.working_ns
        started_ns = o.time_ns if working_ns == 0 else working_ns  # -1: waiting for a trigger
        cid = o.client_order_id
        v = OrderView(
            symbol,
            o.order_id,
            -1,
            f"kb{o.order_id}" if cid == 0 else display(cid, o.order_id),  # as display() does
            p(o.price) or price(o.price),
            q(o.orig_qty) or qty(o.orig_qty),
            q(o.executed) or qty(o.executed),
            p(o.cum_quote) or price(o.cum_quote),
            o.status,
            tif_name(o.time_in_force, "GTC"),
            type_name(o.order_type, "LIMIT"),
            side_name(o.side, "BUY"),
            p(o.stop_price) or price(o.stop_price),
            q(o.iceberg_qty) or qty(o.iceberg_qty),
            o.time_ns // NS_PER_MS,
            o.update_ns // NS_PER_MS,
            working_ns != -1,
            -1 if started_ns == -1 else started_ns // NS_PER_MS,
            p(o.orig_quote_qty) or price(o.orig_quote_qty),
            stp_name(o.stp_mode, "NONE"),
        )
        if o.trailing_delta:
            v.trailing_delta = o.trailing_delta
            v.trailing_time = o.time_ns // NS_PER_MS  # trails from its placement
        if o.prevented_match_id >= 0:  # self-trade prevention touched it
            v.prevented_match_id = o.prevented_match_id
            v.prevented_quantity = qty(o.prevented_qty)
        out.append(v)
    return out


def trade_views(rows: Iterable[TradeRecord], m: Market) -> list[TradeView]:
    symbol, price, qty, fee_asset = m.wire, m.price, m.qty, m.quote.symbol
    p, q = m.memo_lookups()
    return [
        TradeView(
            symbol,
            t.trade_id,
            t.order_id,
            -1,
            p(t.price) or price(t.price),
            q(t.qty) or qty(t.qty),
            p(t.quote) or price(t.quote),
            p(t.commission) or price(t.commission),
            fee_asset,
            t.time_ns // NS_PER_MS,
            t.is_buyer,
            t.is_maker,
            True,
        )
        for t in rows
    ]


def orders_json(rows: Iterable[OrderRecord], m: Market, ids: ClientIdBook) -> msgspec.Raw:
    """A page of orders as the JSON array the transport sends (embedded as is by its encoder)."""
    return msgspec.Raw(_encode(order_views(rows, m, ids)))


def trades_json(rows: Iterable[TradeRecord], m: Market) -> msgspec.Raw:
    return msgspec.Raw(_encode(trade_views(rows, m)))
