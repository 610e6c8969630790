"""Candles (klines) keyed on journal time, with a closed flag.

Events carry no time; every event belongs to the command with its ``seq``, and the sequencer
stamped that command with journal time (ns). Candle boundaries are therefore journal time, the
same on every replay. Intervals are those of the Binance dialect, aligned as it aligns them
(UTC): fixed lengths from 1s to 3d on multiples of their length since the Unix epoch, ``1w`` on
Mondays 00:00, ``1M`` on the first of each calendar month; a candle *closes* at the first batch
whose journal time is past its end (time only advances with commands; the sequencer's idle
ticks keep it moving).

Only intervals with at least one trade have a candle (no synthetic flat candles). All values are
integers: prices in quote atoms per whole base unit, volumes in atoms.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Final

_MINUTE: Final = 60_000
_HOUR: Final = 60 * _MINUTE
_DAY: Final = 24 * _HOUR
FIXED_MS: Final[dict[str, int]] = {
    "1s": 1_000,
    "1m": _MINUTE,
    "3m": 3 * _MINUTE,
    "5m": 5 * _MINUTE,
    "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE,
    "1h": _HOUR,
    "2h": 2 * _HOUR,
    "4h": 4 * _HOUR,
    "6h": 6 * _HOUR,
    "8h": 8 * _HOUR,
    "12h": 12 * _HOUR,
    "1d": _DAY,
    "3d": 3 * _DAY,
    "1w": 7 * _DAY,
}
"""Intervals of fixed length, in milliseconds."""
INTERVALS: Final[tuple[str, ...]] = (*FIXED_MS, "1M")
"""Every supported interval, in the dialect's names (``1M`` is a calendar month)."""
_MONDAY_MS: Final = 4 * _DAY
"""1970-01-05 00:00 UTC, the first Monday after the epoch (a Thursday): weeks start here."""


def bounds(interval: str, t_ms: int) -> tuple[int, int]:
    """(open, close) ms of the ``interval`` candle holding time ``t_ms``; close is the last
    millisecond of the interval (the dialect's close time)."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(t_ms // 1000, tz=dt.UTC)
        start = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
        nxt = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=dt.UTC)
        return int(start.timestamp()) * 1000, int(nxt.timestamp()) * 1000 - 1
    length = FIXED_MS[interval]
    origin = _MONDAY_MS if interval == "1w" else 0
    open_ms = t_ms - (t_ms - origin) % length
    return open_ms, open_ms + length - 1


HISTORY: Final = 1_000
"""Closed candles kept per market and interval (the REST limit's maximum)."""


class Candle:
    """One interval's open/high/low/close and volumes; ``closed`` once journal time passed it."""

    __slots__ = (
        "close",
        "close_ms",
        "closed",
        "count",
        "first_id",
        "high",
        "last_id",
        "low",
        "open",
        "open_ms",
        "quote_volume",
        "taker_buy_quote",
        "taker_buy_volume",
        "volume",
    )

    def __init__(self, open_ms: int, close_ms: int, trade_id: int, price: int) -> None:
        self.open_ms = open_ms
        self.close_ms = close_ms
        """Last millisecond of the interval (the dialect's close time)."""
        self.open = self.high = self.low = self.close = price
        self.volume = self.quote_volume = 0
        self.taker_buy_volume = self.taker_buy_quote = 0
        self.count = 0
        self.first_id = self.last_id = trade_id
        self.closed = False

    def add(self, trade_id: int, price: int, qty: int, quote: int, taker_buys: bool) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.quote_volume += quote
        if taker_buys:
            self.taker_buy_volume += qty
            self.taker_buy_quote += quote
        self.count += 1
        self.last_id = trade_id

    def merge(self, run: TradeRun) -> None:
        """Add a run of trades (in trade order, all after this candle's own)."""
        self.high = max(self.high, run.high)
        self.low = min(self.low, run.low)
        self.close = run.close
        self.volume += run.volume
        self.quote_volume += run.quote_volume
        self.taker_buy_volume += run.taker_buy_volume
        self.taker_buy_quote += run.taker_buy_quote
        self.count += run.count
        self.last_id = run.last_id


class TradeRun(Candle):
    """Consecutive trades of one market at one journal time, summed once for every interval.

    All trades of one time fall in the same candle of every interval, so a market's candles are
    updated once per run (per engine batch) instead of once per trade and interval.
    """

    __slots__ = ("ts_ns",)

    def __init__(self, ts_ns: int, trade_id: int, price: int) -> None:
        super().__init__(0, 0, trade_id, price)
        self.ts_ns = ts_ns


class CandleSeries:
    """The candles of one market at one interval: a bounded history plus the open candle."""

    def __init__(self, interval: str) -> None:
        assert interval in INTERVALS, interval
        self.interval = interval
        self.history: deque[Candle] = deque(maxlen=HISTORY)
        self.current: Candle | None = None

    def advance(self, now_ms: int) -> Candle | None:
        """Close the open candle if journal time ``now_ms`` is past its end; return it then."""
        cur = self.current
        if cur is None or now_ms <= cur.close_ms:
            return None
        cur.closed = True
        self.history.append(cur)
        self.current = None
        return cur

    def add_run(self, now_ms: int, run: TradeRun) -> Candle | None:
        """Add the trades of ``run`` (journal time ``now_ms``); returns the candle it closed."""
        closed = self.advance(now_ms)
        if self.current is None:
            open_ms, close_ms = bounds(self.interval, now_ms)
            self.current = Candle(open_ms, close_ms, run.first_id, run.open)
        self.current.merge(run)
        return closed

    def candles(self, start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
        """Candles whose open time is in ``[start_ms, end_ms]``, oldest first; the newest
        ``limit`` of them without a start, the oldest ``limit`` from a start (the dialect)."""
        every = list(self.history)
        if self.current is not None:
            every.append(self.current)
        chosen = [
            c
            for c in every
            if (start_ms is None or c.open_ms >= start_ms)
            and (end_ms is None or c.open_ms <= end_ms)
        ]
        return chosen[:limit] if start_ms is not None else chosen[-limit:]
