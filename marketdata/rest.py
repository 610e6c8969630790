"""REST market-data endpoints in the Binance Spot dialect (aiohttp handlers).

Errors are ``{"code": <negative int>, "msg": ...}`` with HTTP 400, using the dialect's codes:
-1102 mandatory parameter missing, -1100 illegal characters (bad integer), -1121 invalid
symbol, -1120 invalid interval, -1128 invalid combination of parameters.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

import msgspec
from aiohttp import web

from engine.jsondepth import decode_json
from marketdata import wire
from marketdata.candles import INTERVALS
from marketdata.service import MarketDataService
from marketdata.state import MarketState, TradeRecord

_encode = msgspec.json.Encoder().encode
SERVICE_KEY: Final = web.AppKey("marketdata_service", MarketDataService)
AVG_PRICE_MINS: Final = 5
"""The dialect's averaging window of /api/v3/avgPrice."""
_DIGITS: Final = re.compile(r"[0-9]{1,20}")
"""ASCII digits, whole text (``str.isdigit`` accepts ``²``, which ``int`` then refuses)."""


class ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def error_response(err: ApiError) -> web.Response:
    return json_response({"code": err.code, "msg": err.msg}, err.status)


def _service(request: web.Request) -> MarketDataService:
    return request.config_dict[SERVICE_KEY]


def _market(service: MarketDataService, symbol: str | None) -> MarketState:
    if not symbol:
        raise ApiError(
            -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
        )
    market = service.state.by_wire_symbol.get(symbol.upper()) if symbol.isascii() else None
    if market is None:
        raise ApiError(-1121, "Invalid symbol.")
    return market


def _int(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if _DIGITS.fullmatch(text) is None:
        raise ApiError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    value = int(text)
    if not lo <= value <= hi:
        raise ApiError(-1100, f"Parameter '{name}' must be between {lo} and {hi}.")
    return value


def _markets(service: MarketDataService, request: web.Request) -> tuple[list[MarketState], bool]:
    """The ``symbol`` or ``symbols`` parameter; (markets, single) where single means the
    response is one object rather than a list."""
    symbol, symbols = request.query.get("symbol"), request.query.get("symbols")
    if symbol is not None and symbols is not None:
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    if symbol is not None:
        return [_market(service, symbol)], True
    if symbols is not None:
        try:
            names = decode_json(symbols)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ApiError(
                -1100,
                "Illegal characters found in parameter 'symbols'; expected "
                'a JSON array of symbols, e.g. ["BTCUSDT","ETHUSDT"].',
            )
        return [_market(service, n) for n in names], False
    return [service.state.markets[k] for k in sorted(service.state.markets)], False


def _handler(fn: Any) -> Any:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return fn(_service(request), request)
        except ApiError as err:
            return error_response(err)

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


@_handler
def depth(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/depth?symbol=&limit= (default 100, at most 5000)."""
    market = _market(service, request.query.get("symbol"))
    limit = _int(request, "limit", 100, 1, 5000)
    assert limit is not None
    return json_response(
        wire.depth_snapshot(market.info, market.book, service.state.last_seq, limit)
    )


@_handler
def depth_l3(service: MarketDataService, request: web.Request) -> web.Response:
    """Extension, GET /api/v3/depthL3?symbol=: every resting order, in book order."""
    market = _market(service, request.query.get("symbol"))
    return json_response(wire.l3_snapshot(market.info, market.book, service.state.last_seq))


@_handler
def trades(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/trades?symbol=&limit= (default 500, at most 1000), oldest first."""
    market = _market(service, request.query.get("symbol"))
    limit = _int(request, "limit", 500, 1, 1000)
    assert limit is not None
    recent = list(market.trades)[-limit:]
    return json_response([wire.rest_trade(market.info, t) for t in recent])


def _aggregates(market: MarketState) -> list[list[TradeRecord]]:
    """The kept trades grouped by aggregate id, oldest first; a leading group whose first
    trades already left the history is dropped (its quantity would be short)."""
    groups: list[list[TradeRecord]] = []
    for t in market.trades:
        if groups and groups[-1][0].agg_id == t.agg_id:
            groups[-1].append(t)
        else:
            groups.append([t])
    if groups and groups[0][0].agg_id != groups[0][0].trade_id:
        groups.pop(0)
    return groups


@_handler
def agg_trades(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/aggTrades?symbol=&fromId=&startTime=&endTime=&limit= (default 500, at most
    1000): fills of one taker order at one price and time, summed. ``a`` is the id of the
    aggregate's first trade (stable, increasing, not contiguous). With ``fromId`` or
    ``startTime`` the oldest ``limit`` aggregates from there (inclusive), otherwise the newest
    (up to ``endTime`` if given); history is the last 1,000 trades of the symbol."""
    market = _market(service, request.query.get("symbol"))
    from_id = _int(request, "fromId", None, 0, 1 << 62)
    start = _int(request, "startTime", None, 0, 1 << 62)
    end = _int(request, "endTime", None, 0, 1 << 62)
    limit = _int(request, "limit", 500, 1, 1000)
    assert limit is not None
    if start is not None and end is not None and start > end:
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    chosen = [
        g for g in _aggregates(market)
        if (from_id is None or g[0].agg_id >= from_id)
        and (start is None or g[0].time_ms >= start)
        and (end is None or g[0].time_ms <= end)
    ]  # fmt: skip
    chosen = chosen[:limit] if from_id is not None or start is not None else chosen[-limit:]
    return json_response([wire.agg_trade(market.info, g) for g in chosen])


@_handler
def avg_price(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/avgPrice?symbol=: the volume-weighted price of the trades of the last
    ``AVG_PRICE_MINS`` minutes before the request (the last trade price if there were none,
    "0" before the first trade); ``closeTime`` is the last trade's time."""
    market = _market(service, request.query.get("symbol"))
    since_ms = time.time_ns() // 1_000_000 - AVG_PRICE_MINS * 60_000
    recent = [t for t in market.trades if t.time_ms > since_ms]
    last = market.trades[-1] if market.trades else None
    if recent:
        volume = sum(t.qty for t in recent)
        price = wire.weighted_avg_price(market.info, volume, sum(t.quote for t in recent))
    else:
        price = last.price if last is not None else 0
    return json_response(
        {
            "mins": AVG_PRICE_MINS,
            "price": market.info.price(price),
            "closeTime": last.time_ms if last is not None else 0,
        }
    )


@_handler
def klines(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/klines (and /api/v3/uiKlines, the same rows here) ?symbol=&interval=
    &startTime=&endTime=&limit= (default 500)."""
    market = _market(service, request.query.get("symbol"))
    interval = request.query.get("interval")
    if not interval:
        raise ApiError(
            -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
        )
    if interval not in INTERVALS:
        raise ApiError(-1120, "Invalid interval.")
    start = _int(request, "startTime", None, 0, 1 << 62)
    end = _int(request, "endTime", None, 0, 1 << 62)
    limit = _int(request, "limit", 500, 1, 1000)
    assert limit is not None
    if start is not None and end is not None and start > end:
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    candles = market.candles[interval].candles(start, end, limit)
    return json_response([wire.kline_row(market.info, c) for c in candles])


@_handler
def ticker_24hr(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/ticker/24hr[?symbol=|symbols=]: the 24 h ending at the request
    (``closeTime`` = request time, ``openTime`` = 24 h before, ``prevClosePrice`` = the last
    trade before the window, "0" if none)."""
    markets, single = _markets(service, request)
    now_ns = time.time_ns()
    out = []
    for m in markets:
        m.ticker.advance(service.state.last_ts_ns)
        out.append(wire.ticker_24hr(m.info, m.ticker.stats(now_ns), m.book))
    return json_response(out[0] if single else out)


@_handler
def book_ticker(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/ticker/bookTicker[?symbol=|symbols=]."""
    markets, single = _markets(service, request)
    out = [wire.book_ticker(m.info, m.book) for m in markets]
    return json_response(out[0] if single else out)


@_handler
def price_ticker(service: MarketDataService, request: web.Request) -> web.Response:
    """GET /api/v3/ticker/price[?symbol=|symbols=]: the last trade price ("0..." if none)."""
    markets, single = _markets(service, request)
    out = [wire.price_ticker(m.info, m.trades[-1].price if m.trades else 0) for m in markets]
    return json_response(out[0] if single else out)
