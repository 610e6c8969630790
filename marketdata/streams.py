"""Stream names in the Binance dialect, parsed into what the publisher needs.

Names (symbol in lower case; the suffix as listed, matched case-insensitively):

- ``<symbol>@trade``
- ``<symbol>@depth`` (diffs every 1000 ms), ``<symbol>@depth@100ms``, ``<symbol>@depth@1000ms``
- ``<symbol>@depth5`` / ``@depth10`` / ``@depth20``, optionally ``@100ms`` or ``@1000ms``
- ``<symbol>@kline_<interval>``, interval one of `marketdata.candles.INTERVALS` (1s to 1M)
- ``<symbol>@bookTicker``, ``<symbol>@ticker``
- extensions: ``<symbol>@l3`` (order-by-order), ``heartbeat`` (every second)

Each name has one canonical spelling (what LIST_SUBSCRIPTIONS returns and what the combined
stream's ``stream`` field says), e.g. ``btcusdt@depth@1000ms`` is canonically ``btcusdt@depth``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from marketdata.candles import INTERVALS

HEARTBEAT: Final = "heartbeat"
SPEEDS_MS: Final = (100, 1000)

_DEPTH = re.compile(r"depth(5|10|20)?(?:@(100|1000)ms)?")


class StreamError(ValueError):
    """A stream name that is malformed or names an unknown symbol; the message says which."""


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    """Canonical name."""
    kind: str
    """trade, depth, partial, kline, bookTicker, ticker, l3, heartbeat"""
    symbol: str = ""
    """Dialect symbol in upper case (``BTCUSDT``); empty for heartbeat."""
    speed_ms: int = 0
    levels: int = 0
    interval: str = ""


def parse_stream(text: str, symbols: set[str] | frozenset[str]) -> Stream:
    """Parse ``text``; ``symbols`` are the known dialect symbols (``BTCUSDT``)."""
    if not isinstance(text, str) or not text or len(text) > 100 or not text.isascii():
        raise StreamError(f"Invalid stream name: {str(text)[:100]!r}")
    if text.lower() == HEARTBEAT:
        return Stream(HEARTBEAT, HEARTBEAT)
    symbol_part, at, rest = text.partition("@")
    if not at or not symbol_part or not rest:
        raise StreamError(f"Invalid stream name {text!r}: expected <symbol>@<stream>")
    symbol = symbol_part.upper()
    if symbol not in symbols:
        raise StreamError(f"Invalid stream name {text!r}: unknown symbol {symbol_part!r}")
    sym = symbol.lower()
    suffix = rest.lower()
    if suffix == "trade":
        return Stream(f"{sym}@trade", "trade", symbol)
    if suffix == "bookticker":
        return Stream(f"{sym}@bookTicker", "bookTicker", symbol)
    if suffix == "ticker":
        return Stream(f"{sym}@ticker", "ticker", symbol)
    if suffix == "l3":
        return Stream(f"{sym}@l3", "l3", symbol)
    if suffix.startswith("kline_"):
        interval = rest[len("kline_") :]
        if interval not in INTERVALS:
            raise StreamError(
                f"Invalid stream name {text!r}: unknown kline interval {interval!r} "
                f"(supported: {', '.join(INTERVALS)})"
            )
        return Stream(f"{sym}@kline_{interval}", "kline", symbol, interval=interval)
    match = _DEPTH.fullmatch(suffix)
    if match:
        levels = int(match.group(1) or 0)
        speed = int(match.group(2) or 1000)
        base = f"{sym}@depth{levels or ''}"
        name = base if speed == 1000 else f"{base}@{speed}ms"
        if levels:
            return Stream(name, "partial", symbol, speed_ms=speed, levels=levels)
        return Stream(name, "depth", symbol, speed_ms=speed)
    raise StreamError(f"Invalid stream name {text!r}: unknown stream type {rest!r}")
