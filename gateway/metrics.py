"""Prometheus metrics of the gateway and its engine node, served at ``/metrics``.

A registry per gateway (not the process-global one) so several gateways in one process (tests)
do not collide. Orders per second is ``rate(kootabase_orders_total[1m])`` in PromQL; the
counters are what Prometheus wants, rates are computed by the scraper.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.orders = Counter("kootabase_orders", "Order requests acknowledged by the engine",
                              registry=r)
        self.requests = Counter("kootabase_requests", "API requests", ["api"], registry=r)
        self.rejects = Counter("kootabase_rejects", "Error answers by code", ["code"], registry=r)
        self.ack_latency = Histogram(
            "kootabase_ack_latency_seconds",
            "Command submit to acknowledgement (durable and processed)",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.fsync = Histogram("kootabase_journal_fsync_seconds",
                               "Journal group commit (write + fsync) per batch",
                               buckets=_LATENCY_BUCKETS, registry=r)
        self.submit = Histogram("kootabase_engine_submit_seconds",
                                "EngineNode.submit per batch (journal + processing)",
                                buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "kootabase_engine_batch_size", "Commands per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048), registry=r)
        self.sessions = Gauge("kootabase_ws_sessions", "Connected WS API sessions", registry=r)
        self.last_seq = Gauge("kootabase_last_seq", "Last journal sequence processed",
                              registry=r)

    def observe_batch(self, size: int, submit_s: float, fsync_s: float) -> None:
        self.batch_size.observe(size)
        self.submit.observe(submit_s)
        self.fsync.observe(fsync_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
