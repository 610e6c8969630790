"""What each REST operation reads, answers and may refuse with: the one written table.

`gateway.openapi` turns it into the OpenAPI description served at ``/openapi.json``. The enums
and patterns come from the tables and parsers order entry itself uses (`gateway.dialect`,
`gateway.markets.DECIMAL_LEGAL`, `gateway.clientids.CLIENT_ID_LEGAL`,
`marketdata.candles.INTERVALS`), and the symbols and coins are the running exchange's, so the
table states only what a handler reads; `tests/test_openapi.py` holds the server to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gateway.clientids import CLIENT_ID_LEGAL
from gateway.convert import VALID_TIMES_MS as CONVERT_VALID_TIMES
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
    """Error statuses beyond the ones every operation of its kind has (`gateway.openapi`)."""
    example: dict[str, Any] | None = None
    """Parameters of a request that succeeds for a funded account on the demo markets."""
    journaled: bool = False
    """The request becomes a journaled command (may answer 503 'status unknown')."""


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def integer(lo: int = 0, hi: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": lo}
    if hi is not None:
        out["maximum"] = hi
    return out


DECIMAL: Final = {"type": "string", "pattern": DECIMAL_LEGAL}
CLIENT_ID: Final = {"type": "string", "pattern": CLIENT_ID_LEGAL}
INT64_ID: Final = integer(1, (1 << 63) - 1)
TIME_MS: Final = integer(0, 1 << 62)


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": sorted(values)}


def operations(symbols: list[str], coins: list[str]) -> dict[tuple[str, str], Operation]:
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
        Param("limit", integer(1, 1000), description="default 500"),
    )
    custody_history = (
        Param("startTime", TIME_MS, description="with it: the oldest rows from it"),
        Param("endTime", TIME_MS),
        Param("limit", integer(1, 1000), description="default 1000"),
        Param("offset", integer(0)),
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
        Param("trailingDelta", integer(MIN_TRAILING_DELTA, MAX_TRAILING_DELTA), description="bps"),
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
        result=array({"type": "array"}),
        example={"symbol": "BTCUSDT", "interval": "1m"},
    )
    coin = Param("coin", _enum(coins), True)
    coin_opt = Param("coin", _enum(coins))
    ops = {
        ("GET", "/api/v3/ping"): Operation("Test connectivity", result={"type": "object"}),
        ("GET", "/api/v3/time"): Operation("Server time (ms)", result=obj(serverTime=integer())),
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
            result=obj(
                timezone={"type": "string"},
                serverTime=integer(),
                symbols={"type": "array"},
                rateLimits={"type": "array"},
            ),
        ),
        ("GET", "/api/v3/account"): Operation(
            "Balances and permissions",
            (Param("omitZeroBalances", {"type": "boolean"}),),
            "read",
            ref("Account"),
        ),
        ("POST", "/api/v3/order"): Operation(
            "Place an order",
            order,
            "trade",
            ref("OrderResult"),
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
            "An order's status", (symbol, order_id, orig_cid), "read", ref("Order")
        ),
        ("DELETE", "/api/v3/order"): Operation(
            "Cancel an order", (symbol, order_id, orig_cid), "trade", ref("Order"), journaled=True
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
            obj(cancelResult={"type": "string"}, newOrderResult={"type": "string"}),
            statuses=(409,),
            journaled=True,
        ),
        ("PUT", "/api/v3/order/amend/keepPriority"): Operation(
            "Reduce an order's quantity, keeping its priority",
            (symbol, order_id, orig_cid, Param("newQty", DECIMAL, True)),
            "trade",
            obj(transactTime=integer(), executionId=integer(), amendedOrder=ref("Order")),
            journaled=True,
        ),
        ("GET", "/api/v3/openOrders"): Operation(
            "Open orders",
            (symbol_opt,),
            "read",
            array(ref("Order")),
            example={"symbol": "BTCUSDT"},
        ),
        ("DELETE", "/api/v3/openOrders"): Operation(
            "Cancel every open order of a symbol",
            (symbol,),
            "trade",
            array(ref("Order")),
            journaled=True,
        ),
        ("GET", "/api/v3/allOrders"): Operation(
            "Orders, open and closed",
            (symbol, order_id, *history),
            "read",
            array(ref("Order")),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/myTrades"): Operation(
            "The account's trades",
            (symbol, order_id, Param("fromId", integer()), *history),
            "read",
            array(obj(symbol={"type": "string"}, id=integer(), orderId=integer())),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/account/commission"): Operation(
            "The account's commission rates for a symbol",
            (symbol,),
            "read",
            obj(symbol={"type": "string"}, standardCommission={"type": "object"}),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/sapi/v1/asset/tradeFee"): Operation(
            "Maker and taker fee rates per symbol",
            (symbol_opt,),
            "read",
            array(
                obj(
                    symbol={"type": "string"},
                    makerCommission={"type": "string"},
                    takerCommission={"type": "string"},
                )
            ),
        ),
        ("GET", "/sapi/v1/system/status"): Operation(
            "0 normal, 1 when the engine cannot take commands",
            result=obj(status={"type": "integer", "enum": [0, 1]}, msg={"type": "string"}),
        ),
        ("GET", "/api/v3/aggTrades"): Operation(
            "Aggregate trades (one taker order at one price)",
            (symbol, Param("fromId", integer()), *history),
            result=array(obj(a=integer(), p={"type": "string"}, q={"type": "string"})),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/avgPrice"): Operation(
            "Volume-weighted price of the last minutes' trades",
            (symbol,),
            result=obj(mins=integer(), price={"type": "string"}, closeTime=integer()),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/uiKlines"): candles,
        ("GET", "/api/v3/depth"): Operation(
            "Order book (L2)",
            (symbol, Param("limit", integer(1, 5000), description="default 100")),
            result=obj(lastUpdateId=integer(), bids={"type": "array"}, asks={"type": "array"}),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/depthL3"): Operation(
            "Extension: every resting order in book order",
            (symbol,),
            result=obj(lastUpdateId=integer(), bids={"type": "array"}, asks={"type": "array"}),
            example={"symbol": "BTCUSDT"},
        ),
        ("GET", "/api/v3/trades"): Operation(
            "Recent trades",
            (symbol, Param("limit", integer(1, 1000), description="default 500")),
            result=array(obj(id=integer(), price={"type": "string"}, qty={"type": "string"})),
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
            obj(address={"type": "string"}, coin={"type": "string"}, network={"type": "string"}),
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
            obj(id={"type": "string"}),
            journaled=True,
        ),
        ("POST", "/sapi/v1/capital/withdraw/cancel"): Operation(
            "Cancel a withdrawal awaiting approval (custody, four eyes)",
            (Param("id", INT64_ID, True),),
            "withdraw",
            {"type": "object"},
            journaled=True,
        ),
        ("GET", "/sapi/v1/capital/withdraw/history"): Operation(
            "Withdrawals (custody)", (coin_opt, *custody_history), "read", array({"type": "object"})
        ),
        ("GET", "/sapi/v1/capital/config/getall"): Operation(
            "Every coin with the account's balance and its network (custody), if any",
            (),
            "read",
            array(
                obj(
                    coin={"type": "string"},
                    free={"type": "string"},
                    locked={"type": "string"},
                    networkList={"type": "array"},
                )
            ),
        ),
        ("GET", "/sapi/v1/margin/allPairs"): Operation(
            "Always empty: no margin trading (ccxt loads it by default)", (), "read", array({})
        ),
        ("GET", "/sapi/v1/margin/isolated/allPairs"): Operation(
            "Always empty: no margin trading (ccxt loads it by default)", (), "read", array({})
        ),
        ("GET", "/sapi/v1/capital/deposit/hisrec"): Operation(
            "Deposits (custody)", (coin_opt, *custody_history), "read", array({"type": "object"})
        ),
        ("POST", "/sapi/v1/convert/getQuote"): Operation(
            "Quote a conversion from the order book, valid validTime (fees included and shown)",
            (
                Param("fromAsset", _enum(coins), True),
                Param("toAsset", _enum(coins), True),
                Param("fromAmount", DECIMAL, description="what is debited (or toAmount)"),
                Param("toAmount", DECIMAL, description="what is credited (or fromAmount)"),
                Param("validTime", _enum(CONVERT_VALID_TIMES), description="default 10s"),
            ),
            "trade",
            obj(
                quoteId={"type": "string"},
                ratio={"type": "string"},
                inverseRatio={"type": "string"},
                validTimestamp=integer(),
                fromAmount={"type": "string"},
                toAmount={"type": "string"},
                fee={"type": "string"},
                feeAsset={"type": "string"},
            ),
        ),
        ("POST", "/sapi/v1/convert/acceptQuote"): Operation(
            "Execute a quote: a FOK limit order at the quoted price (the quote or better, or "
            "nothing)",
            (Param("quoteId", {"type": "string", "pattern": "^[0-9]{1,20}$"}, True),),
            "trade",
            obj(
                orderId={"type": "string"},
                createTime=integer(),
                orderStatus=_enum(("SUCCESS", "FAIL")),
            ),
            journaled=True,
        ),
        ("GET", "/sapi/v1/convert/orderStatus"): Operation(
            "A conversion accepted since the gateway started (by orderId, or quoteId instead)",
            (
                Param("orderId", INT64_ID, True),
                Param("quoteId", {"type": "string"}, description="instead of orderId"),
            ),
            "read",
            obj(
                orderId=integer(),
                orderStatus=_enum(("SUCCESS", "FAIL")),
                fromAsset={"type": "string"},
                fromAmount={"type": "string"},
                toAsset={"type": "string"},
                toAmount={"type": "string"},
                ratio={"type": "string"},
                inverseRatio={"type": "string"},
                createTime=integer(),
            ),
        ),
        ("GET", "/sapi/v1/audit/liabilitiesProof"): Operation(
            "The caller's proof of liabilities (newest published, or at asOf) and its roots",
            (Param("asOf", INT64_ID, description="journal sequence of a published run"),),
            "read",
            obj(
                asOfSeq={"type": ["integer", "null"]},
                proof={"type": ["object", "null"]},
                published={"type": ["object", "null"]},
            ),
        ),
    }
    return ops


def _intervals() -> list[str]:
    from marketdata.candles import INTERVALS

    return list(INTERVALS)


def obj(**required: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(required), "properties": required}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _one_or_many() -> dict[str, Any]:
    item = obj(symbol={"type": "string"})
    return {"oneOf": [item, array(item)]}
