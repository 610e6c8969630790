"""Issue 17 with ``serve --ledger-dsn``: older history answered from the ledger projection in
PostgreSQL (`gateway.history.pgreader`) gives the same answers, key for key and byte for byte
once encoded, as the local index, for orders of every kind (stop, trailing stop, iceberg,
amended, every self-trade prevention mode, self-trades), while the projection trails (memory
holds the gap), once it has caught up, after a restart, when it trails by more than the gap
memory keeps for it, and when PostgreSQL goes away (the local index answers).

Real PostgreSQL at 127.0.0.1:5432: a fresh database per test (a missing server fails the test).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.client import ClientError, WsApiClient
from gateway.history.pgreader import PgHistory
from gateway.ratelimit import Limits
from ledger.pg.projector import sync
from tests.gateway_support import ServerThread
from tests.history_load import SYMBOL, Acked, place_many

LIMITS = Limits(orders_per_10s=10**7, orders_per_day=10**8, weight_per_minute=10**8)
CONFIG: dict[str, Any] = {
    "history_memory_orders": 0,
    "history_commit_interval_s": 0.05,
    "snapshot_every": 10**6,
}
LOAD = 600


@pytest.fixture
def dsn(empty_db: str) -> str:
    """A fresh database per test (`tests/conftest.py`)."""
    return empty_db


async def _special(c: WsApiClient, mk: WsApiClient) -> None:
    """One of each kind whose answer needs the columns ledger migration 2 added."""

    async def place(client: WsApiClient, side: str, kind: str, **p: Any) -> Any:
        return await client.place_order(SYMBOL, side, kind, **p)

    # a last trade price (the stops need one)
    await place(mk, "SELL", "LIMIT", quantity="0.001", price="30000", time_in_force="GTC")
    await place(c, "BUY", "LIMIT", quantity="0.001", price="30000", time_in_force="IOC")
    # self-trade prevention, every mode (per-market match ids 0..3), and a self-trade
    maker = await place(c, "SELL", "LIMIT", quantity="0.02", price="32000", time_in_force="GTC")
    for mode, qty in (("EXPIRE_TAKER", "0.01"), ("DECREMENT", "0.01"), ("EXPIRE_MAKER", "0.005")):
        t = await place(
            c, "BUY", "LIMIT", quantity=qty, price="32000", time_in_force="GTC",
            selfTradePreventionMode=mode,
        )  # fmt: skip
    await c.cancel_order(SYMBOL, order_id=t["orderId"])  # the EXPIRE_MAKER taker rested
    assert maker["orderId"] < t["orderId"]
    await place(c, "SELL", "LIMIT", quantity="0.01", price="32100", time_in_force="GTC")
    await place(
        c, "BUY", "LIMIT", quantity="0.01", price="32100", time_in_force="GTC",
        selfTradePreventionMode="EXPIRE_BOTH",
    )  # fmt: skip
    await place(c, "SELL", "LIMIT", quantity="0.01", price="32200", time_in_force="GTC")
    await place(c, "BUY", "LIMIT", quantity="0.01", price="32200", time_in_force="GTC")
    # a stop-loss limit: waits, is triggered by a trade at 28950, rests, is filled
    await place(
        c, "SELL", "STOP_LOSS_LIMIT", quantity="0.01", price="28900", time_in_force="GTC",
        stopPrice="29000", client_order_id="stop-1",
    )  # fmt: skip
    await place(mk, "BUY", "LIMIT", quantity="0.001", price="28950", time_in_force="GTC")
    await place(c, "SELL", "LIMIT", quantity="0.001", price="28950", time_in_force="IOC")
    await place(mk, "BUY", "LIMIT", quantity="0.01", price="28900", time_in_force="IOC")
    # a trailing stop that never fires (cancelled while waiting)
    trail = await place(c, "SELL", "STOP_LOSS", quantity="0.01", trailingDelta=100)
    await c.cancel_order(SYMBOL, order_id=trail["orderId"])
    # an iceberg, partly filled, amended down, cancelled
    ice = await place(
        c, "SELL", "LIMIT", quantity="0.03", price="31000", time_in_force="GTC",
        icebergQty="0.01",
    )  # fmt: skip
    await place(mk, "BUY", "LIMIT", quantity="0.015", price="31000", time_in_force="IOC")
    await c.amend_keep_priority(SYMBOL, "0.0175", order_id=ice["orderId"])
    await c.cancel_order(SYMBOL, order_id=ice["orderId"])
    # a plain order amended, then cancelled
    plain = await place(c, "BUY", "LIMIT", quantity="0.02", price="1000", time_in_force="GTC")
    await c.amend_keep_priority(SYMBOL, "0.01", order_id=plain["orderId"])
    await c.cancel_order(SYMBOL, order_id=plain["orderId"])


async def _answers(ws: str, creds: Any, acked: Acked) -> list[str]:
    """Every history answer of the load account, as JSON text in the order its keys came:
    order.status of every order (by id, and by client id), allOrders and myTrades paged by id
    and by time (pages of 97 to cross many boundaries) and newest-first, each order's trades."""
    out: list[str] = []
    async with WsApiClient.connect(ws, creds) as c:
        await c.logon()

        async def ask(method: str, params: dict[str, Any]) -> Any:
            try:
                r = await c.request(method, {"symbol": SYMBOL, **params}, signed=True)
            except ClientError as exc:
                r = {"error": exc.code}
            out.append(f"{method} {sorted(params.items())} {json.dumps(r)}")
            return r

        orders: list[dict[str, Any]] = []
        params: dict[str, Any] = {"orderId": 0, "limit": 97}
        while page := await ask("allOrders", params):
            orders += page
            params = {"orderId": page[-1]["orderId"] + 1, "limit": 97}
        assert set(acked.orders) <= {o["orderId"] for o in orders}
        for start in range(0, len(orders), 50):
            await ask("allOrders", {"startTime": orders[start]["time"], "limit": 97})
        for end in range(0, len(orders), 50):
            await ask("allOrders", {"endTime": orders[end]["time"], "limit": 31})
        await ask("allOrders", {"limit": 500})
        for o in orders:
            await ask("order.status", {"orderId": o["orderId"]})
            await ask("order.status", {"origClientOrderId": o["clientOrderId"]})
        await ask("order.status", {"orderId": orders[-1]["orderId"] + 10**7})
        trades: list[dict[str, Any]] = []
        params = {"fromId": 0, "limit": 97}
        while page := await ask("myTrades", params):
            trades += page
            params = {"fromId": page[-1]["id"] + 1, "limit": 97}
        for start in range(0, len(trades), 40):
            await ask("myTrades", {"startTime": trades[start]["time"], "limit": 97})
        await ask("myTrades", {"limit": 500})
        for oid in sorted({t["orderId"] for t in trades})[::3]:
            await ask("myTrades", {"orderId": oid})
        assert any(o["status"] == "EXPIRED_IN_MATCH" for o in orders)
        assert len(trades) > 50
    return out


def _compare(s: ServerThread, acked: Acked, pg: PgHistory) -> list[str]:
    """The answers with PostgreSQL serving, then with the local index alone: equal."""
    assert pg.serves(), (pg.state, s.gw.store.pg_seq, s.gw.store.trimmed_seq)
    before = pg.queries
    with_pg = asyncio.run(_answers(s.ws_api, s.accounts.demo, acked))
    assert pg.queries - before > 10 and pg.fallbacks == 0
    s.gw.trading.history.pg = None
    try:
        local = asyncio.run(_answers(s.ws_api, s.accounts.demo, acked))
    finally:
        s.gw.trading.history.pg = pg
    assert len(with_pg) == len(local)
    for a, b in zip(with_pg, local, strict=True):
        assert a == b
    return with_pg


def _wait(cond: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _catch_up(s: ServerThread, dsn: str) -> None:
    """Project the journal through the gateway's last sequence, let the gateway see the
    checkpoint, and apply one more batch so memory trims what PostgreSQL now holds."""
    last = s.gw.last_seq
    asyncio.run(sync(dsn, s.gw.config.data_dir / "journal"))
    _wait(lambda: (s.gw.store.pg_seq or 0) >= last, "the gateway did not see the checkpoint")
    assert s.gw.history.flush(s.gw.last_seq)
    asyncio.run(_poke(s))
    _wait(lambda: s.gw.store.trimmed_seq >= last, "memory was not trimmed")


async def _poke(s: ServerThread) -> None:
    async with WsApiClient.connect(s.ws_api, s.accounts.maker) as c:
        await c.place_order(
            SYMBOL, "BUY", "LIMIT", quantity="0.01", price="1000", time_in_force="IOC"
        )


def _load(s: ServerThread, acked: Acked, count: int) -> None:
    async def special() -> None:
        async with (
            WsApiClient.connect(s.ws_api, s.accounts.demo) as c,
            WsApiClient.connect(s.ws_api, s.accounts.maker) as mk,
        ):
            await _special(c, mk)

    asyncio.run(special())
    asyncio.run(place_many(s.ws_api, s.accounts.demo, s.accounts.maker, count, acked))


def _start(tmp_path: Path, dsn: str, **kw: Any) -> tuple[ServerThread, PgHistory]:
    s = ServerThread(tmp_path, LIMITS, **CONFIG, **kw)
    pg: PgHistory = s.call(s.gw.start_pg_history(dsn, 0.02))
    return s, pg


def test_postgresql_history_answers_as_the_local_index(tmp_path: Path, dsn: str) -> None:
    s, pg = _start(tmp_path, dsn)
    acked = Acked()
    try:
        asyncio.run(sync(dsn, s.gw.config.data_dir / "journal"))  # schema + the fixtures
        _wait(pg.serves, "PostgreSQL history did not come up")
        _load(s, acked, LOAD)
        # the projection trails: memory holds all it does not have, PostgreSQL the rest
        assert s.gw.store.pg_seq is not None and s.gw.store.pg_seq < min(acked.orders)
        trailing = _compare(s, acked, pg)
        _catch_up(s, dsn)
        caught_up = _compare(s, acked, pg)
        assert caught_up == trailing
        # PostgreSQL goes away under a query (the poll asleep): the local index answers the
        # same, and nothing fails
        pg.poll_interval_s = 3600.0
        time.sleep(0.2)
        asyncio.run(_poke(s))
        s.call(pg.pool.close())  # type: ignore[union-attr]
        gone = asyncio.run(_answers(s.ws_api, s.accounts.demo, acked))
        assert pg.fallbacks > 0 and not pg.serves()
        assert gone == trailing
    finally:
        s.stop()
    s2, pg2 = _start(tmp_path, dsn, fixture_accounts=False)
    s2.accounts = s.accounts
    try:
        # started from the read-model snapshot: PostgreSQL serves once it covers that point
        assert not pg2.serves()
        asyncio.run(sync(dsn, s2.gw.config.data_dir / "journal"))
        _wait(pg2.serves, "PostgreSQL history did not come back after the restart")
        assert _compare(s2, acked, pg2) == trailing
    finally:
        s2.stop()


def test_a_projection_far_behind_leaves_the_answers_to_the_local_index(
    tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory keeps the projection's gap only up to a bound: past it, rows leave memory for
    the local index alone, and PostgreSQL serves again once its checkpoint passes them."""
    monkeypatch.setattr("gateway.store.PG_GAP_COMMANDS", 40)
    s, pg = _start(tmp_path, dsn)
    acked = Acked()
    try:
        asyncio.run(sync(dsn, s.gw.config.data_dir / "journal"))
        _wait(pg.serves, "PostgreSQL history did not come up")
        _load(s, acked, 200)
        assert s.gw.history.flush(s.gw.last_seq)
        asyncio.run(_poke(s))
        store = s.gw.store
        assert store.pg_seq is not None and store.trimmed_seq - store.pg_seq > 40
        assert not pg.serves()
        before = pg.queries
        behind = asyncio.run(_answers(s.ws_api, s.accounts.demo, acked))
        assert pg.queries == before  # all from memory and the local index
        _catch_up(s, dsn)
        assert _compare(s, acked, pg) == behind
    finally:
        s.stop()
