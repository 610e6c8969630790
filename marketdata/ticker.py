"""A rolling 24-hour ticker per market, exact over the trades in the window.

The window is ``(now - 24h, now]`` in journal time, ``now`` being the time of the latest batch
fed. Trades enter a deque and leave it when they fall out of the window; running sums give the
volumes and count, and monotonic deques give the high and low in amortised O(1) per trade. The
price before the window (``prevClosePrice``) is the last trade that left it.

Memory is one small tuple per trade of the last 24 hours; at very high trade rates a bucketed
window would bound it at the cost of exactness (not needed yet).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

import msgspec

WINDOW_NS: Final = 24 * 3600 * 1_000_000_000


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


class _Entry(msgspec.Struct, gc=False, array_like=True):
    """One trade in the window. Not a tuple: a day of trades lives here, and tuples stay
    tracked by the cyclic collector until a collection visits them, which made the young
    collections that did so pause the gateway for ~20 ms."""

    ts_ns: int
    trade_id: int
    price: int
    qty: int
    quote: int


class RollingTicker:
    def __init__(self) -> None:
        self._trades: deque[_Entry] = deque()
        """The window's trades in trade order."""
        self._highs: deque[_Entry] = deque()
        """Prices strictly decreasing: the front is the window's high."""
        self._lows: deque[_Entry] = deque()
        self._volume = 0
        self._quote_volume = 0
        self._prev_close = 0
        self._now_ns = 0

    def add(self, ts_ns: int, trade_id: int, price: int, qty: int, quote: int) -> None:
        entry = _Entry(ts_ns, trade_id, price, qty, quote)
        self._trades.append(entry)
        self._volume += qty
        self._quote_volume += quote
        highs, lows = self._highs, self._lows
        while highs and highs[-1].price <= price:
            highs.pop()
        highs.append(entry)
        while lows and lows[-1].price >= price:
            lows.pop()
        lows.append(entry)
        self.advance(ts_ns)

    def advance(self, now_ns: int) -> None:
        """Move the window's end to journal time ``now_ns`` and drop what fell out."""
        if now_ns > self._now_ns:
            self._now_ns = now_ns
        cutoff = self._now_ns - WINDOW_NS
        trades = self._trades
        while trades and trades[0].ts_ns <= cutoff:
            gone = trades.popleft()
            self._volume -= gone.qty
            self._quote_volume -= gone.quote
            self._prev_close = gone.price
            if self._highs[0] is gone:
                self._highs.popleft()
            if self._lows[0] is gone:
                self._lows.popleft()

    def stats(self, now_ns: int = 0) -> TickerStats:
        """The window ending at ``max(now_ns, journal time fed)``, without changing the ticker.

        A query passes its own time (REST: the request's wall clock), so an idle exchange's
        24 h figures end at the request as the dialect's do (``closeTime`` is the request
        time, ``openTime`` exactly 24 h before), while what the ticker keeps still moves with
        journal time only. Trades the query's window excludes are skipped, not dropped.
        """
        end_ns = max(now_ns, self._now_ns)
        cutoff = end_ns - WINDOW_NS
        close_ms = end_ns // 1_000_000
        open_ms = cutoff // 1_000_000
        trades = self._trades
        skip = 0
        volume, quote_volume, prev_close = self._volume, self._quote_volume, self._prev_close
        for entry in trades:  # only when the query is ahead of journal time
            if entry.ts_ns > cutoff:
                break
            skip += 1
            volume -= entry.qty
            quote_volume -= entry.quote
            prev_close = entry.price
        if skip == len(trades):
            return TickerStats(
                open_ms, close_ms, 0, 0, 0, prev_close, 0, prev_close, 0, 0, -1, -1, 0
            )
        first, last = trades[skip], trades[-1]
        high = next(e for e in self._highs if e.ts_ns > cutoff)
        low = next(e for e in self._lows if e.ts_ns > cutoff)
        return TickerStats(
            open_ms=open_ms,
            close_ms=close_ms,
            open_price=first.price,
            high_price=high.price,
            low_price=low.price,
            last_price=last.price,
            last_qty=last.qty,
            prev_close_price=prev_close,
            volume=volume,
            quote_volume=quote_volume,
            first_id=first.trade_id,
            last_id=last.trade_id,
            count=len(trades) - skip,
        )
