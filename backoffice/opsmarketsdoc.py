"""OpenAPI description of market creation (`backoffice.opsmarkets`), merged into
`backoffice.opsdoc.operations`. It carries ``x-requires: market-creation``: each call makes a
market for good, so tests/test_openapi_ops.py's fuzzing leaves it out (it would fill the venue with
random markets every other test then sees) and tests/test_ops_markets.py holds it to this
description (200 as described, every documented error status provoked)."""

from __future__ import annotations

from typing import Any

from backoffice.opsdoc import STR, _int, _json_body, _operation
from backoffice.opsmarkets import MAX_RATE, OPTIONAL, REQUIRED
from engine.schema import MarketState

DECIMAL = {"type": "string", "pattern": r"^[0-9]{1,20}(\.[0-9]{1,18})?$"}
STATES = {"type": "string", "enum": list(MarketState.__members__)}


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    props: dict[str, Any] = {
        "base": {**STR, "description": "base asset symbol"},
        "quote": {**STR, "description": "quote asset symbol"},
        "tick_size": {**DECIMAL, "description": "price step, in the quote asset"},
        "lot_size": {**DECIMAL, "description": "quantity step, in the base asset"},
        "min_notional": {**DECIMAL, "description": "smallest price x quantity, in quote"},
        "maker_fee_ppm": _int(0, MAX_RATE),
        "taker_fee_ppm": _int(0, MAX_RATE),
        "price_band_bps": _int(0, MAX_RATE),
        "market_protection_bps": _int(0, MAX_RATE),
        "max_order_qty": {**DECIMAL, "description": "largest order, in base; 0: no limit"},
        "state": {**STATES, "description": "what it starts in (default HALTED)"},
    }
    assert set(props) == set(REQUIRED) | set(OPTIONAL)
    body = {
        "type": "object",
        "required": list(REQUIRED),
        "additionalProperties": False,
        "properties": props,
    }
    example = {
        "base": "LTC",
        "quote": "BTC",
        "tick_size": "0.000001",
        "lot_size": "0.01",
        "min_notional": "0.0001",
    }
    path = f"{p}/markets"
    op = _operation(
        "POST",
        path,
        "Create a market (journaled CreateMarket naming the staff id), halted unless told",
        "markets.create",
        {
            "type": "object",
            "required": ["symbol", "market_id", "state", "seq"],
            "properties": {"symbol": STR, "market_id": _int(0), "state": STATES, "seq": _int(1)},
        },
        body=_json_body(body, example),
        statuses={404, 409},
    )
    op["x-requires"] = "market-creation"
    assets = f"{p}/assets"
    asset_op = _operation(
        "POST",
        assets,
        "Create an asset (journaled CreateAsset naming the staff id); money in it arrives only "
        "by a journaled deposit (custody's watcher, or the fiat rail for a fiat currency)",
        "assets.create",
        {
            "type": "object",
            "required": ["symbol", "asset_id", "decimals", "seq"],
            "properties": {
                "symbol": STR,
                "asset_id": _int(0),
                "decimals": _int(0, 18),
                "seq": _int(1),
            },
        },
        body=_json_body(
            {
                "type": "object",
                "required": ["symbol", "decimals"],
                "additionalProperties": False,
                "properties": {
                    "symbol": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{1,11}$"},
                    "decimals": _int(0, 18),
                },
            },
            {"symbol": "USD", "decimals": 2},
        ),
        statuses={409},
    )
    asset_op["x-requires"] = "market-creation"
    return {("POST", path): op, ("POST", assets): asset_op}
