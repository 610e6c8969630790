"""Cluster mode custody across a crash and a lost claim (`gateway.custodylock`), on a real
anvil, a real NATS stream and a real PostgreSQL (the claim's advisory lock, staff sessions):

- a four-eyes decision interrupted between its journaled ``WithdrawalDecision`` and the store's
  record is settled when the custody gateway starts again (it was settled only when the same
  person decided again);
- a gateway whose claim connection is cut stops answering custody actions (503,
  ``CUSTODY_CLAIM_NOT_HELD`` / -4013), says so in ``/health``, and once it holds the claim
  again settles pending decisions and answers again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from engine.streamlog import StreamSpec
from gateway.cluster import ClusterConfig
from gateway.custodylock import lock_key
from tests.backoffice_support import pg_database
from tests.cluster_support import stream_on
from tests.foureyes_support import (
    Anvil,
    ServerThread,
    account,
    address,
    anvil_node,
    approve,
    custody_config,
    on_loop,
    ops,
    rest,
    row,
    staff_login,
    withdraw,
)
from tests.gateway_support import http

anvil = pytest.fixture(scope="module")(anvil_node)


class _Crash(Exception):
    """The process dying at the injected point."""


@pytest.fixture
def dsn() -> Iterator[str]:
    with pg_database() as out:
        yield out


@pytest.fixture
def spec() -> Iterator[StreamSpec]:
    with stream_on() as out:
        yield out


def _gateway(tmp: Path, anvil: Anvil, spec: StreamSpec, dsn: str, **kw: Any) -> ServerThread:
    return ServerThread(
        tmp,
        cluster=ClusterConfig(stream=spec),
        custody=custody_config(tmp, anvil),
        custody_poll_s=0,
        backoffice_dsn=dsn,
        **kw,
    )


def _crash_after_journal(server: ServerThread, wid: int, staff: str) -> None:
    """``staff`` approves ``wid``: journaled, then the process "dies" before the store's
    record, leaving the keyed intent behind."""
    approvals = server.gw.custody.approvals
    real = approvals._decide

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise _Crash

    approvals._decide = crash
    try:
        with pytest.raises(_Crash):
            approve(server, wid, staff)
    finally:
        approvals._decide = real
    assert approvals.decisions(wid) == []
    assert (
        server.gw.custody.custody.store.db.execute(
            "SELECT COUNT(*) FROM decision_intents WHERE withdrawal_id=?", (wid,)
        ).fetchone()[0]
        == 1
    )


def _staff(server: ServerThread, wid: int) -> list[str]:
    return [d.staff_id for d in on_loop(server, server.gw.custody.approvals.decisions, wid)]


def test_an_interrupted_decision_is_settled_when_the_cluster_gateway_starts(
    tmp_path: Path, anvil: Anvil, spec: StreamSpec, dsn: str
) -> None:
    server = _gateway(tmp_path, anvil, spec, dsn)
    try:
        creds, _ = account(server, traded=False)
        wid = withdraw(server, creds, "1", address("cluster-crash"))
        _crash_after_journal(server, wid, "staff-c1")
    finally:
        server.stop()
    server = _gateway(tmp_path, anvil, spec, dsn, fixture_accounts=False)
    try:
        # settled at start, before anyone decides again: recorded once, the retry refused
        assert _staff(server, wid) == ["staff-c1"]
        assert row(server, wid).status == "awaiting_approval"
        from backoffice.errors import ActionRefused

        with pytest.raises(ActionRefused) as info:
            approve(server, wid, "staff-c1")
        assert info.value.code == "ALREADY_DECIDED"
        assert approve(server, wid, "staff-c2").status == "held"
    finally:
        server.stop()


def _wait(what: str, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _custody_health(server: ServerThread) -> dict[str, Any]:
    _, _, body = http("GET", server.http + "/health")
    return dict(body["checks"]["custody"])


class _Taker:
    """Takes the custody claim away from the gateway: a test connection queues for the
    advisory lock, then the gateway's backend is terminated, so the lock passes to the test
    (the gateway's retry cannot win the race) until `give_back`."""

    def __init__(self, dsn: str, stream: str) -> None:
        self.dsn, self.key = dsn, lock_key(stream)
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None

    def take(self) -> None:
        self.loop.run_until_complete(self._take())

    async def _take(self) -> None:
        self.conn = await asyncpg.connect(self.dsn)
        admin = await asyncpg.connect(self.dsn)
        try:
            holders = await admin.fetch(
                "SELECT pid FROM pg_locks WHERE locktype='advisory' AND granted AND "
                "database=(SELECT oid FROM pg_database WHERE datname=current_database())"
            )
            assert len(holders) == 1, holders
            waiting = asyncio.ensure_future(
                self.conn.fetchval("SELECT pg_advisory_lock($1)", self.key)
            )
            await asyncio.sleep(0.2)  # queued behind the gateway's lock
            assert not waiting.done()
            await admin.fetchval("SELECT pg_terminate_backend($1)", holders[0]["pid"])
            await asyncio.wait_for(waiting, 10)
        finally:
            await admin.close()

    def give_back(self) -> None:
        if self.conn is not None:
            self.loop.run_until_complete(self.conn.close())
            self.conn = None

    def close(self) -> None:
        self.give_back()
        self.loop.close()


def test_a_gateway_that_lost_its_claim_refuses_custody_until_it_holds_it_again(
    tmp_path: Path, anvil: Anvil, spec: StreamSpec, dsn: str
) -> None:
    server = _gateway(tmp_path, anvil, spec, dsn)
    taker = _Taker(dsn, spec.name)
    try:
        assert _custody_health(server) == {
            "ok": True, "claim": "held", "stream": spec.name, "losses": 0
        }  # fmt: skip
        creds, _ = account(server, traded=False)
        wid = withdraw(server, creds, "1", address("cluster-lost-1"))
        pending = withdraw(server, creds, "1", address("cluster-lost-2"))
        _crash_after_journal(server, pending, "staff-p")
        f1, token = staff_login(server, "finance")

        taker.take()
        _wait("the claim lost", lambda: server.gw.custody.claim_refusal() is not None)
        health = _custody_health(server)
        assert (health["ok"], health["claim"], health["losses"]) == (False, "lost", 1)
        status, body = ops(server, "POST", f"/withdrawals/{wid}/approve", token)
        assert status == 503, body
        assert body["code"] == "CUSTODY_CLAIM_NOT_HELD"
        assert "does not hold the custody claim" in body["msg"]
        status, body = rest(
            server,
            "POST",
            "/sapi/v1/capital/withdraw/apply",
            creds,
            coin="ETH",
            address=address("cluster-lost-3"),
            amount="1",
        )
        assert (status, body["code"]) == (503, -4013), body
        status, body = rest(server, "POST", "/sapi/v1/capital/withdraw/cancel", creds, id=wid)
        assert (status, body["code"]) == (503, -4013), body
        status, body = rest(server, "GET", "/sapi/v1/capital/deposit/address", creds, coin="ETH")
        assert (status, body["code"]) == (503, -4013), body
        assert _staff(server, wid) == [] and _staff(server, pending) == []
        assert row(server, wid).status == "awaiting_approval"

        taker.give_back()
        _wait("the claim held again", lambda: _custody_health(server)["ok"])
        assert _custody_health(server)["claim"] == "held"
        # taking it back settled the interrupted decision before custody answered again
        assert _staff(server, pending) == ["staff-p"]
        status, body = ops(server, "POST", f"/withdrawals/{wid}/approve", token)
        assert status == 200, body
        assert [d["staff_id"] for d in body["decisions"]] == [f1]
    finally:
        taker.close()
        server.stop()
