"""The REST API's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Built at request time from what the server actually has, so it cannot drift from it: the paths
and methods come from the app's route table, each operation's request weight from the handler
(the same lookup the rate-limit middleware makes), the enums from the tables order entry uses
(`gateway.dialect`, `marketdata.candles.INTERVALS`), the patterns from the parsers
(`gateway.markets.DECIMAL_LEGAL`, `gateway.clientids.CLIENT_ID_LEGAL`), and the symbols and
coins from the running exchange. What a handler reads is written down once, in `_operations`;
`tests/test_openapi.py` runs schemathesis against a real server with this description (every
operation, positive and negative data, every answer checked against it) and fails when a
``/api/`` or ``/sapi/`` route has no entry here.

WebSocket routes (``/ws-api/v3``, ``/ws``, ``/stream``) and the loopback operator API
(``/admin/*``) are not REST operations and are left out (see docs/api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.auth import DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS
from gateway.cli import _version as version
from gateway.clientids import CLIENT_ID_LEGAL
from gateway.dialect import (
    MAX_TRAILING_DELTA,
    MIN_TRAILING_DELTA,
    ORDER_TYPES,
    SIDES,
    STP_MODES,
    TIFS,
)
from gateway.markets import DECIMAL_LEGAL
from gateway.replace import REPLACE_MODES
from gateway.trading import RESP_TYPES

if TYPE_CHECKING:
    from gateway.app import Gateway

OPENAPI_VERSION: Final = "3.1.0"
DOCUMENTED_PREFIXES: Final = ("/api/", "/sapi/")
"""Every route under these prefixes must have an entry in `_operations` (tested)."""
ERROR: Final = {"$ref": "#/components/schemas/Error"}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: dict[str, Any]
    required: bool = False
    description: str = ""
    empty_is_absent: bool = True
    """An optional parameter sent empty (``name=``) counts as not sent (`gateway.params`)."""

    def wire_schema(self) -> dict[str, Any]:
        if self.required or not self.empty_is_absent:
            return self.schema
        return {"anyOf": [self.schema, {"const": ""}]}


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    params: tuple[Param, ...] = ()
    permission: str | None = None
    """None: public; else the API key permission a signed request needs (read, trade,
    withdraw)."""
    result: dict[str, Any] | None = None
    """JSON schema of the 200 answer."""
    statuses: tuple[int, ...] = ()
    """Error statuses beyond the ones every operation of its kind has (see `_error_statuses`)."""
    example: dict[str, Any] | None = None
    """Parameters of a request that succeeds on the demo exchange (its demo account)."""
    journaled: bool = False
    """The request becomes a journaled command (may answer 503 'status unknown')."""


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _int(lo: int = 0, hi: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": lo}
    if hi is not None:
        out["maximum"] = hi
    return out


DECIMAL: Final = {"type": "string", "pattern": DECIMAL_LEGAL}
CLIENT_ID: Final = {"type": "string", "pattern": CLIENT_ID_LEGAL}
INT64_ID: Final = _int(1, (1 << 63) - 1)
TIME_MS: Final = _int(0, 1 << 62)


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": sorted(values)}


def _operations(symbols: list[str], coins: list[str]) -> dict[tuple[str, str], Operation]:
    """What each REST operation reads, answers and may refuse with (the one written source)."""
    symbol = Param("symbol", _enum(symbols), True, "e.g. BTCUSDT")
    symbol_opt = Param("symbol", _enum(symbols), False, "one symbol")
    # exchangeInfo and the tickers refuse an empty symbol instead of ignoring it
    one_symbol = Param("symbol", _enum(symbols), False, "one symbol", empty_is_absent=False)
    symbols_json = Param(
        "symbols",
        {"type": "string", "minLength": 2},
        False,
        'JSON array of symbols, e.g. ["BTCUSDT","ETHUSDT"] (not with symbol)',
        empty_is_absent=False,
    )
    order_id = Param("orderId", INT64_ID)
    orig_cid = Param("origClientOrderId", CLIENT_ID)
    history = (
        Param("startTime", TIME_MS),
        Param("endTime", TIME_MS),
        Param("limit", _int(1, 1000), description="default 500"),
    )
    order = (
        symbol,
        Param("side", _enum(SIDES), True),
        Param("type", _enum(ORDER_TYPES), True),
        Param("timeInForce", _enum(TIFS), description="LIMIT and *_LIMIT types"),
        Param("quantity", DECIMAL, description="base quantity"),
        Param("quoteOrderQty", DECIMAL, description="MARKET BUY and STOP_LOSS/TAKE_PROFIT BUY"),
        Param("price", DECIMAL),
        Param("stopPrice", DECIMAL),
        Param("trailingDelta", _int(MIN_TRAILING_DELTA, MAX_TRAILING_DELTA), description="bps"),
        Param("icebergQty", DECIMAL, description="LIMIT and LIMIT_MAKER"),
        Param("newClientOrderId", CLIENT_ID),
        Param("selfTradePreventionMode", _enum(STP_MODES)),
        Param("newOrderRespType", _enum(RESP_TYPES)),
    )
    place_example = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "1000",
    }
    candles = Operation(
        "Candles (journal time, UTC-aligned; uiKlines gives the same rows)",
        (symbol, Param("interval", _enum(_intervals()), True), *history),
        result=_array({"type": "array"}),
        example={"symbol": "BTCUSDT", "interval": "1m"},
    )
    coin = Param("coin", _enum(coins), True)
    coin_opt = Param("coin", _enum(coins))
    ops = {
        ("GET", "/api/v3/ping"): Operation("Test connectivity", result={"type": "object"}),
        ("GET", "/api/v3/time"): Operation("Server time (ms)", result=_obj(serverTime=_int())),
        ("GET", "/api/v3/exchangeInfo"): Operation(
            "Markets, filters, rate limits",
            (
                one_symbol,
                Param(
                    "symbols",
                    {"type": "string"},
                    description=f"{symbols_json.description}; ignored when symbol is sent",
                    empty_is_absent=False,
                ),
            ),
            result=_obj(
                timezone={"type": "string"},
                serverTime=_int(),
                symbols={"type": "array"},
                rateLimits={"type": "array"},
            ),
        ),
        ("GET", "/api/v3/account"): Operation(
            "Balances and permissions",
            (Param("omitZeroBalances", {"type": "boolean"}),),
            "read",
            _ref("Account"),
        ),
        ("POST", "/api/v3/order"): Operation(
            "Place an order",
            order,
            "trade",
            _ref("OrderResult"),
            example=place_example,
            journaled=True,
        ),
        ("POST", "/api/v3/order/test"): Operation(
            "Validate an order (nothing is journaled)",
            order,
            "trade",
            {"type": "object"},
            example=place_example,
        ),
        ("GET", "/api/v3/order"): Operation(
            "An order's status", (symbol, order_id, orig_cid), "read", _ref("Order")
        ),
        ("DELETE", "/api/v3/order"): Operation(
            "Cancel an order", (symbol, order_id, orig_cid), "trade", _ref("Order"), journaled=True
        ),
        ("POST", "/api/v3/order/cancelReplace"): Operation(
            "Cancel an order and place a new one",
            (
                *order,
                Param("cancelReplaceMode", _enum(REPLACE_MODES), True),
                Param("cancelOrderId", INT64_ID),
                Param("cancelOrigClientOrderId", CLIENT_ID),
            ),
            "trade",
            _obj(cancelResult={"type": "string"}, newOrderResult={"type": "string"}),
            statuses=(409,),
            journaled=True,
        ),
        ("PUT", "/api/v3/order/amend/keepPriority"): Operation(
            "Reduce an order's quantity, keeping its priority",
            (symbol, order_id, orig_cid, Param("newQty", DECIMAL, True)),
            "trade",
            _obj(transactTime=_int(), executionId=_int(), amendedOrder=_ref("Order")),
            journaled=True,
        ),
        ("GET", "/api/v3/openOrders"): Operation(
            "Open orders",
            (symbol_opt,),
            "read",
            _array(_ref("Order")),
            example={"symbol": "BTCUSDT"},
        ),
        ("DELETE", "/api/v3/openOrders"): Operation(
            "Cancel every open order of a symbol",
            (symbol,),
            "trade",
            _array(_ref("Order")),
            journaled=True,
        ),
        ("GET", "/api/v3/allOrders"): Operation(
            "Orders, open and closed",
            (symbol, order_id, *history),
            "read",
            _array(_ref("Order")),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/myTrades"): Operation(
            "The account's trades",
            (symbol, order_id, Param("fromId", _int()), *history),
            "read",
            _array(_obj(symbol={"type": "string"}, id=_int(), orderId=_int())),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/account/commission"): Operation(
            "The account's commission rates for a symbol",
            (symbol,),
            "read",
            _obj(symbol={"type": "string"}, standardCommission={"type": "object"}),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/sapi/v1/asset/tradeFee"): Operation(
            "Maker and taker fee rates per symbol",
            (symbol_opt,),
            "read",
            _array(
                _obj(
                    symbol={"type": "string"},
                    makerCommission={"type": "string"},
                    takerCommission={"type": "string"},
                )
            ),
        ),
        ("GET", "/sapi/v1/system/status"): Operation(
            "0 normal, 1 when the engine cannot take commands",
            result=_obj(status={"type": "integer", "enum": [0, 1]}, msg={"type": "string"}),
        ),
        ("GET", "/api/v3/aggTrades"): Operation(
            "Aggregate trades (one taker order at one price)",
            (symbol, Param("fromId", _int()), *history),
            result=_array(_obj(a=_int(), p={"type": "string"}, q={"type": "string"})),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/avgPrice"): Operation(
            "Volume-weighted price of the last minutes' trades",
            (symbol,),
            result=_obj(mins=_int(), price={"type": "string"}, closeTime=_int()),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/uiKlines"): candles,
        ("GET", "/api/v3/depth"): Operation(
            "Order book (L2)",
            (symbol, Param("limit", _int(1, 5000), description="default 100")),
            result=_obj(lastUpdateId=_int(), bids={"type": "array"}, asks={"type": "array"}),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/depthL3"): Operation(
            "Extension: every resting order in book order",
            (symbol,),
            result=_obj(lastUpdateId=_int(), bids={"type": "array"}, asks={"type": "array"}),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/trades"): Operation(
            "Recent trades",
            (symbol, Param("limit", _int(1, 1000), description="default 500")),
            result=_array(_obj(id=_int(), price={"type": "string"}, qty={"type": "string"})),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/klines"): candles,
        ("GET", "/api/v3/ticker/24hr"): Operation(
            "Rolling 24 h ticker", (one_symbol, symbols_json), result=_one_or_many()
        ),
        ("GET", "/api/v3/ticker/bookTicker"): Operation(
            "Best bid and ask", (one_symbol, symbols_json), result=_one_or_many()
        ),
        ("GET", "/api/v3/ticker/price"): Operation(
            "Last trade price", (one_symbol, symbols_json), result=_one_or_many()
        ),
        ("GET", "/sapi/v1/capital/deposit/address"): Operation(
            "The account's deposit address (custody)",
            (coin, Param("network", {"type": "string"})),
            "read",
            _obj(address={"type": "string"}, coin={"type": "string"}, network={"type": "string"}),
        ),
        ("POST", "/sapi/v1/capital/withdraw/apply"): Operation(
            "Request a withdrawal (custody)",
            (
                coin,
                Param("address", {"type": "string"}, True),
                Param("amount", DECIMAL, True),
                Param("network", {"type": "string"}),
                Param("withdrawOrderId", INT64_ID),
            ),
            "withdraw",
            _obj(id={"type": "string"}),
            journaled=True,
        ),
        ("GET", "/sapi/v1/capital/withdraw/history"): Operation(
            "Withdrawals (custody)", (coin_opt,), "read", _array({"type": "object"})
        ),
        ("GET", "/sapi/v1/capital/deposit/hisrec"): Operation(
            "Deposits (custody)", (coin_opt,), "read", _array({"type": "object"})
        ),
    }
    return ops


def _intervals() -> list[str]:
    from marketdata.candles import INTERVALS

    return list(INTERVALS)


def _obj(**required: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(required), "properties": required}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _one_or_many() -> dict[str, Any]:
    item = _obj(symbol={"type": "string"})
    return {"oneOf": [item, _array(item)]}


def _components() -> dict[str, Any]:
    order = _obj(
        symbol={"type": "string"},
        orderId=_int(),
        clientOrderId={"type": "string"},
        price={"type": "string"},
        origQty={"type": "string"},
        executedQty={"type": "string"},
        status={"type": "string"},
        type={"type": "string"},
        side={"type": "string"},
    )
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["code", "msg"],
                "properties": {
                    "code": {"type": "integer", "maximum": -1},
                    "msg": {"type": "string"},
                    "data": {},
                },
                "description": "Codes never change meaning: docs/api.md#errors.",
            },
            "Order": order,
            "OrderResult": _obj(
                symbol={"type": "string"},
                orderId=_int(),
                clientOrderId={"type": "string"},
                transactTime=_int(),
            ),
            "Account": _obj(
                canTrade={"type": "boolean"},
                balances=_array(
                    _obj(
                        asset={"type": "string"}, free={"type": "string"}, locked={"type": "string"}
                    )
                ),
            ),
        },
        "securitySchemes": {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-MBX-APIKEY",
                "description": "Signed requests also carry timestamp and signature "
                "(docs/security.md).",
            },
        },
    }


_STATUS_TEXT: Final = {
    400: "Refused: bad or missing parameter, filter failure, engine refusal",
    401: "Not authenticated: missing or unknown API key, or missing permission",
    405: "Method not allowed",
    409: "Partly or wholly failed (cancel-replace): data carries both results",
    413: "Request body over the size limit",
    418: "Banned for repeated rate-limit violations",
    429: "Over a rate limit (Retry-After)",
    503: "No acknowledgement in time: the outcome is unknown (-1007)",
}


def _error_statuses(method: str, op: Operation, rate_limited: bool) -> list[int]:
    """Every error status the operation can answer (tests/test_openapi.py provokes each one,
    503 excepted: an acknowledgement that does not come in time)."""
    statuses = set(op.statuses)
    if op.params or op.permission is not None:
        statuses.add(400)
    if rate_limited:
        statuses |= {418, 429}
    if op.permission is not None:
        statuses.add(401)
    if method in ("POST", "PUT"):
        statuses.add(413)
    if op.journaled:
        statuses.add(503)
    return sorted(statuses)


def _signed_params() -> tuple[Param, ...]:
    return (
        Param("timestamp", _int(), True, "ms since the epoch"),
        Param(
            "recvWindow",
            _int(1, MAX_RECV_WINDOW_MS),
            description=f"ms, default {DEFAULT_RECV_WINDOW_MS}",
        ),
        Param(
            "signature",
            {"type": "string"},
            True,
            "HMAC-SHA256 (hex) or Ed25519 (base64) of the parameters before it, as sent; last",
        ),
    )


def _operation(method: str, path: str, op: Operation, weight: int) -> dict[str, Any]:
    params = op.params + (_signed_params() if op.permission else ())
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{method.lower()}{path.replace('/', '_')}",
        "x-weight": weight,
    }
    if op.permission is not None:
        out["security"] = [{"ApiKey": []}]
        out["x-permission"] = op.permission
    if method in ("POST", "PUT"):
        props = {
            p.name: {**p.wire_schema(), **({"description": p.description} if p.description else {})}
            for p in params
        }
        body_schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "required": [p.name for p in params if p.required],
        }
        content: dict[str, Any] = {"schema": body_schema}
        if op.example is not None:
            content["example"] = op.example
        out["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": content},
        }
    elif params:
        out["parameters"] = [
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "schema": p.wire_schema(),
                **({"description": p.description} if p.description else {}),
                **({"example": op.example[p.name]} if op.example and p.name in op.example else {}),
            }
            for p in params
        ]
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": op.result or {}}}}
    }
    rate_limited = path.startswith(DOCUMENTED_PREFIXES)
    for status in _error_statuses(method, op, rate_limited):
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": ERROR}},
        }
    out["responses"] = responses
    return out


def routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every documentable route (HEAD twins left out)."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method in ("HEAD", "*"):
            continue
        out.append((route.method, path, route.handler))
    return out


def undocumented(app: web.Application, gw: Gateway) -> list[str]:
    """``/api/`` and ``/sapi/`` routes without an entry in `_operations` (must be none)."""
    ops = _operations(_symbols(gw), _coins(gw))
    return [
        f"{m} {p}"
        for m, p, _ in routes(app)
        if p.startswith(DOCUMENTED_PREFIXES) and (m, p) not in ops
    ]


def _symbols(gw: Gateway) -> list[str]:
    return sorted(m.wire for m in gw.store.markets.values())


def _coins(gw: Gateway) -> list[str]:
    return sorted(a.symbol for a in gw.store.assets.values())


def build(app: web.Application, gw: Gateway) -> dict[str, Any]:
    """The description of ``app`` as served by ``gw`` right now."""
    from gateway.rest import DEFAULT_WEIGHTS

    ops = _operations(_symbols(gw), _coins(gw))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in routes(app):
        op = ops.get((method, path))
        if op is None:
            continue
        weight = getattr(handler, "weight", None) or DEFAULT_WEIGHTS.get(path, 1)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, weight)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Kootabase REST API",
            "version": version(),
            "description": "The Binance Spot dialect as this exchange speaks it; the reference "
            "with every rule and difference is docs/api.md. Signed requests: every parameter "
            "in the query string (GET, DELETE) or every parameter in the form body (POST, "
            "PUT), signature last (docs/security.md). x-weight is the request weight.",
        },
        "paths": dict(sorted(paths.items())),
        "components": _components(),
    }


def setup(app: web.Application, gw: Gateway) -> None:
    """Serve the description at ``GET /openapi.json`` (built on each request: cheap)."""
    import msgspec

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(
            body=msgspec.json.encode(build(request.app, gw)), content_type="application/json"
        )

    app.router.add_get("/openapi.json", openapi_json)
