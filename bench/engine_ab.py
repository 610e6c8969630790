"""Side-by-side engine timings of two source trees: ``python -m bench.engine_ab A B``.

Why: on this shared 2-core machine the same tree's figure moves by 20 % or more between
sessions, so a change is judged only against the tree before it, run alternately in one
session (A B A B ...), each run in a fresh process that builds the prefilled, prefaulted
engine, warms up (JIT cache) and times the whole stream in slices of `bench.engine_bench.BATCH`
rows, process CPU time, as ``kootabase bench engine`` does. Reports the median CPU per command
of each tree and the outcome (trades, resting orders), which must agree.

    python -m bench.engine_ab /tmp/base . --workloads c,a,b --rounds 3 --reps 2

Each tree runs with its own sources first on ``PYTHONPATH`` (and its own numba cache next to
them); the interpreter is this one. The generated workload and its command rows are pickled in
/tmp on first use and shared by every run (delete ``/tmp/kootabase-engine-ab-*.pickle`` after
changing the workloads or the command row layout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.engine_bench import DEFAULT_COMMANDS, DEFAULT_SEEDS


def load_stream(workload: str) -> tuple[Any, np.ndarray]:
    """A `CompiledHandle` for ``workload`` and its encoded stream rows, the same for every
    tree and process: generated and encoded once, then read from a pickle in /tmp."""
    from bench.compiled_api import CompiledHandle
    from bench.workloads import WORKLOADS

    cache = Path(f"/tmp/kootabase-engine-ab-{workload}.pickle")
    if cache.exists():
        load, rows = pickle.loads(cache.read_bytes())
        return CompiledHandle(load), rows
    load = WORKLOADS[workload](DEFAULT_SEEDS[workload], DEFAULT_COMMANDS[workload])
    handle = CompiledHandle(load)
    rows = handle.encode(load.stream)
    # not picklable: every run generates it
    with contextlib.suppress(pickle.PicklingError, TypeError, AttributeError):
        cache.write_bytes(pickle.dumps((load, rows)))
    return handle, rows


def one_run(workload: str, reps: int) -> dict[str, object]:
    """Time ``reps`` passes of ``workload`` in this process (the tree on ``sys.path``)."""
    from bench.compiled_api import book_totals
    from bench.engine_bench import measure_compiled

    handle, rows = load_stream(workload)
    handle.warm_up(rows)
    times, events, after = measure_compiled(handle, rows, reps)
    trades, resting, levels = book_totals(after)
    return {
        "commands": len(rows),
        "seconds": times,
        "events": events,
        "trades": trades,
        "resting": resting,
        "levels": levels,
    }


def _spawn(tree: Path, workload: str, reps: int) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    code = (
        "import json, sys; from bench.engine_ab import one_run; "
        f"print(json.dumps(one_run({workload!r}, {reps})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--workloads", default="c,a,b")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    for workload in args.workloads.split(","):
        runs: dict[Path, list[float]] = {tree: [] for tree in args.trees}
        outcome: dict[Path, tuple[object, ...]] = {}
        n = 0
        for _ in range(args.rounds):
            for tree in args.trees:
                result = _spawn(tree, workload, args.reps)
                runs[tree].extend(result["seconds"])  # type: ignore[arg-type]
                outcome[tree] = (result["trades"], result["resting"], result["events"])
                n = int(result["commands"])  # type: ignore[call-overload]
        for tree in args.trees:
            median = statistics.median(runs[tree])
            print(
                f"({workload}) {tree!s:<22} median {median:.3f} s = "
                f"{median / n * 1e9:.0f} ns/cmd = {n / median / 1e6:.2f} M/s  "
                f"runs {min(runs[tree]):.3f}-{max(runs[tree]):.3f} (n={len(runs[tree])})  "
                f"trades, resting, events {outcome[tree]}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
