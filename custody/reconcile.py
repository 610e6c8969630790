"""Reconciliation: per asset, what the ledger says the exchange owes versus what its addresses
hold on chain, with the difference explained item by item.

The ledger's figure is ``-custody`` (deposits credited minus withdrawals settled: user balances
plus fee revenue, see `ledger.chart`), converted to chain units. The chain's figure is the sum of
the balances of every exchange address (deposit addresses and hot wallets). They differ for
known reasons, each taken from the custody store: deposits seen but not yet confirmed, sub-atom
dust the engine cannot represent, the operator's float in hot wallets, network fees the
exchange paid, withdrawals mined but not yet settled. What is left after those is
*unexplained*, and must be zero; anything else is an incident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.assets import AssetRegistry, CustodyAsset
from custody.store import CustodyStore
from custody.withdrawals import MINED
from engine.schema import SYSTEM_ACCOUNT, Bucket

OnChain = Callable[[CustodyAsset, list[str]], Awaitable[int]]
"""(asset, addresses) -> their total balance of that asset on chain, in chain units."""


@dataclass(frozen=True, slots=True)
class AssetReconciliation:
    asset_id: int
    symbol: str
    chain: str
    user_atoms: int
    fee_atoms: int
    ledger_chain: int
    """``-custody`` in chain units: what the ledger says must be on chain."""
    on_chain: int
    explanations: list[tuple[str, int]] = field(default_factory=list)

    @property
    def difference(self) -> int:
        return self.on_chain - self.ledger_chain

    @property
    def unexplained(self) -> int:
        return self.difference - sum(amount for _, amount in self.explanations)


def ledger_totals(balances: Mapping[Any, int]) -> dict[int, tuple[int, int, int]]:
    """asset -> (user atoms, fee atoms, -custody atoms) from the ledger's balances, keyed by
    `ledger.chart.LedgerAccount` (``ledger.book.Book.balances`` or ``image_balances``)."""
    totals: dict[int, list[int]] = {}
    for acct, amount in balances.items():
        owner, asset, bucket = acct.owner, acct.asset, int(acct.bucket)
        t = totals.setdefault(asset, [0, 0, 0])
        if owner != SYSTEM_ACCOUNT:
            t[0] += amount
        elif bucket == Bucket.FEES:
            t[1] += amount
        elif bucket == Bucket.CUSTODY:
            t[2] -= amount
    return {a: (t[0], t[1], t[2]) for a, t in totals.items()}


def explain(asset: CustodyAsset, store: CustodyStore, demo_atoms: int = 0) -> list[tuple[str, int]]:
    """The known reasons the chain holds more (+) or less (-) than the ledger, chain units.
    ``demo_atoms`` (engine atoms) are demo-faucet credits (``serve --demo``): inside the
    ledger's figure, never on chain."""
    deposits = [d for d in store.deposits(asset.chain) if d.asset_id == asset.asset_id]
    pending = sum(d.chain_amount for d in deposits if d.status == "pending")
    dust = sum(d.dust for d in deposits if d.status == "credited")
    dust += sum(d.chain_amount for d in deposits if d.status == "dust")
    refused = sum(d.chain_amount for d in deposits if d.status == "rejected")
    over_limit = sum(d.chain_amount for d in deposits if d.status == "over_limit")
    withdrawals = store.withdrawals(chain=asset.chain)
    in_flight = sum(
        asset.to_chain(w.atoms)
        for w in withdrawals
        if w.asset_id == asset.asset_id and w.status == MINED
    )
    fees = sum(w.fee_chain for w in withdrawals if w.mined_height > 0) if asset.native else 0
    return [
        ("unconfirmed deposits (awaiting confirmations)", pending),
        ("deposit dust below one engine atom (exchange's)", dust),
        ("deposits refused by the engine (operator follow-up)", refused),
        ("deposits waiting over their tier's 24 h deposit limit (compliance)", over_limit),
        ("operator float in hot wallets", store.treasury(asset.asset_id)),
        ("network fees paid by the exchange", -fees),
        ("withdrawals mined, not yet settled in the ledger", -in_flight),
        ("demo credits (serve --demo), never on chain", -asset.to_chain(demo_atoms)),
    ]


async def reconcile(
    registry: AssetRegistry,
    store: CustodyStore,
    balances: Mapping[Any, int],
    on_chain: OnChain,
    hot_addresses: Mapping[str, list[str]],
    demo_atoms: Mapping[int, int] | None = None,
) -> list[AssetReconciliation]:
    """One row per custodied asset. ``balances`` are the ledger's balances; ``hot_addresses``
    the exchange's non-deposit addresses per chain; ``demo_atoms`` the demo-faucet credits per
    asset (`ledger.book.Book.demo_deposited`), accounted apart from custody."""
    demo = demo_atoms or {}
    totals = ledger_totals(balances)
    rows = []
    for asset in sorted(registry.assets.values(), key=lambda a: a.asset_id):
        users, fees, owed = totals.get(asset.asset_id, (0, 0, 0))
        addresses = store.addresses(asset.chain) + list(hot_addresses.get(asset.chain, []))
        held = await on_chain(asset, addresses)
        rows.append(
            AssetReconciliation(
                asset.asset_id,
                asset.symbol,
                asset.chain,
                users,
                fees,
                asset.to_chain(owed),
                held,
                explain(asset, store, demo.get(asset.asset_id, 0)),
            )
        )
    return rows


def format_report(rows: list[AssetReconciliation]) -> list[str]:
    """Plain lines (the CLI prints them; logs and tests read them)."""
    lines = []
    for r in rows:
        lines.append(
            f"{r.symbol} ({r.chain}): ledger owes {r.ledger_chain} "
            f"(users {r.user_atoms} atoms, fees {r.fee_atoms} atoms), on chain "
            f"{r.on_chain}, difference {r.difference}"
        )
        lines.extend(f"    {label}: {amount}" for label, amount in r.explanations if amount)
        lines.append(
            f"    unexplained: {r.unexplained}"
            + ("" if r.unexplained == 0 else "  <-- INVESTIGATE")
        )
    return lines
