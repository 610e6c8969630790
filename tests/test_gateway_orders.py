"""Stop-loss, take-profit, trailing stops and icebergs through a real gateway (WS API and REST):
placement, the waiting state (NEW, not working, off the book), triggering by trades, the
status transitions in order.status / openOrders / executionReport, the book in market data, and
a restart that rebuilds the same views from the journal.

Prices are BTCUSDT's (tick 0.01 USDT, lot 0.0001 BTC, 0.1 % fees). Each test gets its own
server, so the last trade price, which the stops watch, is the test's own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import ClientError, RestClient, WsApiClient
from tests.gateway_support import ServerThread, http


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path)
    yield s
    s.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def clients(server: ServerThread) -> AsyncIterator[tuple[WsApiClient, ...]]:
    """(demo, logged on; maker; ed): the stop owner and two accounts that make the trades."""
    acc = server.accounts
    async with (
        WsApiClient.connect(server.ws_api, acc.demo) as c,
        WsApiClient.connect(server.ws_api, acc.maker) as mk,
        WsApiClient.connect(server.ws_api, acc.ed) as ed,
    ):
        await c.logon()
        yield c, mk, ed


async def trade_at(
    seller: WsApiClient, buyer: WsApiClient, price: str, qty: str = "0.001", symbol: str = "BTCUSDT"
) -> None:
    """One trade at ``price``: the seller rests, the buyer takes (sets the last price)."""
    await seller.place_order(
        symbol, "SELL", "LIMIT", quantity=qty, price=price, time_in_force="GTC"
    )
    taken = await buyer.place_order(
        symbol, "BUY", "LIMIT", quantity=qty, price=price, time_in_force="IOC"
    )
    assert taken["status"] == "FILLED", taken


async def next_report(
    c: WsApiClient, order_id: int, pred: Callable[[dict[str, Any]], bool] = lambda e: True
) -> dict[str, Any]:
    while True:
        ev = await c.next_event()
        if ev["e"] == "executionReport" and ev["i"] == order_id and pred(ev):
            return ev


def depth(server: ServerThread, symbol: str = "BTCUSDT") -> dict[str, Any]:
    status, _, data = http("GET", server.http + "/api/v3/depth", query=f"symbol={symbol}")
    assert status == 200
    return data


def test_exchange_info_tells_the_truth(server: ServerThread) -> None:
    status, _, info = http("GET", server.http + "/api/v3/exchangeInfo", query="symbol=BTCUSDT")
    assert status == 200
    s = info["symbols"][0]
    assert set(s["orderTypes"]) == {
        "LIMIT",
        "LIMIT_MAKER",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    }
    assert s["icebergAllowed"] is True and s["allowTrailingStop"] is True
    assert s["defaultSelfTradePreventionMode"] == "NONE"
    assert s["allowedSelfTradePreventionModes"] == [
        "NONE",
        "EXPIRE_TAKER",
        "EXPIRE_MAKER",
        "EXPIRE_BOTH",
        "DECREMENT",
    ]
    trailing = next(f for f in s["filters"] if f["filterType"] == "TRAILING_DELTA")
    assert (trailing["minTrailingBelowDelta"], trailing["maxTrailingAboveDelta"]) == (1, 9999)


def test_stop_loss_limit_waits_off_book_then_triggers_and_rests(server: ServerThread) -> None:

    async def body() -> None:
        async with clients(server) as (c, mk, ed):
            await c.subscribe_user_data()
            await trade_at(ed, mk, "30000")
            placed = await c.place_order(
                "BTCUSDT",
                "SELL",
                "STOP_LOSS_LIMIT",
                quantity="0.01",
                price="28900",
                time_in_force="GTC",
                client_order_id="sl-1",
                stopPrice="29000",
                newOrderRespType="RESULT",
            )
            oid = placed["orderId"]
            assert placed["status"] == "NEW" and placed["type"] == "STOP_LOSS_LIMIT"
            assert placed["stopPrice"] == "29000.000000" and placed["workingTime"] == -1
            new = await next_report(c, oid)
            assert (new["x"], new["X"], new["w"], new["o"]) == (
                "NEW",
                "NEW",
                False,
                "STOP_LOSS_LIMIT",
            )
            assert new["P"] == "29000.000000" and "W" not in new
            st = await c.order_status("BTCUSDT", client_order_id="sl-1")
            assert (st["status"], st["isWorking"], st["workingTime"]) == ("NEW", False, -1)
            assert oid in [o["orderId"] for o in await c.open_orders("BTCUSDT")]
            assert ["28900.000000", "0.01000000"] not in depth(server)["asks"]
            locked = next(b for b in (await c.account())["balances"] if b["asset"] == "BTC")
            assert locked["locked"] == "0.01000000"  # a waiting sell holds its quantity

            # a trade at 28950 (<= 29000) fires it: the limit sell at 28900 finds no bid, rests
            await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.001", price="28950", time_in_force="GTC"
            )
            sold = await ed.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.001", price="28950", time_in_force="IOC"
            )
            assert sold["status"] == "FILLED"
            fired = await next_report(c, oid)
            assert (fired["x"], fired["X"], fired["w"]) == ("NEW", "NEW", True)
            assert fired["W"] > 0
            st = await c.order_status("BTCUSDT", order_id=oid)
            assert st["isWorking"] is True and st["workingTime"] >= st["time"]
            assert ["28900.000000", "0.01000000"] in depth(server)["asks"]

            # now an ordinary resting order: a buyer fills it
            bought = await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="28900", time_in_force="IOC"
            )
            assert bought["status"] == "FILLED"
            filled = await next_report(c, oid, lambda e: e["x"] == "TRADE")
            assert filled["X"] == "FILLED" and filled["L"] == "28900.000000"
            st = await c.order_status("BTCUSDT", order_id=oid)
            assert st["status"] == "FILLED" and st["executedQty"] == "0.01000000"
            assert await c.open_orders("BTCUSDT") == []

    run(body())


def test_rest_take_profit_buy_by_quote_and_stop_loss_cancel(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with (
            RestClient(server.http, acc.demo) as rc,
            WsApiClient.connect(server.ws_api, acc.maker) as mk,
            WsApiClient.connect(server.ws_api, acc.ed) as ed,
        ):
            await trade_at(ed, mk, "30000")
            tp = await rc.request(
                "POST",
                "/api/v3/order",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "TAKE_PROFIT",
                    "quoteOrderQty": "100",
                    "stopPrice": "29500",
                    "newOrderRespType": "RESULT",
                },
                signed=True,
            )
            assert tp["status"] == "NEW" and tp["origQuoteOrderQty"] == "100.000000"
            sl = await rc.request(
                "POST",
                "/api/v3/order",
                {
                    "symbol": "BTCUSDT",
                    "side": "SELL",
                    "type": "STOP_LOSS",
                    "quantity": "0.01",
                    "stopPrice": "25000",
                },
                signed=True,
            )
            assert set(sl) == {
                "symbol",
                "orderId",
                "orderListId",
                "clientOrderId",
                "transactTime",
            }  # ACK: the default for stop orders
            opened = await rc.request(
                "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True
            )
            assert {o["orderId"]: o["type"] for o in opened} == {
                tp["orderId"]: "TAKE_PROFIT",
                sl["orderId"]: "STOP_LOSS",
            }
            cancelled = await rc.request(
                "DELETE",
                "/api/v3/order",
                {"symbol": "BTCUSDT", "orderId": sl["orderId"]},
                signed=True,
            )
            assert cancelled["status"] == "CANCELED"
            assert cancelled["stopPrice"] == "25000.000000" and "icebergQty" not in cancelled

            # an ask at 29400, then a trade at 29400 (<= 29500): the take-profit buy spends its
            # 100 USDT on the ask: 0.0033 BTC (0.0034 would cost 99.96 + 0.09996 fee > 100)
            await ed.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.1", price="29400", time_in_force="GTC"
            )
            await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.001", price="29400", time_in_force="IOC"
            )
            got = await rc.request(
                "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": tp["orderId"]}, signed=True
            )
            assert (got["status"], got["executedQty"], got["isWorking"]) == (
                "FILLED",
                "0.00330000",
                True,
            )
            assert got["cummulativeQuoteQty"] == "97.020000"
            trades = await rc.request(
                "GET",
                "/api/v3/myTrades",
                {"symbol": "BTCUSDT", "orderId": tp["orderId"]},
                signed=True,
            )
            assert [t["qty"] for t in trades] == ["0.00330000"]
            assert (
                await rc.request("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True)
                == []
            )

    run(body())


def test_trailing_stops_market_and_limit(server: ServerThread) -> None:

    async def body() -> None:
        async with clients(server) as (c, mk, ed):
            with pytest.raises(ClientError) as err:  # nothing traded yet: nothing to trail
                await c.place_order(
                    "BTCUSDT", "SELL", "STOP_LOSS", quantity="0.01", trailingDelta=100
                )
            assert err.value.code == -2010 and "last trade price" in err.value.msg
            await trade_at(ed, mk, "30000")
            # sell, 1 %: trails the peak; buy limit, 2 %: trails the trough, enters at 31000
            sell = await c.place_order(
                "BTCUSDT",
                "SELL",
                "STOP_LOSS",
                quantity="0.01",
                trailingDelta=100,
                newOrderRespType="RESULT",
            )
            buy = await c.place_order(
                "BTCUSDT",
                "BUY",
                "TAKE_PROFIT_LIMIT",
                quantity="0.01",
                price="31000",
                time_in_force="GTC",
                trailingDelta="200",
            )
            st = await c.order_status("BTCUSDT", order_id=buy["orderId"])
            assert st["type"] == "STOP_LOSS_LIMIT" and st["trailingDelta"] == 200
            assert sell["trailingDelta"] == 100 and sell["workingTime"] == -1
            await trade_at(ed, mk, "30500")  # new peak: the sell triggers at 30195
            await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="30000", time_in_force="GTC"
            )
            await trade_at(ed, mk, "30200")  # above 30195: nothing
            st = await c.order_status("BTCUSDT", order_id=sell["orderId"])
            assert st["status"] == "NEW" and st["isWorking"] is False
            await trade_at(ed, mk, "30100")  # fires: a market sell into the 30000 bid
            st = await c.order_status("BTCUSDT", order_id=sell["orderId"])
            assert (st["status"], st["type"], st["cummulativeQuoteQty"]) == (
                "FILLED",
                "STOP_LOSS",
                "300.000000",
            )
            # the buy trails its trough (30000): it fires at 30600 and buys up to 31000
            await ed.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="30800", time_in_force="GTC"
            )
            await trade_at(ed, mk, "30700", qty="0.001")
            st = await c.order_status("BTCUSDT", order_id=buy["orderId"])
            assert (st["status"], st["price"], st["cummulativeQuoteQty"]) == (
                "FILLED",
                "31000.000000",
                "308.000000",
            )

    run(body())


def test_stop_price_already_reached_is_refused(server: ServerThread) -> None:

    async def body() -> None:
        async with clients(server) as (c, mk, ed):
            await trade_at(ed, mk, "30000")
            before = await c.account()
            for side, kind, stop in (
                ("SELL", "STOP_LOSS", "30100"),
                ("BUY", "TAKE_PROFIT", "30100"),
            ):
                amount = {"quantity": "0.01"} if side == "SELL" else {"quoteOrderQty": "50"}
                with pytest.raises(ClientError) as err:
                    await c.place_order("BTCUSDT", side, kind, stopPrice=stop, **amount)
                assert (err.value.code, err.value.msg) == (
                    -2010,
                    "Order would trigger immediately.",
                )
            assert (await c.account())["balances"] == before["balances"]
            assert await c.open_orders("BTCUSDT") == []

    run(body())


def test_iceberg_shows_its_slice_and_refreshes(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, acc.maker) as mk,
            WsApiClient.connect(server.ws_api, acc.demo) as c,
        ):
            await mk.logon()
            ice = await mk.place_order(
                "BTCUSDT",
                "SELL",
                "LIMIT",
                quantity="0.05",
                price="31000",
                time_in_force="GTC",
                icebergQty="0.01",
                newOrderRespType="RESULT",
            )
            assert ice["icebergQty"] == "0.01000000"
            assert depth(server)["asks"] == [["31000.000000", "0.01000000"]]
            status, _, l3 = http("GET", server.http + "/api/v3/depthL3", query="symbol=BTCUSDT")
            assert status == 200
            assert l3["asks"] == [[str(ice["orderId"]), "31000.000000", "0.01000000"]]
            # 0.015 takes the slice, the refreshed slice, then half of it
            bought = await c.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.015", price="31000", time_in_force="IOC"
            )
            assert bought["status"] == "FILLED" and len(bought["fills"]) == 2
            assert depth(server)["asks"] == [["31000.000000", "0.00500000"]]
            st = await mk.order_status("BTCUSDT", order_id=ice["orderId"])
            assert (st["status"], st["executedQty"], st["icebergQty"]) == (
                "PARTIALLY_FILLED",
                "0.01500000",
                "0.01000000",
            )
            # a plain order at the level now queues ahead of the next refresh
            await mk.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.02", price="31000", time_in_force="GTC"
            )
            assert depth(server)["asks"] == [["31000.000000", "0.02500000"]]
            await mk.amend_keep_priority("BTCUSDT", "0.0175", order_id=ice["orderId"])
            assert depth(server)["asks"] == [["31000.000000", "0.02250000"]]  # slice capped

    run(body())


def test_restart_rebuilds_the_same_views(tmp_path: Path) -> None:
    s = ServerThread(tmp_path)
    acc = s.accounts

    async def trade() -> list[int]:
        async with clients(s) as (c, mk, ed):
            await trade_at(ed, mk, "30000")
            ids = [
                (
                    await c.place_order(
                        "BTCUSDT",
                        "SELL",
                        "STOP_LOSS_LIMIT",
                        quantity="0.01",
                        price="29000",
                        time_in_force="GTC",
                        stopPrice=p,
                    )
                )["orderId"]
                for p in ("29500", "28000")
            ]
            ids.append(
                (
                    await c.place_order(
                        "BTCUSDT",
                        "SELL",
                        "LIMIT",
                        quantity="0.03",
                        price="32000",
                        time_in_force="GTC",
                        icebergQty="0.01",
                    )
                )["orderId"]
            )
            ids.append(
                (
                    await c.place_order(
                        "BTCUSDT",
                        "BUY",
                        "LIMIT",
                        quantity="0.01",
                        price="32000",
                        time_in_force="GTC",
                        selfTradePreventionMode="DECREMENT",
                    )
                )["orderId"]
            )
            await trade_at(ed, mk, "29400")  # fires the first stop, which rests at 29000
            return ids

    async def views(server: ServerThread, ids: list[int]) -> list[Any]:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:
            return [await c.order_status("BTCUSDT", order_id=i) for i in ids]

    try:
        ids = run(trade())
        before = run(views(s, ids))
        assert [v["status"] for v in before] == ["NEW", "NEW", "NEW", "EXPIRED_IN_MATCH"]
        assert [v["isWorking"] for v in before] == [True, False, True, True]
        assert before[2]["preventedQuantity"] == "0.01000000"
        book = depth(s)
    finally:
        s.stop()
    s2 = ServerThread(tmp_path, fixture_accounts=False)
    try:
        assert run(views(s2, ids)) == before
        assert depth(s2)["asks"] == book["asks"] and depth(s2)["bids"] == book["bids"]
    finally:
        s2.stop()
