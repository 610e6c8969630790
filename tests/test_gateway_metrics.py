"""The gateway's batch-fed metrics: the small-batch (bisect) and large-batch (numpy) paths must
bucket identically, with the exposition's "le" (less or equal) bounds."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, generate_latest

from gateway.metrics import BatchHistogram


def test_small_and_large_batches_bucket_identically() -> None:
    bounds = (0.001, 0.01, 0.1, 1.0)
    rng = random.Random(7)
    values = [rng.choice(bounds) if rng.random() < 0.3 else rng.uniform(0, 2) for _ in range(3_000)]
    small, large = BatchHistogram("s", "s", bounds), BatchHistogram("l", "l", bounds)
    for i in range(0, len(values), 3):
        small.observe_many(values[i : i + 3])
    large.observe_many(values)
    assert small.count == large.count == len(values)
    assert small._counts.tolist() == large._counts.tolist()
    expected = [
        sum(1 for v in values if (lo < v <= hi))
        for lo, hi in zip((-1.0, *bounds), (*bounds, float("inf")), strict=True)
    ]
    assert small._counts.tolist() == expected


def test_exposition_is_cumulative_with_le_bounds() -> None:
    registry = CollectorRegistry()
    h = BatchHistogram("kb_test_seconds", "test", (0.5, 1.0))
    registry.register(h)
    h.observe_many([0.5, 0.75, 2.0])
    text = generate_latest(registry).decode()
    assert 'kb_test_seconds_bucket{le="0.5"} 1.0' in text
    assert 'kb_test_seconds_bucket{le="1.0"} 2.0' in text
    assert 'kb_test_seconds_bucket{le="+Inf"} 3.0' in text
    assert "kb_test_seconds_count 3.0" in text
    assert "kb_test_seconds_sum 3.25" in text


def test_marketdata_lag_is_measured_from_the_event_to_the_write() -> None:
    """The hub reports, per flush, the time from each message's engine timestamp to its write
    (to a real socket): none for timer messages (no event time) or streams nobody reads."""
    import asyncio
    import socket
    import time

    from marketdata.fanout import Hub, Subscriber

    async def scenario() -> list[float]:
        ours, theirs = socket.socketpair()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        hub, lags = Hub(), []
        hub.on_lag = lags.extend
        sub = Subscriber(transport, combined=True)  # type: ignore[arg-type]
        hub.set_streams(sub, {"btcusdt@trade", "btcusdt@kline_1m"})
        event_ns = time.time_ns() - 50_000_000  # the engine stamped it 50 ms ago
        hub.publish("btcusdt@trade", b"{}", event_ns)
        hub.publish("btcusdt@kline_1m", b"{}")  # a timer's message: no event time
        hub.publish("ethusdt@trade", b"{}", event_ns)  # nobody reads it
        await asyncio.sleep(0.01)
        assert theirs.recv(4096).count(b'"stream"') == 2  # both subscribed messages written
        transport.close()
        theirs.close()
        return lags

    (lag,) = asyncio.run(scenario())
    assert 0.05 <= lag < 1.0, lag
