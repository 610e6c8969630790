"""Cluster mode, phase 1: the command log on JetStream, gateways as deterministic replicas.

Against the machine's real NATS (JetStream on 127.0.0.1:4222), a unique stream per test: two
gateway replicas on one stream, `serve --nats` and `replay --verify` from the CLI, and a
market-data replica serving the gateways' books.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.streamlog import NatsOptions, StreamLog
from gateway.client import ClientError, WsApiClient
from gateway.cluster import ClusterConfig
from gateway.ratelimit import Limits
from tests.cluster_support import LOCAL_NATS, kootabase, replay, share_keys, stream_on
from tests.gateway_support import ServerThread, http

REPO = Path(__file__).resolve().parent.parent
LOAD_LIMITS = Limits(orders_per_10s=100_000, weight_per_minute=1_000_000)
# ---- two gateway replicas on one stream -----------------------------------------------------


def _place_many(url: str, creds: Any, side: str, n: int, tag: str) -> list[int]:
    """``n`` crossing-prone limit orders over the WS API; returns the acknowledged order ids."""

    async def body() -> list[int]:
        ids: list[int] = []
        async with WsApiClient.connect(url, creds) as c:

            async def one(i: int) -> None:
                price = f"{30_000 + (i % 7) * (1 if side == 'BUY' else -1)}.00"
                try:
                    r = await c.place_order(
                        "BTCUSDT",
                        side,
                        "LIMIT",
                        quantity="0.0010",
                        price=price,
                        time_in_force="GTC",
                        client_order_id=f"{tag}-{i}",
                    )
                except ClientError as exc:
                    raise AssertionError(f"order {tag}-{i} refused: {exc}") from exc
                ids.append(int(r["orderId"]))

            for start in range(0, n, 25):
                await asyncio.gather(*(one(i) for i in range(start, min(n, start + 25))))
        return ids

    return asyncio.run(body())


def _wait_same_stream_seq(servers: list[ServerThread], timeout_s: float = 20.0) -> int:
    options = NatsOptions()

    async def last(spec: Any) -> int:
        sl = await StreamLog.connect(options, spec, create=False)
        try:
            return await sl.last_sequence()
        finally:
            await sl.close()

    target = asyncio.run(last(servers[0].gw.config.cluster.stream))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(s.gw.bridge.replica.stream_seq >= target for s in servers):
            return target
        time.sleep(0.02)
    raise AssertionError(
        f"replicas did not reach stream seq {target}: "
        f"{[s.gw.bridge.replica.stream_seq for s in servers]}"
    )


def test_two_gateway_replicas_one_stream(tmp_path: Path) -> None:
    with stream_on() as spec:
        cfg = ClusterConfig(stream=spec)
        a = ServerThread(tmp_path / "a", LOAD_LIMITS, cluster=cfg)
        b = None
        try:
            share_keys(tmp_path / "a", tmp_path / "b")
            b = ServerThread(tmp_path / "b", LOAD_LIMITS, fixture_accounts=False, cluster=cfg)
            assert b.gw.first_start is None, "only the first gateway creates the demo account"
            assert b.gw.last_seq == a.gw.last_seq, "the second replica caught up at start"
            accts = a.accounts
            import threading

            results: dict[str, list[int]] = {}
            threads = [
                threading.Thread(
                    target=lambda: results.__setitem__(
                        "a", _place_many(a.ws_api, accts.demo, "BUY", 150, "a")
                    )
                ),
                threading.Thread(
                    target=lambda: results.__setitem__(
                        "b", _place_many(b.ws_api, accts.maker, "SELL", 150, "b")
                    )
                ),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert len(results["a"]) == 150 and len(results["b"]) == 150
            _wait_same_stream_seq([a, b])
            seq_a, hash_a = a.seq_and_hash()
            seq_b, hash_b = b.seq_and_hash()
            assert (seq_a, hash_a) == (seq_b, hash_b)
            time.sleep(1.1)  # /health recomputes the hash at most once a second
            for s in (a, b):  # each replica shows its state hash while running
                status, _, health = http("GET", s.http + "/health")
                assert status == 200, health
                assert (health["stateHashSeq"], health["stateHash"]) == (seq_a, hash_a)
                assert health["checks"]["cluster"] == {  # the console's checks table shows it
                    "ok": True,
                    "nats": "connected",
                    "stream": spec.name,
                    "streamSeq": s.gw.bridge.replica.stream_seq,
                    "lastSeq": seq_a,
                    "diverged": False,
                    "failure": None,
                }
            for s in (a, b):  # every acknowledged order is in both replicas' read models
                orders = s.gw.store.orders
                missing = [o for o in results["a"] + results["b"] if o not in orders]
                assert not missing, missing[:5]
            trades = sum(1 for o in a.gw.store.orders.values() if o.executed)
            assert trades > 0, "the two gateways' orders met in one book"
            audit = replay(NatsOptions(), spec)
            assert (audit.last_seq, audit.state_hash) == (seq_a, hash_a)
            assert audit.rejected_messages == 0
        finally:
            for s in (b, a):
                if s is not None:
                    s.stop()


def test_serve_nats_and_replay_verify_cli(tmp_path: Path) -> None:
    """``kootabase serve --nats`` in its own process takes orders; ``replay --nats --verify``
    reproduces its state hash from the stream alone."""
    from tests.custody_nodes import free_port

    with stream_on() as spec:
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--nats",
                LOCAL_NATS,
                "--stream",
                spec.name,
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(port),
                "--master-key-file",
                str(tmp_path / "master.key"),
                "--demo",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            out = ""
            deadline = time.monotonic() + 60
            assert proc.stdout is not None
            while "secret" not in out and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line and proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(f"serve exited: {err}")
                out += line
            while "WS API" not in out:
                out += proc.stdout.readline()
            key = re.search(r"API key\s*:\s*(\S+)", out)
            secret = re.search(r"secret\s*:\s*(\S+)", out)
            assert key and secret
            from gateway.client import Credentials

            ids = _place_many(
                f"ws://127.0.0.1:{port}/ws-api/v3",
                Credentials.hmac(key.group(1), secret.group(1)),
                "BUY",
                20,
                "c",
            )
            assert len(ids) == 20
        finally:
            proc.terminate()
            proc.wait(30)
        bad = kootabase("replay", "--nats", "http://x", "--stream", spec.name)
        assert bad.returncode == 2 and "nats://" in bad.stderr
        both = kootabase("replay", "--nats", LOCAL_NATS, "--journal", str(tmp_path))
        assert both.returncode == 2 and "exactly one of" in both.stderr
        res = kootabase("replay", "--nats", LOCAL_NATS, "--stream", spec.name, "--verify")
        assert res.returncode == 0, res.stderr
        audit = replay(NatsOptions(), spec)
        assert f"state hash: {audit.state_hash}" in res.stdout
        assert "rejected messages: 0" in res.stdout
        assert audit.last_seq >= 7 + 1 + 4 + 20


def test_marketdata_replica_serves_the_gateways_books(tmp_path: Path) -> None:
    """``kootabase marketdata --nats`` (its own process, its own replica, started from the
    engine and market-data snapshot the gateway stored) serves the same book as the gateway
    that took the orders, and follows new ones."""
    import json
    import urllib.request

    from engine.crosscheck import CHECKPOINT_EVERY
    from tests.custody_nodes import free_port

    with stream_on() as spec:
        a = ServerThread(
            tmp_path, LOAD_LIMITS, cluster=ClusterConfig(stream=spec, snapshot_every=1)
        )
        port = free_port()
        proc = None
        try:
            _place_many(a.ws_api, a.accounts.demo, "BUY", 20, "m")

            async def past_a_snapshot_point() -> None:
                """IOC orders one at a time (one stream message each) until the gateway has
                stored the read model of the first snapshot point."""
                async with WsApiClient.connect(a.ws_api, a.accounts.demo) as c:
                    i = 0
                    while CHECKPOINT_EVERY not in a.gw.bridge.stored_readmodels:
                        assert i < 2 * CHECKPOINT_EVERY, "no read-model snapshot stored"
                        i += 1
                        if a.gw.bridge.replica.stream_seq <= CHECKPOINT_EVERY:
                            await c.place_order(
                                "BTCUSDT",
                                "BUY",
                                "LIMIT",
                                quantity="0.0010",
                                price="10000.00",
                                time_in_force="IOC",
                                client_order_id=f"ioc-{i}",
                            )
                        else:
                            await asyncio.sleep(0.05)

            asyncio.run(past_a_snapshot_point())
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "--log-level",
                    "info",
                    "marketdata",
                    "--nats",
                    LOCAL_NATS,
                    "--stream",
                    spec.name,
                    "--port",
                    str(port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )

            def depth(base: str) -> Any:
                url = f"{base}/api/v3/depth?symbol=BTCUSDT&limit=100"
                body = json.loads(urllib.request.urlopen(url, timeout=2).read())
                return body["bids"], body["asks"]

            def wait_same(timeout_s: float = 60.0) -> Any:
                deadline = time.monotonic() + timeout_s
                while True:
                    try:
                        mine = depth(f"http://127.0.0.1:{port}")
                        if mine == depth(a.http):
                            return mine
                    except OSError:
                        if proc.poll() is not None:
                            err = proc.stderr.read() if proc.stderr else ""
                            raise AssertionError(f"marketdata exited: {err}") from None
                    if time.monotonic() > deadline:
                        raise AssertionError("the market-data replica's book never matched")
                    time.sleep(0.2)

            bids, _ = wait_same()
            assert bids, "the orders rest on the book"
            _place_many(a.ws_api, a.accounts.maker, "SELL", 10, "s")
            wait_same(20.0)
            ready = urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2)
            assert json.loads(ready.read())["ready"] is True
            proc.terminate()
            _, err = proc.communicate(timeout=20)
            assert b"cluster_readmodel_snapshot_loaded" in err, "started from the snapshot"
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(20)
            a.stop()
