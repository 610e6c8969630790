"""Cluster mode for the gateway: its engine is a replica over the JetStream command stream.

`ClusterConfig` says where NATS is (and with which credentials and TLS) and which stream is the
log. `attach` runs in the app's start-up, before the first request: connect, create the stream
if it does not exist, replay the stream through this gateway's replica into the read model
(orders, trades, balances, market data), publish the demo bootstrap on an empty stream, and
then follow the stream live (see `gateway.clusterbridge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from engine.core.compiled import CompiledEngine
from engine.replica import Replica
from engine.schema import EngineConfig
from engine.service import DEMO_COMMANDS
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway.clusterbridge import ClusterBridge

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)
DEMO_BATCH_NO = 1
"""The demo bootstrap is system batch 1: every gateway publishes the same id, one runs."""


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    nats: NatsOptions = field(default_factory=NatsOptions)
    stream: StreamSpec = field(default_factory=StreamSpec)
    max_inflight: int = 8
    """Batches published and not yet acknowledged, at most (pipelining depth)."""


def cluster_bridge(gw: Gateway) -> ClusterBridge:
    cfg: ClusterConfig = gw.config.cluster
    return ClusterBridge(
        Replica(CompiledEngine(EngineConfig())),
        gw._on_batch,
        observe=gw.metrics.observe_batch,
        max_inflight=cfg.max_inflight,
        ack_timeout_s=gw.config.limits.ack_timeout_s,
    )


async def attach(gw: Gateway) -> None:
    """Connect, catch up with the stream, bootstrap an empty one (start-up, before serving)."""
    cfg: ClusterConfig = gw.config.cluster
    bridge: ClusterBridge = gw.bridge
    stream_log = await StreamLog.connect(cfg.nats, cfg.stream)
    await bridge.attach(stream_log)
    empty = bridge.replica.stream_seq == 0
    gw.demo_account_allowed = empty
    if bridge.replica.last_seq == 0:  # markets only: demo money is gw.ensure_demo_account's
        await bridge.publish_system(DEMO_BATCH_NO, list(DEMO_COMMANDS))
    gw.metrics.last_seq.set(bridge.replica.last_seq)
    _cluster_metrics(gw, bridge)
    gw.health_checks["cluster"] = lambda: _cluster_health(bridge, stream_log)
    log.info(
        "cluster_replica_ready",
        stream=cfg.stream.name,
        stream_seq=bridge.replica.stream_seq,
        last_seq=bridge.replica.last_seq,
        origin=f"{bridge.origin:x}",
    )


def _cluster_health(bridge: ClusterBridge, stream_log: StreamLog) -> dict[str, Any]:
    """``/health``'s ``checks.cluster`` (and so the operations console's checks table): this
    replica's NATS connection and stream position, so an operator sees a replica that lost
    NATS or stopped before its readiness flips. No server address: it may carry credentials."""
    nc = stream_log.nc
    nats_state = (
        "connected" if nc.is_connected else "reconnecting" if nc.is_reconnecting else "closed"
    )
    diverged = bridge.checker is not None and bool(bridge.checker.divergence)
    return {
        "ok": nats_state == "connected" and bridge.failure is None and not diverged,
        "nats": nats_state,
        "stream": stream_log.spec.name,
        "streamSeq": bridge.replica.stream_seq,
        "lastSeq": bridge.replica.last_seq,
        "diverged": diverged,
        "failure": bridge.failure,
    }


def _cluster_metrics(gw: Gateway, bridge: ClusterBridge) -> None:
    """Divergence and stream position on ``/metrics`` (read when scraped); readiness is the
    node's ``kootabase_ready`` (`gateway.health`), which follows the bridge's failure."""
    from prometheus_client import Gauge

    r = gw.metrics.registry
    Gauge(
        "kootabase_cluster_divergence",
        "1 when this replica's state hash disagreed with the recorded one (alert)",
        registry=r,
    ).set_function(lambda: 1.0 if bridge.checker is not None and bridge.checker.divergence else 0.0)
    Gauge(
        "kootabase_stream_seq", "Last stream message applied by this replica", registry=r
    ).set_function(lambda: float(bridge.replica.stream_seq))
    Gauge(
        "kootabase_stream_rejected_messages",
        "Stream messages rejected as not a valid batch (the same on every replica)",
        registry=r,
    ).set_function(lambda: float(bridge.replica.state.rejected_messages))
