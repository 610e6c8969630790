"""Coin information as the dialect reports it: ``GET /sapi/v1/capital/config/getall`` (the
endpoint ccxt's ``binance`` class calls from ``load_markets`` when it has an API key, for
``fetch_currencies``), and the margin pair lists ccxt also loads by default, which are empty:
this exchange has no margin trading, and saying so is the true answer.

One row per engine asset with the account's balance; a coin custody handles has one network
(its chain) with deposits and withdrawals enabled, the withdrawal minimum and step of the
engine's atoms and no withdrawal fee (the exchange pays the chain fee); any other coin has no
network, deposits and withdrawals disabled (an operator's ``accounts deposit`` is not a
network).
"""

from __future__ import annotations

from typing import Any

from gateway.markets import atoms_to_decimal
from gateway.store import Store

WITHDRAW_MAX: str = "9999999999.99999999"


def _network(custody_asset: Any, confirmations: int, decimals: int) -> dict[str, Any]:
    step = atoms_to_decimal(1, decimals)
    return {
        "network": custody_asset.chain,
        "coin": custody_asset.symbol,
        "name": custody_asset.chain,
        "isDefault": True,
        "depositEnable": True,
        "withdrawEnable": True,
        "depositDesc": "",
        "withdrawDesc": "",
        "specialTips": "",
        "withdrawFee": "0",
        "withdrawMin": atoms_to_decimal(custody_asset.min_withdrawal_atoms, decimals),
        "withdrawMax": WITHDRAW_MAX,
        "withdrawIntegerMultiple": step,
        "depositDust": step,
        "minConfirm": confirmations,
        "unLockConfirm": confirmations,
        "sameAddress": False,
        "resetAddressStatus": False,
        "addressRegex": "",
        "memoRegex": "",
        "busy": False,
    }


def all_coins(store: Store, account_id: int, registry: Any | None) -> list[dict[str, Any]]:
    """``GET /sapi/v1/capital/config/getall`` for one account; ``registry`` is custody's
    `custody.assets.AssetRegistry` (None without custody)."""
    acct = store.accounts.get(account_id)
    out = []
    for asset_id, a in sorted(store.assets.items()):
        b = acct.balances.get(asset_id, [0, 0, 0]) if acct is not None else [0, 0, 0]
        held = registry.asset(asset_id) if registry is not None else None
        networks = []
        if held is not None:
            confirmations = registry.chain_of(held).confirmations
            networks.append(_network(held, confirmations, a.decimals))
        zero = atoms_to_decimal(0, a.decimals)
        out.append(
            {
                "coin": a.symbol,
                "name": a.symbol,
                "depositAllEnable": held is not None,
                "withdrawAllEnable": held is not None,
                "free": atoms_to_decimal(b[0], a.decimals),
                "locked": atoms_to_decimal(b[1], a.decimals),
                "freeze": zero,
                "withdrawing": atoms_to_decimal(b[2], a.decimals),
                "ipoing": zero,
                "ipoable": zero,
                "storage": zero,
                "isLegalMoney": False,
                "trading": True,
                "networkList": networks,
            }
        )
    return out
