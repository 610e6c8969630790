"""Dead-man's switch and cancel-on-disconnect through a real gateway.

Both are the engine's journaled commands (SetDeadMansSwitch fired on journal time, carried by
an idle Tick; CancelOnDisconnect), so the journal alone explains every cancel: the tests look
at the journal's commands and the events a fresh engine gives for them, and a replay from
genesis must give the running gateway's state hash, also across a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.schema import (
    CancelAll,
    CancelOnDisconnect,
    CancelReason,
    DeadMansSwitchFired,
    OrderCancelled,
    SetDeadMansSwitch,
    Tick,
)
from gateway.client import ClientError, WsApiClient
from gateway.ratelimit import Limits
from tests.gateway_support import Journaled, ServerThread, http, journal_replay

LIMITS = Limits(tick_interval_s=0.05)
FIRE_BOUND_S = 1.5
"""How late after its timeout a switch may fire (ticker wake-up + one group commit), generous
for the shared 2-core machine; the journal checks below are exact."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("dms"), LIMITS)
    yield s
    s.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def place(c: WsApiClient, symbol: str, side: str, price: str, qty: str = "1") -> int:
    o = await c.place_order(symbol, side, "LIMIT", quantity=qty, price=price, time_in_force="GTC")
    assert o["status"] == "NEW"
    return int(o["orderId"])


async def status(c: WsApiClient, symbol: str, oid: int) -> str:
    return str((await c.order_status(symbol, order_id=oid))["status"])


async def cancelled_reports(c: WsApiClient, oids: set[int], timeout: float) -> float:
    """Wait for a CANCELED executionReport of each order; monotonic time of the last one."""
    left = set(oids)
    deadline = time.monotonic() + timeout
    while left:
        ev = await c.next_event(max(0.01, deadline - time.monotonic()))
        if ev["e"] == "executionReport" and ev["x"] == "CANCELED":
            assert ev["X"] == "CANCELED" and ev["i"] in left, ev
            left.discard(ev["i"])
    return time.monotonic()


def cancels(records: list[Journaled], kind: type, account_id: int) -> list[Journaled]:
    """Commands of ``kind`` whose events cancel orders of ``account_id``."""
    return [
        r
        for r in records
        if isinstance(r.command, kind)
        and any(isinstance(e, OrderCancelled) and e.account_id == account_id for e in r.events)
    ]


def fired_in(r: Journaled, account_id: int) -> tuple[int, set[int], set[int]]:
    """(fire_at_ns, orders cancelled by the switch, their reasons) in one command's events."""
    fire_at = next(
        e.fire_at_ns
        for e in r.events
        if isinstance(e, DeadMansSwitchFired) and e.account_id == account_id
    )
    gone = [e for e in r.events if isinstance(e, OrderCancelled) and e.account_id == account_id]
    return fire_at, {e.order_id for e in gone}, {e.reason for e in gone}


def test_switch_fires_on_journal_time_without_traffic(server: ServerThread) -> None:
    acc = server.accounts
    maker = acc.maker_id

    async def body() -> tuple[list[int], int, dict[str, Any]]:
        async with WsApiClient.connect(server.ws_api, acc.ed) as other:
            await other.logon()
            other_oid = await place(other, "ETHUSDT", "BUY", "1000")
            async with WsApiClient.connect(server.ws_api, acc.maker) as c:
                await c.logon()
                await c.subscribe_user_data()
                oids = [
                    await place(c, "ETHUSDT", "SELL", "5000"),
                    await place(c, "BTCUSDT", "SELL", "90000", "0.01"),
                ]
                sent = time.monotonic()
                armed = await c.dead_mans_switch(300)
                assert armed["armed"] is True
                assert 0 < armed["fireAt"] - armed["serverTime"] <= 300
                # No request from here on: only the gateway's Tick can carry time forward.
                done = await cancelled_reports(c, set(oids), 300 / 1000 + FIRE_BOUND_S)
                assert 0.3 <= done - sent <= 0.3 + FIRE_BOUND_S
                assert await status(c, "ETHUSDT", oids[0]) == "CANCELED"
            assert await status(other, "ETHUSDT", other_oid) == "NEW"
            await other.cancel_order("ETHUSDT", order_id=other_oid)
        return oids, other_oid, armed

    oids, other_oid, armed = run(body())
    server.wait_idle()
    seq, live = server.seq_and_hash()
    records, replayed = journal_replay(server.gw, seq)
    assert replayed == live
    armed_at = max(r.seq for r in records if isinstance(r.command, SetDeadMansSwitch))
    fire = cancels(records, Tick, maker)[-1]
    fire_at, gone, reasons = fired_in(fire, maker)
    assert fire_at // 1_000_000 == armed["fireAt"] and fire.ts >= fire_at
    assert gone == set(oids) and reasons == {CancelReason.DEAD_MANS_SWITCH}
    assert other_oid not in {e.order_id for e in fire.events if isinstance(e, OrderCancelled)}
    assert sum(isinstance(r.command, Tick) for r in records if r.seq > armed_at) == 1
    assert not any(isinstance(r.command, CancelAll) for r in records)
    assert maker not in server.gw.store.dead_mans
    # market data reflects the engine's cancels
    code, _, depth = http("GET", server.http + "/api/v3/depth", query="symbol=ETHUSDT")
    assert code == 200 and all(float(p) != 5000 for p, _ in depth["asks"])
    # fired and disarmed: an idle exchange journals nothing
    idle_seq = server.gw.node.last_seq
    time.sleep(0.4)
    assert server.gw.node.last_seq == idle_seq


def test_refresh_postpones_and_zero_disarms(server: ServerThread) -> None:
    acc = server.accounts
    maker = acc.maker_id

    async def body() -> tuple[int, dict[str, Any]]:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            await c.subscribe_user_data()
            oid = await place(c, "ETHUSDT", "SELL", "5001")
            t0 = time.monotonic()
            first = await c.dead_mans_switch(800)
            await asyncio.sleep(0.4)
            second = await c.dead_mans_switch(1500)
            assert second["armed"] is True and second["fireAt"] >= first["fireAt"] + 400
            await asyncio.sleep(max(0.0, t0 + 1.1 - time.monotonic()))  # past the first time
            assert await status(c, "ETHUSDT", oid) == "NEW"
            await cancelled_reports(c, {oid}, 1.5 + FIRE_BOUND_S)

            kept = await place(c, "ETHUSDT", "SELL", "5002")
            assert (await c.dead_mans_switch(300))["armed"] is True
            disarmed = await c.dead_mans_switch(0)
            assert disarmed["armed"] is False and "fireAt" not in disarmed
            assert maker not in server.gw.store.dead_mans
            seq = server.gw.node.last_seq
            await asyncio.sleep(0.8)
            assert await status(c, "ETHUSDT", kept) == "NEW"
            assert server.gw.node.last_seq == seq  # nothing armed: no Tick
            await c.cancel_order("ETHUSDT", order_id=kept)
        return oid, second

    oid, second = run(body())
    server.wait_idle()
    records, _ = journal_replay(server.gw)
    fire = next(
        r
        for r in reversed(records)
        if any(isinstance(e, DeadMansSwitchFired) and e.account_id == maker for e in r.events)
    )
    fire_at, gone, _ = fired_in(fire, maker)
    assert fire_at // 1_000_000 == second["fireAt"] and gone == {oid}


def test_cancel_on_disconnect_cancels_exactly_that_account(server: ServerThread) -> None:
    acc = server.accounts
    demo = acc.demo_id

    async def body() -> tuple[set[int], int]:
        async with WsApiClient.connect(server.ws_api, acc.ed) as other:
            await other.logon()
            other_oid = await place(other, "BTCUSDT", "BUY", "1000", "0.01")
            async with WsApiClient.connect(server.ws_api, acc.demo) as c:
                await c.logon(cancel_on_disconnect=True)
                oids = {
                    await place(c, "ETHUSDT", "SELL", "6000"),
                    await place(c, "BTCUSDT", "SELL", "95000", "0.01"),
                    await place(c, "LTCUSDT", "BUY", "10"),
                }
            async with WsApiClient.connect(server.ws_api, acc.demo) as c:  # no cancelOnDisconnect
                await c.logon()
                for _ in range(250):
                    got = {o["orderId"] for o in await c.open_orders()}
                    if not got & oids:
                        break
                    await asyncio.sleep(0.02)
                assert not got & oids
                kept = await place(c, "ETHUSDT", "SELL", "6001")
            await asyncio.sleep(0.3)
            async with WsApiClient.connect(server.ws_api, acc.demo) as c:
                await c.logon()
                assert await status(c, "ETHUSDT", kept) == "NEW"
                await c.cancel_order("ETHUSDT", order_id=kept)
            assert await status(other, "BTCUSDT", other_oid) == "NEW"
            await other.cancel_order("BTCUSDT", order_id=other_oid)
        return oids, other_oid

    oids, other_oid = run(body())
    server.wait_idle()
    seq, live = server.seq_and_hash()
    records, replayed = journal_replay(server.gw, seq)
    assert replayed == live
    cod = cancels(records, CancelOnDisconnect, demo)[-1]
    assert cod.command == CancelOnDisconnect(account_id=demo)
    gone = [e for e in cod.events if isinstance(e, OrderCancelled)]
    assert other_oid not in {e.order_id for e in gone}
    assert {e.order_id for e in gone} == oids and all(e.account_id == demo for e in gone)
    assert {e.reason for e in gone} == {CancelReason.DISCONNECT}
    assert sum(isinstance(r.command, CancelOnDisconnect) for r in records if r.seq > cod.seq) == 0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (-1, -1130),
        ("-1", -1100),
        (1.5, -1100),
        ("abc", -1100),
        (True, -1100),
        ([100], -1100),
        (None, -1102),
        ("", -1102),
        (50, -1130),
        (86_400_001, -1130),
        (10**30, -1130),
        ("9" * 20, -1100),
    ],
)
def test_bad_timeouts_are_refused_and_change_nothing(
    server: ServerThread, value: Any, code: int
) -> None:
    acc = server.accounts
    server.wait_idle()
    before = server.seq_and_hash()

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            params = {} if value is None else {"timeoutMs": value}
            with pytest.raises(ClientError) as err:
                await c.request("deadMansSwitch.set", params, signed=True)
            assert err.value.status == 400 and err.value.code == code and err.value.msg

    run(body())
    server.wait_idle()
    assert server.seq_and_hash() == before
    assert acc.maker_id not in server.gw.store.dead_mans


def test_read_only_key_cannot_arm(server: ServerThread) -> None:
    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, server.accounts.reader) as c:
            with pytest.raises(ClientError) as err:
                await c.dead_mans_switch(1_000)
            assert err.value.code == -2015

    before = server.seq_and_hash()
    run(body())
    assert server.seq_and_hash() == before


def test_switch_armed_before_a_restart_fires_after_it(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, LIMITS)
    acc = s.accounts

    async def arm() -> tuple[int, dict[str, Any]]:
        async with WsApiClient.connect(s.ws_api, acc.maker) as c:
            await c.logon()
            oid = await place(c, "ETHUSDT", "SELL", "5000")
            return oid, await c.dead_mans_switch(1_500)

    try:
        oid, armed = run(arm())
        fire_at = s.gw.store.dead_mans.get(acc.maker_id)
        assert fire_at is not None and fire_at // 1_000_000 == armed["fireAt"]
    finally:
        s.stop()
    s2 = ServerThread(tmp_path, LIMITS, fixture_accounts=False)  # same data dir
    try:
        # Rebuilt from the journal; a start-up slower than the 1.5 s switch (a loaded
        # machine) may already have fired it, which the Tick checked below then shows.
        assert s2.gw.store.dead_mans.get(acc.maker_id) in (fire_at, None)

        async def wait() -> None:
            async with WsApiClient.connect(s2.ws_api, acc.maker) as c:
                await c.logon()
                deadline = time.monotonic() + 1.5 + FIRE_BOUND_S + 2.0
                while await status(c, "ETHUSDT", oid) != "CANCELED":
                    assert time.monotonic() < deadline, "switch did not fire after restart"
                    await asyncio.sleep(0.02)

        run(wait())
        assert s2.gw.dead_mans.ticks == 1
        s2.wait_idle()
        seq, live = s2.seq_and_hash()
        records, replayed = journal_replay(s2.gw, seq)
        assert replayed == live
        (fire,) = cancels(records, Tick, acc.maker_id)
        assert fired_in(fire, acc.maker_id)[1] == {oid} and fire.ts >= fire_at
    finally:
        s2.stop()


def test_a_switch_fired_by_another_command_does_not_leak_into_its_answer(
    server: ServerThread,
) -> None:
    """Without the ticker, a due switch fires in the sweep before the next command, whoever
    sends it: those events precede the command's own and must not be taken for its answer."""
    acc = server.accounts
    server.call(server.gw.dead_mans.stop())

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, acc.maker) as m,
            WsApiClient.connect(server.ws_api, acc.ed) as other,
        ):
            await m.logon()
            await other.logon()
            for method in ("cancel", "cancelAll"):
                mine = await place(other, "ETHUSDT", "BUY", "1000")
                swept = await place(m, "ETHUSDT", "SELL", "7000")
                await m.dead_mans_switch(100)
                await asyncio.sleep(0.3)  # due, but nothing has carried journal time past it
                assert await status(m, "ETHUSDT", swept) == "NEW"
                if method == "cancel":
                    got = [await other.cancel_order("ETHUSDT", order_id=mine)]
                else:
                    got = await other.cancel_all("ETHUSDT")
                assert [o["orderId"] for o in got] == [mine], method
                assert await status(m, "ETHUSDT", swept) == "CANCELED"

    async def restart_ticker() -> None:
        server.gw.dead_mans.start()

    try:
        run(body())
    finally:
        server.call(restart_ticker())


def test_replay_of_the_journal_gives_the_same_state(server: ServerThread) -> None:
    """The module's whole journal (every switch, tick and disconnect above) from genesis."""
    server.wait_idle()
    seq, live = server.seq_and_hash()
    records, replayed = journal_replay(server.gw, seq)
    assert records[-1].seq == seq and replayed == live
