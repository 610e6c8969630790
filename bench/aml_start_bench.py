"""How long the AML rules engine takes to be ready at a gateway start, old way and new way.

Old (before the AML image in the read-model snapshot): every start replayed the whole journal
through a private compiled engine and folded it into the rules (`GatewayAml._rebuild`). New:
the AML state is restored from the read-model snapshot (`backoffice.aml.image`) and only the
tail after it is folded, by the read model's own replay.

The history is `bench.restart_bench.build`'s (workload (b): 10,000 accounts, 30,000 deposits,
a 100,000-order book, then place/cancel churn) of ``--commands`` records. A first gateway start
replays it all and, at close, writes the read-model snapshot with the AML image; then, per
repetition, a fresh gateway is constructed (the new start, timed: wall and CPU) and the old
start's full fold is timed on the same data. Medians of ``--reps``; one process, so the
compiled kernels' cache load is paid once, before the timings.

    .venv/bin/python -m bench.aml_start_bench --commands 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from backoffice.aml.engine import AmlEngine
from backoffice.aml.rules import Rule, RuleSet
from bench.restart_bench import build
from gateway.app import Gateway
from gateway.config import GatewayConfig

RULES = RuleSet(
    (
        Rule("big-usdt", "large_deposit", "case", asset="USDT", amount=Decimal(10**12)),
        Rule(
            "smurf",
            "structuring",
            "case",
            asset="USDT",
            amount=Decimal(10_000),
            count=3,
            window_s=86_400,
            flow="deposit",
        ),
        Rule("velocity", "velocity", "hold", count=5, window_s=3_600),
    ),
    frozenset(),
)


def _config(data_dir: Path) -> GatewayConfig:
    return GatewayConfig(
        data_dir=data_dir,
        master_key_file=data_dir.parent / "master.key",
        aml_rules=RULES,
        marketdata=False,
        fsync=False,
    )


def _timed(fn: Any) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run(data_dir: Path, reps: int) -> dict[str, Any]:
    import asyncio

    first = Gateway(_config(data_dir))  # full replay
    assert first.aml.engine.accounts, "the history has deposits"
    first.node.snapshot()  # as a running gateway's periodic snapshot: the engine's ...
    asyncio.run(first.close())  # ... and, at close, the read model's (with the AML image)
    new: list[tuple[float, float]] = []
    old: list[tuple[float, float]] = []
    replayed = []
    for _ in range(reps):
        gw, wall, cpu = _timed(lambda: Gateway(_config(data_dir)))
        new.append((wall, cpu))
        replayed.append((gw.start_point, gw.aml.start_replayed, gw.aml.engine.last_seq))
        assert gw.start_point[0] == gw.last_seq, "started from the read-model snapshot"
        fresh = AmlEngine(RULES, None)
        gw.aml.engine = fresh
        _, wall, cpu = _timed(gw.aml._rebuild)  # the old start: the whole journal
        old.append((wall, cpu))
        asyncio.run(gw.close())
    return {
        "last_seq": replayed[0][2],
        "start_point": replayed[0][0],
        "aml_commands_replayed_new": replayed[0][1],
        "new_gateway_start_wall_s": statistics.median(w for w, _ in new),
        "new_gateway_start_cpu_s": statistics.median(c for _, c in new),
        "old_aml_full_fold_wall_s": statistics.median(w for w, _ in old),
        "old_aml_full_fold_cpu_s": statistics.median(c for _, c in old),
        "reps": reps,
    }


def main() -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-aml-start-") as tmp:
        data_dir = Path(tmp) / "data"
        built = build(data_dir, args.commands, 1_000, args.seed)
        out = {"commands": args.commands, **built, **run(data_dir, args.reps)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
