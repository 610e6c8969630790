"""Gateway over real sockets, in the Binance Spot dialect: signed REST endpoints, REST errors,
the metrics endpoint, and the keys file on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.client import Credentials, RestClient, WsApiClient
from tests.gateway_support import ServerThread, http, signed_query


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("gw"))
    yield s
    s.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


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


def test_keys_file_holds_no_clear_secret(server: ServerThread) -> None:
    text = (server.gw.dir / "keys.json").read_text()
    assert server.accounts.demo.secret is not None
    assert server.accounts.demo.secret not in text
    assert isinstance(server.accounts.ed, Credentials)
