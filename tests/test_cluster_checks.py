"""Cluster mode, phase 2: the hash cross-check, Object Store snapshots, status, export/import.

Against the machine's real NATS (JetStream on 127.0.0.1:4222), a unique stream per test. The
stream here is written by a plain publisher (`StreamLog.publish`, what a gateway does) so a
test reaches several checkpoints in a second.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.crosscheck import CHECKPOINT_EVERY, bucket_name, checkpoint_key, hash_bucket
from engine.follower import Follower
from engine.replica import BATCH_FORMAT, CommandBatch, Replica, encode_batch, msg_id
from engine.schema import CreateAccount, Deposit, OrderType, PlaceOrder, Side
from engine.service import DEMO_COMMANDS
from engine.snapstore import encode_snapshot, object_name, snapshot_bucket
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway.client import ClientError, WsApiClient
from gateway.cluster import ClusterConfig
from tests.cluster_support import LOCAL_NATS, kootabase, replay, stream_on
from tests.gateway_support import ServerThread

REPO = Path(__file__).resolve().parent.parent
ORIGIN = 0x51


def _batches(n: int) -> list[CommandBatch]:
    """Demo markets, two funded accounts (1 holds USDT and buys, 2 holds BTC and sells), then
    ``n - 2`` batches of one crossing order each."""
    out = [
        CommandBatch(0, 1, list(DEMO_COMMANDS)),
        CommandBatch(
            ORIGIN,
            1,
            [
                CreateAccount(account_id=1),
                CreateAccount(account_id=2),
                Deposit(account_id=1, asset_id=0, amount_atoms=10**13, deposit_key="u1"),
                Deposit(account_id=2, asset_id=1, amount_atoms=10**11, deposit_key="b2"),
            ],
        ),
    ]
    for k in range(2, n):
        out.append(
            CommandBatch(
                ORIGIN,
                k,
                [
                    PlaceOrder(
                        account_id=1 + k % 2,
                        market_id=0,
                        side=Side.SELL if k % 2 else Side.BUY,
                        order_type=OrderType.LIMIT,
                        price_atoms=(30_000 + k % 5) * 1_000_000,
                        qty_atoms=10_000 * (2 + k % 3),
                    )
                ],
            )
        )
    return out


async def _publish(sl: StreamLog, batches: list[CommandBatch]) -> None:
    for b in batches:
        await sl.publish(encode_batch(b), msg_id(b.origin, b.batch_no), fmt=BATCH_FORMAT)


async def _wait(pred: Any, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not pred():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def test_snapshots_cold_start_and_tampered_snapshot_refused() -> None:
    n = 2 * CHECKPOINT_EVERY + 40

    async def body(spec: StreamSpec) -> dict[str, Any]:
        opts = NatsOptions()
        writer = await StreamLog.connect(opts, spec)
        seen: list[int] = []
        warm = Follower(None, "warm", "test", lambda a: seen.append(a.stream_seq))
        await warm.attach(await StreamLog.connect(opts, spec), snapshot_every=1)
        await _publish(writer, _batches(n))
        await _wait(lambda: warm.replica.stream_seq == n)
        await _wait(lambda: not warm.checker._work)  # checkpoints and snapshots stored
        store = await snapshot_bucket(writer)
        names = sorted(i.name for i in await store.list())
        assert names == [object_name(CHECKPOINT_EVERY), object_name(2 * CHECKPOINT_EVERY)]

        cold = Follower(None, "cold", "test", lambda a: None)
        cold_log = await StreamLog.connect(opts, spec)
        assert await cold.start_from_snapshot(cold_log)
        assert cold.snapshot_stream_seq == 2 * CHECKPOINT_EVERY
        await cold.attach(cold_log)
        assert cold.replica.state_hash() == warm.replica.state_hash()

        # A snapshot rewritten with a different state and a *self-consistent* header (magic,
        # sequences and hash all match its own body): only the recorded hash can catch it.
        image = warm.replica.image()
        snap_at = 2 * CHECKPOINT_EVERY
        tampered = msgspec.structs.replace(
            image,
            state=msgspec.structs.replace(image.state, stream_seq=snap_at),
            engine=msgspec.structs.replace(image.engine, last_seq=_last_seq_at(snap_at)),
        )
        data, _ = encode_snapshot(tampered)
        await store.put(object_name(snap_at), data)
        third = Follower(None, "third", "test", lambda a: None)
        third_log = await StreamLog.connect(opts, spec)
        assert await third.start_from_snapshot(third_log)
        assert third.snapshot_stream_seq == CHECKPOINT_EVERY, "the tampered one was refused"
        await third.attach(third_log)
        assert third.replica.state_hash() == warm.replica.state_hash()
        out = {
            "hash": warm.replica.state_hash(),
            "digest": warm.replica.checkpoint_digest(),
            "last_seq": warm.replica.last_seq,
        }
        await asyncio.sleep(2.5)  # two report periods: idle replicas hash and report
        for f in (warm, cold, third):
            await f.close()
        await writer.close()
        return out

    with stream_on() as spec:
        got = asyncio.run(body(spec))
        audit = replay(NatsOptions(), spec)
        assert (audit.state_hash, audit.last_seq) == (got["hash"], got["last_seq"])
        res = kootabase("cluster", "status", "--nats", LOCAL_NATS, "--stream", spec.name, "--json")
        assert res.returncode == 0, res.stderr
        status = json.loads(res.stdout)
        assert status["last_stream_seq"] == 2 * CHECKPOINT_EVERY + 40
        roles = {r["replica"]: r for r in status["replica_processes"]}
        assert set(roles) == {"warm", "cold", "third"}
        for r in roles.values():  # idle replicas hash where they stand: all at the end
            assert (r["checkpoint_seq"], r["digest"]) == (
                2 * CHECKPOINT_EVERY + 40,
                got["digest"],
            )
        assert all(r["lag"] == 0 for r in roles.values())


def _last_seq_at(stream_seq: int) -> int:
    """Engine sequence after ``stream_seq`` messages of `_batches` (7 + 4 + one per order)."""
    return 7 + 4 + (stream_seq - 2)


def test_divergent_replica_detected_while_catching_up() -> None:
    async def body(spec: StreamSpec) -> str:
        opts = NatsOptions()
        writer = await StreamLog.connect(opts, spec)
        warm = Follower(None, "warm", "test", lambda a: None)
        await warm.attach(await StreamLog.connect(opts, spec), snapshot_every=0)
        await _publish(writer, _batches(CHECKPOINT_EVERY + 5))
        await _wait(lambda: warm.replica.stream_seq == CHECKPOINT_EVERY + 5)
        await _wait(lambda: not warm.checker._work)
        # A replica whose state differs from the stream's (one balance changed, as a bit flip
        # or an engine bug would leave it) at stream seq 2, then fed the rest of the stream.
        probe = Replica(warm.replica.engine.__class__())
        async for m in writer.read(1, 2):
            probe.apply(m)
        img = probe.image()
        accounts = list(img.engine.accounts)
        k = next(i for i, a in enumerate(accounts) if a.balances)
        bal = accounts[k].balances[0]
        accounts[k] = msgspec.structs.replace(
            accounts[k],
            balances=[
                msgspec.structs.replace(bal, available_atoms=bal.available_atoms + 1),
                *accounts[k].balances[1:],
            ],
        )
        img = msgspec.structs.replace(
            img, engine=msgspec.structs.replace(img.engine, accounts=accounts)
        )
        failures: list[BaseException] = []
        bad = Follower(
            Replica.from_image(img), "bad", "test", lambda a: None, on_failure=failures.append
        )
        with pytest.raises(RuntimeError, match="Divergence"):
            await bad.attach(await StreamLog.connect(opts, spec))
        assert not bad.healthy and failures
        assert bad.replica.stream_seq >= CHECKPOINT_EVERY  # the check runs beside the replica
        await bad.close()
        await warm.close()
        await writer.close()
        return str(failures[0])

    with stream_on() as spec:
        reason = asyncio.run(body(spec))
        assert f"after stream seq {CHECKPOINT_EVERY}" in reason


def test_gateway_stops_serving_on_disagreement(tmp_path: Path) -> None:
    """A recorded checkpoint that this gateway's hash does not match: readiness turns false,
    /metrics raises the alert, orders are answered 'status unknown' (never from that state)."""
    from gateway.ratelimit import Limits

    with stream_on() as spec:
        a = ServerThread(
            tmp_path,
            Limits(orders_per_10s=100_000, weight_per_minute=10**6),
            cluster=ClusterConfig(stream=spec),
        )
        try:

            async def poison() -> None:
                sl = await StreamLog.connect(NatsOptions(), spec)
                kv = await hash_bucket(sl)
                await kv.put(checkpoint_key(CHECKPOINT_EVERY), b"0" * 64)
                await sl.close()

            asyncio.run(poison())
            assert json.loads(urllib.request.urlopen(f"{a.http}/ready").read())["ready"]

            async def orders() -> ClientError:
                async with WsApiClient.connect(a.ws_api, a.accounts.demo) as c:
                    for i in range(CHECKPOINT_EVERY + 10):
                        try:
                            await c.place_order(
                                "BTCUSDT",
                                "BUY",
                                "LIMIT",
                                quantity="0.0010",
                                price="20000.00",
                                time_in_force="GTC",
                                client_order_id=f"d-{i}",
                            )
                        except ClientError as exc:
                            return exc
                raise AssertionError("the diverged gateway kept acknowledging orders")

            err = asyncio.run(orders())
            # in flight when it stopped: status unknown; sent after: refused, never run
            assert err.status == 503 and err.code in (-1007, -1001)
            try:
                urllib.request.urlopen(f"{a.http}/ready")
                raise AssertionError("ready after divergence")
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                assert "Divergence" in json.loads(exc.read())["reason"]
            metrics = urllib.request.urlopen(f"{a.http}/metrics").read().decode()
            assert "kootabase_ready 0.0" in metrics
            assert "kootabase_cluster_divergence 1.0" in metrics
            assert a.gw.bridge.replica.stream_seq >= CHECKPOINT_EVERY
        finally:
            a.stop()


def test_journal_export_import_round_trip(tmp_path: Path) -> None:
    async def fill(spec: StreamSpec) -> None:
        sl = await StreamLog.connect(NatsOptions(), spec)
        await _publish(sl, _batches(60))
        await sl.publish(b"junk", "junk-1", fmt=BATCH_FORMAT)  # rejected alike everywhere
        await sl.close()

    with stream_on() as src, stream_on() as dst:
        asyncio.run(fill(src))
        original = replay(NatsOptions(), src)
        journal = tmp_path / "journal"

        def move(direction: str, spec: StreamSpec) -> subprocess.CompletedProcess[str]:
            return kootabase(
                "journal",
                direction,
                "--nats",
                LOCAL_NATS,
                "--stream",
                spec.name,
                "--journal",
                str(journal),
            )

        res = move("export", src)
        assert res.returncode == 0, res.stderr
        assert original.state_hash in res.stdout
        local = kootabase("replay", "--journal", str(journal))
        assert f"state hash: {original.state_hash}" in local.stdout
        again = move("export", src)
        assert again.returncode == 1 and "not empty" in again.stderr
        res = move("import", dst)
        assert res.returncode == 0, res.stderr
        imported = replay(NatsOptions(), dst)
        assert (imported.state_hash, imported.last_seq) == (original.state_hash, original.last_seq)
        twice = move("import", dst)
        assert twice.returncode == 1 and "not empty" in twice.stderr
        assert bucket_name(dst.name)  # buckets are cleaned with the stream
