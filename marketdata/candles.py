"""Candles (klines) keyed on journal time, with a closed flag.

Events carry no time; every event belongs to the command with its ``seq``, and the sequencer
stamped that command with journal time (ns). Candle boundaries are therefore journal time, the
same on every replay. An interval ``[open, open + length)`` is aligned to the Unix epoch (UTC),
as in the Binance dialect; a candle *closes* at the first batch whose journal time is past its
end (time only advances with commands; the sequencer's idle ticks keep it moving).

Only intervals with at least one trade have a candle (no synthetic flat candles). All values are
integers: prices in quote atoms per whole base unit, volumes in atoms.
"""

from __future__ import annotations

from collections import deque
from typing import Final

INTERVALS_MS: Final[dict[str, int]] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
"""Supported intervals, in the dialect's names, with their length in milliseconds."""

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

    def __init__(self, open_ms: int, length_ms: int, trade_id: int, price: int) -> None:
        self.open_ms = open_ms
        self.close_ms = open_ms + length_ms - 1
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
        super().__init__(0, 1, trade_id, price)
        self.ts_ns = ts_ns


class CandleSeries:
    """The candles of one market at one interval: a bounded history plus the open candle."""

    def __init__(self, interval: str) -> None:
        self.interval = interval
        self.length_ms = INTERVALS_MS[interval]
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
            open_ms = now_ms - now_ms % self.length_ms
            self.current = Candle(open_ms, self.length_ms, run.first_id, run.open)
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
