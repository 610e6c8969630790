"""``kootabase bench restart``: how long an engine node takes to come back on a long history.

Start-up is the newest valid snapshot plus the journal tail after it (`engine.node`): opening
the journal (sealed segments are checked by their index files, not re-read), loading the
snapshot, checking its journal anchor, and replaying the tail through the bulk reader. The
benchmark builds a data directory of ``--commands`` journal records (default 10,000,000) the
way a crashed node leaves it, with the newest snapshot ``--tail`` records before the end (the
worst case for the default snapshot interval of 100,000 is 99,999), then times
``EngineNode(...)`` in fresh processes (imports and the compiled kernels' cache loading
included, as a restart pays them) and reports wall and CPU time, median of the runs.

The history: workload (b)'s setup and prefill (10,000 accounts, 30,000 deposits, a book of
100,000 resting orders), then place/cancel churn (a GTC limit below the book, then its cancel
by client order id, accounts in turn) up to ``--commands``. The state a restart loads is thus
workload (b)'s size; the churn only makes the history long. ``--data-dir DIR`` keeps the
directory for later runs (it is built only when it holds no journal).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.engine_bench import machine_info
from bench.workloads import workload_b
from engine.core.compiled import CompiledEngine
from engine.journal import SegmentJournal
from engine.provenance import anchor_at
from engine.replay import replay_journal
from engine.schema import CancelOrder, OrderType, PlaceOrder, Side, TimeInForce, encode_command
from engine.snapshot import write_snapshot

DEFAULT_COMMANDS = 10_000_000
DEFAULT_TAIL = 99_999
REPETITIONS = 3
_APPEND = 8_192
_CHURN_PRICE_ATOMS = 29_000_000_000
"""Below workload (b)'s BTC book (~30,000 USDT): the churn orders rest and never trade."""

_CHILD = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from pathlib import Path
from engine.node import EngineNode, NodeConfig
node = EngineNode(NodeConfig(data_dir=Path(sys.argv[1]), fsync=False))
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
out = {"wall_s": wall, "cpu_s": cpu, "last_seq": node.last_seq,
       "replayed": node.recovered_records, "check": node.snapshot_check}
node.close(snapshot=False)
print(json.dumps(out))
"""


def build(
    data_dir: Path,
    commands: int,
    tail: int,
    seed: int,
    *,
    accounts: int = 10_000,
    resting: int = 100_000,
) -> dict[str, Any]:
    """Journal ``commands`` records into ``data_dir/journal`` and snapshot at ``end - tail``
    (``accounts`` and ``resting``: workload (b)'s setup and prefill sizes)."""
    started = time.perf_counter()
    wl = workload_b(seed, 0, accounts=accounts, resting=resting)
    head = wl.setup + wl.prefill
    assert commands > len(head) + tail, "history shorter than setup, prefill and tail"
    accounts = sorted({c.account_id for _, _, c in wl.prefill})
    journal_dir = data_dir / "journal"
    snap_seq = commands - tail
    engine = CompiledEngine(wl.config, prefault=True)
    with SegmentJournal(journal_dir, fsync=False) as journal:
        journal.append_batch([(s, t, encode_command(c)) for s, t, c in head])
        seq, ts = head[-1][0], head[-1][1]
        k = 0
        while seq < commands:
            batch: list[tuple[int, int, bytes]] = []
            while len(batch) < _APPEND and seq < commands:
                seq += 1
                ts += 1_000
                if seq % 2:
                    k += 1
                    cmd: Any = PlaceOrder(
                        account_id=accounts[k % len(accounts)],
                        market_id=1,
                        side=Side.BUY,
                        order_type=OrderType.LIMIT,
                        time_in_force=TimeInForce.GTC,
                        price_atoms=_CHURN_PRICE_ATOMS,
                        qty_atoms=1_000_000,
                        client_order_id=k,
                    )
                else:
                    cmd = CancelOrder(
                        account_id=accounts[k % len(accounts)], market_id=1, client_order_id=k
                    )
                batch.append((seq, ts, encode_command(cmd)))
            journal.append_batch(batch)
        replay_journal(engine, journal, to_seq=snap_seq)
        write_snapshot(data_dir / "snapshots", engine.image(), anchor=anchor_at(journal, snap_seq))
    return {"build_seconds": time.perf_counter() - started, "snapshot_seq": snap_seq}


def restart_once(data_dir: Path) -> dict[str, Any]:
    """One node start in a fresh interpreter (what a restart pays)."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(data_dir: Path, reps: int) -> dict[str, Any]:
    restart_once(data_dir)  # compiled-kernel cache written, page cache warm
    runs = [restart_once(data_dir) for _ in range(reps)]
    assert len({(r["last_seq"], r["replayed"]) for r in runs}) == 1, runs
    return {
        "last_seq": runs[0]["last_seq"],
        "tail_replayed": runs[0]["replayed"],
        "snapshot_check": runs[0]["check"],
        "wall_seconds": statistics.median(r["wall_s"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_s"] for r in runs),
        "runs": runs,
        "journal_bytes": sum(p.stat().st_size for p in (data_dir / "journal").glob("*.seg")),
        "snapshot_bytes": sum(p.stat().st_size for p in (data_dir / "snapshots").glob("*.snap")),
    }


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``kootabase bench restart`` (see gateway/clibench.py)."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kootabase-bench-restart-") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp) / "data"
        if not (data_dir / "journal").is_dir():
            result |= build(data_dir, args.commands, args.tail, args.seed)
        result |= run(data_dir, REPETITIONS)
    result["machine"] = machine_info()
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        print(
            f"restart at seq {result['last_seq']:,} (snapshot + {result['tail_replayed']:,} "
            f"tail records): {result['wall_seconds']:.2f} s wall, {result['cpu_seconds']:.2f} s "
            f"CPU (median of {len(result['runs'])}, fresh processes)"
        )
    return 0


__all__ = ["build", "run", "run_cli"]
