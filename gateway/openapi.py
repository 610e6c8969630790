"""The REST API's OpenAPI 3.1 description, served at ``GET /openapi.json``.

Built at request time from what the server actually has, so it cannot drift from it: the paths
and methods come from the app's route table, each operation's request weight from the handler
(the same lookup the rate-limit middleware makes), and what each operation reads and answers
from `gateway.restdoc` (whose enums and patterns are order entry's own, and whose symbols and
coins are the running exchange's). `tests/test_openapi.py` runs schemathesis against a real
server with this description (every operation, positive and negative data, every answer
checked against it, every documented error status provoked) and fails when a ``/api/`` or
``/sapi/`` route has no entry in `gateway.restdoc`.

The staff operator API (``/ops/v1/...``, `backoffice.ops`) is described too, from
`backoffice.opsdoc` (bearer tokens, JSON bodies, ``{code, msg}`` refusals with string codes).
WebSocket routes (``/ws-api/v3``, ``/ws``, ``/stream``) and the loopback admin API
(``/admin/*``) are not REST operations and are left out (see docs/api.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.auth import DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS
from gateway.cli import _version as version
from gateway.restdoc import Operation, Param, array, integer, obj, operations

if TYPE_CHECKING:
    from gateway.app import Gateway

OPENAPI_VERSION: Final = "3.1.0"
DOCUMENTED_PREFIXES: Final = ("/api/", "/sapi/")
"""Every route under these prefixes must have an entry in `gateway.restdoc` (tested)."""
OPS_PREFIX: Final = "/ops/"
"""The operator API (`backoffice.ops`): described by `backoffice.opsdoc` (tested too)."""
UNDESCRIBED_PREFIXES: Final = ("/api/v1/",)
"""The back office's JSON API (docs/backoffice.md): its own error envelope, not the dialect's;
its OpenAPI description is not built yet, so it is left out of this one."""
ERROR: Final = {"$ref": "#/components/schemas/Error"}


def _components() -> dict[str, Any]:
    order = obj(
        symbol={"type": "string"},
        orderId=integer(),
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
            "OrderResult": obj(
                symbol={"type": "string"},
                orderId=integer(),
                clientOrderId={"type": "string"},
                transactTime=integer(),
            ),
            "Account": obj(
                canTrade={"type": "boolean"},
                balances=array(
                    obj(
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
        Param("timestamp", integer(), True, "ms since the epoch"),
        Param(
            "recvWindow",
            integer(1, MAX_RECV_WINDOW_MS),
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
        if path is None or route.method in ("HEAD", "*") or path.startswith(UNDESCRIBED_PREFIXES):
            continue
        out.append((route.method, path, route.handler))
    return out


def undocumented(app: web.Application, gw: Gateway) -> list[str]:
    """``/api/`` and ``/sapi/`` routes without an entry in `_operations` (must be none)."""
    from backoffice import opsdoc

    ops = operations(_symbols(gw), _coins(gw))
    operator = opsdoc.operations(_symbols(gw))
    return [
        f"{m} {p}"
        for m, p, _ in routes(app)
        if (p.startswith(DOCUMENTED_PREFIXES) and (m, p) not in ops)
        or (p.startswith(OPS_PREFIX) and (m, p) not in operator)
    ]


def _symbols(gw: Gateway) -> list[str]:
    return sorted(m.wire for m in gw.store.markets.values())


def _coins(gw: Gateway) -> list[str]:
    return sorted(a.symbol for a in gw.store.assets.values())


def build(app: web.Application, gw: Gateway) -> dict[str, Any]:
    """The description of ``app`` as served by ``gw`` right now."""
    from backoffice import opsdoc
    from gateway.rest import DEFAULT_WEIGHTS

    ops = operations(_symbols(gw), _coins(gw))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in routes(app):
        op = ops.get((method, path))
        if op is None:
            continue
        weight = getattr(handler, "weight", None) or DEFAULT_WEIGHTS.get(path, 1)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, op, weight)
    operator = opsdoc.operations(_symbols(gw))
    for method, path, _ in routes(app):
        if (method, path) in operator:
            paths.setdefault(path, {})[method.lower()] = operator[(method, path)]
    schemas, security = opsdoc.components()
    components = _components()
    components["schemas"].update(schemas)
    components["securitySchemes"].update(security)
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
        "components": components,
    }


def setup(app: web.Application, gw: Gateway) -> None:
    """Serve the description at ``GET /openapi.json`` (built on each request: cheap)."""
    import msgspec

    async def openapi_json(request: web.Request) -> web.Response:
        return web.Response(
            body=msgspec.json.encode(build(request.app, gw)), content_type="application/json"
        )

    app.router.add_get("/openapi.json", openapi_json)
