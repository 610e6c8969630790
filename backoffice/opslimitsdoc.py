"""OpenAPI description of the tier trade limits (`backoffice.opslimits`), merged into
`backoffice.opsdoc.operations`."""

from __future__ import annotations

from typing import Any

from backoffice.opsdoc import STR, _int, _json_body, _obj, _operation
from engine.schema import MAX_TIER

DECIMAL = {"type": "string", "pattern": r"^[0-9]{1,20}(\.[0-9]{1,18})?$"}


def _limit(**more: Any) -> dict[str, Any]:
    return _obj(
        tier=_int(0, MAX_TIER),
        asset=STR,
        max_order_notional={**DECIMAL, "description": "largest order notional, in the asset"},
        **more,
    )


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    path = f"{p}/tier-limits"
    limit = _limit()
    listed = _operation(
        "GET",
        path,
        "Tier trade limits in force: the largest notional of one order of an account of the "
        "tier in markets quoted in the asset (engine-enforced, TIER_TRADE_LIMIT)",
        "limits.view",
        _obj(limits={"type": "array", "items": limit}),
    )
    body = {
        "type": "object",
        "required": ["tier", "asset", "max_order_notional"],
        "additionalProperties": False,
        "properties": {
            "tier": _int(0, MAX_TIER),
            "asset": {**STR, "description": "the quote asset's symbol"},
            "max_order_notional": {**DECIMAL, "description": "in the asset; 0 lifts the limit"},
        },
    }
    set_op = _operation(
        "POST",
        path,
        "Set a tier trade limit (journaled SetTierTradeLimit naming the staff id)",
        "limits.set",
        _limit(seq=_int(1)),
        body=_json_body(body, {"tier": 0, "asset": "USDT", "max_order_notional": "1000"}),
        statuses={404},
    )
    return {("GET", path): listed, ("POST", path): set_op}
