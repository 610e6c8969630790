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
