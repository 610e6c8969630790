"""Cluster mode on a real 3-node NATS cluster (R3 stream): failures under load.

The harness starts its own three ``nats-server`` nodes (tests/nats_cluster.py) and real
``kootabase serve --nats`` processes. Every scenario asserts that no acknowledged order is
missing from the stream, that the live replicas hold the state hash an independent replay of
the stream computes, and that the replay verifies against every checkpoint the replicas
recorded.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.crosscheck import read_checkpoints, read_reports
from engine.replica import Applied
from engine.schema import OrderAccepted
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from engine.streamreplay import replay_stream
from tests.cluster_procs import GatewayProc, Load, gateways_ready
from tests.cluster_support import unique_stream
from tests.failover_timeline import Advisories, decompose
from tests.nats_cluster import NatsCluster

LOAD_S = 6.0
ELECTION_BOUND_S = 12.0
"""A stream leader's SIGKILL pauses acknowledgements for one Raft election: at most 9 s of
election timeout, 0.8 s of campaign (nats-server raft.go), the gateway's publish retry
(0.1 s pause, 1 s timeout) and the replica's delivery; 12 s leaves ~1 s for a loaded machine.
A second election round exceeds it (seen once in CI: the stream's leader elected 14.5 s after
the kill, the gateways acknowledging 0.03 s later): that length is nats-server's, so a pause
over this bound passes only if the stream's election, seen by advisory or in the nodes' logs,
accounts for all of it but Kootabase's own bound (`PAUSE_SLACK_S`)."""
PAUSE_SLACK_S = 0.5
"""Between the pause (the longest gap between acknowledgements, from the last one before the
kill) and the election plus what follows it: the load's last acknowledgement before the kill
(~0.01 s at its rate) and clock reads on two clocks (monotonic and wall)."""
AFTER_ELECTION_BOUND_S = 2.0
"""What is Kootabase's in that pause: from the new stream leader until every gateway
acknowledged again. The gateway's publishes retry every 0.1 s; the replica's watch re-creates
a consumer that died with the leader at once (no message and no heartbeat for 1 s), retrying
every 0.5 s and at once when a publish is accepted again (`engine.follower`)."""
AFTER_META_BOUND_S = 6.0
"""The same when the metadata leader died too: a consumer cannot be created before its own
election, and for a few seconds after it nats-server 2.9 still placed new R1 consumers on
the dead node (creates never answered; measured 2.5-3.5 s). Kept loose: the server's part."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    c = NatsCluster(tmp_path_factory.mktemp("nats"))
    c.start()
    try:
        c.wait_ready()
        yield c
    finally:
        c.stop()


def _audit(
    urls: str, spec: StreamSpec, load: Load, live: list[GatewayProc], timeout_s: float = 30.0
) -> str:
    """No acknowledged order lost; live replicas and an independent replay agree."""
    options = NatsOptions.parse(urls)

    async def body() -> str:
        sl = await _retry(lambda: StreamLog.connect(options, spec, create=False), timeout_s)
        try:
            accepted: set[int] = set()

            def collect(a: Applied) -> None:
                accepted.update(e.order_id for e in a.events if isinstance(e, OrderAccepted))

            async def audit_replay() -> tuple[dict[int, str], Any]:
                accepted.clear()
                checkpoints = await read_checkpoints(sl)
                _, result = await replay_stream(sl, checkpoints=checkpoints, on_applied=collect)
                return checkpoints, result

            checkpoints, result = await _retry(audit_replay, timeout_s)
            lost = [cid for cid, oid in load.acked.items() if oid not in accepted]
            assert not lost, f"{len(lost)} acknowledged orders missing: {lost[:5]}"
            assert result.rejected_messages == 0
            assert result.verified_checkpoints == len(
                [s for s in checkpoints if s <= result.last_stream_seq]
            )
            deadline = time.monotonic() + timeout_s
            while True:  # every live gateway reports the replay's hash at the stream's end
                try:  # the KV bucket's own stream may still be electing a leader
                    reports = [
                        r
                        for r in await read_reports(sl)
                        if r.checkpoint_seq == result.last_stream_seq
                    ]
                except Exception:
                    reports = []
                if len(reports) >= len(live):
                    assert {r.digest for r in reports} == {result.digest}, reports
                    return result.state_hash
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"replicas did not report at stream seq {result.last_stream_seq}"
                    )
                await asyncio.sleep(0.25)
        finally:
            await sl.close()

    return asyncio.run(body())


async def _retry(call: Any, timeout_s: float) -> Any:
    """JetStream API calls right after a node died may time out while the meta group and the
    KV bucket's stream elect leaders: retry until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await call()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def _at(delay_s: float, action: object) -> threading.Timer:
    t = threading.Timer(delay_s, action)  # type: ignore[arg-type]
    t.start()
    return t


def _gateways(
    tmp_path: Path, urls: str, spec: StreamSpec, n: int = 2, log_level: str = "warning"
) -> list[GatewayProc]:
    first = GatewayProc(tmp_path / "g1", urls, spec.name, log_level=log_level)
    first.start()
    out = [first]
    for i in range(2, n + 1):
        g = GatewayProc(tmp_path / f"g{i}", urls, spec.name, log_level=log_level)
        g.start(keys_from=first)
        out.append(g)
    return out


def test_sigkill_one_of_two_gateways_mid_load(cluster: NatsCluster, tmp_path: Path) -> None:
    spec = unique_stream()
    g1, g2 = _gateways(tmp_path, cluster.urls, spec)
    try:
        assert g1.creds is not None
        load = Load([g1.ws, g2.ws], g1.creds)
        kill_at: list[float] = []
        _at(2.0, lambda: (kill_at.append(time.monotonic()), g2.kill()))
        asyncio.run(load.run(LOAD_S))
        print(f"gateway killed: longest gap between acks {load.pause_after_s(kill_at[0]):.3f} s")
        assert g2.proc is not None and g2.proc.returncode == -9
        assert load.switches >= 2, "the killed gateway's clients went on with the other"
        assert len(load.acked) > 200 and not load.refused
        late = [t for t in load.ack_times if t > load.ack_times[0] + 3.0]
        assert late, "orders were acknowledged after the kill"
        _audit(cluster.urls, spec, load, [g1])
        assert gateways_ready(g1) == [True]
    finally:
        for g in (g1, g2):
            g.stop()


def test_repeated_gateway_kills(cluster: NatsCluster, tmp_path: Path) -> None:
    """SIGKILL a gateway mid-load again and again (alternating, each restarted after its
    round); $KOOTABASE_CLUSTER_KILLS rounds (CI: 2; the benchmark figure is from 20)."""
    kills = int(os.environ.get("KOOTABASE_CLUSTER_KILLS", "2"))
    spec = unique_stream()
    gws = _gateways(tmp_path, cluster.urls, spec)
    creds = gws[0].creds
    assert creds is not None
    total = Load([], creds)
    try:
        for k in range(kills):
            victim = gws[k % 2]
            load = Load([g.ws for g in gws], creds, clients=4)
            _at(1.5, victim.kill)
            asyncio.run(load.run(3.0))
            assert victim.proc is not None and victim.proc.returncode == -9
            assert load.acked and not load.refused
            total.acked.update({f"{k}:{cid}": oid for cid, oid in load.acked.items()})
            total.unknown += load.unknown
            survivor = gws[1 - k % 2]
            fresh = GatewayProc(tmp_path / f"g-restart-{k}", cluster.urls, spec.name)
            fresh.start(keys_from=survivor)
            gws[k % 2] = fresh
        print(
            f"{kills} gateway kills: {len(total.acked)} acknowledged orders, "
            f"{len(total.unknown)} status unknown, 0 lost"
        )
        _audit(cluster.urls, spec, total, gws)
    finally:
        for g in gws:
            g.stop()


def test_sigkill_stream_leader_node_mid_load(cluster: NatsCluster, tmp_path: Path) -> None:
    spec = unique_stream()
    g1, g2 = _gateways(tmp_path, cluster.urls, spec, log_level="info")
    killed = None
    advisories: Advisories | None = None
    try:

        async def leader() -> str:
            # the meta leader may be electing too; a deadline, not a count of attempts that
            # each may wait out a connect and a 5 s API timeout (40 of them: minutes)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline:
                try:
                    sl = await StreamLog.connect(
                        NatsOptions.parse(cluster.urls, first_connect_s=5.0), spec, create=False
                    )
                    try:
                        info = await sl.js.stream_info(spec.name)
                    finally:
                        await sl.close()
                except Exception:
                    await asyncio.sleep(0.25)
                    continue
                assert info.cluster is not None and info.config.num_replicas == 3
                if info.cluster.leader:
                    return str(info.cluster.leader)
            raise AssertionError("no stream leader")

        killed = cluster.node(asyncio.run(leader()))
        survivor = next(n for n in cluster.nodes if n is not killed)
        advisories = Advisories(survivor.url)
        advisories.start()
        assert g1.creds is not None
        kill_at: list[float] = []
        kill_wall: list[float] = []
        # The pause is the stream's Raft election: the followers of a SIGKILLed leader wait a
        # random 4-9 s without heartbeats before they campaign (nats-server's raft.go, not
        # configurable). A fixed 6 s of load after the kill cut off every pause longer than
        # that (no acknowledgement after the kill: "pause" infinite, the test failed), so the
        # load runs until acknowledgements have resumed (at most 30 s).
        load = Load([g1.ws, g2.ws], g1.creds, resume_after=kill_at)
        _at(
            2.0,
            lambda: (
                kill_wall.append(time.time()),
                kill_at.append(time.monotonic()),
                cluster.kill(killed),
            ),
        )
        asyncio.run(load.run(LOAD_S + 2))
        assert kill_at
        pauses = [load.pause_after_s(kill_at[0], g.ws) for g in (g1, g2)]
        pause = max(pauses)
        first_acks = [load.resumed_at(kill_at[0], g.ws) for g in (g1, g2)]
        parts = decompose(
            kill_wall[0],
            [None if t is None else kill_wall[0] + t - kill_at[0] for t in first_acks],
            spec.name,
            advisories,
            [n.log for n in cluster.nodes if n is not killed],
            [g.root / "stderr.log" for g in (g1, g2)],
        )
        print(f"leader kill timeline (s after the kill): {parts}")
        after = parts["after_leaders_s"]
        bound = AFTER_ELECTION_BOUND_S if parts["meta_leader_s"] is None else AFTER_META_BOUND_S
        assert after is None or after <= bound, f"resumed {after} s after the new leaders"
        per_s = [
            sum(1 for t in load.ack_times if k <= t - kill_at[0] < k + 0.5)
            for k in (-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3)
        ]
        print(
            f"stream leader {killed.name} killed: longest gap between acks {pause:.3f} s "
            f"(per gateway {pauses[0]:.3f}, {pauses[1]:.3f}; all clients "
            f"{load.pause_after_s(kill_at[0]):.3f}); acks per 0.5 s from -1 s: {per_s}"
        )
        assert pause != float("inf"), "acknowledgements resumed after the kill"
        if pause >= ELECTION_BOUND_S:  # more than one round: the server's election must be why
            election = parts["election_s"]
            assert election is not None, f"{pause:.3f} s, and no new stream leader was seen"
            assert pause <= election + bound + PAUSE_SLACK_S, (
                f"{pause:.3f} s: more than the election ({election} s) and {bound} s after it"
            )
        assert asyncio.run(leader()) != killed.name, "a new leader was elected"
        _audit(cluster.urls, spec, load, [g1, g2])
    finally:
        if advisories is not None:
            advisories.stop()
        for g in (g1, g2):
            g.stop()
        if killed is not None:
            cluster.start(killed)
            cluster.wait_ready()


def test_gateway_loses_its_nats_node(cluster: NatsCluster, tmp_path: Path) -> None:
    """The gateway knows one node only; that node dies and comes back. Pending requests are
    answered (acknowledged, or 'status unknown'), never left hanging, and it reconnects."""
    spec = unique_stream()
    node = cluster.nodes[2]
    g1 = GatewayProc(tmp_path / "g1", cluster.urls, spec.name)
    g1.start()
    lonely = GatewayProc(tmp_path / "lonely", node.url, spec.name)
    try:
        lonely.start(keys_from=g1)
        assert g1.creds is not None
        load = Load([lonely.ws], g1.creds, clients=3)
        marks: list[float] = []
        _at(2.0, lambda: (marks.append(time.monotonic()), cluster.kill(node)))
        _at(4.0, lambda: (marks.append(time.monotonic()), cluster.start(node)))
        asyncio.run(load.run(LOAD_S + 2))
        assert len(marks) == 2
        print(
            f"NATS node of a gateway down {marks[1] - marks[0]:.1f} s: longest gap between acks "
            f"{load.pause_after_s(marks[0]):.3f} s; {len(load.acked)} "
            f"acknowledged, {len(load.unknown)} answered 'status unknown'"
        )
        answered = len(load.acked) + len(load.unknown) + len(load.refused)
        assert answered > 100 and not load.refused
        assert [t for t in load.ack_times if t > marks[1]], "it serves again after the outage"
        _audit(cluster.urls, spec, load, [g1, lonely])
    finally:
        for g in (g1, lonely):
            g.stop()
        cluster.wait_ready()


def test_dead_mans_switch_fires_through_another_gateways_tick(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    """The gateway that armed a dead-man's switch dies with the session; no traffic follows.
    The other gateway's replica sees the switch due and publishes a Tick, so the orders are
    cancelled on time anyway (timers are journaled commands any gateway may publish)."""
    from engine.schema import Tick
    from gateway.client import WsApiClient

    spec = unique_stream()
    g1, g2 = _gateways(tmp_path, cluster.urls, spec)
    try:
        assert g1.creds is not None

        async def arm() -> int:
            async with WsApiClient.connect(g1.ws, g1.creds) as c:
                r = await c.place_order(
                    "BTCUSDT",
                    "BUY",
                    "LIMIT",
                    quantity="0.0010",
                    price="10000.00",
                    time_in_force="GTC",
                )
                armed = await c.dead_mans_switch(1_500)
                assert armed["armed"] is True
                return int(r["orderId"])

        order_id = asyncio.run(arm())
        g1.kill()
        armed_at = time.monotonic()

        async def watch() -> tuple[str, float]:
            async with WsApiClient.connect(g2.ws, g1.creds) as c:
                while time.monotonic() - armed_at < 20:
                    st = await c.order_status("BTCUSDT", order_id=order_id)
                    if st["status"] != "NEW":
                        return str(st["status"]), time.monotonic() - armed_at
                    await asyncio.sleep(0.1)
            raise AssertionError("the switch never fired")

        status, after_s = asyncio.run(watch())
        print(f"dead-man's switch fired {after_s:.2f} s after its gateway died")
        assert status == "CANCELED" and after_s < 10

        async def ticks() -> int:
            sl = await StreamLog.connect(NatsOptions.parse(cluster.urls), spec, create=False)
            try:
                n = 0

                def count(a: Applied) -> None:
                    nonlocal n
                    n += sum(1 for c in a.commands if isinstance(c, Tick))

                await replay_stream(sl, on_applied=count)
                return n
            finally:
                await sl.close()

        assert asyncio.run(ticks()) >= 1
    finally:
        for g in (g1, g2):
            g.stop()
