"""Instructions per command of the compiled engine, per kernel, counted by callgrind.

On this shared 2-core VM one tree's engine timings spread by 1.5x within minutes, more than
most changes buy; an instruction count does not move with the load. ``run`` processes the
first ``--skip`` rows of a workload's stream uncounted (valgrind's collection off), switches
collection on (``callgrind_control``) for the next ``--count`` rows and off again, after
writing the perf map of the JIT code (`bench.perfmap.write_perf_map`); ``sum`` adds the
counts of each kernel (the map's address ranges; other code by callgrind's function names,
e.g. libc's memmove) and divides by ``--count``:

    valgrind --tool=callgrind --instr-atstart=no --dump-instr=yes --compress-pos=no \\
        --compress-strings=no --callgrind-out-file=/tmp/cg.%p \\
        python -m bench.enginecg run --workload c --skip 300000 --count 100000
    python -m bench.enginecg sum /tmp/cg.PID --count 100000

A run takes ~4 minutes of CPU (valgrind runs the uncounted part too). Instruction counts are
not time: cache misses (the order-id index, order rows) do not show, so a change that moves
memory traffic still needs the alternated timings of `bench.engine_ab`. This VM exposes no
hardware counters (`perf stat` reports every event "not supported"), so memory traffic and
branches come from callgrind's simulators: add `--cache-sim=yes --branch-sim=yes` to the
valgrind line and read them with `sum FILE --events` (data reads and writes, first-level and
last-level misses, conditional branches and their mispredictions, per command), or one of them
per kernel with `sum FILE --event D1mr`. The simulated
caches are valgrind's model of this machine's (L1 48 KiB, LL the L3), not measurements.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import subprocess
from pathlib import Path


def run(workload: str, skip: int, count: int) -> None:
    from bench.engine_ab import load_stream
    from bench.engine_bench import BATCH
    from bench.perfmap import write_perf_map

    handle, rows = load_stream(workload)
    engine = handle.fresh()
    for i in range(0, skip, BATCH):
        engine.process_encoded(rows[i : min(i + BATCH, skip)])
    write_perf_map()
    pid = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    for i in range(skip, skip + count, BATCH):
        engine.process_encoded(rows[i : min(i + BATCH, skip + count)])
    subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)


def _kernel_name(symbol: str) -> str:
    """``_ZN6engine4core8handlers5placeB3v..`` -> ``handlers.place``."""
    parts = re.findall(r"\d+([A-Za-z_]\w*?)(?=\d|B\d|$)", symbol.split("B3v")[0].split("B4v")[0])
    return ".".join(parts[-2:]) if parts else symbol[:40]


def tally(out_file: Path, event: str = "Ir") -> collections.Counter[str]:
    """``event`` (instructions by default) per kernel (JIT code) or per callgrind function name
    (everything else). Cost lines list the positions, then one number per event of the
    ``events:`` header with trailing zeros left out, so a file of the cache and branch
    simulators is read by the event's column, not by its last number."""
    pid = out_file.name.rsplit(".", 1)[-1]
    perf_map = Path(f"/tmp/perf-{pid}.map")
    if not perf_map.is_file():
        raise SystemExit(f"no {perf_map}: `run` writes it under valgrind, for {out_file}")
    ranges = []
    for line in perf_map.read_text().splitlines():
        address, size, symbol = line.split(None, 2)
        name = _kernel_name(symbol)
        if symbol.startswith("_ZN7cpython") or symbol.startswith("cfunc."):
            name += " (wrapper)"
        ranges.append((int(address, 16), int(size, 16), name))
    ranges.sort()
    starts = [r[0] for r in ranges]
    counts: collections.Counter[str] = collections.Counter()
    function = "?"
    column = -1
    n_positions = 1
    skip_next = False
    with out_file.open() as lines:
        for line in lines:
            if skip_next:  # the inclusive cost line of a call
                skip_next = False
            elif line.startswith("calls="):
                skip_next = True
            elif line.startswith("events:"):
                names = line.split()[1:]
                if event not in names:
                    raise SystemExit(f"{out_file}: no event {event!r} (events: {' '.join(names)})")
                column = names.index(event)
            elif line.startswith("positions:"):
                n_positions = len(line.split()) - 1
            elif line.startswith("fn="):
                function = line[3:].strip()
            elif line.startswith("0x"):
                fields = line.split()
                costs = fields[n_positions:]
                if column >= len(costs):
                    continue  # a trailing zero left out
                address, cost = int(fields[0], 16), int(costs[column])
                k = bisect.bisect_right(starts, address) - 1
                if k >= 0 and address < ranges[k][0] + ranges[k][1]:
                    counts[ranges[k][2]] += cost
                else:
                    counts[function.split("[")[0].strip()[-50:]] += cost
    assert column >= 0, f"{out_file}: no events line (not a callgrind output file?)"
    return counts


def tally_events(out_file: Path) -> dict[str, int]:
    """Every event of the file (``events:`` header), summed over the counted window.

    Cost lines list the positions (``positions:``) then one number per event, trailing zeros
    left out; a call's inclusive line (after ``calls=``) is skipped, as in ``tally``.
    """
    names: list[str] = []
    n_positions = 1
    totals: list[int] = []
    skip_next = False
    with out_file.open() as lines:
        for line in lines:
            if skip_next:
                skip_next = False
            elif line.startswith("calls="):
                skip_next = True
            elif line.startswith("events:"):
                names = line.split()[1:]
                totals = [0] * len(names)
            elif line.startswith("positions:"):
                n_positions = len(line.split()) - 1
            elif line[:1].isdigit() or line.startswith(("0x", "+", "-", "*")):
                costs = line.split()[n_positions:]
                for i, cost in enumerate(costs):
                    totals[i] += int(cost)
    assert names, f"{out_file}: no events line (not a callgrind output file?)"
    return dict(zip(names, totals, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.enginecg", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    run_p = sub.add_parser("run", help="process a stream with callgrind counting a window")
    run_p.add_argument("--workload", choices=["a", "b", "c"], default="c")
    run_p.add_argument("--skip", type=int, default=300_000)
    run_p.add_argument("--count", type=int, default=100_000)
    sum_p = sub.add_parser("sum", help="instructions per command, per kernel")
    sum_p.add_argument("out_file", type=Path)
    sum_p.add_argument("--count", type=int, default=100_000)
    sum_p.add_argument("--top", type=int, default=20)
    sum_p.add_argument(
        "--events", action="store_true", help="every simulated event per command, not kernels"
    )
    sum_p.add_argument(
        "--event", default="Ir", help="the event counted per kernel (Ir, D1mr, DLmr, Bcm, ...)"
    )
    args = parser.parse_args()
    if args.what == "run":
        run(args.workload, args.skip, args.count)
        return
    if not args.out_file.is_file():
        raise SystemExit(f"no callgrind output file {args.out_file}")
    if args.events:
        for name, total in tally_events(args.out_file).items():
            print(f"{name:6} {total / args.count:10.2f} per command")
        return
    counts = tally(args.out_file, args.event)
    total = sum(counts.values())
    print(f"total {total / args.count:.2f} {args.event} per command")
    for name, cost in counts.most_common(args.top):
        print(f"{cost / args.count:8.1f} {100 * cost / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
