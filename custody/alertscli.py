"""``kootabase custody alerts list|resolve``: the operator's side of a halted chain.

A deep reorg (deeper than the confirmation policy) records an alert in the custody store and
halts that chain: its watcher scans nothing and its signer signs and broadcasts nothing
(`custody.signer.Signer.process`) until an operator has investigated and resolves the alert
here. Resolving accepts the node's chain: the watcher rolls back to the common ancestor and
resumes, and withdrawals of that chain are signed again. Works beside a running server (the
store is SQLite; the running watcher and signer read the alert at every pass).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from custody.config import load_config
from custody.store import CustodyStore, require_store
from engine.datadir import require_existing
from engine.usererror import UserError


def run_alerts_cli(args: argparse.Namespace) -> int:
    data_dir: Path = require_existing(args.data_dir, journal=False)
    config = load_config(args.config or data_dir / "custody.toml", data_dir)
    if args.alerts_command == "list":
        store = CustodyStore.open_existing(config.store_path)
        try:
            alerts = store.open_alerts()
        finally:
            store.close()
        for alert_id, chain, kind, detail in alerts:
            sys.stdout.write(
                json.dumps({"id": alert_id, "chain": chain, "kind": kind, "detail": detail}) + "\n"
            )
        return 0
    require_store(config.store_path)
    return asyncio.run(_resolve(config, args.alert_id))


async def _resolve(config: object, alert_id: int) -> int:
    from custody.service import Custody

    async def no_submit(command: object) -> list:  # resolving credits nothing
        raise RuntimeError("custody alerts resolve does not submit commands")

    custody = Custody(config, no_submit)  # type: ignore[arg-type]
    try:
        found = [a for a in custody.store.open_alerts() if a[0] == alert_id]
        if not found:
            raise UserError(
                f"no open alert {alert_id}",
                hint="`kootabase custody alerts list` shows the open ones",
            )
        chain = found[0][1]
        rolled = await custody.scanners[chain].resolve_deep_reorg(alert_id)
    finally:
        await custody.close()
    sys.stdout.write(
        json.dumps({"resolved": alert_id, "chain": chain, "rolled_back_blocks": rolled}) + "\n"
    )
    return 0
