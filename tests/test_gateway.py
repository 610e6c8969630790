"""Gateway over real sockets: WS API and REST in the Binance Spot dialect, auth, errors, limits,
user data, cancel-on-disconnect, dead-man's switch, restart from the journal, the admin CLI."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from engine.node import EngineNode, NodeConfig
from gateway import clientids
from gateway.client import ClientError, Credentials, RestClient, WsApiClient
from gateway.ratelimit import Limits
from tests.gateway_support import ServerThread, http, signed_query


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("gw"))
    yield s
    s.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- client ids ----------------------------------------------------------------------------


def test_client_ids_short_are_reversible_and_long_hash_high() -> None:
    for s in ("a", "-", "zzzzzzzzzz", "abc-_123", "0"):
        v = clientids.encode(s)
        assert 0 < v < clientids.HASHED_BASE
        assert clientids.decode_short(v) == s
    long = "x-TKT5PX2F" + "a" * 20
    v = clientids.encode(long)
    assert clientids.HASHED_BASE <= v < 1 << 63
    assert clientids.decode_short(v) is None
    assert len({clientids.encode(c * n) for c in "aZ9" for n in range(1, 11)}) == 30


# ---- WS API ---------------------------------------------------------------------------------


def test_ws_round_trip_hmac_with_user_stream(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:
            assert await c.request("ping") == {}
            logon = await c.logon()
            assert logon["apiKey"] == acc.demo.api_key
            await c.subscribe_user_data()
            placed = await c.place_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity="0.0100",
                price="20000.00",
                time_in_force="GTC",
                client_order_id="rt-1",
            )
            assert placed["status"] == "NEW" and placed["clientOrderId"] == "rt-1"
            assert placed["price"] == "20000.000000" and placed["origQty"] == "0.01000000"
            assert any(r["rateLimitType"] == "ORDERS" for r in c.rate_limits)
            oid = placed["orderId"]
            status = await c.order_status("BTCUSDT", client_order_id="rt-1")
            assert status["orderId"] == oid and status["status"] == "NEW"
            amended = await c.amend_keep_priority("BTCUSDT", "0.0050", order_id=oid)
            assert amended["amendedOrder"]["origQty"] == "0.00500000"
            cancelled = await c.cancel_order("BTCUSDT", client_order_id="rt-1")
            assert cancelled["status"] == "CANCELED" and cancelled["orderId"] == oid
            kinds: list[str] = []
            positions = 0
            while "CANCELED" not in kinds:
                ev = await c.next_event()
                if ev["e"] == "executionReport":
                    assert ev["i"] == oid and ev["c"] == "rt-1"
                    kinds.append(ev["x"])
                else:
                    positions += ev["e"] == "outboundAccountPosition"
            assert kinds == ["NEW", "REPLACED", "CANCELED"] and positions >= 2
            with pytest.raises(ClientError) as err:
                await c.cancel_order("BTCUSDT", order_id=oid)
            assert err.value.code == -2011

    run(body())


def test_ws_ed25519_per_request_and_logon_and_trade(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, acc.ed) as ed,
            WsApiClient.connect(server.ws_api, acc.maker) as mk,
        ):
            # per-request Ed25519 signatures (no logon)
            sell = await ed.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="31000", time_in_force="GTC"
            )
            assert sell["status"] == "NEW"
            await mk.logon()
            buy = await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="31000", time_in_force="IOC"
            )
            assert buy["status"] == "FILLED"
            assert buy["fills"][0]["price"] == "31000.000000"
            await ed.logon()
            st = await ed.order_status("BTCUSDT", order_id=sell["orderId"])
            assert st["status"] == "FILLED" and st["executedQty"] == "0.01000000"
            acct = await ed.account()
            btc = next(b for b in acct["balances"] if b["asset"] == "BTC")
            assert btc["free"] == "9.99000000"

    run(body())


def test_ws_errors_are_clear_and_change_nothing(server: ServerThread) -> None:
    acc = server.accounts
    server.wait_idle()
    before = server.state_hash()

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:

            async def code(method: str, params: dict[str, Any], signed: bool = True) -> int:
                with pytest.raises(ClientError) as err:
                    await c.request(method, params, signed=signed)
                return err.value.code

            base = {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "20000",
            }
            assert await code("order.place", base, signed=False) == -1002
            assert await code("order.place", {**base, "price": "20000.005"}) == -1013
            assert await code("order.place", {**base, "price": "20000.0000001"}) == -1111
            assert await code("order.place", {**base, "quantity": "0.00001"}) == -1013
            assert await code("order.place", {**base, "quantity": "0.0001", "price": "1"}) == -1013
            assert await code("order.place", {**base, "symbol": "NOPE"}) == -1121
            assert await code("order.place", {**base, "side": "UP"}) == -1117
            assert await code("order.place", {**base, "price": 1.5}) == -1100
            assert await code("order.place", {**base, "quantity": "-1"}) == -1100
            assert await code("order.place", {**base, "quantity": "1000000"}) == -2010
            assert await code("order.place", {**base, "type": "STOP_LOSS"}) == -1106
            assert await code("order.place", {**base, "icebergQty": "0.02"}) == -1013
            assert await code("order.cancel", {"symbol": "BTCUSDT", "orderId": 424242}) == -2011
            assert await code("order.status", {"symbol": "BTCUSDT", "orderId": 424242}) == -2013
            assert await code("no.such.method", {}) == -1102
            # bad signature, stale timestamp, replay
            params = c._sign(dict(base))
            params["signature"] = "0" * 64
            assert await code("order.place", params, signed=False) == -1022
            stale = {**base, "apiKey": acc.demo.api_key, "timestamp": 1_000}
            from gateway.client.ws import _payload

            stale["signature"] = acc.demo.sign(_payload(stale))
            assert await code("order.place", stale, signed=False) == -1021
            # read-only key cannot trade
            async with WsApiClient.connect(server.ws_api, acc.reader) as r:
                with pytest.raises(ClientError) as err:
                    await r.place_order(
                        "BTCUSDT",
                        "BUY",
                        "LIMIT",
                        quantity="0.01",
                        price="20000",
                        time_in_force="GTC",
                    )
                assert err.value.code == -2015
                assert (await r.account())["canTrade"] is False

    run(body())
    server.wait_idle()
    assert server.state_hash() == before


def test_ws_replayed_signature_refused(server: ServerThread) -> None:
    acc = server.accounts
    with ws_connect(server.ws_api) as ws:
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "10000",
            "apiKey": acc.demo.api_key,
            "timestamp": int(time.time() * 1000),
        }
        from gateway.client.ws import _payload

        params["signature"] = acc.demo.sign(_payload(params))
        frame = json.dumps({"id": 1, "method": "order.place", "params": params})
        ws.send(frame)
        first = json.loads(ws.recv())
        assert first["status"] == 200
        ws.send(frame)
        second = json.loads(ws.recv())
        assert second["status"] == 400 and second["error"]["code"] == -1022


def test_oversize_frame_closes_only_that_connection(server: ServerThread) -> None:
    with ws_connect(server.ws_api, max_size=None) as ws:
        ws.send("x" * (server.gw.config.limits.max_message_bytes + 10))
        with pytest.raises(Exception):  # noqa: B017 - closed by the server (1009)
            ws.recv(timeout=5)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009
    with ws_connect(server.ws_api) as ws:
        ws.send(json.dumps({"id": "a", "method": "time"}))
        assert json.loads(ws.recv())["status"] == 200


def test_cancel_on_disconnect_and_dead_mans_switch(server: ServerThread) -> None:
    """Smoke test over the SDK; the journal-level checks (engine commands, reasons, idle Tick,
    replay) are in tests/test_gateway_deadman.py."""
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon(cancel_on_disconnect=True)
            o = await c.place_order(
                "ETHUSDT", "SELL", "LIMIT", quantity="1", price="5000", time_in_force="GTC"
            )
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            for _ in range(100):
                st = await c.order_status("ETHUSDT", order_id=o["orderId"])
                if st["status"] == "CANCELED":
                    break
                await asyncio.sleep(0.02)
            assert st["status"] == "CANCELED"
            o2 = await c.place_order(
                "ETHUSDT", "SELL", "LIMIT", quantity="1", price="5000", time_in_force="GTC"
            )
            armed = await c.dead_mans_switch(150)
            assert armed["armed"] is True
            await asyncio.sleep(0.5)
            st = await c.order_status("ETHUSDT", order_id=o2["orderId"])
            assert st["status"] == "CANCELED"

    run(body())


def test_cancel_replace_and_cancel_all(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            o = await c.place_order(
                "LTCUSDT", "BUY", "LIMIT", quantity="1", price="50", time_in_force="GTC"
            )
            res = await c.cancel_replace(
                "LTCUSDT", o["orderId"], "BUY", "LIMIT", quantity="2", price="51", timeInForce="GTC"
            )
            assert res["cancelResult"] == "SUCCESS" and res["newOrderResult"] == "SUCCESS"
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "LTCUSDT",
                    o["orderId"],
                    "BUY",
                    "LIMIT",
                    quantity="2",
                    price="51",
                    timeInForce="GTC",
                )
            assert err.value.code == -2022 and err.value.status == 400
            await c.place_order(
                "LTCUSDT", "BUY", "LIMIT", quantity="1", price="49", time_in_force="GTC"
            )
            cancelled = await c.cancel_all("LTCUSDT")
            assert len(cancelled) == 2
            assert await c.open_orders("LTCUSDT") == []

    run(body())


# ---- REST -----------------------------------------------------------------------------------


def test_rest_signed_endpoints(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with RestClient(server.http, acc.demo) as rc:
            assert await rc.request("GET", "/api/v3/ping") == {}
            info = await rc.request("GET", "/api/v3/exchangeInfo")
            btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
            assert {f["filterType"] for f in btc["filters"]} >= {"PRICE_FILTER", "LOT_SIZE"}
            placed = await rc.request(
                "POST",
                "/api/v3/order",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.02",
                    "price": "15000",
                    "newClientOrderId": "x-" + "r" * 30,
                },
                signed=True,
            )
            assert placed["clientOrderId"] == "x-" + "r" * 30
            assert "X-MBX-ORDER-COUNT-10S" in rc.last_headers
            assert int(rc.last_headers["X-MBX-USED-WEIGHT-1M"]) > 0
            got = await rc.request(
                "GET",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "origClientOrderId": "x-" + "r" * 30},
                signed=True,
            )
            assert got["orderId"] == placed["orderId"]
            opened = await rc.request(
                "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True
            )
            assert placed["orderId"] in [o["orderId"] for o in opened]
            assert (
                await rc.request(
                    "POST",
                    "/api/v3/order/test",
                    {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
                    signed=True,
                )
                == {}
            )
            deleted = await rc.request(
                "DELETE",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "orderId": placed["orderId"]},
                signed=True,
            )
            assert deleted["status"] == "CANCELED"
            every = await rc.request("GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}, signed=True)
            assert placed["orderId"] in [o["orderId"] for o in every]
            trades = await rc.request("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}, signed=True)
            assert isinstance(trades, list)
            account = await rc.request("GET", "/api/v3/account", {}, signed=True)
            assert account["canTrade"] is True

    run(body())


def test_rest_errors(server: ServerThread) -> None:
    acc = server.accounts
    url = server.http + "/api/v3/account"
    key = {"X-MBX-APIKEY": acc.demo.api_key}
    q = signed_query(acc.demo, {})
    status, _, data = http("GET", url, query=q[:-3] + "abc", headers=key)
    assert (status, data["code"]) == (400, -1022)
    status, _, data = http("GET", url, query=signed_query(acc.demo, {}, timestamp=5), headers=key)
    assert data["code"] == -1021
    status, _, data = http("GET", url, query=q, headers={"X-MBX-APIKEY": "nope"})
    assert (status, data["code"]) == (401, -2015)
    status, _, data = http("GET", url, query=q)
    assert data["code"] == -2014
    status, _, data = http("GET", server.http + "/api/v3/nothing")
    assert (status, data["code"]) == (404, -1099)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_endpoint(server: ServerThread) -> None:
    status, _, text = http("GET", server.http + "/metrics")
    assert status == 200
    for name in (
        "kootabase_journal_fsync_seconds",
        "kootabase_engine_batch_size",
        "kootabase_ws_sessions",
        "kootabase_rejects_total",
    ):
        assert name in text
    orders0 = _metric(text, "kootabase_orders_total")
    acks0 = _metric(text, "kootabase_ack_latency_seconds_count")

    async def place_two() -> None:
        async with WsApiClient.connect(server.ws_api, server.accounts.demo) as c:
            await c.logon()
            for _ in range(2):
                await c.place_order(
                    "BTCUSDT",
                    "BUY",
                    "LIMIT",
                    quantity="0.0010",
                    price="10000.00",
                    time_in_force="GTC",
                )

    run(place_two())
    _, _, text = http("GET", server.http + "/metrics")
    assert _metric(text, "kootabase_orders_total") == orders0 + 2
    acks = _metric(text, "kootabase_ack_latency_seconds_count")
    assert acks >= acks0 + 2  # every journaled command is timed, orders among them
    assert _metric(text, 'kootabase_ack_latency_seconds_bucket{le="+Inf"}') == acks
    assert 0 < _metric(text, "kootabase_ack_latency_seconds_sum") < acks * 10


# ---- limits, restart, admin CLI -------------------------------------------------------------


def test_rate_limit_429_then_ban_418(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, Limits(weight_per_minute=30, ban_after=3, orders_per_10s=2))
    try:
        statuses = []
        for _ in range(40):
            status, headers, data = http("GET", s.http + "/api/v3/exchangeInfo")
            statuses.append(status)
            if status in (418, 429):
                assert "Retry-After" in headers and data["code"] == -1003
        assert 429 in statuses and statuses[-1] == 418
        with pytest.raises(InvalidStatus) as refused:  # the ban covers the WS API too
            ws_connect(s.ws_api)
        assert refused.value.response.status_code == 418
    finally:
        s.stop()


def test_order_count_limit(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, Limits(orders_per_10s=2))
    acc = s.accounts

    async def body() -> None:
        async with WsApiClient.connect(s.ws_api, acc.maker) as c:
            await c.logon()
            codes = []
            for _ in range(3):
                try:
                    await c.place_order(
                        "BTCUSDT",
                        "BUY",
                        "LIMIT",
                        quantity="0.01",
                        price="10000",
                        time_in_force="GTC",
                    )
                    codes.append(0)
                except ClientError as exc:
                    codes.append(exc.code)
            assert codes == [0, 0, -1015]

    try:
        run(body())
    finally:
        s.stop()


def test_restart_rebuilds_orders_from_the_journal(tmp_path: Path) -> None:
    s = ServerThread(tmp_path)
    acc = s.accounts
    long_id = "ccxt-" + "q" * 25

    async def place() -> int:
        async with WsApiClient.connect(s.ws_api, acc.maker) as c:
            await c.logon()
            o = await c.place_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity="0.01",
                price="12345.67",
                time_in_force="GTC",
                client_order_id=long_id,
            )
            return int(o["orderId"])

    oid = run(place())
    before = s.state_hash()
    s.stop()
    s2 = ServerThread(tmp_path, fixture_accounts=False)  # same data dir: replay
    try:
        assert s2.gw.first_start is None
        assert s2.state_hash() == before
        o = s2.gw.store.orders[oid]
        assert o.is_open and s2.gw.ids.display(o.client_order_id, oid) == long_id

        async def check() -> None:
            async with WsApiClient.connect(s2.ws_api, acc.maker) as c:
                await c.logon()
                st = await c.order_status("BTCUSDT", client_order_id=long_id)
                assert st["orderId"] == oid and st["price"] == "12345.670000"

        run(check())
    finally:
        s2.stop()


def _json_out(text: str) -> Any:
    """The CLI's JSON document (unconfigured structlog may print log lines before it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in ("{", "["))
    return json.loads("\n".join(lines[start:]))


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's main, without re-pointing the process's logging at the captured stderr."""
    from gateway.cli import main

    monkeypatch.setattr("engine.logsetup.configure_logging", lambda level: None)
    return main


def test_accounts_cli_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Any) -> None:
    main = cli

    data = tmp_path / "data"
    mk = ["--master-key-file", str(tmp_path / "mk")]
    # only `serve` creates an exchange: the accounts CLI refuses a directory that is not one
    assert main(["accounts", "create", "--data-dir", str(data), *mk]) == 1
    assert not data.exists()
    EngineNode(NodeConfig(data_dir=data, fsync=False)).close()
    assert main(["accounts", "create", "--data-dir", str(data), *mk]) == 0
    created = _json_out(capsys.readouterr().out)
    assert created["secret"] and created["account_id"] == 1
    assert (
        main(
            [
                "accounts",
                "deposit",
                "--data-dir",
                str(data),
                *mk,
                "--account",
                "1",
                "--asset",
                "usdt",
                "--amount",
                "12.5",
            ]
        )
        == 0
    )
    assert _json_out(capsys.readouterr().out)["amount"] == "12.500000"
    assert main(["accounts", "list", "--data-dir", str(data), *mk]) == 0
    listed = _json_out(capsys.readouterr().out)
    assert listed[0]["balances"]["USDT"]["free"] == "12.500000"
    assert "secret" not in json.dumps(listed)


def test_accounts_cli_reaches_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Any
) -> None:
    main = cli

    s = ServerThread(tmp_path)
    try:
        args = ["--data-dir", str(tmp_path / "data")]
        assert (
            main(
                ["accounts", "deposit", *args, "--account", "1", "--asset", "BTC", "--amount", "1"]
            )
            == 0
        )
        assert _json_out(capsys.readouterr().out)["seq"] > 0
        assert main(["accounts", "create", *args, "--permissions", "read"]) == 0
        new = _json_out(capsys.readouterr().out)
        assert s.gw.keys.get(new["api_key"]) is not None
        status, _, _ = http("GET", s.http + "/admin/accounts")
        assert status == 403
    finally:
        s.stop()


def test_keys_file_holds_no_clear_secret(server: ServerThread) -> None:
    text = (server.gw.dir / "keys.json").read_text()
    assert server.accounts.demo.secret is not None
    assert server.accounts.demo.secret not in text
    assert isinstance(server.accounts.ed, Credentials)


def test_idle_connection_is_closed(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, Limits(idle_timeout_s=0.5), fixture_accounts=False)
    try:
        with ws_connect(s.ws_api) as ws:
            ws.send(json.dumps({"id": 1, "method": "ping"}))
            assert json.loads(ws.recv(timeout=5))["status"] == 200
            with pytest.raises(Exception):  # noqa: B017 - closed by the server (1001)
                ws.recv(timeout=5)
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1001
    finally:
        s.stop()
