"""order.cancelReplace over WS and REST against a real server: the new order is funded by the
hold the cancel frees (one journaled CancelReplaceOrder), and failures take the dialect's
-2021 (HTTP 409) and -2022 (HTTP 400) shapes with both responses in ``data``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from engine.schema import CancelReplaceOrder
from gateway.client import ClientError, Credentials, RestClient, WsApiClient
from tests.gateway_support import ServerThread, journal_replay


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("gw-replace"))
    yield s
    s.stop()


def funded(server: ServerThread, usdt: str) -> Credentials:
    """A new account holding exactly ``usdt`` USDT."""
    return server.new_account(USDT=usdt)


def free_usdt(account: dict[str, Any]) -> str:
    return next(b["free"] for b in account["balances"] if b["asset"] == "USDT")


def test_ws_replace_moves_a_bid_holding_most_of_the_balance(server: ServerThread) -> None:
    creds = funded(server, "1000")

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, creds) as c:
            await c.logon()
            # 0.0100 BTC at 90,000: 900 USDT + 0.1 % worst-case fee = 900.9 of 1,000 held
            bid = await c.place_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity="0.0100",
                price="90000",
                time_in_force="GTC",
                client_order_id="b1",
            )
            res = await c.cancel_replace(
                "BTCUSDT",
                bid["orderId"],
                "BUY",
                "LIMIT",
                quantity="0.0100",
                price="89000",
                timeInForce="GTC",
                newClientOrderId="b1",
            )
            assert res["cancelResult"] == "SUCCESS" and res["newOrderResult"] == "SUCCESS"
            assert res["cancelResponse"]["orderId"] == bid["orderId"]
            assert res["cancelResponse"]["status"] == "CANCELED"
            new = res["newOrderResponse"]
            assert new["status"] == "NEW" and new["price"] == "89000.000000"
            assert new["clientOrderId"] == "b1"  # the cancelled order's id is free again
            (open_order,) = await c.open_orders("BTCUSDT")
            assert open_order["orderId"] == new["orderId"]
            account = await c.request("account.status", {}, signed=True)
            assert free_usdt(account) == "109.110000"  # 1000 - 890 - 0.89 fee hold

    asyncio.run(body())


def test_rest_replace_moves_a_bid_holding_most_of_the_balance(server: ServerThread) -> None:
    creds = funded(server, "1000")

    async def body() -> None:
        async with RestClient(server.http, creds) as rc:
            bid = await rc.request(
                "POST",
                "/api/v3/order",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.0100",
                    "price": "90000",
                },
                signed=True,
            )
            res = await rc.request(
                "POST",
                "/api/v3/order/cancelReplace",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.0100",
                    "price": "91000",
                    "cancelOrderId": bid["orderId"],
                    "cancelReplaceMode": "STOP_ON_FAILURE",
                },
                signed=True,
            )
            assert res["cancelResult"] == "SUCCESS" and res["newOrderResult"] == "SUCCESS"
            assert res["newOrderResponse"]["price"] == "91000.000000"
            account = await rc.request("GET", "/api/v3/account", signed=True)
            assert free_usdt(account) == "89.090000"  # 1000 - 910 - 0.91

    asyncio.run(body())


def test_failures_take_the_dialect_shapes(server: ServerThread) -> None:
    creds = funded(server, "1000")

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, creds) as c:
            await c.logon()
            order = {"quantity": "0.0010", "price": "50000", "timeInForce": "GTC"}
            # STOP_ON_FAILURE, unknown order: nothing journaled, the new order not attempted
            seq_before = server.seq_and_hash()[0]
            with pytest.raises(ClientError) as err:
                await c.cancel_replace("BTCUSDT", 999_999, "BUY", "LIMIT", **order)
            assert (err.value.status, err.value.code) == (400, -2022)
            assert err.value.data["cancelResult"] == "FAILURE"
            assert err.value.data["newOrderResult"] == "NOT_ATTEMPTED"
            assert err.value.data["cancelResponse"]["code"] == -2011
            assert err.value.data["newOrderResponse"] is None
            assert server.seq_and_hash()[0] == seq_before
            assert await c.open_orders("BTCUSDT") == []

            # ALLOW_FAILURE, unknown order: the new order is placed anyway (-2021, 409)
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "BTCUSDT", 999_999, "BUY", "LIMIT", mode="ALLOW_FAILURE", **order
                )
            assert (err.value.status, err.value.code) == (409, -2021)
            data = err.value.data
            assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")
            placed = data["newOrderResponse"]
            assert placed["status"] == "NEW"
            (open_order,) = await c.open_orders("BTCUSDT")
            assert open_order["orderId"] == placed["orderId"]

            # the cancel succeeds, the new order cannot be funded: -2021, the old one is gone
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "BTCUSDT",
                    placed["orderId"],
                    "BUY",
                    "LIMIT",
                    quantity="1",
                    price="50000",
                    timeInForce="GTC",
                )
            assert (err.value.status, err.value.code) == (409, -2021)
            data = err.value.data
            assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
            assert data["cancelResponse"]["orderId"] == placed["orderId"]
            assert data["newOrderResponse"]["code"] == -2010
            assert await c.open_orders("BTCUSDT") == []

            # ALLOW_FAILURE and both fail: -2022 with both failures
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "BTCUSDT",
                    999_999,
                    "BUY",
                    "LIMIT",
                    mode="ALLOW_FAILURE",
                    quantity="1",
                    price="50000",
                    timeInForce="GTC",
                )
            assert (err.value.status, err.value.code) == (400, -2022)
            data = err.value.data
            assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "FAILURE")
            assert data["newOrderResponse"]["code"] == -2010

            # a bad cancelReplaceMode or a new-order filter failure: refused before anything
            seq_before = server.seq_and_hash()[0]
            with pytest.raises(ClientError) as err:
                await c.cancel_replace("BTCUSDT", 1, "BUY", "LIMIT", mode="SOMETIMES", **order)
            assert err.value.code == -1130
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "BTCUSDT",
                    1,
                    "BUY",
                    "LIMIT",
                    quantity="0.00001",
                    price="50000",
                    timeInForce="GTC",
                )
            assert err.value.code == -1013 and err.value.data is None
            assert server.seq_and_hash()[0] == seq_before

    asyncio.run(body())


def test_rest_failure_carries_data(server: ServerThread) -> None:
    creds = funded(server, "10")

    async def body() -> None:
        async with RestClient(server.http, creds) as rc:
            with pytest.raises(ClientError) as err:
                await rc.request(
                    "POST",
                    "/api/v3/order/cancelReplace",
                    {
                        "symbol": "BTCUSDT",
                        "side": "BUY",
                        "type": "LIMIT",
                        "timeInForce": "GTC",
                        "quantity": "0.0001",
                        "price": "50000",
                        "cancelOrderId": 424242,
                        "cancelReplaceMode": "STOP_ON_FAILURE",
                    },
                    signed=True,
                )
            assert (err.value.status, err.value.code) == (400, -2022)
            assert err.value.data["newOrderResult"] == "NOT_ATTEMPTED"

    asyncio.run(body())


def test_journal_holds_one_command_and_replays(server: ServerThread) -> None:
    server.wait_idle()
    records, replayed_hash = journal_replay(server.gw)
    replaces = [r for r in records if isinstance(r.command, CancelReplaceOrder)]
    assert len(replaces) >= 4
    assert replayed_hash == server.state_hash()


def test_cancel_restrictions_are_refused_not_ignored(server: ServerThread) -> None:
    """The engine does not decide ONLY_NEW / ONLY_PARTIALLY_FILLED at the cancel's turn yet, so
    a request carrying them is refused (-1014) and the order stays."""
    creds = funded(server, "100")

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, creds) as c:
            await c.logon()
            o = await c.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.0010", price="50000", time_in_force="GTC"
            )
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "BTCUSDT", o["orderId"], "BUY", "LIMIT", quantity="0.0010",
                    price="50001", timeInForce="GTC", cancelRestrictions="ONLY_NEW",
                )  # fmt: skip
            assert err.value.code == -1014 and "cancelRestrictions" in err.value.msg
            params = {"symbol": "BTCUSDT", "orderId": o["orderId"],
                      "cancelRestrictions": "ONLY_NEW"}  # fmt: skip
            with pytest.raises(ClientError) as err:
                await c.request("order.cancel", params, signed=True)
            assert err.value.code == -1014
            assert [x["orderId"] for x in await c.open_orders("BTCUSDT")] == [o["orderId"]]

    asyncio.run(body())
