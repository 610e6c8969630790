"""Prometheus metrics of the gateway and its engine node, served at ``/metrics``.

A registry per gateway (not the process-global one) so several gateways in one process (tests)
do not collide. Orders per second is ``rate(kootabase_orders_total[1m])`` in PromQL; the
counters are what Prometheus wants, rates are computed by the scraper.

The per-order metrics (orders acknowledged, ack latency) are updated once per engine batch from
the loop thread, with numpy doing the bucketing: prometheus-client's own Counter and Histogram
take a lock per update, which at tens of thousands of orders a second cost more than the
order's journal write. Their exposition is still prometheus-client's (custom collectors).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

_NUMPY_FROM = 32
_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
    5.0,
)
_MARKETDATA_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 1.5, 5.0)
"""Wider than the ack's: a ``@100ms`` diff waits up to 100 ms for its tick, a 1 s one 1 s."""


class BatchHistogram(Collector):
    """A histogram fed a batch of observations at a time (single writer: the loop thread)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        assert list(buckets) == sorted(buckets), "bucket bounds must increase"
        self.name = name
        self.documentation = documentation
        self._bounds = np.array(buckets, dtype=np.float64)
        self._bound_list = [float(b) for b in buckets]
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last: above every bound
        self._sum = 0.0

    def observe_many(self, values: Sequence[float]) -> None:
        # bisect_left / side="left": a value equal to a bound counts in that bound's bucket
        # (the exposition's "le" semantics). numpy only pays off past a few dozen values: at
        # low load a batch holds one or two orders, and numpy's call overhead was 12 % of the
        # gateway's CPU per order there.
        if len(values) <= _NUMPY_FROM:
            counts, bounds = self._counts, self._bound_list
            for x in values:
                counts[bisect.bisect_left(bounds, x)] += 1
            self._sum += sum(values)
            return
        v = np.asarray(values, dtype=np.float64)
        idx = np.searchsorted(self._bounds, v, side="left")
        self._counts += np.bincount(idx, minlength=len(self._counts))
        self._sum += float(v.sum())

    @property
    def count(self) -> int:
        return int(self._counts.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        cumulative = np.cumsum(self._counts)
        buckets = [
            (repr(float(b)), int(c)) for b, c in zip(self._bounds, cumulative[:-1], strict=True)
        ]
        buckets.append(("+Inf", int(cumulative[-1])))
        yield HistogramMetricFamily(
            self.name, self.documentation, buckets=buckets, sum_value=self._sum
        )


class PlainCounter(Collector):
    """A counter incremented without a lock (single writer: the loop thread)."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)


class _PlainChild:
    """One label value of a `PlainLabeledCounter` (``inc`` without a lock)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class PlainLabeledCounter(Collector):
    """A counter with one label, incremented without a lock (single writer: the loop thread).
    prometheus-client's Counter took a lock and a check per ``inc``: ~1 % of the gateway's CPU
    per WS order at saturation, for a count the loop thread alone writes."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self._children: dict[str, _PlainChild] = {}

    def labels(self, value: str) -> _PlainChild:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = _PlainChild()
        return child

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, child in self._children.items():
            family.add_metric([value], child.value)
        yield family


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.orders = PlainCounter(
            "kootabase_orders",
            "Order requests (place, cancel-replace, amend; WS and REST) acknowledged by the engine",
        )
        r.register(self.orders)
        self.requests = PlainLabeledCounter(
            "kootabase_requests", "API requests answered successfully", "api"
        )
        r.register(self.requests)
        self.ws_requests = self.requests.labels("ws")
        self.rest_requests = self.requests.labels("rest")
        self.rejects = Counter("kootabase_rejects", "Error answers by code", ["code"], registry=r)
        self.ack_latency = BatchHistogram(
            "kootabase_ack_latency_seconds",
            "Command queued to acknowledgement (durable, processed, applied)",
            _LATENCY_BUCKETS,
        )
        r.register(self.ack_latency)
        self.fsync = Histogram(
            "kootabase_journal_fsync_seconds",
            "Journal group commit (write + fsync) per batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.submit = Histogram(
            "kootabase_engine_submit_seconds",
            "EngineNode.submit per batch (journal + processing)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "kootabase_engine_batch_size",
            "Commands per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
            registry=r,
        )
        self.marketdata_lag = BatchHistogram(
            "kootabase_marketdata_lag_seconds",
            "Engine event (its journal timestamp) to the market-data frame carrying it written "
            "to subscribers; depth diffs include their 100 ms / 1 s batching by design",
            _MARKETDATA_LAG_BUCKETS,
        )
        r.register(self.marketdata_lag)
        self.sessions = Gauge("kootabase_ws_sessions", "Connected WS API sessions", registry=r)
        self.last_seq = Gauge("kootabase_last_seq", "Last journal sequence processed", registry=r)
        self.rows_shed = PlainCounter(
            "kootabase_history_rows_shed",
            "--history pg: closed orders and trades shed past --history-held-rows before "
            "PostgreSQL had them (history needing them refused until it does)",
        )
        r.register(self.rows_shed)
        self.held_rows = Gauge(
            "kootabase_history_held_rows",
            "--history pg: closed orders and trades held in memory until PostgreSQL has them",
            registry=r,
        )

    def observe_batch(
        self, size: int, submit_s: float, fsync_s: float, ack_latencies_s: list[float]
    ) -> None:
        self.batch_size.observe(size)
        self.submit.observe(submit_s)
        self.fsync.observe(fsync_s)
        self.ack_latency.observe_many(ack_latencies_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
