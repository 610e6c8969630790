"""Self-trade prevention between two orders of one account, and the refusals of the new order
parameters, through a real gateway.

STP: each mode's outcome in the order.place answer (status, ``preventedMatches``), order.status
(``preventedMatchId``, ``preventedQuantity``), the user data stream (TRADE_PREVENTION with
``v``/``A``/``B``/``U``), the book in market data and the account's holds. Refusals: every bad
combination gets its code, and changes nothing (the engine state hash, which covers the journal's
last sequence, does not move)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import ClientError, RestClient, WsApiClient
from tests.gateway_support import ServerThread, http
from tests.test_gateway_orders import depth, next_report, run


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path)
    yield s
    s.stop()


def _btc(account: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in account["balances"] if b["asset"] == "BTC")


def test_stp_modes_between_orders_of_one_account(server: ServerThread) -> None:
    acc = server.accounts

    async def buy(c: WsApiClient, qty: str, price: str, mode: str) -> dict[str, Any]:
        return await c.place_order(
            "BTCUSDT",
            "BUY",
            "LIMIT",
            quantity=qty,
            price=price,
            time_in_force="GTC",
            selfTradePreventionMode=mode,
        )

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:
            await c.logon()
            await c.subscribe_user_data()
            maker = await c.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.02", price="32000", time_in_force="GTC"
            )
            mid = maker["orderId"]

            # EXPIRE_TAKER: the taker expires whole, the maker is untouched
            t = await buy(c, "0.01", "32000", "EXPIRE_TAKER")
            assert (t["status"], t["preventedQuantity"], t["fills"]) == (
                "EXPIRED_IN_MATCH",
                "0.01000000",
                [],
            )
            assert t["preventedMatches"] == [
                {
                    "preventedMatchId": 0,
                    "makerOrderId": mid,
                    "price": "32000.000000",
                    "takerPreventedQuantity": "0.01000000",
                }
            ]
            st = await c.order_status("BTCUSDT", order_id=mid)
            assert st["status"] == "NEW" and "preventedQuantity" not in st
            ev = await next_report(c, t["orderId"], lambda e: e["x"] == "TRADE_PREVENTION")
            assert (ev["X"], ev["v"], ev["A"], ev["B"], ev["U"]) == (
                "EXPIRED_IN_MATCH",
                0,
                "0.01000000",
                "0.01000000",
                mid,
            )

            # DECREMENT: both lose 0.01; the taker is used up, the maker rests with 0.01
            t = await buy(c, "0.01", "32000", "DECREMENT")
            assert t["status"] == "EXPIRED_IN_MATCH"
            st = await c.order_status("BTCUSDT", order_id=mid)
            assert (st["status"], st["preventedMatchId"], st["preventedQuantity"]) == (
                "NEW",
                1,
                "0.01000000",
            )
            ev = await next_report(c, mid, lambda e: e["x"] == "TRADE_PREVENTION")
            assert (ev["X"], ev["A"], ev["B"], ev["U"]) == (
                "NEW",
                "0.01000000",
                "0.01000000",
                t["orderId"],
            )
            assert depth(server)["asks"] == [["32000.000000", "0.01000000"]]
            assert _btc(await c.account())["locked"] == "0.01000000"  # hold follows

            # EXPIRE_MAKER: the maker expires (its open 0.01), the taker goes on and rests
            t = await buy(c, "0.005", "32000", "EXPIRE_MAKER")
            assert t["status"] == "NEW" and "preventedQuantity" not in t
            assert t["preventedMatches"][0]["makerPreventedQuantity"] == "0.01000000"
            st = await c.order_status("BTCUSDT", order_id=mid)
            assert (st["status"], st["preventedQuantity"], st["executedQty"]) == (
                "EXPIRED_IN_MATCH",
                "0.02000000",
                "0.00000000",
            )
            book = depth(server)
            assert book["asks"] == [] and book["bids"] == [["32000.000000", "0.00500000"]]
            assert _btc(await c.account())["locked"] == "0.00000000"

            # EXPIRE_BOTH
            m2 = await c.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="32100", time_in_force="GTC"
            )
            t = await buy(c, "0.01", "32100", "EXPIRE_BOTH")
            assert t["status"] == "EXPIRED_IN_MATCH"
            st = await c.order_status("BTCUSDT", order_id=m2["orderId"])
            assert st["status"] == "EXPIRED_IN_MATCH" and st["preventedMatchId"] == 3

            # NONE (the default): the account trades with itself
            m3 = await c.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="32200", time_in_force="GTC"
            )
            t = await buy(c, "0.01", "32200", "NONE")
            assert t["status"] == "FILLED"
            st = await c.order_status("BTCUSDT", order_id=m3["orderId"])
            assert st["status"] == "FILLED" and "preventedMatchId" not in st

    run(body())


def test_stp_decrement_on_an_iceberg_and_a_stop_taker(server: ServerThread) -> None:
    """DECREMENT against an iceberg's slice refreshes it; a triggered stop takes its order's
    STP mode along."""
    acc = server.accounts

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, acc.demo) as c,
            WsApiClient.connect(server.ws_api, acc.maker) as mk,
        ):
            await c.logon()
            ice = await c.place_order(
                "BTCUSDT",
                "SELL",
                "LIMIT",
                quantity="0.03",
                price="30000",
                time_in_force="GTC",
                icebergQty="0.01",
            )
            t = await c.place_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity="0.015",
                price="30000",
                time_in_force="IOC",
                selfTradePreventionMode="DECREMENT",
            )
            assert t["status"] == "EXPIRED_IN_MATCH"
            assert [m["makerPreventedQuantity"] for m in t["preventedMatches"]] == [
                "0.01000000",
                "0.00500000",
            ]
            assert depth(server)["asks"] == [["30000.000000", "0.00500000"]]
            st = await c.order_status("BTCUSDT", order_id=ice["orderId"])
            assert (st["status"], st["preventedQuantity"]) == ("NEW", "0.01500000")
            # a stop buy of the same account with EXPIRE_TAKER, fired by another account's trade
            stop = await c.place_order(
                "BTCUSDT",
                "BUY",
                "STOP_LOSS_LIMIT",
                quantity="0.005",
                price="30000",
                time_in_force="GTC",
                stopPrice="30000",
                selfTradePreventionMode="EXPIRE_TAKER",
            )
            await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.005", price="30000", time_in_force="IOC"
            )
            st = await c.order_status("BTCUSDT", order_id=stop["orderId"])
            assert (st["status"], st["selfTradePreventionMode"], st["isWorking"]) == (
                "EXPIRED_IN_MATCH",
                "EXPIRE_TAKER",
                True,
            )

    run(body())


BASE = {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01"}
BAD: list[tuple[dict[str, Any], int]] = [
    ({"type": "STOP_LOSS"}, -1102),  # neither stopPrice nor trailingDelta
    ({"type": "STOP_LOSS", "stopPrice": "0"}, -1102),  # zero means "not sent"
    ({"type": "STOP_LOSS", "stopPrice": "29000", "trailingDelta": 100}, -1014),
    ({"type": "STOP_LOSS", "stopPrice": "29000", "price": "29000"}, -1106),
    ({"type": "STOP_LOSS", "stopPrice": "29000", "timeInForce": "GTC"}, -1106),
    ({"type": "STOP_LOSS", "stopPrice": "29000.001"}, -1013),
    ({"type": "STOP_LOSS", "stopPrice": "29000", "quantity": "0.00001"}, -1013),
    ({"type": "STOP_LOSS", "trailingDelta": 10000}, -1013),
    ({"type": "STOP_LOSS", "trailingDelta": "abc"}, -1100),
    ({"type": "STOP_LOSS", "stopPrice": "29000", "side": "BUY"}, -1014),  # buy by quantity
    ({"type": "STOP_LOSS", "stopPrice": "29000", "side": "BUY", "quantity": ""}, -1102),
    (
        {"type": "TAKE_PROFIT", "stopPrice": "31000", "quantity": "", "quoteOrderQty": "100"},
        -1014,
    ),  # a sell by quote amount
    ({"type": "TAKE_PROFIT", "stopPrice": "31000", "icebergQty": "0.001"}, -1106),
    ({"type": "STOP_LOSS_LIMIT", "stopPrice": "29000", "price": "28900"}, -1102),  # no TIF
    ({"type": "STOP_LOSS_LIMIT", "stopPrice": "29000", "timeInForce": "GTC"}, -1102),
    (
        {"type": "STOP_LOSS_LIMIT", "stopPrice": "29000", "price": "28900", "timeInForce": "GTX"},
        -1115,
    ),
    (
        {"type": "STOP_LOSS_LIMIT", "stopPrice": "29000", "price": "1", "timeInForce": "GTC"},
        -1013,
    ),  # notional
    (
        {
            "type": "STOP_LOSS_LIMIT",
            "stopPrice": "29000",
            "price": "28900",
            "timeInForce": "GTC",
            "quoteOrderQty": "10",
        },
        -1106,
    ),
    (
        {
            "type": "TAKE_PROFIT_LIMIT",
            "stopPrice": "31000",
            "price": "31000",
            "timeInForce": "GTC",
            "icebergQty": "0.001",
        },
        -1014,
    ),
    ({"type": "LIMIT", "price": "31000", "timeInForce": "GTC", "stopPrice": "29000"}, -1106),
    ({"type": "LIMIT", "price": "31000", "timeInForce": "GTC", "trailingDelta": 5}, -1106),
    ({"type": "LIMIT", "price": "31000", "timeInForce": "IOC", "icebergQty": "0.001"}, -1014),
    ({"type": "LIMIT", "price": "31000", "timeInForce": "GTC", "icebergQty": "0.01"}, -1013),
    ({"type": "LIMIT", "price": "31000", "timeInForce": "GTC", "icebergQty": "0.00001"}, -1013),
    ({"type": "MARKET", "icebergQty": "0.001"}, -1106),
    (
        {
            "type": "LIMIT",
            "price": "31000",
            "timeInForce": "GTC",
            "selfTradePreventionMode": "TRANSFER",
        },
        -1013,
    ),
    (
        {
            "type": "LIMIT",
            "price": "31000",
            "timeInForce": "GTC",
            "selfTradePreventionMode": "bogus",
        },
        -1130,
    ),
    (
        {
            "type": "STOP_LOSS_LIMIT",
            "stopPrice": "29000",
            "price": "28900",
            "timeInForce": "GTC",
            "quantity": "1000",
        },
        -2010,
    ),  # funds (the demo account has 10 BTC)
]


def test_bad_combinations_are_refused_and_change_nothing(server: ServerThread) -> None:
    acc = server.accounts
    server.wait_idle()
    before = server.state_hash()

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, acc.demo) as c,
            RestClient(server.http, acc.demo) as rc,
        ):
            await c.logon()  # no per-request signatures: two equal requests in one ms are fine
            for n, (change, expected) in enumerate(BAD):
                params = {k: v for k, v in {**BASE, **change}.items() if v != ""}
                params["newClientOrderId"] = f"bad-{n}"  # distinct REST signatures
                for method in ("order.place", "order.test"):
                    with pytest.raises(ClientError) as err:
                        await c.request(method, params, signed=True)
                    assert err.value.code == expected, (method, change, err.value.msg)
                for path in ("/api/v3/order", "/api/v3/order/test"):
                    # a signature does not cover the path: the same payload at the second
                    # path within the millisecond would be a replay (-1022)
                    text = {k: str(v) for k, v in params.items()}
                    text["newClientOrderId"] = f"bad-{n}-{path.rsplit('/', 1)[1]}"
                    with pytest.raises(ClientError) as err:
                        await rc.request("POST", path, text, signed=True)
                    assert err.value.code == expected, (path, change, err.value.msg)
            # cancelReplace validates the new order before cancelling anything
            with pytest.raises(ClientError) as err:
                await c.cancel_replace("BTCUSDT", 999, "SELL", "STOP_LOSS", quantity="0.01")
            assert err.value.code == -1102

    run(body())
    server.wait_idle()
    assert server.state_hash() == before


def test_valid_new_orders_pass_order_test_without_a_trace(server: ServerThread) -> None:
    acc = server.accounts
    server.wait_idle()
    before = server.state_hash()
    good = [
        {"type": "STOP_LOSS", "stopPrice": "29000"},
        {"type": "STOP_LOSS", "trailingDelta": "250"},
        {
            "type": "TAKE_PROFIT",
            "side": "BUY",
            "quantity": "",
            "quoteOrderQty": "50",
            "stopPrice": "29000",
        },
        {"type": "STOP_LOSS_LIMIT", "stopPrice": "29000", "price": "28900", "timeInForce": "FOK"},
        {
            "type": "TAKE_PROFIT_LIMIT",
            "trailingDelta": 10,
            "price": "31000",
            "timeInForce": "GTC",
            "selfTradePreventionMode": "EXPIRE_BOTH",
        },
        {"type": "LIMIT_MAKER", "price": "31000", "icebergQty": "0.002"},
        {
            "type": "LIMIT",
            "price": "31000",
            "timeInForce": "GTC",
            "icebergQty": "0.002",
            "selfTradePreventionMode": "DECREMENT",
        },
    ]

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:
            for change in good:
                params = {k: v for k, v in {**BASE, **change}.items() if v != ""}
                assert await c.request("order.test", params, signed=True) == {}, change

    run(body())
    assert server.state_hash() == before


def test_waiting_stop_cancel_replace_and_amend(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:
            await c.logon()
            stop = await c.place_order(
                "BTCUSDT",
                "SELL",
                "STOP_LOSS_LIMIT",
                quantity="0.01",
                price="28000",
                time_in_force="GTC",
                stopPrice="28500",
            )
            with pytest.raises(ClientError) as err:
                await c.amend_keep_priority("BTCUSDT", "0.005", order_id=stop["orderId"])
            assert err.value.code == -2038 and "not triggered" in err.value.msg
            res = await c.cancel_replace(
                "BTCUSDT",
                stop["orderId"],
                "SELL",
                "STOP_LOSS",
                quantity="0.02",
                stopPrice="28000",
                newOrderRespType="RESULT",
            )
            assert res["cancelResponse"]["status"] == "CANCELED"
            assert res["cancelResponse"]["stopPrice"] == "28500.000000"
            new = res["newOrderResponse"]
            assert (new["status"], new["type"], new["stopPrice"]) == (
                "NEW",
                "STOP_LOSS",
                "28000.000000",
            )
            assert [o["orderId"] for o in await c.open_orders("BTCUSDT")] == [new["orderId"]]
            assert (await c.cancel_all("BTCUSDT"))[0]["status"] == "CANCELED"
            assert await c.open_orders("BTCUSDT") == []

    run(body())


def test_depth_of_the_untouched_markets_stays_empty(server: ServerThread) -> None:
    """Waiting stops never show in any book, on any market."""
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            for symbol, qty in (("ETHUSDT", "1"), ("BTCUSDT", "0.001")):
                await c.place_order(
                    symbol,
                    "SELL",
                    "STOP_LOSS_LIMIT",
                    quantity=qty,
                    price="20000",
                    time_in_force="GTC",
                    stopPrice="21000",
                )
                await c.place_order(
                    symbol, "BUY", "TAKE_PROFIT", quoteOrderQty="100", stopPrice="19000"
                )
            assert len(await c.open_orders()) == 4
        for symbol in ("ETHUSDT", "BTCUSDT"):
            book = depth(server, symbol)
            assert book["bids"] == [] and book["asks"] == []
            status, _, l3 = http("GET", server.http + "/api/v3/depthL3", query=f"symbol={symbol}")
            assert status == 200 and l3["asks"] == [] and l3["bids"] == []

    run(body())
