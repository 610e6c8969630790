"""Dialect endpoints ccxt relies on, against a real server: aggTrades, avgPrice, uiKlines and
every candle interval, the 24 h ticker's window, tradeFee, account/commission, system/status,
exchangeInfo's filters against what the engine enforces, and the order/request counters."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import ClientError, RestClient, WsApiClient
from marketdata.ticker import RollingTicker
from tests.gateway_support import ServerThread, http


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("gw-dialect"))
    yield s
    s.stop()


def get(server: ServerThread, path: str, **query: Any) -> Any:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    status, _, body = http("GET", server.http + path, query=q)
    assert status == 200, (path, query, body)
    return body


async def _ltc_trades(server: ServerThread) -> tuple[list[Any], list[Any]]:
    """Three asks (two at 100, one at 101) taken by one buy, then one more trade at 102:
    aggregates [100 x2 fills], [101], [102]."""
    seller = server.new_account(LTC="10")
    buyer = server.new_account(USDT="10000")
    async with (
        WsApiClient.connect(server.ws_api, seller) as s,
        WsApiClient.connect(server.ws_api, buyer) as b,
    ):
        await s.logon()
        await b.logon()
        for price in ("100", "100", "101", "102"):
            await s.place_order(
                "LTCUSDT", "SELL", "LIMIT", quantity="1", price=price, time_in_force="GTC"
            )
        first = await b.place_order(
            "LTCUSDT", "BUY", "LIMIT", quantity="3", price="101", time_in_force="GTC"
        )
        await asyncio.sleep(0.02)  # a later millisecond for the last trade
        second = await b.place_order("LTCUSDT", "BUY", "MARKET", quantity="1")
    return first["fills"], second["fills"]


def test_agg_trades_group_fills_of_one_taker_at_one_price(server: ServerThread) -> None:
    fills_a, fills_b = asyncio.run(_ltc_trades(server))
    assert [f["price"] for f in fills_a] == ["100.000000", "100.000000", "101.000000"]
    ids = [f["tradeId"] for f in fills_a + fills_b]
    aggs = get(server, "/api/v3/aggTrades", symbol="LTCUSDT")
    assert [(a["a"], a["p"], a["q"], a["f"], a["l"], a["m"]) for a in aggs] == [
        (ids[0], "100.000000", "2.00000000", ids[0], ids[1], False),
        (ids[2], "101.000000", "1.00000000", ids[2], ids[2], False),
        (ids[3], "102.000000", "1.00000000", ids[3], ids[3], False),
    ]
    assert aggs[0]["T"] == aggs[1]["T"] < aggs[2]["T"]
    # fromId is inclusive, oldest first; limit keeps the newest without a start
    assert [a["a"] for a in get(server, "/api/v3/aggTrades", symbol="LTCUSDT", fromId=ids[2])] == [
        ids[2],
        ids[3],
    ]
    assert [
        a["a"] for a in get(server, "/api/v3/aggTrades", symbol="LTCUSDT", fromId=ids[0], limit=1)
    ] == [ids[0]]
    assert [a["a"] for a in get(server, "/api/v3/aggTrades", symbol="LTCUSDT", limit=1)] == [ids[3]]
    t_first, t_last = aggs[0]["T"], aggs[2]["T"]
    assert [
        a["a"]
        for a in get(
            server, "/api/v3/aggTrades", symbol="LTCUSDT", startTime=t_first, endTime=t_first
        )
    ] == [ids[0], ids[2]]
    assert [
        a["a"] for a in get(server, "/api/v3/aggTrades", symbol="LTCUSDT", startTime=t_last)
    ] == [ids[3]]
    status, _, body = http(
        "GET",
        server.http + "/api/v3/aggTrades",
        query=f"symbol=LTCUSDT&startTime={t_last}&endTime={t_first - 1}",
    )
    assert (status, body["code"]) == (400, -1128)

    # avgPrice: volume-weighted over the last 5 minutes, closeTime = the last trade's time
    avg = get(server, "/api/v3/avgPrice", symbol="LTCUSDT")
    assert avg == {"mins": 5, "price": "100.750000", "closeTime": t_last}  # 403 / 4
    assert get(server, "/api/v3/avgPrice", symbol="ETHUSDT")["price"] == "0.000000"


def test_candle_intervals_and_ui_klines(server: ServerThread) -> None:
    asyncio.run(_ltc_trades(server))
    now = dt.datetime.now(dt.UTC)
    for interval in (
        "1s",
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1M",
    ):
        rows = get(server, "/api/v3/klines", symbol="LTCUSDT", interval=interval)
        assert (
            rows and get(server, "/api/v3/uiKlines", symbol="LTCUSDT", interval=interval) == rows
        ), interval
        open_ms, close_ms = rows[-1][0], rows[-1][6]
        opened = dt.datetime.fromtimestamp(open_ms / 1000, dt.UTC)
        if interval == "1w":
            assert opened.weekday() == 0 and opened.time() == dt.time(0)
            assert close_ms - open_ms == 7 * 86_400_000 - 1
        elif interval == "1M":
            assert (opened.year, opened.month, opened.day) == (now.year, now.month, 1)
            closed = dt.datetime.fromtimestamp((close_ms + 1) / 1000, dt.UTC)
            assert closed.day == 1 and closed.time() == dt.time(0) and closed > now
        else:
            unit = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[interval[-1]]
            length = int(interval[:-1]) * unit
            assert open_ms % length == 0 and close_ms == open_ms + length - 1, interval
    status, _, body = http(
        "GET", server.http + "/api/v3/klines", query="symbol=LTCUSDT&interval=2m"
    )
    assert (status, body["code"]) == (400, -1120)


def test_24h_ticker_window_ends_at_the_request(server: ServerThread) -> None:
    before = time.time_ns() // 1_000_000
    t = get(server, "/api/v3/ticker/24hr", symbol="BTCUSDT")
    after = time.time_ns() // 1_000_000
    assert before <= t["closeTime"] <= after
    # Binance's rolling-window rule: openTime on the minute, up to 59,999 ms more than 24 h
    assert t["openTime"] % 60_000 == 0
    assert 86_400_000 <= t["closeTime"] - t["openTime"] < 86_460_000


def test_ticker_query_ahead_of_journal_time_skips_without_dropping() -> None:
    """An idle exchange: the query's window excludes yesterday's trades (prevClosePrice is the
    last of them), while the ticker keeps them until journal time moves."""
    hour = 3_600 * 10**9
    ticker = RollingTicker()
    ticker.add(0, 1, 100, 5, 500)
    ticker.add(2 * hour, 2, 120, 1, 120)
    ticker.add(3 * hour, 3, 90, 1, 90)
    minute = 60 * 10**9
    late = ticker.stats(26 * hour + minute)  # the minute of 2 h has just left the window
    assert (late.count, late.first_id, late.open_price, late.high_price, late.low_price) == (
        1,
        3,
        90,
        90,
        90,
    )
    assert late.prev_close_price == 120 and late.volume == 1 and late.quote_volume == 90
    assert late.close_ms == (26 * hour + minute) // 10**6
    assert late.open_ms == (2 * hour + minute) // 10**6  # 24 h before, on the minute
    edge = ticker.stats(26 * hour + minute - 1)  # 24 h before is in the minute of 2 h: in
    assert (edge.count, edge.first_id, edge.prev_close_price) == (2, 2, 100)
    assert edge.open_ms == 2 * hour // 10**6
    idle = ticker.stats(30 * hour)
    assert (idle.count, idle.first_id, idle.last_price, idle.prev_close_price) == (0, -1, 90, 90)
    now = ticker.stats()  # journal time: nothing dropped
    assert (now.count, now.high_price, now.prev_close_price) == (3, 120, 0)


def test_trade_fee_commission_and_system_status(server: ServerThread) -> None:
    creds = server.new_account(USDT="1")

    async def body() -> None:
        async with RestClient(server.http, creds) as rc:
            fees = await rc.request("GET", "/sapi/v1/asset/tradeFee", signed=True)
            assert [f["symbol"] for f in fees] == ["BTCUSDT", "ETHUSDT", "LTCUSDT"]
            assert fees[0] == {
                "symbol": "BTCUSDT",
                "makerCommission": "0.00100000",
                "takerCommission": "0.00100000",
            }
            one = await rc.request(
                "GET", "/sapi/v1/asset/tradeFee", {"symbol": "ETHUSDT"}, signed=True
            )
            assert [f["symbol"] for f in one] == ["ETHUSDT"]
            c = await rc.request(
                "GET", "/api/v3/account/commission", {"symbol": "BTCUSDT"}, signed=True
            )
            assert c["standardCommission"] == {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            }
            assert c["discount"]["enabledForAccount"] is False
            with pytest.raises(ClientError) as err:
                await rc.request("GET", "/api/v3/account/commission", signed=True)
            assert err.value.code == -1102
            with pytest.raises(ClientError) as err:
                await rc.request("GET", "/sapi/v1/asset/tradeFee", {"symbol": "NOPE"}, signed=True)
            assert err.value.code == -1121
        async with WsApiClient.connect(server.ws_api, creds) as ws:
            ws_c = await ws.request("account.commission", {"symbol": "BTCUSDT"}, signed=True)
            assert ws_c == c
        # the rates are the ones trades are charged with (engine fee ppm of the market)
        market = server.gw.store.market("BTCUSDT")
        assert market is not None and market.taker_fee_ppm == 1_000

    asyncio.run(body())
    assert get(server, "/sapi/v1/system/status") == {"status": 0, "msg": "normal"}


def test_exchange_info_filters_match_the_engine(server: ServerThread) -> None:
    info = get(server, "/api/v3/exchangeInfo", symbol="BTCUSDT")
    (symbol,) = info["symbols"]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    max_open = server.gw.engine_config.max_open_orders_per_account
    assert filters["MAX_NUM_ORDERS"]["maxNumOrders"] == max_open
    assert info["exchangeFilters"] == [
        {"filterType": "EXCHANGE_MAX_NUM_ORDERS", "maxNumOrders": max_open}
    ]
    notional = filters["NOTIONAL"]
    assert notional["minNotional"] == "5.000000" and notional["applyMinToMarket"] is False
    assert "PERCENT_PRICE_BY_SIDE" not in filters  # the demo markets have no price band
    seller = server.new_account(BTC="1")
    buyer = server.new_account(USDT="1000")

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, seller) as s,
            WsApiClient.connect(server.ws_api, buyer) as b,
        ):
            await s.logon()
            await b.logon()
            # limit orders: price x quantity must reach minNotional (4 USDT refused)
            with pytest.raises(ClientError) as err:
                await s.place_order(
                    "BTCUSDT",
                    "SELL",
                    "LIMIT",
                    quantity="0.0001",
                    price="40000",
                    time_in_force="GTC",
                )
            assert err.value.code == -1013 and "NOTIONAL" in err.value.msg
            # a quote budget too
            with pytest.raises(ClientError) as err:
                await b.place_order("BTCUSDT", "BUY", "MARKET", quote_order_qty="4")
            assert err.value.code == -1013 and "NOTIONAL" in err.value.msg
            # a MARKET order by quantity is not checked against it (applyMinToMarket false)
            await b.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.0002", price="30000", time_in_force="GTC"
            )
            sold = await s.place_order("BTCUSDT", "SELL", "MARKET", quantity="0.0001")
            assert sold["status"] == "FILLED" and sold["cummulativeQuoteQty"] == "3.000000"

    asyncio.run(body())


def _metric(name: str, server: ServerThread) -> float:
    _, _, text = http("GET", server.http + "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_orders_total_counts_rest_and_every_ws_order_method(server: ServerThread) -> None:
    creds = server.new_account(USDT="1000")
    orders0 = _metric("kootabase_orders_total", server)
    ws0 = _metric('kootabase_requests_total{api="ws"}', server)

    async def body() -> None:
        async with RestClient(server.http, creds) as rc:
            placed = await rc.request(
                "POST",
                "/api/v3/order",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.0010",
                    "price": "10000",
                },
                signed=True,
            )
            await rc.request(
                "POST",
                "/api/v3/order/cancelReplace",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.0010",
                    "price": "10001",
                    "cancelOrderId": placed["orderId"],
                    "cancelReplaceMode": "STOP_ON_FAILURE",
                },
                signed=True,
            )
        async with WsApiClient.connect(server.ws_api, creds) as ws:
            await ws.logon()
            o = await ws.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.0010", price="10000", time_in_force="GTC"
            )
            await ws.cancel_replace(
                "BTCUSDT",
                o["orderId"],
                "BUY",
                "LIMIT",
                quantity="0.0010",
                price="10002",
                timeInForce="GTC",
            )

    asyncio.run(body())
    assert _metric("kootabase_orders_total", server) == orders0 + 4
    # logon, place, cancelReplace: the fast-path order.place counts as a request too
    assert _metric('kootabase_requests_total{api="ws"}', server) == ws0 + 3


def test_system_status_says_maintenance_once_the_engine_stops(tmp_path: Path) -> None:
    """A journal that can no longer be written stops commands (fail closed); the public system
    status then says so instead of 'normal'."""
    s = ServerThread(tmp_path, marketdata=False)
    try:
        assert get(s, "/sapi/v1/system/status") == {"status": 0, "msg": "normal"}
        s.call(s.gw.bridge.call(lambda node: node.journal.close()))

        async def order() -> None:
            async with WsApiClient.connect(s.ws_api, s.accounts.maker) as c:
                await c.logon()
                with pytest.raises(ClientError) as err:
                    await c.place_order(
                        "BTCUSDT", "BUY", "LIMIT", quantity="0.001", price="10000",
                        time_in_force="GTC",
                    )  # fmt: skip
                assert err.value.status >= 500

        asyncio.run(order())
        assert get(s, "/sapi/v1/system/status") == {"status": 1, "msg": "system maintenance"}
    finally:
        s.stop()
