"""Names the dialect uses for engine enums: order types, times in force, STP modes.

One table per enum, shared by order entry (`gateway.orderparams`), rendering (`gateway.wire`)
and exchangeInfo (`gateway.markets`), so what exchangeInfo advertises, what order entry accepts
and what order queries show cannot drift apart.

The engine has more order types than the dialect names: a Binance ``STOP_LOSS`` or
``TAKE_PROFIT`` with ``trailingDelta`` (and no ``stopPrice``) is the engine's trailing stop,
which trails in the direction its side gives, whichever of the two names the client used (they
behave identically without an activation price). The journal keeps only the engine type, so
the read model shows a trailing stop as ``STOP_LOSS`` / ``STOP_LOSS_LIMIT``.
"""

from __future__ import annotations

from typing import Final

from engine.schema import MAX_TRAILING_DELTA_BPS, OrderType, Side, StpMode, TimeInForce

SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
SIDE_NAMES: Final = {v: k for k, v in SIDES.items()}

ORDER_TYPES: Final = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
"""Every type order entry accepts (exchangeInfo ``orderTypes``)."""

TYPE_NAMES: Final = {
    OrderType.LIMIT: "LIMIT",
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT_MAKER: "LIMIT_MAKER",
    OrderType.STOP_MARKET: "STOP_LOSS",
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
    OrderType.TAKE_PROFIT_MARKET: "TAKE_PROFIT",
    OrderType.TAKE_PROFIT_LIMIT: "TAKE_PROFIT_LIMIT",
    OrderType.TRAILING_STOP_MARKET: "STOP_LOSS",
    OrderType.TRAILING_STOP_LIMIT: "STOP_LOSS_LIMIT",
}
"""Engine order type -> dialect name (trailing stops: see the module docstring)."""

TIFS: Final = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
"""Times in force order entry accepts (GTD is engine-only for now)."""
TIF_NAMES: Final = {
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
    TimeInForce.GTD: "GTD",
}

STP_MODES: Final = {
    "NONE": StpMode.NONE,
    "EXPIRE_TAKER": StpMode.EXPIRE_TAKER,
    "EXPIRE_MAKER": StpMode.EXPIRE_MAKER,
    "EXPIRE_BOTH": StpMode.EXPIRE_BOTH,
    "DECREMENT": StpMode.DECREMENT,
}
"""Self-trade prevention modes order entry accepts (exchangeInfo
``allowedSelfTradePreventionModes``); ``TRANSFER`` needs trade groups, which do not exist here."""
STP_NAMES: Final = {v: k for k, v in STP_MODES.items()}
DEFAULT_STP: Final = "NONE"

MIN_TRAILING_DELTA: Final = 1
MAX_TRAILING_DELTA: Final = MAX_TRAILING_DELTA_BPS
"""The engine's trailing delta range in bps (exchangeInfo ``TRAILING_DELTA`` filter)."""
