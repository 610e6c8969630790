"""Acceptance with a client no one here wrote: ccxt's ``binance`` class (spot) pointed at the
local gateway, REST through ``ccxt`` and streams through ``ccxt.pro``, values checked. ccxt's
own defaults pick the endpoints (aggTrades for ``fetch_trades``, ``/sapi/v1/asset/tradeFee``
for ``fetch_trading_fees``, cancelReplace for ``edit_order``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ccxt = pytest.importorskip("ccxt")
ccxt_pro = pytest.importorskip("ccxt.pro")

from tests.gateway_support import ServerThread  # noqa: E402

OPTIONS = {
    "fetchMarkets": {"types": ["spot"]},
    "fetchCurrencies": False,
    "fetchMargins": False,
    "defaultType": "spot",
}


def _point_at(ex: Any, http: str) -> None:
    """Every REST url of the class at the local server, path kept (``/api/v3``,
    ``/sapi/v1``, ...), so nothing can leave the machine."""
    for name, url in list(ex.urls["api"].items()):
        if isinstance(url, str):
            ex.urls["api"][name] = http + urlsplit(url).path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("ccxt"))
    yield s
    s.stop()


def _client(server: ServerThread, creds: Any) -> Any:
    ex = ccxt.binance(
        {
            "apiKey": creds.api_key,
            "secret": creds.secret,
            "enableRateLimit": False,
            "options": dict(OPTIONS),
        }
    )
    _point_at(ex, server.http)
    return ex


def test_ccxt_rest_trading_round_trip(server: ServerThread) -> None:
    acc = server.accounts
    taker = _client(server, acc.demo)
    maker = _client(server, acc.maker)
    markets = taker.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "LTC/USDT"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.0001
    assert btc["limits"]["cost"]["min"] == 5.0
    assert abs(taker.fetch_time() - taker.milliseconds()) < 5_000

    maker.load_markets()
    ask = maker.create_order("BTC/USDT", "limit", "sell", 0.5, 30000)
    assert ask["status"] == "open" and ask["price"] == 30000.0
    book = taker.fetch_order_book("BTC/USDT")
    assert book["asks"][0] == [30000.0, 0.5]
    before = taker.fetch_balance()
    bought = taker.create_order("BTC/USDT", "market", "buy", 0.01)
    assert bought["status"] == "closed" and bought["filled"] == 0.01
    assert bought["average"] == 30000.0 and bought["cost"] == 300.0
    after = taker.fetch_balance()
    assert round(after["BTC"]["free"] - before["BTC"]["free"], 8) == 0.01
    assert round(before["USDT"]["free"] - after["USDT"]["free"], 6) == 300.3  # 0.1 % fee

    ticker = taker.fetch_ticker("BTC/USDT")
    assert ticker["last"] == 30000.0 and ticker["ask"] == 30000.0
    candles = taker.fetch_ohlcv("BTC/USDT", "1m")
    assert candles[-1][4] == 30000.0 and candles[-1][5] == 0.01
    trades = taker.fetch_trades("BTC/USDT")
    assert trades[-1]["price"] == 30000.0 and trades[-1]["amount"] == 0.01
    assert trades[-1]["side"] == "buy"

    bid = taker.create_order("BTC/USDT", "limit", "buy", 0.01, 20000)
    assert bid["status"] == "open"
    fetched = taker.fetch_order(bid["id"], "BTC/USDT")
    assert fetched["id"] == bid["id"] and fetched["clientOrderId"] == bid["clientOrderId"]
    assert [o["id"] for o in taker.fetch_open_orders("BTC/USDT")] == [bid["id"]]
    cancelled = taker.cancel_order(bid["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert taker.fetch_open_orders("BTC/USDT") == []
    mine = taker.fetch_my_trades("BTC/USDT")
    assert len(mine) == 1 and mine[0]["order"] == bought["id"]
    assert mine[0]["fee"] == {"currency": "USDT", "cost": 0.3}
    assert mine[0]["takerOrMaker"] == "taker"


def test_ccxt_pro_streams(server: ServerThread) -> None:
    acc = server.accounts
    ws_base = server.http.replace("http://", "ws://")

    async def body() -> None:
        ex = ccxt_pro.binance(
            {
                "apiKey": acc.maker.api_key,
                "secret": acc.maker.secret,
                "enableRateLimit": False,
                "options": dict(OPTIONS),
            }
        )
        _point_at(ex, server.http)
        # ccxt.pro appends "/<n>" (a connection number) to the url; real Binance ignores
        # it, the local /ws/<streams> route would read it as a stream name: a query
        # parameter absorbs it.
        ex.urls["api"]["ws"]["spot"] = f"{ws_base}/ws?conn="
        maker = _client(server, acc.maker)
        try:
            await ex.load_markets()
            book_task = asyncio.ensure_future(ex.watch_order_book("ETH/USDT"))
            await asyncio.sleep(0.5)
            maker.load_markets()
            maker.create_order("ETH/USDT", "limit", "sell", 1, 2500)
            book = await asyncio.wait_for(book_task, 10)
            for _ in range(50):
                if book["asks"]:
                    break
                book = await asyncio.wait_for(ex.watch_order_book("ETH/USDT"), 10)
            assert book["asks"][0] == [2500.0, 1.0]
            trades_task = asyncio.ensure_future(ex.watch_trades("ETH/USDT"))
            await asyncio.sleep(0.5)
            taker = _client(server, acc.demo)
            taker.load_markets()
            taker.create_order("ETH/USDT", "limit", "buy", 0.25, 2500)
            trades = await asyncio.wait_for(trades_task, 10)
            assert trades[-1]["price"] == 2500.0 and trades[-1]["amount"] == 0.25
        finally:
            await ex.close()

    asyncio.run(body())


def test_ccxt_sees_dialect_errors(server: ServerThread, tmp_path: Path) -> None:
    ex = _client(server, server.accounts.demo)
    ex.load_markets()
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("987654", "BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 1000, 30000)
    bad = ccxt.binance(
        {"apiKey": server.accounts.demo.api_key, "secret": "wrong", "options": dict(OPTIONS)}
    )
    _point_at(bad, server.http)
    bad.markets = ex.markets
    bad.markets_by_id = ex.markets_by_id
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()


def test_ccxt_defaults_fetch_trades_fees_and_edit_order(server: ServerThread) -> None:
    seller = _client(server, server.new_account(LTC="100"))
    buyer = _client(server, server.new_account(USDT="100000"))
    seller.load_markets()
    buyer.load_markets()
    assert seller.options.get("fetchTradesMethod") is None  # ccxt's default: aggTrades
    since = buyer.milliseconds()
    for price in (60, 60, 61):
        seller.create_order("LTC/USDT", "limit", "sell", 1, price)
    taken = buyer.create_order("LTC/USDT", "limit", "buy", 3, 61)
    assert taken["status"] == "closed"
    trades = buyer.fetch_trades("LTC/USDT", since)  # startTime/endTime on /aggTrades
    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [
        (60.0, 2.0, "buy"),
        (61.0, 1.0, "buy"),
    ]
    assert trades[0]["timestamp"] >= since
    assert buyer.fetch_trades("LTC/USDT", limit=1)[0]["id"] == trades[1]["id"]

    fees = buyer.fetch_trading_fees()  # /sapi/v1/asset/tradeFee
    assert fees["LTC/USDT"]["maker"] == 0.001 and fees["LTC/USDT"]["taker"] == 0.001
    assert set(fees) >= {"BTC/USDT", "ETH/USDT", "LTC/USDT"}

    # edit_order: cancelReplace; a bid holding nearly all the quote balance can be moved
    tight = _client(server, server.new_account(USDT="1000"))
    tight.load_markets()
    bid = tight.create_order("LTC/USDT", "limit", "buy", 10, 99)  # 990 + 0.99 fee of 1000
    edited = tight.edit_order(bid["id"], "LTC/USDT", "limit", "buy", 10, 98)
    assert edited["id"] != bid["id"] and edited["price"] == 98.0
    assert edited["status"] == "open" and edited["amount"] == 10.0
    assert [o["id"] for o in tight.fetch_open_orders("LTC/USDT")] == [edited["id"]]
    assert tight.fetch_order(bid["id"], "LTC/USDT")["status"] == "canceled"


def test_ccxt_fetch_my_trades_pages_forward_with_since_and_limit(server: ServerThread) -> None:
    """Incremental sync as ccxt users write it: since = last timestamp + 1, limit n."""
    seller = _client(server, server.new_account(LTC="100"))
    buyer = _client(server, server.new_account(USDT="100000"))
    seller.load_markets()
    buyer.load_markets()
    bought = []
    for k in range(7):
        seller.create_order("LTC/USDT", "limit", "sell", 1, 200 + k)  # above every LTC bid
        bought.append(buyer.create_order("LTC/USDT", "market", "buy", 1)["id"])
        time.sleep(0.003)  # distinct milliseconds
    start = buyer.fetch_my_trades("LTC/USDT")[0]["timestamp"]
    seen: list[Any] = []
    since = start
    for _ in range(10):
        page = buyer.fetch_my_trades("LTC/USDT", since, 3)
        if not page:
            break
        assert len(page) <= 3
        seen += page
        since = page[-1]["timestamp"] + 1
    assert [t["order"] for t in seen] == bought
    assert [t["price"] for t in seen] == [200.0 + k for k in range(7)]


def test_ccxt_load_markets_with_its_default_options_and_currencies(server: ServerThread) -> None:
    """ccxt's defaults except the market types (linear and inverse are Binance's futures
    APIs, another host): with a key, ``load_markets`` also calls ``/sapi/v1/capital/config/
    getall`` (currencies) and the margin pair lists; each used to answer -1099 Not Found, so
    ``load_markets`` failed before the first order."""
    acc = server.new_account(USDT="250.5")
    ex = ccxt.binance(
        {
            "apiKey": acc.api_key,
            "secret": acc.secret,
            "enableRateLimit": False,
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    _point_at(ex, server.http)
    markets = ex.load_markets()
    assert markets["BTC/USDT"]["margin"] is False
    assert {"BTC", "ETH", "LTC", "USDT"} <= set(ex.currencies)
    assert ex.currencies["USDT"]["networks"] == {}  # no custody on this server
    coins = {c["coin"]: c for c in ex.sapi_get_capital_config_getall()}
    assert coins["USDT"]["free"] == "250.500000" and coins["USDT"]["locked"] == "0.000000"
    assert coins["USDT"]["depositAllEnable"] is False
    assert ex.fetch_balance()["USDT"]["free"] == 250.5
