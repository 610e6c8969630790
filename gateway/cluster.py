"""Cluster mode for the gateway: its engine is a replica over the JetStream command stream.

`ClusterConfig` says where NATS is (and with which credentials and TLS) and which stream is the
log. `attach` runs in the app's start-up, before the first request: connect, create the stream
if it does not exist, replay the stream through this gateway's replica into the read model
(orders, trades, balances, market data), publish the demo bootstrap on an empty stream, and
then follow the stream live (see `gateway.clusterbridge`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from backoffice.audit import staff_records
from engine.core.compiled import CompiledEngine
from engine.replica import Applied, Replica
from engine.schema import EngineConfig
from engine.service import DEMO_COMMANDS
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway import clustersnap, readmodel
from gateway.clusterbridge import ClusterBridge
from gateway.clustercli import PUBLISH_INTERVAL_MS, PUBLISH_LINGER_MS
from gateway.clustersnap import history_image
from gateway.clusterstart import StartPoint, fetch_start_point, install_history
from gateway.histchain import HistoryChain
from marketdata import snapshot as md_snapshot

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
    publish_linger_s: float = PUBLISH_LINGER_MS / 1000
    """While a batch is in flight, how long the next may wait for more requests (or an ack)
    before it is published anyway (`gateway.clusterbridge`); 0 publishes at once."""
    publish_interval_s: float = PUBLISH_INTERVAL_MS / 1000
    """At least this long between two publishes of this gateway (0: no such floor); requests
    arriving meanwhile join the next batch (`gateway.clusterbridge`)."""
    start_from_snapshot: bool = True
    """Start from the newest verified engine + read-model snapshot in the Object Store
    (`gateway.clustersnap`) instead of replaying the whole stream."""
    snapshot_every: int | None = None
    """Cross-check points between snapshots (None: `engine.snapstore.SNAPSHOT_EVERY_CHECKPOINTS`;
    0: this replica stores none)."""


def cluster_bridge(gw: Gateway) -> ClusterBridge:
    cfg: ClusterConfig = gw.config.cluster
    start: StartPoint | None = gw.cluster_start
    bridge = ClusterBridge(
        start.replica if start is not None else Replica(CompiledEngine(EngineConfig())),
        gw._on_batch,
        observe=gw.metrics.observe_batch,
        max_inflight=cfg.max_inflight,
        linger_s=cfg.publish_linger_s,
        interval_s=cfg.publish_interval_s,
        ack_timeout_s=gw.config.limits.ack_timeout_s,
        on_snapshot=lambda applied: snapshot_readmodel(gw, applied),
        snapshot_every=cfg.snapshot_every,
        on_commands=lambda applied: keep_staff_actions(gw, applied),
    )
    if start is not None:
        bridge.follower.snapshot_stream_seq = start.stream_seq
    if cfg.snapshot_every != 0 and gw.history is not None:  # collect the history deltas
        durable_seq = gw.history.durable_seq
        refs = start.history_refs if start is not None else []
        gw.history_chain = HistoryChain(refs, durable_seq)
        gw.history.on_rows = gw.history_chain.add
    return bridge


def keep_staff_actions(gw: Gateway, applied: Applied) -> None:
    """The audit log's records among a message's commands, into the store (which snapshots
    them): with no local journal, that is what the operator API's audit log reads."""
    if not applied.duplicate:
        gw.store.staff_actions.extend(
            staff_records(applied.first_seq, applied.ts_ns, applied.commands)
        )


def start_point(gw: Gateway) -> StartPoint | None:
    """Before the history index is opened: the newest verified snapshot pair, whose history
    index copy replaces the local one (derived data). Without one the stream is replayed from
    its first message, which rebuilds the index, so a local index is set aside then too (its
    rows would be submitted again out of order). With ``--history pg`` there is no index: any
    verified pair will do, with or without a history chain, and none is fetched."""
    cfg: ClusterConfig = gw.config.cluster
    local = gw.config.local_history
    path = gw.dir / "history.sqlite3"
    start = None
    if cfg.start_from_snapshot:
        started = time.perf_counter()
        start = fetch_start_point(
            lambda: StreamLog.connect(cfg.nats, cfg.stream, create=False),
            need_marketdata=gw.config.marketdata,
            aml_rules_hash=_aml_rules_hash(gw),
            need_history=local,
        )
        if start is not None:
            if local:
                install_history(path, start.history_db)
            log.info(
                "cluster_start_point",
                name=start.name,
                stream_seq=start.stream_seq,
                last_seq=start.last_seq,
                seconds=round(time.perf_counter() - started, 3),
            )
            return start
    if local and path.exists():
        gw._set_aside(path, "a cluster replica replaying the stream from its start rebuilds it")
    return None


def _aml_rules_hash(gw: Gateway) -> str:
    """The rules hash a start point's AML image must have ("": no AML here, any pair)."""
    rules = gw.config.aml_rules
    if rules is None:
        return ""
    from pathlib import Path

    from backoffice.aml.image import rules_hash
    from backoffice.aml.rules import load_rules

    return rules_hash(load_rules(rules) if isinstance(rules, Path) else rules)


def restore_read_model(gw: Gateway, start: StartPoint) -> None:
    """The store and market data at the start point's sequence (the stream's tail follows)."""
    gw.store = readmodel.restore(start.readmodel, memory_orders=gw.config.history_memory_orders)
    if gw.marketdata is not None:
        assert start.readmodel.marketdata is not None, "load_start_point refuses those"
        md_snapshot.restore(gw.marketdata.state, start.readmodel.marketdata)
    if gw.aml is not None:
        restored = gw.aml.restore(start.readmodel.aml)
        assert restored, "start_point skips pairs made with other AML rules"
    gw._readmodel_seq = start.last_seq
    gw.start_point = (start.last_seq, 0)


def snapshot_readmodel(gw: Gateway, applied: Applied) -> None:
    """At an engine snapshot point, right after the read model folded it: take the image here
    (between messages), let the history writer copy the index once it covers the point, and
    upload from the loop. Points already stored (passed again while catching up) are skipped
    before any work."""
    bridge: ClusterBridge = gw.bridge
    if applied.stream_seq in bridge.stored_readmodels or bridge.log is None:
        return
    store = gw.store
    if store.last_seq != applied.last_seq:
        log.warning("cluster_readmodel_snapshot_skipped", store_seq=store.last_seq)
        return
    md = gw.marketdata.state if gw.marketdata is not None else None
    encoded = readmodel.encode(readmodel.image(store, md, gw.aml_image()))
    stream_seq, last_seq = applied.stream_seq, applied.last_seq
    if gw.history is None:  # --history pg: no index to wait for, no history chain to ship
        if bridge.uploader is None:
            bridge.uploader = clustersnap.Uploader(
                bridge.log, bridge.stored_readmodels, suffix=clustersnap.NO_HISTORY_SUFFIX
            )
        data = clustersnap.encode(stream_seq, last_seq, encoded.data, [])
        bridge.uploader.offer(stream_seq, data)
        return
    loop = asyncio.get_running_loop()
    index_db = gw.history.index.db
    chain: HistoryChain | None = getattr(gw, "history_chain", None)
    if chain is None:  # this replica stores no snapshots (snapshot_every=0)
        return
    if bridge.uploader is None:
        bridge.uploader = clustersnap.Uploader(bridge.log, bridge.stored_readmodels, chain)
    uploader = bridge.uploader

    def on_writer_thread() -> None:  # the index covers last_seq now
        refs, segments = chain.cut(last_seq, lambda: history_image(index_db, last_seq))
        data = clustersnap.encode(stream_seq, last_seq, encoded.data, refs)
        loop.call_soon_threadsafe(uploader.offer, stream_seq, data, refs, segments)

    gw.history.after(last_seq, on_writer_thread, "cluster_readmodel_snapshot")


async def attach(gw: Gateway) -> None:
    """Connect, catch up with the stream, bootstrap an empty one (start-up, before serving)."""
    cfg: ClusterConfig = gw.config.cluster
    bridge: ClusterBridge = gw.bridge
    stream_log = await StreamLog.connect(cfg.nats, cfg.stream)
    bridge.stored_readmodels.update(
        await clustersnap.stored_points(stream_log, any_history=gw.history is None)
    )
    await bridge.attach(stream_log)
    empty = bridge.replica.stream_seq == 0
    gw.demo_account_allowed = empty
    if bridge.replica.last_seq == 0:  # markets only: demo money is gw.ensure_demo_account's
        await bridge.publish_system(DEMO_BATCH_NO, list(DEMO_COMMANDS))
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
