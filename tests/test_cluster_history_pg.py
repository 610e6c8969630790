"""``serve --nats --history pg``: a cluster gateway without a local history index.

Real NATS (127.0.0.1:4222, a unique stream) and real PostgreSQL (a fresh database). Two
gateways replicate one stream: one keeps the history index (the default, ``--history local``),
the other none; ``kootabase ledger sync --nats --follow`` projects the stream into PostgreSQL,
from which the second answers. Every history answer (WS API and REST) must be the same on both;
past its memory cap, with the projection stopped, the second refuses history queries (-1008)
instead of answering incompletely, and answers the same again once the projection catches up.
Without ``--ledger-dsn`` it refuses them from the start, with the same stable code.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.crosscheck import CHECKPOINT_EVERY
from engine.snapstore import list_names
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway import clustersnap, errors, histchain
from gateway.client import ClientError, WsApiClient
from gateway.cluster import ClusterConfig
from gateway.history.pgreader import PgHistory
from tests.cluster_support import LOCAL_NATS, REPO, share_keys, stream_on
from tests.gateway_support import ServerThread, http, signed_query
from tests.history_load import SYMBOL, Acked, place_many
from tests.test_cluster_checks import _batches, _publish
from tests.test_cluster_checks import _wait as _wait_async
from tests.test_cluster_gateways import _wait_same_stream_seq
from tests.test_cluster_snapshots import _gateway
from tests.test_gateway_dialect import _metric
from tests.test_history_pg import LIMITS, _answers, _special, _wait

KOOTABASE = (sys.executable, "-m", "gateway.cli")
HELD_ROWS = 60
"""The second gateway's memory cap (``--history-held-rows``): small, so the test passes it."""


def _follow(spec_name: str, dsn: str) -> subprocess.Popen[bytes]:
    """``kootabase ledger sync --nats ... --follow``: the projection the second gateway reads."""
    return subprocess.Popen(
        [
            *KOOTABASE,
            "ledger",
            "sync",
            "--log-level",
            "warning",
            "--nats",
            LOCAL_NATS,
            "--stream",
            spec_name,
            "--dsn",
            dsn,
            "--follow",
            "0.1",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextlib.contextmanager
def _pair(tmp_path: Path, **kw: Any) -> Iterator[tuple[ServerThread, ServerThread, StreamSpec]]:
    """A gateway with a history index and, on its stream and with its API keys, one without
    (``kw``: the second's config); both stopped afterwards."""
    with stream_on() as spec:
        cfg = ClusterConfig(stream=spec)
        a = ServerThread(tmp_path / "a", LIMITS, cluster=cfg, history_memory_orders=0)
        b = None
        try:
            share_keys(tmp_path / "a", tmp_path / "b")
            b = ServerThread(
                tmp_path / "b", LIMITS, fixture_accounts=False, cluster=cfg, history="pg", **kw
            )
            b.accounts = a.accounts
            assert b.gw.history is None
            assert not (tmp_path / "b" / "data" / "gateway" / "history.sqlite3").exists()
            yield a, b, spec
        finally:
            for s in (b, a):
                if s is not None:
                    s.stop()


def _rest(s: ServerThread, path: str, params: dict[str, Any]) -> tuple[int, Any]:
    creds = s.accounts.demo
    status, _, body = http(
        "GET",
        s.http + path,
        query=signed_query(creds, {"symbol": SYMBOL, **params}),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status, body


REST_QUERIES = (
    ("/api/v3/allOrders", {"limit": 1000}),
    ("/api/v3/allOrders", {"orderId": 1, "limit": 50}),
    ("/api/v3/myTrades", {"limit": 1000}),
    ("/api/v3/myTrades", {"fromId": 0, "limit": 50}),
)


async def _ws_refused(s: ServerThread, method: str) -> int:
    async with WsApiClient.connect(s.ws_api, s.accounts.demo) as c:
        await c.logon()
        try:
            await c.request(method, {"symbol": SYMBOL}, signed=True)
        except ClientError as exc:
            return exc.code
    raise AssertionError(f"{method} answered")


def test_history_pg_gateway_answers_as_a_local_index_gateway(
    tmp_path: Path, empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every closed order may leave memory at once: order.status reads PostgreSQL too
    monkeypatch.setattr("gateway.store.EVICT_GUARD_COMMANDS", 0)
    dsn = empty_db
    pair = _pair(tmp_path, history_memory_orders=0, history_held_rows=HELD_ROWS)
    with pair as (a, b, spec):
        follower = None
        try:
            pg: PgHistory = b.call(b.gw.start_pg_history(dsn, 0.02))
            follower = _follow(spec.name, dsn)
            _wait(pg.serves, f"PostgreSQL history did not come up: {pg.state}")

            async def special() -> None:  # through the gateway without an index
                async with (
                    WsApiClient.connect(b.ws_api, a.accounts.demo) as c,
                    WsApiClient.connect(b.ws_api, a.accounts.maker) as mk,
                ):
                    await _special(c, mk)

            asyncio.run(special())
            acked = Acked()
            asyncio.run(place_many(a.ws_api, a.accounts.demo, a.accounts.maker, 300, acked))
            _wait_same_stream_seq([a, b])
            last = b.gw.last_seq
            _wait(lambda: (b.gw.store.pg_seq or 0) >= last, "the projection did not catch up")
            before = pg.queries
            want = asyncio.run(_answers(a.ws_api, a.accounts.demo, acked))
            got = asyncio.run(_answers(b.ws_api, a.accounts.demo, acked))
            assert pg.queries - before > 100 and pg.fallbacks == 0
            assert len(got) == len(want)
            for x, y in zip(got, want, strict=True):
                assert x == y
            for path, params in REST_QUERIES:
                assert _rest(b, path, params) == _rest(a, path, params)

            # the projection stops; more closed rows than the cap: dropped, history refused
            _stop(follower)
            follower = None
            asyncio.run(place_many(a.ws_api, a.accounts.demo, a.accounts.maker, 60, acked))
            asyncio.run(place_many(a.ws_api, a.accounts.demo, a.accounts.maker, 1, acked))
            _wait_same_stream_seq([a, b])
            store = b.gw.store
            assert store.trimmed_seq > (store.pg_seq or 0) and not pg.serves()
            assert asyncio.run(_ws_refused(b, "allOrders")) == errors.HISTORY_UNAVAILABLE
            assert asyncio.run(_ws_refused(b, "myTrades")) == errors.HISTORY_UNAVAILABLE
            for path, params in REST_QUERIES:
                status, body = _rest(b, path, params)
                assert (status, body["code"]) == (503, errors.HISTORY_UNAVAILABLE), body
                assert "short of seq" in body["msg"]
            check = http("GET", b.http + "/health")[2]["checks"]["pgHistory"]
            assert check["source"].startswith("none")
            # shed, oldest first, counted where an operator looks; the newest rows still held
            assert check["rowsShed"] > 0 and 0 < check["heldRows"] <= HELD_ROWS, check
            assert check["shedThroughSeq"] == store.trimmed_seq < store.last_seq
            assert _metric("kootabase_history_rows_shed_total", b) == check["rowsShed"]
            assert _metric("kootabase_history_held_rows", b) == check["heldRows"]
            assert "were shed" in body["msg"]

            # the projection catches up: the same answers as the gateway with an index again
            follower = _follow(spec.name, dsn)
            _wait(pg.serves, "PostgreSQL history did not serve again", timeout=60)
            want = asyncio.run(_answers(a.ws_api, a.accounts.demo, acked))
            got = asyncio.run(_answers(b.ws_api, a.accounts.demo, acked))
            assert got == want
        finally:
            if follower is not None:
                _stop(follower)


def test_history_pg_without_a_dsn_refuses_history_with_a_stable_code(tmp_path: Path) -> None:
    with _pair(tmp_path) as (a, b, _):
        acked = Acked()
        asyncio.run(place_many(b.ws_api, a.accounts.demo, a.accounts.maker, 20, acked))
        for method in ("allOrders", "myTrades"):
            assert asyncio.run(_ws_refused(b, method)) == errors.HISTORY_UNAVAILABLE
        for path, params in REST_QUERIES:
            status, body = _rest(b, path, params)
            assert (status, body["code"]) == (503, errors.HISTORY_UNAVAILABLE), body
            assert "no --ledger-dsn" in body["msg"]
        # what memory holds is still answered: an order just placed, open orders
        oid = max(acked.orders)
        status, body = _rest(b, "/api/v3/order", {"orderId": oid})
        assert status == 200 and body["orderId"] == oid, body
        assert _rest(b, "/api/v3/openOrders", {})[0] == 200


def test_history_pg_needs_cluster_mode(tmp_path: Path) -> None:
    res = subprocess.run(
        [*KOOTABASE, "serve", "--history", "pg", "--data-dir", str(tmp_path / "d"), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert res.returncode == 2, res
    assert "--history pg needs cluster mode (--nats)" in res.stderr
    assert "Traceback" not in res.stderr


def test_history_pg_snapshots_ship_no_history_and_start_cold_replicas(tmp_path: Path) -> None:
    """A gateway without an index stores its read model under a name of its own, with no
    history chain; a cold gateway without an index starts from it and fetches no history; a
    gateway with an index does not take it (it would miss the history) and replays."""
    n = CHECKPOINT_EVERY + 30

    async def body(spec: StreamSpec) -> None:
        writer = await StreamLog.connect(NatsOptions(), spec)
        await _publish(writer, _batches(n))
        warm, warm_run = await _gateway(tmp_path, "warm", spec, history="pg", snapshot_every=1)
        await _wait_async(lambda: CHECKPOINT_EVERY in warm.bridge.stored_readmodels)
        names = await list_names(writer)
        lite = clustersnap.readmodel_name(CHECKPOINT_EVERY, clustersnap.NO_HISTORY_SUFFIX)
        assert lite in names
        assert not [x for x in names if x.endswith((clustersnap.SUFFIX, histchain.SEG_SUFFIX))]
        cold, cold_run = await _gateway(tmp_path, "cold", spec, history="pg", snapshot_every=0)
        assert cold.bridge.follower.snapshot_stream_seq == CHECKPOINT_EVERY
        assert cold.history is None and cold.cluster_start.history_db == b""
        assert not (tmp_path / "cold" / "gateway" / "history.sqlite3").exists()
        await _wait_async(lambda: cold.bridge.replica.stream_seq == n)
        assert cold.bridge.replica.state_hash() == warm.bridge.replica.state_hash()
        for account_id in (1, 2):
            assert cold.store.accounts[account_id] == warm.store.accounts[account_id]
        local, local_run = await _gateway(tmp_path, "local", spec, snapshot_every=0)
        assert local.start_point == (0, 0) and local.bridge.follower.snapshot_stream_seq == 0
        closed = local.store.orders_page(
            1, 0, from_id=0, start_ns=0, end_ns=2**62, limit=1_000, newest=False
        )
        assert len(closed) > 100, "the full replay rebuilt the whole history index"
        for run in (warm_run, cold_run, local_run):
            await run.runner.cleanup()
        for gw in (warm, cold, local):
            await gw.close()
        await writer.close()

    with stream_on() as spec:
        asyncio.run(body(spec))
