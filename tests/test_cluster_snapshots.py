"""Cluster replicas start from Object Store snapshots of the engine *and* the read model.

Against the machine's real NATS (JetStream on 127.0.0.1:4222), a unique stream per test. A plain
publisher writes a history of crossing orders (closed orders and trades for the history index,
a book and candles for market data); a gateway replica follows it and stores an engine snapshot
and a read-model snapshot at every cross-check point. Cold replicas with empty data
directories must then answer for old orders exactly like one that replayed the whole stream,
and a damaged or forged read-model snapshot must be refused (an older one, or the full replay,
used instead) with a log line saying so.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from engine.crosscheck import CHECKPOINT_EVERY
from engine.snapstore import snapshot_bucket
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway import clustersnap, histchain, readmodel
from gateway.app import Gateway, GatewayConfig
from gateway.cluster import ClusterConfig
from gateway.server import start
from marketdata import snapshot as md_snapshot
from tests.cluster_support import stream_on
from tests.test_cluster_checks import _batches, _publish, _wait

END_NS = 2**62


async def _gateway(
    root: Path, name: str, spec: StreamSpec, *, history: str = "local", **cluster: Any
) -> tuple[Gateway, Any]:
    gw = Gateway(
        GatewayConfig(
            data_dir=root / name,
            master_key_file=root / "secrets" / "master.key",
            cluster=ClusterConfig(stream=spec, **cluster),
            history=history,
        )
    )
    return gw, await start(gw, "127.0.0.1", 0)


def _answers(gw: Gateway) -> dict[str, Any]:
    """What order.status, allOrders, myTrades, account and market data answer from."""
    store = gw.store
    out: dict[str, Any] = {"last_seq": store.last_seq}
    for account_id in (1, 2):
        orders = store.orders_page(
            account_id, 0, from_id=0, start_ns=0, end_ns=END_NS, limit=1_000, newest=False
        )
        out[f"orders{account_id}"] = [msgspec.to_builtins(o) for o in orders]
        out[f"status{account_id}"] = [
            msgspec.to_builtins(store.order_of(account_id, o.order_id)) for o in orders[:50]
        ]
        trades = store.trades_page(
            account_id,
            0,
            order_id=None,
            from_id=0,
            start_ns=0,
            end_ns=END_NS,
            limit=1_000,
            newest=False,
        )
        out[f"trades{account_id}"] = [msgspec.to_builtins(t) for t in trades]
        out[f"balances{account_id}"] = {
            k: list(v) for k, v in store.accounts[account_id].balances.items()
        }
    out["marketdata"] = msgspec.to_builtins(md_snapshot.image(gw.marketdata.state))
    return out


async def _corrupt(spec: StreamSpec, stream_seq: int, *, forge: bool) -> None:
    """Damage the read-model object at ``stream_seq``: flip body bytes (its hash no longer
    matches), or ``forge`` one that is self-consistent but shows other money."""
    sl = await StreamLog.connect(NatsOptions(), spec)
    store = await snapshot_bucket(sl)
    name = clustersnap.readmodel_name(stream_seq)
    data = bytearray((await store.get(name)).data or b"")
    if forge:
        head = clustersnap.HEADER.unpack_from(data)
        obj = msgspec.msgpack.decode(bytes(data[clustersnap.HEADER.size :]))
        img = readmodel.decode(obj[0], name)
        acct = img.accounts[0]
        bal = acct.balances[0]
        richer = msgspec.structs.replace(
            acct, balances=[(bal[0], bal[1] + 10**9, bal[2], bal[3]), *acct.balances[1:]]
        )
        img = msgspec.structs.replace(img, accounts=[richer, *img.accounts[1:]])
        body = msgspec.msgpack.encode([readmodel.encode(img).data, obj[1]])
        digest = hashlib.blake2b(body, digest_size=32).digest()
        data = bytearray(clustersnap.HEADER.pack(*head[:4], digest) + body)
    else:
        for i in range(clustersnap.HEADER.size + 10, len(data), 997):
            data[i] ^= 0xFF
    await store.put(name, bytes(data))
    await sl.close()


def test_cold_replicas_start_from_readmodel_snapshots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 2 * CHECKPOINT_EVERY + 40
    # the two points close about as many orders each: let the second ship a delta as large as
    # the base (a running exchange's points add a small share of what the index holds)
    monkeypatch.setattr(histchain, "DELTAS_PER_BASE", 1)

    async def body(spec: StreamSpec) -> None:
        writer = await StreamLog.connect(NatsOptions(), spec)
        batches = _batches(n)
        first = CHECKPOINT_EVERY + 10
        await _publish(writer, batches[:first])
        # the replica that stores snapshots, replaying the stream itself; the rest published
        # once the first point is stored (the uploader keeps only the newest of a burst)
        warm, warm_run = await _gateway(tmp_path, "warm", spec, snapshot_every=1)
        assert warm.start_point == (0, 0) and warm.bridge.replica.stream_seq == first
        await _wait(lambda: CHECKPOINT_EVERY in warm.bridge.stored_readmodels)
        await _publish(writer, batches[first:])
        await _wait(lambda: warm.bridge.replica.stream_seq == n)
        await _wait(lambda: 2 * CHECKPOINT_EVERY in warm.bridge.stored_readmodels)
        await _wait(lambda: not warm.bridge.checker._work)
        want = _answers(warm)
        assert len(want["orders1"]) > 100 and len(want["trades1"]) > 50

        full, full_run = await _gateway(tmp_path, "full", spec, start_from_snapshot=False)
        cold, cold_run = await _gateway(tmp_path, "cold", spec, snapshot_every=0)
        assert full.start_point == (0, 0)
        assert cold.bridge.follower.snapshot_stream_seq == 2 * CHECKPOINT_EVERY
        assert cold.start_point[0] == cold.bridge.replica.engine.last_seq - 40
        oldest = want["orders1"][0][0]  # array-like: order_id first
        assert cold.store.orders.get(oldest) is None, "an old order comes from the index"
        assert _answers(full) == want
        assert _answers(cold) == want
        assert cold.bridge.replica.state_hash() == warm.bridge.replica.state_hash()
        # a restart on its own data directory (keys, a history index of its own) alike
        await cold_run.runner.cleanup()
        cold, cold_run = await _gateway(tmp_path, "cold", spec, snapshot_every=0)
        assert cold.bridge.follower.snapshot_stream_seq == 2 * CHECKPOINT_EVERY
        assert _answers(cold) == want

        # the newest pair's history is the older one's base plus one delta; that delta
        # damaged: the newest pair refused, the older one (the base alone) used
        sl = await StreamLog.connect(NatsOptions(), spec)
        bucket = await snapshot_bucket(sl)
        newest = clustersnap.readmodel_name(2 * CHECKPOINT_EVERY)
        data = (await bucket.get(newest)).data or b""
        refs = msgspec.msgpack.decode(
            data[clustersnap.HEADER.size :], type=clustersnap.ReadModelObject
        ).history
        assert [r.kind for r in refs] == [histchain.BASE, histchain.DELTA]
        delta = bytearray((await bucket.get(refs[1].name)).data or b"")
        delta[-3] ^= 0xFF
        await bucket.put(refs[1].name, bytes(delta))
        await sl.close()
        with capture_logs() as logs:
            nodelta, nodelta_run = await _gateway(tmp_path, "nodelta", spec, snapshot_every=0)
        reasons = [e["reason"] for e in logs if e["event"] == "cluster_readmodel_snapshot_refused"]
        assert len(reasons) == 1 and f"history segment {refs[1].name}: hash" in reasons[0], reasons
        assert nodelta.bridge.follower.snapshot_stream_seq == CHECKPOINT_EVERY
        assert _answers(nodelta) == want

        # the newest read-model object damaged: refused, the older pair used
        await _corrupt(spec, 2 * CHECKPOINT_EVERY, forge=False)
        with capture_logs() as logs:
            older, older_run = await _gateway(tmp_path, "older", spec, snapshot_every=0)
        refused = [e for e in logs if e["event"] == "cluster_readmodel_snapshot_refused"]
        assert refused and "body hash" in refused[0]["reason"], logs
        assert older.bridge.follower.snapshot_stream_seq == CHECKPOINT_EVERY
        assert _answers(older) == want

        # the older one forged (valid hash, more money than the engine holds): full replay
        await _corrupt(spec, CHECKPOINT_EVERY, forge=True)
        with capture_logs() as logs:
            last, last_run = await _gateway(tmp_path, "last", spec, snapshot_every=0)
        reasons = [e["reason"] for e in logs if e["event"] == "cluster_readmodel_snapshot_refused"]
        assert any("disagrees with the engine snapshot: balances" in r for r in reasons), reasons
        assert any(e["event"] == "cluster_start_full_replay" for e in logs)
        assert last.start_point == (0, 0) and last.bridge.follower.snapshot_stream_seq == 0
        assert _answers(last) == want

        # pruning keeps the newest read-model objects only (each holds the whole history index)
        assert await clustersnap.prune(writer, keep=1) == [
            clustersnap.readmodel_name(CHECKPOINT_EVERY)
        ]
        assert await clustersnap.stored_points(writer) == {2 * CHECKPOINT_EVERY}
        for run in (warm_run, full_run, cold_run, nodelta_run, older_run, last_run):
            await run.runner.cleanup()
        await writer.close()

    with stream_on() as spec:
        asyncio.run(body(spec))
