"""The operator API's OpenAPI description (`backoffice.ops`), merged into ``/openapi.json`` by
`gateway.openapi`: what each ``/ops/v1`` operation reads, answers and may refuse with.

Every operation is under the ``StaffBearer`` scheme except the login that issues it; every
refusal is ``OpsError`` (``{code, msg}``, stable string codes of `backoffice.errors`). 403 is
documented where some role may not take the action (`backoffice.roles.ACTIONS`), 404 where a
path names an account or a market. `tests/test_openapi_ops.py` holds the server to this.
"""

from __future__ import annotations

from typing import Any, Final

from backoffice.passwords import MAX_PASSWORD_CHARS
from backoffice.roles import ACTIONS, ALL_ROLES, Role
from engine.schema import MAX_TIER, MarketState
from gateway.errors import MALFORMED_REQUEST

OPS_ERROR: Final = {"$ref": "#/components/schemas/OpsError"}
MALFORMED_HTTP: Final = {"$ref": "#/components/schemas/MalformedHttpRequest"}
"""A request the HTTP parser refuses (request line or a header over 8 KiB, a bad method) is
answered before routing, so the server cannot know it was meant for the operator API: it gets
the venue-wide envelope of `gateway.malformed` (an integer code), documented on every 400."""
_STATUS_TEXT: Final = {
    400: "Refused: bad or missing parameter, or the engine refused the command",
    401: "No, invalid or expired staff token (or, at login, wrong credentials or TOTP)",
    403: "This staff member's role may not take this action (or is disabled)",
    404: "No such account, market, asset, withdrawal, AML case or KYC submission (or that "
    "service is not enabled)",
    429: "Too many failed logins (this staff member or this address): Retry-After",
    409: "Refused by the state of the thing named (already decided, closed, not awaiting, exists)",
    503: "The identity store or the journal is unavailable; nothing was done",
}


def _obj(required: bool = True, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(props)
    return out


def _int(lo: int = 0, hi: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": lo}
    if hi is not None:
        out["maximum"] = hi
    return out


STR: Final = {"type": "string"}
STAFF: Final = _obj(
    staff_id=STR,
    email=STR,
    role={"type": "string", "enum": sorted(r.value for r in Role)},
    status=STR,
    created_ms=_int(),
    created_by=STR,
)
SUMMARY_PROPS: Final = {
    "account_id": _int(1),
    "email": {"type": ["string", "null"]},
    "frozen": {"type": "boolean"},
    "tier": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TIER},
    "open_orders": _int(),
}
BALANCE: Final = _obj(asset=STR, free=STR, locked=STR, withdrawing=STR)
STATES: Final = {"type": "string", "enum": list(MarketState.__members__)}
AUDIT_ENTRY: Final = {
    "type": "object",
    "required": ["seq", "time_ms", "action", "staff_id"],
    "properties": {
        "seq": _int(1),
        "time_ms": _int(),
        "action": {
            "type": "string",
            "enum": [
                "freeze",
                "unfreeze",
                "set_tier",
                "set_market_state",
                "approve_withdrawal",
                "reject_withdrawal",
                "create_market",
                "create_asset",
                "fiat_deposit",
                "set_tier_limit",
            ],
        },
        "staff_id": STR,
        "account_id": _int(1),
        "withdrawal_id": _int(1),
        "note": STR,
        "recorded_by": STR,
        "tier": _int(),
        "asset_id": _int(),
        "max_order_notional_atoms": _int(),
        "symbol": STR,
        "state": {},
    },
}


def _json_body(schema: dict[str, Any], example: dict[str, Any] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


def _operation(
    method: str,
    path: str,
    summary: str,
    action: str | None,
    result: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    statuses: set[int] | None = None,
) -> dict[str, Any]:
    errors = set(statuses or ()) | {503}
    if action is not None:
        errors.add(401)
        if ACTIONS[action].roles != ALL_ROLES:
            errors.add(403)
    if params or body:
        errors.add(400)
    if "{" in path:
        errors.add(404)
    out: dict[str, Any] = {
        "summary": summary,
        "operationId": method.lower() + path.replace("/", "_").replace("{", "").replace("}", ""),
        "tags": ["operator"],
    }
    if action is not None:
        out["security"] = [{"StaffBearer": []}]
        out["x-action"] = action
        out["x-roles"] = sorted(r.value for r in ACTIONS[action].roles)
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = body
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": result}}}
    }
    errors.add(400)  # the HTTP parser's refusal can reach any operation
    for status in sorted(errors):
        schema = {"oneOf": [OPS_ERROR, MALFORMED_HTTP]} if status == 400 else OPS_ERROR
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": schema}},
        }
    out["responses"] = responses
    return out


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def operations(symbols: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> OpenAPI operation of every operator route."""
    p = "/ops/v1"
    account = _path("account_id", _int(1, (1 << 63) - 1))
    empty = _json_body({"type": "object", "maxProperties": 0})
    summary = _obj(**SUMMARY_PROPS)
    from backoffice import (
        opsfiatdoc,
        opshealth,
        opskycdoc,
        opslimitsdoc,
        opsmarketsdoc,
        opsmoneydoc,
        opsrecon,
    )

    described_apart = (
        opshealth.operations(p)
        | opsmoneydoc.operations(p)
        | opskycdoc.operations(p)
        | opsmarketsdoc.operations(p)
        | opsrecon.operations(p)
        | opsfiatdoc.operations(p)
        | opslimitsdoc.operations(p)
    )
    return described_apart | {
        ("POST", f"{p}/auth/login"): _operation(
            "POST",
            f"{p}/auth/login",
            "Staff login (TOTP mandatory): a staff access token for one session",
            None,
            _obj(
                access_token=STR,
                token_type=STR,
                expires_in=_int(1),
                expires_ms=_int(),
                staff=STAFF,
            ),
            body=_json_body(
                {
                    "type": "object",
                    "required": ["email", "password", "totp"],
                    "properties": {
                        "email": {"type": "string", "maxLength": 254},
                        "password": {"type": "string", "maxLength": MAX_PASSWORD_CHARS},
                        "totp": {"type": "string", "pattern": "^[0-9]{6}$"},
                    },
                }
            ),
            statuses={401, 403, 429},
        ),
        ("POST", f"{p}/auth/logout"): _operation(
            "POST",
            f"{p}/auth/logout",
            "End this session",
            "staff.session",
            _obj(revoked_sessions=_int()),
        ),
        ("GET", f"{p}/me"): _operation(
            "GET",
            f"{p}/me",
            "This staff member and session",
            "staff.session",
            {**STAFF, "properties": {**STAFF["properties"], "session_expires_s": _int()}},
        ),
        ("GET", f"{p}/staff"): _operation(
            "GET",
            f"{p}/staff",
            "Every staff member and role",
            "staff.view",
            {"type": "array", "items": STAFF},
        ),
        ("GET", f"{p}/accounts"): _operation(
            "GET",
            f"{p}/accounts",
            "Search accounts by id or part of the user's email",
            "accounts.search",
            {"type": "array", "items": summary},
            params=[
                _query("q", {"type": "string", "maxLength": 254}, "account id or email part"),
                _query("limit", _int(1, 100), "default 20"),
            ],
        ),
        ("GET", f"{p}/accounts/{{account_id}}"): _operation(
            "GET",
            f"{p}/accounts/{{account_id}}",
            "One account: balances, open orders, tier, frozen",
            "accounts.view",
            _obj(**SUMMARY_PROPS, balances={"type": "array", "items": BALANCE}),
            params=[account],
        ),
        ("POST", f"{p}/accounts/{{account_id}}/freeze"): _operation(
            "POST",
            f"{p}/accounts/{{account_id}}/freeze",
            "Freeze (journaled SetAccountFrozen): no new orders, amends adding exposure or "
            "withdrawals; cancels work",
            "accounts.freeze",
            _obj(seq=_int(1), account_id=_int(1), frozen={"type": "boolean"}),
            params=[account],
            body=empty,
        ),
        ("POST", f"{p}/accounts/{{account_id}}/unfreeze"): _operation(
            "POST",
            f"{p}/accounts/{{account_id}}/unfreeze",
            "Unfreeze (journaled SetAccountFrozen)",
            "accounts.unfreeze",
            _obj(seq=_int(1), account_id=_int(1), frozen={"type": "boolean"}),
            params=[account],
            body=empty,
        ),
        ("POST", f"{p}/accounts/{{account_id}}/tier"): _operation(
            "POST",
            f"{p}/accounts/{{account_id}}/tier",
            "Set the KYC tier (journaled SetAccountTier); tier 0 may not withdraw",
            "accounts.set_tier",
            _obj(seq=_int(1), account_id=_int(1), tier=_int(0, MAX_TIER)),
            params=[account],
            body=_json_body(_obj(tier=_int(0, MAX_TIER)), {"tier": 1}),
        ),
        ("GET", f"{p}/markets"): _operation(
            "GET",
            f"{p}/markets",
            "Every market and its state",
            "markets.view",
            {"type": "array", "items": _obj(symbol=STR, state=STATES)},
        ),
        ("POST", f"{p}/markets/{{symbol}}/state"): _operation(
            "POST",
            f"{p}/markets/{{symbol}}/state",
            "Halt, cancel-only, post-only or open again (journaled SetMarketState)",
            "markets.set_state",
            _obj(symbol=STR, state=STATES, seq=_int(1)),
            params=[_path("symbol", {"type": "string", "enum": symbols or ["NONE"]})],
            body=_json_body(_obj(state=STATES), {"state": "OPEN"}),
        ),
        ("GET", f"{p}/audit"): _operation(
            "GET",
            f"{p}/audit",
            "Staff actions, read from the journal (paged by sequence)",
            "audit.read",
            _obj(entries={"type": "array", "items": AUDIT_ENTRY}, next_seq=_int(1)),
            params=[
                _query("from_seq", _int(1, 1 << 62), "first sequence to read (default 1)"),
                _query("limit", _int(1, 1000), "entries at most (default 100)"),
                _query("account_id", _int(1, 1 << 62), "only this account's"),
                _query("staff_id", {"type": "string", "maxLength": 64}, "only this staff's"),
            ],
        ),
    }


def components() -> tuple[dict[str, Any], dict[str, Any]]:
    """(schemas, security schemes) the operations refer to."""
    schemas = {
        "OpsError": {
            "type": "object",
            "required": ["code", "msg"],
            "properties": {"code": {"type": "string"}, "msg": {"type": "string"}},
            "description": "Operator API refusal: stable code (backoffice/errors.py), text.",
        },
        "MalformedHttpRequest": {
            "type": "object",
            "required": ["code", "msg"],
            "properties": {
                "code": {"type": "integer", "enum": [MALFORMED_REQUEST]},
                "msg": {"type": "string"},
            },
            "description": "A request the HTTP parser refused before routing (malformed.py).",
        },
    }
    security = {
        "StaffBearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "POST /ops/v1/auth/login (email, password, TOTP); one session.",
        }
    }
    return schemas, security
