"""The 24 h ticker's window is bounded by minutes, not trades, and its figures equal a
brute-force recomputation over the documented window (``ts >= end - 24h`` rounded down to the
minute); a ticker restored from a snapshot (either read-model format) goes on like the original.
"""

from __future__ import annotations

import random

import msgspec

from marketdata import snapshot as md_snapshot
from marketdata.ticker import BUCKET_NS, BUCKETS, WINDOW_NS, RollingTicker, TickerStats

Trade = tuple[int, int, int, int, int]
"""(ts_ns, trade_id, price, qty, quote)"""


def _brute(trades: list[Trade], end_ns: int) -> TickerStats:
    """The window's figures from the trades themselves (all fed trades have ts <= end_ns)."""
    open_ns = (end_ns - WINDOW_NS) // BUCKET_NS * BUCKET_NS
    window = [t for t in trades if t[0] >= open_ns]
    before = [t for t in trades if t[0] < open_ns]
    prev = before[-1][2] if before else 0
    if not window:
        return TickerStats(
            open_ns // 10**6, end_ns // 10**6, 0, 0, 0, prev, 0, prev, 0, 0, -1, -1, 0
        )
    prices = [t[2] for t in window]
    return TickerStats(
        open_ms=open_ns // 10**6,
        close_ms=end_ns // 10**6,
        open_price=prices[0],
        high_price=max(prices),
        low_price=min(prices),
        last_price=prices[-1],
        last_qty=window[-1][3],
        prev_close_price=prev,
        volume=sum(t[3] for t in window),
        quote_volume=sum(t[4] for t in window),
        first_id=window[0][1],
        last_id=window[-1][1],
        count=len(window),
    )


def _flow(rng: random.Random, n: int, step_ns: int) -> list[Trade]:
    """``n`` trades ``step_ns / 2`` apart on average (some at the same instant), and a few idle
    gaps of up to two hours."""
    out: list[Trade] = []
    ts = 10**18
    for trade_id in range(1, n + 1):
        gap = rng.random() < 0.00003
        ts += rng.randrange(2 * 3600 * 10**9) if gap else rng.randrange(step_ns)
        price = rng.randint(90, 110)
        qty = rng.randint(1, 50)
        out.append((ts, trade_id, price, qty, price * qty))
    return out


def test_many_trades_keep_at_most_a_day_of_minutes_and_exact_figures() -> None:
    rng = random.Random(5)
    trades = _flow(rng, 200_000, 2_600_000_000)
    assert trades[-1][0] - trades[0][0] > 2 * WINDOW_NS
    ticker = RollingTicker()
    fed: list[Trade] = []
    most = 0
    for i, t in enumerate(trades):
        ticker.add(*t)
        fed.append(t)
        if i % 997 == 0:
            most = max(most, len(ticker.buckets()))
        if i % 20_011 == 0 or i == len(trades) - 1:
            assert ticker.stats() == _brute(fed, t[0]), i
            for ahead_ns in (1, BUCKET_NS - 1, BUCKET_NS, 5 * 3600 * 10**9, WINDOW_NS + 1):
                assert ticker.stats(t[0] + ahead_ns) == _brute(fed, t[0] + ahead_ns)
    # bounded by the minutes of a day however many trades (one bucket, not one trade, each)
    assert BUCKETS * 0.9 < most <= BUCKETS + 1
    n_window = ticker.stats().count
    assert n_window > 10 * (BUCKETS + 1), "the flow should hold more trades than minutes"
    encoded = msgspec.msgpack.encode(
        md_snapshot.TickerImage([], ticker.prev_close, ticker.now_ns, ticker.buckets())  # type: ignore[arg-type]
    )
    assert len(encoded) < 80 * (BUCKETS + 1)


def test_restored_ticker_continues_like_the_original() -> None:
    """Replicas fed one stream agree; one restored from the snapshot rows at any point (and
    fed the rest) agrees with them at every later trade and query time."""
    rng = random.Random(8)
    trades = _flow(rng, 30_000, 10 * 10**9)
    original, twin = RollingTicker(), RollingTicker()
    restored: list[RollingTicker] = []
    for i, t in enumerate(trades):
        for ticker in (original, twin, *restored):
            ticker.add(*t)
        if i % 7_001 == 0:
            img = msgspec.msgpack.decode(
                msgspec.msgpack.encode(
                    md_snapshot.TickerImage(
                        [], original.prev_close, original.now_ns, original.buckets()
                    )  # type: ignore[arg-type]
                ),
                type=md_snapshot.TickerImage,
            )
            copy = RollingTicker()
            md_snapshot._restore_ticker(copy, img)
            restored.append(copy)
        if i % 1_009 == 0:
            for ahead_ns in (0, 3 * BUCKET_NS):
                want = original.stats(t[0] + ahead_ns)
                assert all(r.stats(t[0] + ahead_ns) == want for r in (twin, *restored))
    assert len(restored) == 5
    assert all(r.buckets() == original.buckets() for r in restored)


def test_format_1_image_restores_its_trades_into_minutes() -> None:
    """A read-model format-1 image (each trade of the exact 24 h window) still restores: the
    figures are those of its trades, its prevClosePrice kept, until the window moves on."""
    hour, minute = 3_600 * 10**9, 60 * 10**9
    now = 30 * hour + 30 * 10**9
    window = [
        (now - WINDOW_NS + 1, 7, 100, 2, 200),  # in the minute of the window's start
        (now - 3 * hour, 8, 130, 1, 130),
        (now - minute, 9, 90, 4, 360),
    ]
    img = md_snapshot.TickerImage(window, 111, now)
    ticker = RollingTicker()
    md_snapshot._restore_ticker(
        ticker, msgspec.msgpack.decode(msgspec.msgpack.encode(img), type=md_snapshot.TickerImage)
    )
    got = ticker.stats()
    assert (got.open_price, got.high_price, got.low_price, got.last_price) == (100, 130, 90, 90)
    assert (got.prev_close_price, got.count, got.first_id, got.volume) == (111, 3, 7, 7)
    later = ticker.stats(now + minute)
    assert (later.prev_close_price, later.count, later.first_id) == (100, 2, 8)
