"""Fee schedules as the dialect reports them: ``GET /sapi/v1/asset/tradeFee`` (ccxt's
``fetch_trading_fees``), ``GET /api/v3/account/commission`` (WS ``account.commission``), and
the public ``GET /sapi/v1/system/status``.

Rates are the market's engine fee rates (``maker_fee_ppm``, ``taker_fee_ppm`` of CreateMarket),
the ones every trade is charged with; there are no account tiers, buyer/seller or tax
commissions and no discount asset, so those are reported as zero / disabled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway import errors
from gateway.markets import Market, atoms_to_decimal
from gateway.params import get_str
from gateway.store import Store

_ZERO = "0.00000000"


def rate(ppm: int) -> str:
    """A fee rate in parts per million as the dialect's 8-decimal string (exact)."""
    return atoms_to_decimal(ppm * 100, 8)


def _markets(store: Store, params: Mapping[str, Any]) -> list[Market]:
    symbol = get_str(params, "symbol", required=False)
    if symbol is None:
        return sorted(store.markets.values(), key=lambda m: m.wire)
    m = store.market(symbol)
    if m is None:
        raise errors.ApiError(errors.BAD_SYMBOL, "Invalid symbol.")
    return [m]


def trade_fee(store: Store, params: Mapping[str, Any]) -> list[dict[str, str]]:
    """``GET /sapi/v1/asset/tradeFee[?symbol=]``: one row per symbol."""
    return [
        {
            "symbol": m.wire,
            "makerCommission": rate(m.maker_fee_ppm),
            "takerCommission": rate(m.taker_fee_ppm),
        }
        for m in _markets(store, params)
    ]


def commission(store: Store, params: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/v3/account/commission?symbol=`` (symbol mandatory)."""
    get_str(params, "symbol")  # mandatory here: -1102 when missing
    (m,) = _markets(store, params)
    zero = {"maker": _ZERO, "taker": _ZERO, "buyer": _ZERO, "seller": _ZERO}
    return {
        "symbol": m.wire,
        "standardCommission": {
            "maker": rate(m.maker_fee_ppm),
            "taker": rate(m.taker_fee_ppm),
            "buyer": _ZERO,
            "seller": _ZERO,
        },
        "specialCommission": dict(zero),
        "taxCommission": dict(zero),
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "",
            "discount": _ZERO,
        },
    }


def system_status(healthy: bool) -> dict[str, Any]:
    """``GET /sapi/v1/system/status``: 0 normal; 1 when the engine cannot take commands."""
    return {"status": 0, "msg": "normal"} if healthy else {"status": 1, "msg": "system maintenance"}
