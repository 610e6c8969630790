"""Order entry in the dialect: which parameters each order type takes, the filters they must
pass, and the engine ``PlaceOrder`` a valid request becomes.

Everything here is decided from the request and the market alone (no account or book state), so
it runs before anything is journaled and a refused request changes nothing. The engine stays the
authority for what depends on its state (the last trade price a stop is compared with, funds,
the book); its refusals are mapped in `gateway.errors`.

How the dialect's types map to the engine's (docs/engine-semantics.md, "Conditional orders"):

| dialect | with ``stopPrice`` | with ``trailingDelta`` (no ``stopPrice``) |
|---|---|---|
| ``STOP_LOSS`` | STOP_MARKET | TRAILING_STOP_MARKET |
| ``TAKE_PROFIT`` | TAKE_PROFIT_MARKET | TRAILING_STOP_MARKET |
| ``STOP_LOSS_LIMIT`` | STOP_LIMIT | TRAILING_STOP_LIMIT at the limit ``price`` |
| ``TAKE_PROFIT_LIMIT`` | TAKE_PROFIT_LIMIT | TRAILING_STOP_LIMIT at the limit ``price`` |

Where the engine cannot do what the dialect describes, the request is refused with -1014 and a
message saying why, never approximated: a market-kind conditional BUY spends a quote budget in
the engine, so it takes ``quoteOrderQty`` (not ``quantity``); ``stopPrice`` together with
``trailingDelta`` (an activation price) does not exist in the engine; icebergs are LIMIT and
LIMIT_MAKER only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine.schema import MAX_AMOUNT_ATOMS, OrderType, PlaceOrder, Side, StpMode, TimeInForce
from gateway import errors
from gateway.dialect import (
    MAX_TRAILING_DELTA,
    MIN_TRAILING_DELTA,
    ORDER_TYPES,
    SIDES,
    STP_MODES,
    TIFS,
)
from gateway.markets import Market
from gateway.params import get_enum, get_int

_LIMIT_KINDS: Final = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_CONDITIONAL: Final = frozenset(
    {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"}
)
_MARKET_STOP: Final = ("quantity", "quoteOrderQty", "stopPrice", "trailingDelta")
_LIMIT_STOP: Final = ("timeInForce", "quantity", "price", "stopPrice", "trailingDelta")
ACCEPTS: Final[dict[str, frozenset[str]]] = {
    "LIMIT": frozenset({"timeInForce", "quantity", "price", "icebergQty"}),
    "LIMIT_MAKER": frozenset({"quantity", "price", "icebergQty"}),
    "MARKET": frozenset({"quantity", "quoteOrderQty"}),
    "STOP_LOSS": frozenset(_MARKET_STOP),
    "TAKE_PROFIT": frozenset(_MARKET_STOP),
    "STOP_LOSS_LIMIT": frozenset(_LIMIT_STOP),
    "TAKE_PROFIT_LIMIT": frozenset(_LIMIT_STOP),
}
"""The order parameters each type takes; any other one sent is -1106 (not required)."""
_PARAMS: Final = (
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "stopPrice",
    "trailingDelta",
    "icebergQty",
)
_NOT_TAKEN: Final = {t: tuple(p for p in _PARAMS if p not in a) for t, a in ACCEPTS.items()}
_ZEROABLE: Final = frozenset({"stopPrice", "trailingDelta", "icebergQty"})
"""Optional parameters whose zero value means "not set" (clients send ``stopPrice=0``)."""
_ZERO_RE: Final = re.compile(r"0+(\.0*)?")
_WIRE_TYPES: Final = frozenset(ORDER_TYPES)

_ENGINE_TYPE: Final = {  # (dialect type, trailing) -> engine type
    ("LIMIT", False): OrderType.LIMIT,
    ("LIMIT_MAKER", False): OrderType.LIMIT_MAKER,
    ("MARKET", False): OrderType.MARKET,
    ("STOP_LOSS", False): OrderType.STOP_MARKET,
    ("STOP_LOSS", True): OrderType.TRAILING_STOP_MARKET,
    ("TAKE_PROFIT", False): OrderType.TAKE_PROFIT_MARKET,
    ("TAKE_PROFIT", True): OrderType.TRAILING_STOP_MARKET,
    ("STOP_LOSS_LIMIT", False): OrderType.STOP_LIMIT,
    ("STOP_LOSS_LIMIT", True): OrderType.TRAILING_STOP_LIMIT,
    ("TAKE_PROFIT_LIMIT", False): OrderType.TAKE_PROFIT_LIMIT,
    ("TAKE_PROFIT_LIMIT", True): OrderType.TRAILING_STOP_LIMIT,
}
STP_NOT_ALLOWED: Final = "This symbol does not allow the specified self-trade prevention mode."


@dataclass(slots=True)
class OrderSpec:
    """A validated order request in engine units (atoms, engine enums). Not frozen: a frozen
    dataclass costs a microsecond more to build, on the order-entry hot path."""

    wire_type: str
    side: int
    order_type: int
    time_in_force: int = TimeInForce.GTC
    price: int = 0
    qty: int = 0
    quote_qty: int = 0
    stop_price: int = 0
    trailing_delta: int = 0
    limit_offset: int = 0
    display_qty: int = 0
    stp_mode: int = StpMode.NONE

    @property
    def default_response(self) -> str:
        """The dialect's default ``newOrderRespType``: FULL for LIMIT and MARKET, else ACK."""
        return "FULL" if self.wire_type in ("LIMIT", "MARKET") else "ACK"

    def command(self, account_id: int, market_id: int, client_order_id: int) -> PlaceOrder:
        # Positional, in PlaceOrder's field order (expire_at_ns is 0: no GTD in the dialect):
        # a third of the keyword call's cost, once per order.
        return PlaceOrder(
            account_id,
            market_id,
            self.side,
            self.order_type,
            self.time_in_force,
            self.price,
            self.qty,
            self.quote_qty,
            client_order_id,
            self.stop_price,
            self.trailing_delta,
            self.limit_offset,
            self.display_qty,
            0,
            self.stp_mode,
        )


def unsupported(why: str) -> errors.ApiError:
    """-1014 with the reason: the combination exists in the dialect but not here."""
    return errors.ApiError(errors.UNSUPPORTED_ORDER, f"Unsupported order combination: {why}.")


def present(params: Mapping[str, Any], name: str) -> bool:
    v = params.get(name)
    if v is None or v == "":
        return False
    if name not in _ZEROABLE:
        return True
    zero = (v == 0 and not isinstance(v, bool)) or (isinstance(v, str) and _ZERO_RE.fullmatch(v))
    return not zero


def parse_order(m: Market, params: Mapping[str, Any]) -> OrderSpec:
    """Validate an order.place / order.test / cancelReplace / POST order request's order part.

    Check order (first failure wins): side, type, STP mode, parameters the type does not take
    (-1106), the trigger (stopPrice xor trailingDelta), time in force, prices and quantities
    against the filters, iceberg rules."""
    # Each enum: the valid value is taken inline (a reader call per parameter was ~0.3 us, on
    # every order); anything else goes to the reader, which raises its error.
    side_name = params.get("side")
    if type(side_name) is not str or side_name not in SIDES:
        side_name = get_enum(params, "side", SIDES, errors.INVALID_SIDE, "Invalid side.")
    side = SIDES[side_name]
    wire_type = params.get("type")
    if type(wire_type) is not str or wire_type not in _WIRE_TYPES:
        wire_type = get_enum(
            params, "type", _WIRE_TYPES, errors.INVALID_ORDER_TYPE, "Invalid orderType."
        )
    stp = _stp_mode(params)
    accepts = ACCEPTS[wire_type]
    for name in _NOT_TAKEN[wire_type]:
        if name in params and present(params, name):
            if name == "icebergQty" and wire_type in _LIMIT_KINDS:
                raise unsupported("icebergQty is supported on LIMIT and LIMIT_MAKER orders only")
            raise errors.ApiError(
                errors.PARAM_NOT_REQUIRED, f"Parameter '{name}' sent when not required."
            )
    stop = trailing = 0
    if wire_type in _CONDITIONAL:
        stop, trailing = _trigger(m, params)
    tif = TimeInForce.GTC
    if "timeInForce" in accepts:
        tif_name = params.get("timeInForce")
        if type(tif_name) is not str or tif_name not in TIFS:
            tif_name = get_enum(
                params, "timeInForce", TIFS, errors.INVALID_TIF, "Invalid timeInForce."
            )
        tif = TIFS[tif_name]
    price = qty = quote = 0
    if wire_type in _LIMIT_KINDS:
        for name in ("price", "quantity"):
            if params.get(name) in (None, ""):
                raise errors.mandatory(name)
        price = m.parse_price(params["price"])
        qty = m.parse_qty(params["quantity"])
        m.check_notional(price, qty)
    else:
        qty, quote = _market_amounts(m, params, side, conditional=wire_type != "MARKET")
    display = 0
    if "icebergQty" in params and present(params, "icebergQty"):
        if tif != TimeInForce.GTC:
            raise unsupported("icebergQty needs timeInForce GTC")
        display = m.parse_qty(params["icebergQty"], "icebergQty")
        if display >= qty:
            raise errors.ApiError(errors.FILTER_FAILURE, "IcebergQty exceeds QTY.")
    order_type = _ENGINE_TYPE[wire_type, trailing > 0]
    offset = 0
    if order_type == OrderType.TRAILING_STOP_LIMIT:
        # The dialect's trailing stop limit enters at its limit price: an offset beyond any
        # trigger makes the engine's min(trigger + offset, bound) / max(trigger - offset, bound)
        # always the bound, which is that price.
        offset = MAX_AMOUNT_ATOMS // m.tick * m.tick
    return OrderSpec(  # positional, in field order: the keyword call cost twice as much
        wire_type, side, order_type, tif, price, qty, quote, stop, trailing, offset, display, stp
    )


def _stp_mode(params: Mapping[str, Any]) -> int:
    v = params.get("selfTradePreventionMode")
    if v is None or v == "":
        return StpMode.NONE
    if v == "TRANSFER":  # a mode of the dialect that needs trade groups
        raise errors.ApiError(errors.FILTER_FAILURE, STP_NOT_ALLOWED)
    if not isinstance(v, str) or v not in STP_MODES:
        raise errors.invalid("selfTradePreventionMode")
    return STP_MODES[v]


def _trigger(m: Market, params: Mapping[str, Any]) -> tuple[int, int]:
    """(stop price atoms, trailing delta bps) of a conditional order: exactly one is set."""
    has_stop, has_trailing = present(params, "stopPrice"), present(params, "trailingDelta")
    if has_stop and has_trailing:
        raise unsupported(
            "stopPrice together with trailingDelta (a trailing stop with an "
            "activation price) is not supported; send one of them"
        )
    if not (has_stop or has_trailing):
        raise errors.ApiError(
            errors.MANDATORY_PARAM,
            "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
        )
    if has_stop:
        return m.parse_price(params["stopPrice"], "stopPrice"), 0
    delta = get_int(params, "trailingDelta")
    assert delta is not None
    if not MIN_TRAILING_DELTA <= delta <= MAX_TRAILING_DELTA:
        raise errors.filter_failure("TRAILING_DELTA")
    return 0, delta


def _market_amounts(
    m: Market, params: Mapping[str, Any], side: int, *, conditional: bool
) -> tuple[int, int]:
    """(quantity, quote quantity) of a MARKET, STOP_LOSS or TAKE_PROFIT order."""
    has_qty, has_quote = present(params, "quantity"), present(params, "quoteOrderQty")
    if has_qty and has_quote:
        raise errors.ApiError(
            errors.MANDATORY_PARAM,
            "Parameters 'quantity' and 'quoteOrderQty' cannot be sent together.",
        )
    if side == Side.SELL:
        if has_quote:
            raise unsupported("quoteOrderQty is not supported on SELL orders")
        if not has_qty:
            if conditional:
                raise errors.mandatory("quantity")
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
            )
        return m.parse_qty(params["quantity"]), 0
    if conditional:
        if has_qty:
            raise unsupported(
                "a STOP_LOSS or TAKE_PROFIT BUY spends a quote amount when it "
                "triggers: send quoteOrderQty instead of quantity"
            )
        if not has_quote:
            raise errors.mandatory("quoteOrderQty")
        return 0, m.parse_quote_qty(params["quoteOrderQty"])
    if not (has_qty or has_quote):
        raise errors.ApiError(
            errors.MANDATORY_PARAM,
            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        )
    if has_qty:
        return m.parse_qty(params["quantity"]), 0
    return 0, m.parse_quote_qty(params["quoteOrderQty"])


def refuse_cancel_restrictions(params: Mapping[str, Any]) -> None:
    """``cancelRestrictions`` (cancel only a NEW / only a PARTIALLY_FILLED order) would have to
    be decided by the engine at the cancel's turn, which it does not do yet: refused (-1014)
    rather than ignored, so a client relying on it is never surprised by a cancel."""
    if present(params, "cancelRestrictions"):
        raise unsupported("cancelRestrictions is not supported")
