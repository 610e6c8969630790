"""REST at ``/api/v3`` in the dialect, plus the middleware that applies rate limits and the
error envelope to every ``/api/`` route (the market-data routes mounted on the same app too).

Signed endpoints take ``X-MBX-APIKEY`` and a ``signature`` over the bytes of the query string or
of the form body (``application/x-www-form-urlencoded``) exactly as sent, up to the
``&signature=`` that ends them. Unlike the dialect, a signed request carries its parameters in
one of the two, not both (-1128), and a parameter sent twice is refused (-1101); see
docs/security.md, "Signed requests".
Usage is echoed in ``X-MBX-USED-WEIGHT-1M`` (and ``X-MBX-ORDER-COUNT-10S``/``-1D`` on order
requests); a refusal for a limit carries ``Retry-After`` (seconds).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, unquote_plus

import msgspec
import structlog
from aiohttp import web

from engine.jsondepth import too_deep
from gateway import auth, coins, custody, errors, fees, polrest
from gateway.handlers import exchange_info
from gateway.keys import ApiKey

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode
RestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# path -> weight for routes without a declared weight (market data)
USAGE_KEY: Final = web.RequestKey("usage_headers", dict)
DEFAULT_WEIGHTS: Final = {
    "/api/v3/depth": 5,
    "/api/v3/trades": 25,
    "/api/v3/klines": 2,
    "/api/v3/uiKlines": 2,
    "/api/v3/aggTrades": 4,
    "/api/v3/avgPrice": 2,
    "/api/v3/ticker/24hr": 2,
    "/api/v3/exchangeInfo": 20,
}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")


def _error(exc: errors.ApiError, headers: dict[str, str]) -> web.Response:
    if exc.status in (418, 429) and isinstance(exc.data, dict):
        retry_ms = exc.data.get("retryAfter", 0) - exc.data.get("serverTime", 0)
        headers["Retry-After"] = str(max(1, math.ceil(retry_ms / 1000)))
    resp = web.Response(
        body=_encode({"code": exc.code, "msg": exc.msg}),
        status=exc.status,
        content_type="application/json",
    )
    resp.headers.update(headers)
    return resp


async def _ops_envelope(request: web.Request, handler: RestHandler) -> web.StreamResponse:
    """The operator API's routing refusals (404, 405, 413) in its own ``{code, msg}``
    envelope with the back office's string codes (`backoffice.ops`)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not 400 <= exc.status < 500:
            raise
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status, "BAD_REQUEST")
        return web.json_response({"code": code, "msg": exc.reason}, status=exc.status)


def _refuse_repeated_query_params(request: web.Request) -> None:
    """A query parameter sent twice is refused everywhere (-1101), as signed requests already
    refuse it (`_params`): unsigned handlers read the first value, a proxy or a cache in front
    may read the last, and the two would then disagree about one request."""
    query = request.query
    if len(query) > 1 and len(set(query.keys())) != len(query):
        raise errors.ApiError(errors.TOO_MANY_PARAMS, "Duplicate values for a parameter detected.")


def middleware(gw: Gateway) -> Any:
    @web.middleware
    async def mw(request: web.Request, handler: RestHandler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/ops/"):
            return await _ops_envelope(request, handler)
        if not path.startswith(("/api/", "/sapi/")):
            return await handler(request)
        weight = getattr(handler, "weight", None) or DEFAULT_WEIGHTS.get(path, 1)
        headers: dict[str, str] = {}
        key_header = request.headers.get("X-MBX-APIKEY")
        key_id = key_header if key_header and gw.keys.get(key_header) else None
        try:
            usage = gw.limiter.request(request.remote or "?", key_id, weight, auth.now_ms())
            headers["X-MBX-USED-WEIGHT-1M"] = str(usage[0]["count"])
            request[USAGE_KEY] = headers
            _refuse_repeated_query_params(request)
            resp = await handler(request)
            if resp.status == 200:
                gw.metrics.rest_requests.inc()
                if getattr(handler, "orders", False):
                    gw.metrics.orders.value += 1
        except errors.ApiError as exc:
            gw.metrics.rejects.labels(str(exc.code)).inc()
            return _error(exc, headers)
        except web.HTTPException as exc:  # 404, 405, 413...: the same envelope
            if 400 <= exc.status < 500:
                code = errors.NOT_FOUND if exc.status in (404, 405) else errors.UNKNOWN
                return _error(errors.ApiError(code, exc.reason, exc.status), headers)
            raise
        resp.headers.update(headers)
        return resp

    return mw


MAX_SIGNED_PARAMS: Final = 64
"""More parameters than any endpoint takes; bounds the parsing of a signed request."""


def _split_signature(carrier: bytes) -> tuple[bytes, str | None]:
    """(signed payload, signature) of the part that carries a signed request's parameters. The
    signature is its last parameter and signs every byte before ``&signature=`` exactly as
    sent (percent-encoding included); a signature anywhere else would leave bytes unsigned."""
    head, sep, last = carrier.rpartition(b"&")
    if last.startswith(b"signature="):
        return (head if sep else b""), unquote_plus(last[10:].decode("ascii", "replace"))
    if carrier.startswith(b"signature=") or b"&signature=" in carrier:
        raise errors.ApiError(
            errors.INVALID_SIGNATURE,
            "Signature for this request is not valid: 'signature' must be the last parameter.",
        )
    return carrier, None


async def _params(
    request: web.Request,
    body_timeout_s: float,
) -> tuple[dict[str, str], bytes, str | None]:
    """(params, signed payload, signature) of a signed request (docs/security.md, "Signed
    requests"): the parameters travel in the query string *or* in the form body, not both, so
    the signed bytes have one reading; a parameter sent twice is refused."""
    query = request.rel_url.raw_query_string.encode("utf-8", "surrogateescape")
    body = b""
    if request.can_read_body:
        try:
            async with asyncio.timeout(body_timeout_s):
                body = await request.read()
        except TimeoutError:
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                f"Malformed request: the body did not arrive within {body_timeout_s:g} s.",
                status=408,
            ) from None
    if query and body:
        raise errors.ApiError(
            errors.BAD_COMBINATION,
            "Combination of optional parameters "
            "invalid: a signed request sends all its parameters either in the "
            "query string or in the body, not in both.",
        )
    payload, signature = _split_signature(query or body)
    try:
        pairs = parse_qsl(
            payload.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=MAX_SIGNED_PARAMS,
        )
    except ValueError:
        raise errors.ApiError(errors.TOO_MANY_PARAMS, "Too many parameters sent.") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise errors.ApiError(errors.TOO_MANY_PARAMS, "Duplicate values for a parameter detected.")
    if "signature" in params:
        raise errors.ApiError(
            errors.INVALID_SIGNATURE,
            "Signature for this request is not valid: 'signature' must be the last parameter.",
        )
    return params, payload, signature


async def _signed(
    gw: Gateway, request: web.Request, permission: str
) -> tuple[ApiKey, dict[str, str]]:
    """The key and parameters of a signed request that may do what ``permission`` allows; one
    that needs ``trade`` or ``withdraw`` is accepted once (`auth.SINGLE_USE_PERMISSIONS`)."""
    params, payload, signature = await _params(request, gw.config.limits.body_timeout_s)
    key = auth.lookup_key(gw.keys, request.headers.get("X-MBX-APIKEY"), request.remote)
    if signature is None:
        raise errors.mandatory("signature")
    expires = auth.check_timestamp(params)
    auth.verify(key, payload, signature)
    origin = getattr(request.protocol, "origin", 0)  # the connection (auth.ReplayGuard)
    if permission in auth.SINGLE_USE_PERMISSIONS:
        gw.replays.check(key, payload, expires, origin=origin)
    else:
        gw.replays.note_read(key, payload, expires, origin=origin)
    auth.require(key, permission)
    return key, params


def _route(weight: int, *, orders: bool = False) -> Callable[[RestHandler], RestHandler]:
    """``orders``: a successful answer counts in ``kootabase_orders_total`` (as on WS)."""

    def deco(fn: RestHandler) -> RestHandler:
        fn.weight = weight  # type: ignore[attr-defined]
        fn.orders = orders  # type: ignore[attr-defined]
        return fn

    return deco


def setup(app: web.Application, gw: Gateway) -> None:
    tr = gw.trading

    def order_headers(request: web.Request, key: ApiKey) -> None:
        usage = gw.limiter.order(request.remote or "?", key.account_id, auth.now_ms())
        headers = request[USAGE_KEY]
        headers["X-MBX-ORDER-COUNT-10S"] = str(usage[0]["count"])
        headers["X-MBX-ORDER-COUNT-1D"] = str(usage[1]["count"])

    @_route(1)
    async def ping(request: web.Request) -> web.Response:
        return _json({})

    @_route(1)
    async def time_(request: web.Request) -> web.Response:
        return _json({"serverTime": auth.now_ms()})

    @_route(20)
    async def exchange_info_r(request: web.Request) -> web.Response:
        q = request.query
        symbols = None
        if "symbol" in q:
            symbols = [q["symbol"]]
        elif "symbols" in q:
            try:
                if too_deep(q["symbols"]):
                    raise msgspec.DecodeError
                symbols = msgspec.json.decode(q["symbols"], type=list[str])
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise errors.illegal("symbols", "JSON array of strings") from None
        return _json(exchange_info(gw, symbols))

    @_route(20)
    async def account(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(tr.account(key.account_id, p, key.can("trade"), key.can("withdraw")))

    @_route(1, orders=True)
    async def new_order(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        order_headers(request, key)
        return _json(await tr.place(key.account_id, p))

    @_route(1)
    async def test_order(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        return _json(await tr.place(key.account_id, p, test=True))

    @_route(4)
    async def get_order(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(await tr.order_status(key.account_id, p))

    @_route(1)
    async def cancel_order(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        return _json(await tr.cancel(key.account_id, p))

    @_route(6)
    async def open_orders(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(tr.open_orders(key.account_id, p))

    @_route(1)
    async def cancel_open_orders(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        return _json(await tr.cancel_all(key.account_id, p))

    @_route(20)
    async def all_orders(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(await tr.all_orders(key.account_id, p))

    @_route(20)
    async def my_trades(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(await tr.my_trades(key.account_id, p))

    @_route(1, orders=True)
    async def cancel_replace(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        order_headers(request, key)
        try:
            return _json(await tr.cancel_replace(key.account_id, p))
        except errors.ApiError as exc:
            if exc.code in (errors.CANCEL_REPLACE_PARTIAL, errors.CANCEL_REPLACE_FAILED):
                gw.metrics.rejects.labels(str(exc.code)).inc()
                return _json(exc.body(), exc.status)  # with its data (the middleware's is bare)
            raise

    @_route(4, orders=True)
    async def amend(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        order_headers(request, key)
        return _json(await tr.amend_keep_priority(key.account_id, p))

    @_route(1)
    async def trade_fee(request: web.Request) -> web.Response:
        _, p = await _signed(gw, request, "read")
        return _json(fees.trade_fee(gw.store, p))

    @_route(20)
    async def commission(request: web.Request) -> web.Response:
        _, p = await _signed(gw, request, "read")
        return _json(fees.commission(gw.store, p))

    @_route(1)
    async def system_status(request: web.Request) -> web.Response:
        return _json(fees.system_status(gw.bridge.healthy))

    @_route(10)
    async def all_coins(request: web.Request) -> web.Response:
        key, _ = await _signed(gw, request, "read")
        registry = gw.custody.custody.registry if gw.custody is not None else None
        return _json(coins.all_coins(gw.store, key.account_id, registry))

    @_route(1)
    async def no_margin_pairs(request: web.Request) -> web.Response:
        await _signed(gw, request, "read")
        return _json([])  # no margin trading here (`gateway.coins`)

    @_route(10)
    async def deposit_address(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(custody.require(gw).deposit_address(key.account_id, p))

    @_route(1)
    async def withdraw_apply(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "withdraw")
        return _json(await custody.require(gw).withdraw(key.account_id, p))

    @_route(1)
    async def withdraw_cancel(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "withdraw")
        return _json(await custody.require(gw).cancel_withdrawal(key.account_id, p))

    @_route(18)
    async def withdraw_history(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(custody.require(gw).withdraw_history(key.account_id, p))

    @_route(1)
    async def deposit_history(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(custody.require(gw).deposit_history(key.account_id, p))

    @_route(20)
    async def convert_quote(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        return _json(gw.converter.get_quote(key.account_id, p))

    @_route(1, orders=True)
    async def convert_accept(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "trade")
        order_headers(request, key)
        return _json(await gw.converter.accept_quote(key.account_id, p))

    @_route(1)
    async def convert_status(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(gw.converter.order_status(key.account_id, p))

    @_route(5)
    async def liabilities_proof(request: web.Request) -> web.Response:
        key, p = await _signed(gw, request, "read")
        return _json(polrest.proof_for(gw.config.data_dir, key.account_id, p))

    r = app.router
    r.add_post("/sapi/v1/convert/getQuote", convert_quote)
    r.add_post("/sapi/v1/convert/acceptQuote", convert_accept)
    r.add_get("/sapi/v1/convert/orderStatus", convert_status)
    r.add_get("/sapi/v1/audit/liabilitiesProof", liabilities_proof)
    r.add_get("/api/v3/ping", ping)
    r.add_get("/api/v3/time", time_)
    r.add_get("/api/v3/exchangeInfo", exchange_info_r)
    r.add_get("/api/v3/account", account)
    r.add_post("/api/v3/order", new_order)
    r.add_get("/api/v3/order", get_order)
    r.add_delete("/api/v3/order", cancel_order)
    r.add_post("/api/v3/order/test", test_order)
    r.add_post("/api/v3/order/cancelReplace", cancel_replace)
    r.add_put("/api/v3/order/amend/keepPriority", amend)
    r.add_get("/api/v3/openOrders", open_orders)
    r.add_delete("/api/v3/openOrders", cancel_open_orders)
    r.add_get("/api/v3/allOrders", all_orders)
    r.add_get("/api/v3/myTrades", my_trades)
    r.add_get("/api/v3/account/commission", commission)
    r.add_get("/sapi/v1/asset/tradeFee", trade_fee)
    r.add_get("/sapi/v1/system/status", system_status)
    r.add_get("/sapi/v1/capital/config/getall", all_coins)
    r.add_get("/sapi/v1/margin/allPairs", no_margin_pairs)
    r.add_get("/sapi/v1/margin/isolated/allPairs", no_margin_pairs)
    r.add_get("/sapi/v1/capital/deposit/address", deposit_address)
    r.add_post("/sapi/v1/capital/withdraw/apply", withdraw_apply)
    r.add_post("/sapi/v1/capital/withdraw/cancel", withdraw_cancel)
    r.add_get("/sapi/v1/capital/withdraw/history", withdraw_history)
    r.add_get("/sapi/v1/capital/deposit/hisrec", deposit_history)
