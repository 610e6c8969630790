"""Journal append cost per record: CPU time of `SegmentJournal.append_batch`, with and without
fsync, optionally side by side with another checkout (``--compare DIR``) in interleaved rounds.

Why: the audit chain adds a BLAKE2b digest per record on the fsync/ack path; this measures
what that costs against the same benchmark on the previous format. Run from the repository:

    .venv/bin/python -m bench.journal_bench --compare /work/main

Each round runs in a fresh subprocess per tree (the trees import different ``engine``
packages); figures are medians of the rounds. The machine may be shared: read the ratios
(measured side by side) rather than the absolute figures.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAYLOAD_BYTES = 96
"""About an encoded PlaceOrder (msgspec, array-like)."""


def measure(records: int, batch: int, fsync: bool) -> dict[str, float]:
    """CPU and wall time per record of appending ``records`` in batches of ``batch``."""
    from engine.journal import SegmentJournal

    payload = bytes(range(PAYLOAD_BYTES))
    with tempfile.TemporaryDirectory() as tmp, SegmentJournal(Path(tmp), fsync=fsync) as j:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        seq = 1
        while seq <= records:
            j.append_batch([(s, 1_000, payload) for s in range(seq, seq + batch)])
            seq += batch
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = seq - 1
    return {"cpu_us_per_record": cpu / n * 1e6, "wall_us_per_record": wall / n * 1e6}


def _child(tree: Path, records: int, batch: int, fsync: bool) -> dict[str, float]:
    """Run `measure` in a fresh interpreter that imports ``engine`` from ``tree`` (which may
    not have this file: the function's source is passed along)."""
    code = (
        "import json, sys, tempfile, time\n"
        "from pathlib import Path\n"
        f"sys.path.insert(0, {str(tree)!r})\n"
        f"PAYLOAD_BYTES = {PAYLOAD_BYTES}\n"
        + inspect.getsource(measure)
        + f"print(json.dumps(measure({records}, {batch}, {fsync})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tree
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fsync", action="store_true", help="fsync each batch (the ack path)")
    parser.add_argument("--compare", type=Path, help="another checkout, measured alternately")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent.parent
    trees = {"this": here} | ({"other": args.compare.resolve()} if args.compare else {})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            results[name].append(_child(tree, args.records, args.batch, args.fsync))
    summary = {}
    for name, rows in results.items():
        summary[name] = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    if "other" in summary:
        summary["cpu_ratio_this_over_other"] = round(
            summary["this"]["cpu_us_per_record"] / summary["other"]["cpu_us_per_record"], 3
        )
    print(
        json.dumps(
            {
                "records": args.records,
                "batch": args.batch,
                "fsync": args.fsync,
                "rounds": args.rounds,
                **summary,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
