"""``kootabase custody reconcile``: ledger liabilities versus on-chain holdings, per asset;
``kootabase custody float``: record the operator's own coins moved into or out of the hot wallets.

The ledger side is rebuilt from the journal (the source of truth; the journal takes its writer
lock, so run this against a stopped node or a copy of its data directory). The chain side is
read from the nodes in the custody config; the explanation items come from the custody store.
Exit code 0 when every asset's unexplained difference is zero, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

from custody.assets import CustodyAsset
from custody.config import CustodyConfig, load_config
from custody.reconcile import AssetReconciliation, format_report
from custody.store import CustodyStore, require_store
from engine.datadir import require_existing
from engine.usererror import UserError

_DECIMAL = re.compile(r"^(-?)([0-9]{1,30})(?:\.([0-9]{1,30}))?$")


async def _reconcile(args: argparse.Namespace) -> list[AssetReconciliation]:
    from custody.service import Custody
    from ledger.reports import replay_book

    data_dir: Path = require_existing(args.data_dir, journal=args.journal is None)
    config = load_config(args.config or data_dir / "custody.toml", data_dir)
    require_store(config.store_path)  # read-only: `Custody` would create an empty store
    book = replay_book(args.journal or data_dir / "journal")

    async def no_submit(command: object) -> list:  # reconciliation never writes
        raise RuntimeError("custody reconcile is read-only")

    custody = Custody(config, no_submit)  # type: ignore[arg-type]
    try:
        return await custody.reconcile(book.balances, dict(book.demo_deposited))
    finally:
        await custody.close()


def run_reconcile_cli(args: argparse.Namespace) -> int:
    rows = asyncio.run(_reconcile(args))
    sys.stdout.write("\n".join(format_report(rows)) + "\n")
    return 0 if all(r.unexplained == 0 for r in rows) else 1


def _asset(config: CustodyConfig, name: str) -> CustodyAsset:
    """A configured asset by symbol (any case) or engine asset id."""
    for asset in config.assets:
        if name.upper() == asset.symbol.upper() or name == str(asset.asset_id):
            return asset
    known = ", ".join(a.symbol for a in config.assets) or "none"
    raise UserError(f"unknown asset {name!r}", hint=f"configured: {known}")


def chain_amount(text: str, decimals: int) -> int:
    """Exact chain units of a signed decimal string with at most ``decimals`` decimals."""
    m = _DECIMAL.match(text.strip())
    if m is None:
        raise ValueError(f"not a decimal amount: {text!r}")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than the asset's {decimals} decimals")
    units = int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or 0)
    return -units if sign else units


def run_float_cli(args: argparse.Namespace) -> int:
    """Record float: coins of the exchange's own put into (or taken out of, negative) its
    addresses, so reconciliation can tell them from customers' coins."""
    data_dir: Path = require_existing(args.data_dir, journal=False)
    config = load_config(args.config or data_dir / "custody.toml", data_dir)
    asset = _asset(config, args.asset)
    try:
        amount = chain_amount(args.amount, asset.chain_decimals)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if amount == 0:
        raise UserError("the amount must not be zero")
    store = CustodyStore.open_existing(config.store_path)
    try:
        store.add_treasury(asset.chain, asset.asset_id, amount, args.note, time.time_ns())
        total = store.treasury(asset.asset_id)
    finally:
        store.close()
    sys.stdout.write(
        f"recorded {args.amount} {asset.symbol} ({amount} chain units) on "
        f"{asset.chain}; float now {total} chain units\n"
    )
    return 0
