"""What a cluster gateway's loop lag is made of: reads `bench/tailprobe` files.

``python -m bench.tailprobe_report DIR`` (DIR as given to ``bench cluster --probe``; its
``window.json`` holds the open-loop load's start and end). Reports, per gateway over that
window: loop lag p50/p99/max; for the lags over 10 ms, how much of their wall time the loop
thread was on a CPU (the code's work), the process's other threads were (the history
writer: the GIL), and neither (the process waited for a core: the machine's); which suspect
overlapped them (only occurrences that used >= 2 ms of CPU, so a suspect that was merely
descheduled meanwhile is not blamed); and each suspect's CPU per occurrence and per second.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

BIG_LAG_MS = 10.0
CAUSE_CPU_MS = 2.0


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _parse(
    path: Path, t0: float, t1: float
) -> tuple[list[float], list[tuple[float, float, str, float, float]]]:
    """Lag samples (ms) and events ``(start, end, kind, cpu ms, other-thread cpu ms)``."""
    lags: list[float] = []
    events = []
    for line in path.read_text().splitlines():
        t_s, kind, rest = line.split(" ", 2)
        t = float(t_s)
        if kind == "LAGS":
            if t0 <= t <= t1 + 0.5:
                lags += [float(x) for x in rest.split()]
            continue
        if not t0 <= t <= t1:
            continue
        fields = dict(f.split("=") for f in kind.split("/")[1:])
        ms = float(rest)
        events.append(
            (
                t,
                t + ms / 1e3,
                kind.split("/")[0],
                float(fields.get("cpu", 0)),
                float(fields.get("other", 0)),
            )
        )
    return lags, events


def report(directory: Path) -> str:
    window = json.loads((directory / "window.json").read_text())
    t0, t1 = window["t0"], window["t1"]
    out = [f"window {t1 - t0:.1f} s"]
    for path in sorted(directory.glob("probe-*.txt")):
        lags, events = _parse(path, t0, t1)
        out.append(
            f"{path.stem}: loop lag p50 {_pct(lags, 0.5):.2f} p99 {_pct(lags, 0.99):.2f} "
            f"max {max(lags, default=float('nan')):.1f} ms ({len(lags)} samples)"
        )
        causes = [e for e in events if e[2] != "lag" and e[2] != "deliver" and e[3] >= CAUSE_CPU_MS]
        big = [e for e in events if e[2] == "lag" and (e[1] - e[0]) * 1e3 >= BIG_LAG_MS]
        wall = sum((e[1] - e[0]) * 1e3 for e in big)
        loop_cpu = sum(e[3] for e in big)
        other_cpu = sum(e[4] for e in big)
        if wall:
            out.append(
                f"  lags >= {BIG_LAG_MS:g} ms: {len(big)}, {wall:.0f} ms: loop thread on CPU "
                f"{100 * loop_cpu / wall:.0f} %, other threads {100 * other_cpu / wall:.0f} %, "
                f"off CPU {100 * max(0.0, wall - loop_cpu - other_cpu) / wall:.0f} %"
            )
            by_cause: Counter[str] = Counter()
            for s, e, *_ in big:
                names = sorted({c[2] for c in causes if c[0] < e and c[1] > s})
                by_cause[" + ".join(names) or "none of the suspects"] += (e - s) * 1e3
            for name, ms in by_cause.most_common(8):
                out.append(f"    {100 * ms / wall:5.1f} %  {name}")
        per: dict[str, list[float]] = defaultdict(list)
        for e in events:
            if e[2] != "lag":
                per[e[2]].append(e[3])
        for name, cpus in sorted(per.items()):
            out.append(
                f"  {name:20s} {len(cpus) / (t1 - t0):6.2f}/s  CPU per occurrence median "
                f"{_pct(cpus, 0.5):6.2f} max {max(cpus):6.1f} ms  {sum(cpus) / (t1 - t0):6.1f} ms/s"
            )
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(report(Path(sys.argv[1])) + "\n")
