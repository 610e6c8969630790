"""A rolling 24-hour ticker per market, over one-minute buckets of journal time.

A busy market trades millions of times a day; keeping each trade of the window (as this did)
made the ticker's memory and every read-model snapshot grow with the trade rate. The window is
now kept as at most ``BUCKETS + 1`` per-minute aggregates (first/last trade id, open, high,
low, close, last qty, volumes, count), so memory and the snapshot are O(minutes), not O(trades).

The window ending at ``end`` (journal time of the latest batch fed, or a query's own time) is
every trade with ``ts >= open``, ``open`` = ``end - 24h`` rounded down to the minute: Binance's
rule for its rolling-window tickers (``openTime`` starts on a minute, the window is up to
59,999 ms wider than 24 h). Over that window every figure is exact, equal to recomputing it
from the trades (`tests/test_ticker_window.py`). The price before the window
(``prevClosePrice``) is the close of the last minute that left it.

Everything is a function of the trades and times fed, so replicas fed the same stream, and one
restored from a snapshot of the buckets (`marketdata.snapshot`), give identical tickers.
Journal time never runs backwards (the sequencer's monotonic floor); a trade stamped before
the newest minute would still join that minute, so the buckets stay in order regardless.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import msgspec

WINDOW_NS: Final = 24 * 3600 * 1_000_000_000
BUCKET_NS: Final = 60 * 1_000_000_000
"""One minute, the granularity of the window's start."""
BUCKETS: Final = WINDOW_NS // BUCKET_NS
"""Minutes in 24 h; the window spans ``BUCKETS + 1`` minutes at most (the one holding its
start is partly before ``end - 24h``)."""


@dataclass(frozen=True, slots=True)
class TickerStats:
    """The window's figures, all integers (atoms, ms, ids); rendering is the wire's job."""

    open_ms: int
    close_ms: int
    open_price: int
    high_price: int
    low_price: int
    last_price: int
    last_qty: int
    prev_close_price: int
    volume: int
    quote_volume: int
    first_id: int
    """-1 when the window holds no trade (the dialect's convention)."""
    last_id: int
    count: int


class Bucket(msgspec.Struct, gc=False, array_like=True):
    """The trades of one minute, aggregated. A struct the collector does not track (a day of
    them lives here), array-like so the snapshot encodes it as the plain row it restores."""

    minute: int
    """``ts_ns // BUCKET_NS`` of its trades."""
    first_id: int
    last_id: int
    open: int
    high: int
    low: int
    close: int
    last_qty: int
    volume: int
    quote_volume: int
    count: int


def _first_minute(end_ns: int) -> int:
    """The oldest minute in the window ending at ``end_ns``."""
    return (end_ns - WINDOW_NS) // BUCKET_NS


class RollingTicker:
    def __init__(self) -> None:
        self._buckets: deque[Bucket] = deque()
        """The window's minutes, oldest first."""
        self._highs: deque[Bucket] = deque()
        """Highs strictly decreasing: the front is the window's high."""
        self._lows: deque[Bucket] = deque()
        """Lows strictly increasing: the front is the window's low."""
        self._volume = 0
        self._quote_volume = 0
        self._count = 0
        self._prev_close = 0
        self._now_ns = 0

    def add(self, ts_ns: int, trade_id: int, price: int, qty: int, quote: int) -> None:
        buckets = self._buckets
        minute = ts_ns // BUCKET_NS
        if buckets and buckets[-1].minute >= minute:
            b = buckets[-1]
            b.last_id = trade_id
            b.close = price
            b.last_qty = qty
            b.volume += qty
            b.quote_volume += quote
            b.count += 1
            if price > b.high:
                b.high = price
                self._rank_high(b)
            if price < b.low:
                b.low = price
                self._rank_low(b)
        else:
            self._push(
                Bucket(minute, trade_id, trade_id, price, price, price, price, qty, qty, quote, 1)
            )
        self._volume += qty
        self._quote_volume += quote
        self._count += 1
        self.advance(ts_ns)

    def _push(self, b: Bucket) -> None:
        """Append a newer minute (its running sums not yet counted by the caller of `add`)."""
        self._buckets.append(b)
        self._rank_high(b)
        self._rank_low(b)

    def _rank_high(self, b: Bucket) -> None:
        """Place the newest bucket ``b`` in the highs after its high rose (or it arrived)."""
        highs = self._highs
        while highs and (highs[-1] is b or highs[-1].high <= b.high):
            highs.pop()
        highs.append(b)

    def _rank_low(self, b: Bucket) -> None:
        lows = self._lows
        while lows and (lows[-1] is b or lows[-1].low >= b.low):
            lows.pop()
        lows.append(b)

    def advance(self, now_ns: int) -> None:
        """Move the window's end to journal time ``now_ns`` and drop the minutes that left it."""
        if now_ns > self._now_ns:
            self._now_ns = now_ns
        first = _first_minute(self._now_ns)
        buckets = self._buckets
        while buckets and buckets[0].minute < first:
            gone = buckets.popleft()
            self._volume -= gone.volume
            self._quote_volume -= gone.quote_volume
            self._count -= gone.count
            self._prev_close = gone.close
            if self._highs[0] is gone:
                self._highs.popleft()
            if self._lows[0] is gone:
                self._lows.popleft()

    def buckets(self) -> list[Bucket]:
        """The window's minutes, oldest first (the snapshot's rows; do not mutate)."""
        return list(self._buckets)

    @property
    def prev_close(self) -> int:
        return self._prev_close

    @property
    def now_ns(self) -> int:
        return self._now_ns

    def load(self, rows: Iterable[tuple[int, ...]], prev_close: int, now_ns: int) -> None:
        """Restore a fresh ticker from `buckets` rows (a snapshot) and its window's end."""
        assert not self._buckets and self._now_ns == 0, "load into a fresh ticker only"
        for row in rows:
            b = Bucket(*row)
            assert not self._buckets or self._buckets[-1].minute < b.minute, "minutes in order"
            self._push(b)
            self._volume += b.volume
            self._quote_volume += b.quote_volume
            self._count += b.count
        self._prev_close = prev_close
        self.advance(now_ns)

    def stats(self, now_ns: int = 0) -> TickerStats:
        """The window ending at ``max(now_ns, journal time fed)``, without changing the ticker.

        A query passes its own time (REST: the request's wall clock), so an idle exchange's
        24 h figures end at the request as the dialect's do (``closeTime`` is the request
        time, ``openTime`` its minute 24 h before), while what the ticker keeps still moves
        with journal time only. Minutes the query's window excludes are skipped, not dropped.
        """
        end_ns = max(now_ns, self._now_ns)
        first_minute = _first_minute(end_ns)
        close_ms = end_ns // 1_000_000
        open_ms = first_minute * BUCKET_NS // 1_000_000
        buckets = self._buckets
        skip = 0
        volume, quote_volume, count = self._volume, self._quote_volume, self._count
        prev_close = self._prev_close
        for b in buckets:  # only when the query is ahead of journal time
            if b.minute >= first_minute:
                break
            skip += 1
            volume -= b.volume
            quote_volume -= b.quote_volume
            count -= b.count
            prev_close = b.close
        if skip == len(buckets):
            return TickerStats(
                open_ms, close_ms, 0, 0, 0, prev_close, 0, prev_close, 0, 0, -1, -1, 0
            )
        first, last = buckets[skip], buckets[-1]
        high = next(b for b in self._highs if b.minute >= first_minute)
        low = next(b for b in self._lows if b.minute >= first_minute)
        return TickerStats(
            open_ms=open_ms,
            close_ms=close_ms,
            open_price=first.open,
            high_price=high.high,
            low_price=low.low,
            last_price=last.close,
            last_qty=last.last_qty,
            prev_close_price=prev_close,
            volume=volume,
            quote_volume=quote_volume,
            first_id=first.first_id,
            last_id=last.last_id,
            count=count,
        )
