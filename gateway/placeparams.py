"""``order.place`` parameters decoded into a typed Struct: the WS API's fast path.

`PlaceParams` is the schema of a well-formed order in the dialect's names and types (decimals as
strings, ``"price":"1.23"``; enums as their literal values, taken from `gateway.dialect`), so
msgspec checks names, types and enum values in C while it decodes, with no dict built and no
reader call per parameter. It only ever *accepts*: a request that does not fit the schema (a
number for a price, an unknown side, a value missing), a signed one (its signature covers every
parameter sent, known or not), and any order `fast_spec` does not settle (conditional orders,
icebergs, anything it would refuse) is decoded again as a dict and validated by
`gateway.orderparams.parse_order`, the one place refusals come from. So every bad input keeps
its code and message, and a well-formed order becomes the same `OrderSpec` either way
(tests/test_placeparams.py checks both on generated requests).
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from engine.schema import OrderType, Side, StpMode, TimeInForce
from gateway import errors
from gateway.dialect import ORDER_TYPES, SIDES, STP_MODES, TIFS
from gateway.markets import Market
from gateway.orderparams import OrderSpec

_Side = Literal[tuple(SIDES)]  # type: ignore[valid-type]
_Type = Literal[ORDER_TYPES]  # type: ignore[valid-type]
_Tif = Literal[tuple(TIFS)]  # type: ignore[valid-type]
_Stp = Literal[tuple(STP_MODES)]  # type: ignore[valid-type]
_Resp = Literal["ACK", "RESULT", "FULL"]
NO_TIMING: Final[dict[str, Any]] = {}


class PlaceParams(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """What a well-formed ``order.place`` sends. Any other parameter sends the request to the
    dict path, which ignores it: skipped here unread, it could hide a value the dict decoder
    refuses as invalid JSON (``1e999``). ``timestamp``/``recvWindow``/``signature`` are UNSET
    when not sent (authentication reads them by presence, `gateway.wsapi._authenticate`)."""

    symbol: str
    side: _Side
    type: _Type
    timeInForce: _Tif | None = None
    quantity: str | None = None
    quoteOrderQty: str | None = None
    price: str | None = None
    stopPrice: str | None = None
    trailingDelta: int | None = None
    icebergQty: str | None = None
    newClientOrderId: str | None = None
    newOrderRespType: _Resp | None = None
    selfTradePreventionMode: _Stp | None = None
    timestamp: Any = msgspec.UNSET
    recvWindow: Any = msgspec.UNSET
    signature: Any = msgspec.UNSET

    def timing(self) -> dict[str, Any]:
        """``timestamp`` and ``recvWindow`` as sent, for `gateway.auth.check_timestamp`."""
        if self.timestamp is msgspec.UNSET and self.recvWindow is msgspec.UNSET:
            return NO_TIMING
        return {
            k: v
            for k, v in (("timestamp", self.timestamp), ("recvWindow", self.recvWindow))
            if v is not msgspec.UNSET
        }


_decode = msgspec.json.Decoder(PlaceParams).decode


def decode(raw: bytes | msgspec.Raw) -> PlaceParams | None:
    """The typed params of an unsigned request, or None: the dict path decides."""
    try:
        p = _decode(raw)
    except (msgspec.DecodeError, ValueError):
        return None
    return p if p.signature is msgspec.UNSET else None


def fast_spec(m: Market, p: PlaceParams) -> OrderSpec | None:
    """The `OrderSpec` `parse_order` gives for a LIMIT, LIMIT_MAKER or MARKET order sent in
    the usual form, or None (any other order or any refusal: `parse_order` decides)."""
    if p.stopPrice is not None or p.trailingDelta is not None or p.icebergQty is not None:
        return None  # conditional orders, icebergs, and "0" meaning "not set"
    wire_type = p.type
    try:
        if wire_type == "LIMIT" or wire_type == "LIMIT_MAKER":
            if p.quoteOrderQty is not None or p.price is None or p.quantity is None:
                return None
            tif_name = p.timeInForce
            if (tif_name is None) == (wire_type == "LIMIT"):  # LIMIT needs it, MAKER refuses it
                return None
            tif = TimeInForce.GTC if tif_name is None else TIFS[tif_name]
            price = m.parse_price(p.price)
            qty = m.parse_qty(p.quantity)
            m.check_notional(price, qty)
            quote = 0
            order_type = OrderType.LIMIT if wire_type == "LIMIT" else OrderType.LIMIT_MAKER
        elif wire_type == "MARKET":
            if p.timeInForce is not None or p.price is not None:
                return None
            if p.quantity is not None and p.quoteOrderQty is None:
                price, qty, quote = 0, m.parse_qty(p.quantity), 0
            elif p.quantity is None and p.quoteOrderQty is not None and p.side == "BUY":
                price, qty, quote = 0, 0, m.parse_quote_qty(p.quoteOrderQty)
            else:
                return None
            tif, order_type = TimeInForce.GTC, OrderType.MARKET
        else:
            return None
    except errors.ApiError:
        return None
    stp = p.selfTradePreventionMode
    return OrderSpec(  # positional, in field order (see `parse_order`)
        wire_type,
        Side.BUY if p.side == "BUY" else Side.SELL,
        order_type,
        tif,
        price,
        qty,
        quote,
        0,
        0,
        0,
        0,
        StpMode.NONE if stp is None else STP_MODES[stp],
    )
