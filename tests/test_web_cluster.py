"""The venue health overview (``GET /ops/v1/health/overview``) and its console panel, in a real
browser, against two gateway replicas on a real 3-node NATS cluster (an R3 stream, started by
the test: `tests.nats_cluster`), then against a single-process gateway.

What must show: every replica (not only the one answering) with its stream position, lag and
digest, and the hashes agreeing; a replica whose digest differs at the same point turns the
verdict to ``disagree`` and its row to DIFFERS; the stream's Raft leader and its two peers,
current, then one of them not current once its node is killed; single-process mode shows the
one process. Staff only (401 without a session); every role may read it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyotp

from engine.crosscheck import ReplicaReport, hash_bucket, now_ms, report
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway.admin import Admin
from gateway.cluster import ClusterConfig
from tests.cluster_support import unique_stream
from tests.gateway_support import ServerThread, http
from tests.nats_cluster import NatsCluster
from tests.web_support import (
    STAFF_PASSWORD,
    browser_pages,
    make_staff,
    require_browser,
    staff_console,
)

FORGED = "f0f0f0f0"


def _token(server: ServerThread, email: str, role: str) -> str:
    secret = make_staff(server, email, role)
    body = json.dumps(
        {"email": email, "password": STAFF_PASSWORD, "totp": pyotp.TOTP(secret).now()}
    )
    status, _, out = http("POST", f"{server.http}/ops/v1/auth/login", body=body)
    assert status == 200, out
    return str(out["access_token"])


def _overview(server: ServerThread, token: str) -> dict[str, Any]:
    status, _, out = http(
        "GET", f"{server.http}/ops/v1/health/overview", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, out
    return dict(out)


def _until(what: str, fn: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        out = fn()
        if out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        time.sleep(0.2)


def _forge_report(
    server: ServerThread, opts: NatsOptions, spec: StreamSpec, checkpoint_seq: int, stream_seq: int
) -> None:
    """A third replica's report with another digest at the same point (as a diverged one)."""

    async def body() -> None:
        sl = await StreamLog.connect(opts, spec, create=False)
        try:
            kv = await hash_bucket(sl, create=False)
            rep = ReplicaReport(
                FORGED, stream_seq, 0, "0" * 32, checkpoint_seq, now_ms(), "gateway"
            )
            await report(kv, rep)
        finally:
            await sl.close()

    server.call(body())  # on the server's loop: Playwright's runs in this thread


def test_overview_of_two_replicas_in_the_console(tmp_path: Path) -> None:
    require_browser()
    nodes = NatsCluster(tmp_path / "nats")
    nodes.start()
    servers: list[ServerThread] = []
    try:
        nodes.wait_ready()
        opts = NatsOptions(servers=tuple(n.url for n in nodes.nodes))
        spec = StreamSpec(name=unique_stream().name, replicas=3)
        for name in ("a", "b"):
            servers.append(
                ServerThread(
                    tmp_path / name,
                    fixture_accounts=False,
                    marketdata=False,
                    cluster=ClusterConfig(nats=opts, stream=spec),
                )
            )
        a, b = servers
        ids = {f"{s.gw.bridge.origin:x}" for s in servers}
        b.call(Admin(b.gw).create_account())  # through b: both replicas move
        status, _, _ = http("GET", f"{a.http}/ops/v1/health/overview")
        assert status == 401, "staff only"
        token = _token(a, "support@ops.example.com", "support")

        def agreed() -> dict[str, Any] | None:
            o = _overview(a, token)
            head = o["stream"]["last_stream_seq"]
            ok = (
                {r["replica"] for r in o["replicas"]} == ids
                and all(r["stream_seq"] == head for r in o["replicas"])
                and o["agreement"] == "agree"
            )
            return o if ok else None

        o = _until("both replicas report and agree", agreed)
        assert o["mode"] == "cluster" and o["error"] == ""
        assert o["self"]["replica"] == f"{a.gw.bridge.origin:x}"
        assert [r["self"] for r in o["replicas"] if r["replica"] == o["self"]["replica"]] == [True]
        stream = _until("both stream peers current", lambda: _peers_current(a, token))
        assert stream["name"] == spec.name and stream["replicas"] == 3, stream
        assert stream["clustered"] and stream["leader"] in {n.name for n in nodes.nodes}
        assert stream["last_stream_seq"] == a.gw.bridge.replica.stream_seq
        assert stream["healthy"] and all(not p["offline"] for p in stream["peers"])
        for r in o["replicas"]:
            assert (r["lag"], r["stream_seq"]) == (0, stream["last_stream_seq"]), r
            assert r["agrees"] is True and not r["stale"], r
        assert o["ledger_follower"] is None and o["custody"] == []

        with browser_pages(a.http) as pages:
            page = staff_console(
                pages,
                "auditor@ops.example.com",
                make_staff(a, "auditor@ops.example.com", "auditor"),
            )
            page.wait_for_selector("#c-overview[data-agreement='agree'] tr:nth-child(2)")
            assert page.locator("#c-overview tr").count() == 2
            text = page.inner_text("#c-overview")
            assert all(i in text for i in ids) and "(this)" in text, text
            assert "hashes: agree" in page.inner_text("#c-overview-msg")
            pages.shot(page, "console-overview-cluster")

            # a replica that hashed the same point differently: the verdict turns
            now = _until("agreement where the replicas stand now", agreed)
            mine = next(r for r in now["replicas"] if r["self"])
            _forge_report(a, opts, spec, mine["checkpoint_seq"], mine["stream_seq"])
            forged = _overview(a, token)
            assert forged["agreement"] == "disagree", json.dumps(forged["replicas"])
            verdicts = {r["replica"]: r["agrees"] for r in forged["replicas"]}
            assert verdicts == {FORGED: False} | {i: True for i in ids}, "the majority agrees"
            page.wait_for_selector("#c-overview[data-agreement='disagree']")
            assert "DIFFERS" in page.inner_text("#c-overview")
            assert "disagree" in page.inner_text("#c-overview-msg")
            pages.shot(page, "console-overview-disagree")

            # a NATS node that holds a copy of the stream goes away: its peer is not current
            follower = next(n for n in nodes.nodes if n.name != stream["leader"])
            nodes.kill(follower)
            _until(
                "the killed peer shows not current",
                lambda: not _stream(a, token)["healthy"],
                timeout_s=30.0,
            )
            peer = next(p for p in _stream(a, token)["peers"] if p["name"] == follower.name)
            assert not peer["current"] or peer["offline"], peer
            page.wait_for_selector(
                f"#c-peers tr:has-text('{follower.name}'):is(:has-text('offline'), "
                ":has-text('lagging'))"
            )
            pages.shot(page, "console-overview-peer-down")
            pages.no_errors(404)  # panels of parts not run here (custody, AML) answer 404 and hide
    finally:
        for s in servers:
            s.stop()
        nodes.stop()


def _stream(server: ServerThread, token: str) -> dict[str, Any]:
    out: dict[str, Any] = _overview(server, token)["stream"]
    return out


def _peers_current(server: ServerThread, token: str) -> dict[str, Any] | None:
    stream = _stream(server, token)
    peers = stream["peers"]
    return stream if len(peers) == 2 and all(p["current"] for p in peers) else None


def test_overview_of_a_single_process_in_the_console(tmp_path: Path) -> None:
    require_browser()
    server = ServerThread(tmp_path, fixture_accounts=False, marketdata=False)
    try:
        o = _overview(server, _token(server, "finance@ops.example.com", "finance"))
        assert (o["mode"], o["agreement"], o["stream"], o["replicas"]) == (
            "single",
            "single",
            None,
            [],
        )
        assert o["self"]["replica"] == "local" and o["self"]["last_seq"] == server.gw.last_seq
        with browser_pages(server.http) as pages:
            page = staff_console(
                pages, "admin@ops.example.com", make_staff(server, "admin@ops.example.com", "admin")
            )
            page.wait_for_selector("#c-overview[data-agreement='single'] tr")
            assert page.locator("#c-overview tr").count() == 1
            assert "local (this)" in page.inner_text("#c-overview")
            assert "single process" in page.inner_text("#c-overview-msg")
            assert "not clustered" in page.inner_text("#c-peers")
            pages.no_errors(404)  # panels of parts not run here (custody, AML) answer 404 and hide
    finally:
        server.stop()
