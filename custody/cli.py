"""``kootabase custody reconcile``: ledger liabilities versus on-chain holdings, per asset.

The ledger side is rebuilt from the journal (the source of truth; the journal takes its writer
lock, so run this against a stopped node or a copy of its data directory). The chain side is
read from the nodes in the custody config; the explanation items come from the custody store.
Exit code 0 when every asset's unexplained difference is zero, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from custody.config import load_config
from custody.reconcile import AssetReconciliation, format_report


async def _reconcile(args: argparse.Namespace) -> list[AssetReconciliation]:
    from custody.service import Custody
    from ledger.reports import replay_book

    data_dir: Path = args.data_dir
    config = load_config(args.config or data_dir / "custody.toml", data_dir)
    book = replay_book(args.journal or data_dir / "journal")

    async def no_submit(command: object) -> list:  # reconciliation never writes
        raise RuntimeError("custody reconcile is read-only")

    custody = Custody(config, no_submit)  # type: ignore[arg-type]
    try:
        return await custody.reconcile(book.balances)
    finally:
        await custody.close()


def run_reconcile_cli(args: argparse.Namespace) -> int:
    rows = asyncio.run(_reconcile(args))
    sys.stdout.write("\n".join(format_report(rows)) + "\n")
    return 0 if all(r.unexplained == 0 for r in rows) else 1
