"""The whole venue's health in one answer, for ``GET /ops/v1/health/overview`` and the console.

``/health`` answers for the process that serves it; behind a load balancer in cluster mode
that is one replica of several, so an operator could not see a replica that lags or
disagrees. This overview reads what every replica publishes: its ``(stream seq, engine seq,
checkpoint digest)`` report in the stream's KV bucket (`engine.crosscheck`), the digests
recorded at the checkpoints, and the stream's own Raft state from JetStream (leader, peers
current or lagging). Beside it: this gateway's ledger follower (and how far the PostgreSQL
projection is behind) and its custody watchers, one per chain.

Agreement is decided per replica at the checkpoint its digest was taken (``checkpoint_seq``):
against the digest recorded in the KV bucket at that stream sequence when there is one (the
first writer's), else against the other replicas that report the same point (an idle replica
hashes where it stands, so idle replicas compare at the stream's head): a replica agrees when
its digest is the majority's there. ``null`` means nothing to compare with yet. The overall
``agreement`` leaves out stale reports (a stopped replica's old report says nothing about now).

Every outside read has a time limit, and a failed read is reported in the answer
(``error``), never a 5xx: the console is most needed when something is down.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import structlog

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)

READ_TIMEOUT_S: Final = 3.0
STALE_REPORT_MS: Final = 10_000
"""A replica report older than this, from a replica behind the stream's head, is ``stale``
(replicas report every second while they move and once when idle at the head, so only a
stopped or cut-off replica goes stale)."""


async def overview(gw: Gateway) -> dict[str, Any]:
    health = gw.health
    health.refresh_hash()
    out: dict[str, Any] = {
        "mode": "single" if gw.node is not None else "cluster",
        "self": {
            "replica": "local" if gw.node is not None else f"{gw.bridge.origin:x}",
            "ready": health.ready,
            "reason": health.failure or gw.bridge_failure,
            "last_seq": gw.last_seq,
            "state_hash": health.hash or None,
            "state_hash_seq": health.hash_seq,
        },
        "stream": None,
        "replicas": [],
        "agreement": "single",
        "ledger_follower": await _ledger_follower(gw),
        "custody": _custody(gw),
        "error": "",
    }
    if gw.node is None:
        try:
            await asyncio.wait_for(_cluster(gw, out), READ_TIMEOUT_S)
        except Exception as exc:  # NATS down or slow: say so, answer the rest
            out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            out["agreement"] = "unknown"
    return out


async def _cluster(gw: Gateway, out: dict[str, Any]) -> None:
    from engine.crosscheck import now_ms, read_reports, recorded_checkpoint

    stream_log = gw.bridge.log
    assert stream_log is not None, "attached before serving"
    name = stream_log.spec.name
    info = await stream_log.js.stream_info(name)
    last = int(info.state.last_seq)
    cluster = info.cluster
    peers = []
    if cluster is not None:
        for p in cluster.replicas or []:
            peers.append(
                {
                    "name": p.name,
                    "current": bool(p.current),
                    "offline": bool(p.offline),
                    "lag": int(p.lag or 0),
                    "active_ms": int((p.active or 0) / 1_000_000),  # NATS sends nanoseconds
                }
            )
    leader = cluster.leader if cluster is not None else None
    if leader is None:  # a standalone server (no Raft group): the server holding the stream
        leader = (getattr(stream_log.nc, "_server_info", None) or {}).get("server_name")
    out["stream"] = {
        "name": name,
        "messages": int(info.state.messages),
        "last_stream_seq": last,
        "bytes": int(info.state.bytes),
        "replicas": int(info.config.num_replicas or 1),
        "clustered": bool(cluster is not None and cluster.leader),
        "leader": leader,
        "peers": peers,
        "healthy": all(p["current"] and not p["offline"] for p in peers),
    }
    reports = await read_reports(stream_log)
    points = sorted({r.checkpoint_seq for r in reports if r.checkpoint_seq > 0})
    recorded = dict(
        zip(
            points,
            await asyncio.gather(*(recorded_checkpoint(stream_log, s) for s in points)),
            strict=True,
        )
    )
    at_point: dict[int, list[str]] = {}
    for r in reports:
        if r.digest:
            at_point.setdefault(r.checkpoint_seq, []).append(r.digest)
    now = now_ms()
    rows = []
    for r in reports:
        want = recorded.get(r.checkpoint_seq)
        same_point = at_point.get(r.checkpoint_seq, [])
        agrees: bool | None = None
        if r.digest and want is not None:
            agrees = r.digest == want
        elif r.digest and len(same_point) > 1:  # no record there: the replicas at that point
            agrees = 2 * same_point.count(r.digest) > len(same_point)  # with the majority
        ago = now - r.at_ms
        caught_up = r.stream_seq >= last  # an idle replica reports once, at the head
        rows.append(
            {
                "replica": r.replica,
                "role": r.role,
                "self": r.replica == out["self"]["replica"],
                "stream_seq": r.stream_seq,
                "lag": max(0, last - r.stream_seq),
                "last_seq": r.last_seq,
                "digest": r.digest,
                "checkpoint_seq": r.checkpoint_seq,
                "recorded": want,
                "agrees": agrees,
                "reported_ms_ago": ago,
                "stale": ago > STALE_REPORT_MS and not caught_up,
            }
        )
    out["replicas"] = rows
    verdicts = [r["agrees"] for r in rows if not r["stale"]]
    if any(v is False for v in verdicts):
        out["agreement"] = "disagree"
    elif verdicts and all(v is True for v in verdicts):
        out["agreement"] = "agree"
    else:
        out["agreement"] = "unknown"


async def _ledger_follower(gw: Gateway) -> dict[str, Any] | None:
    """The supervised ``ledger sync --follow`` child and the projection's sequence, read from
    its ``projection_checkpoint`` row (None: no follower in this process)."""
    follower = getattr(gw, "ledger_follower", None)
    if follower is None:
        return None
    status = dict(follower.status())
    status["projected_seq"] = None
    status["lag"] = None
    status["error"] = ""
    try:
        import asyncpg

        conn = await asyncpg.connect(follower.dsn, timeout=READ_TIMEOUT_S)
        try:
            projected = await asyncio.wait_for(
                conn.fetchval("SELECT last_seq FROM projection_checkpoint WHERE id = 1"),
                READ_TIMEOUT_S,
            )
        finally:
            await conn.close()
    except Exception as exc:  # database down, not migrated yet: reported, not raised
        status["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return status
    if projected is not None:
        status["projected_seq"] = int(projected)
        status["lag"] = max(0, gw.last_seq - int(projected))
    return status


def _custody(gw: Gateway) -> list[dict[str, Any]]:
    """One row per chain watcher of this gateway's custody (empty without custody)."""
    if gw.custody is None:
        return []
    return [dict(w) for w in gw.custody.custody.watchers()]
