"""The C++ book of ``bench/cppbook`` does exactly what the compiled engine does on workload (c).

``kootabase bench engine --workload c`` reports the engine's speed as a ratio to this book,
measured side by side; the ratio means something only if both programs ran the same stream and
traded the same way. So: the book compiles (g++ is part of the install: without it these tests
fail, they do not skip), passes its own small scenarios (partial fills, price then time
priority, cancels through the order index), and on the first 200,000 orders of the stream it
makes the engine's trades, traded quantity, resting orders and levels; at the full 2,000,000
it gives the published 917,708 trades and 987,103 resting orders (cheap on the C++ side).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cppbook_runner import CppBookMismatch, build, check_same, engine_totals, run, self_check
from bench.workloads import workload_c
from engine.core.compiled import CompiledEngine

PREFIX_ORDERS = 200_000


@pytest.fixture(scope="module")
def binary() -> Path:
    return build()


def test_build_is_cached(binary: Path) -> None:
    assert build() == binary
    assert binary.stat().st_size > 0


def test_own_scenarios(binary: Path) -> None:
    self_check(binary)


def test_prefix_matches_the_engine(binary: Path) -> None:
    wl = workload_c(3, PREFIX_ORDERS)
    engine = CompiledEngine(wl.config)
    engine.process(wl.setup)
    rows = engine.encode(wl.stream)
    for i in range(0, len(rows), 4_096):
        engine.process_encoded(rows[i : i + 4_096])
    totals = engine_totals(engine, rows)
    assert totals["trades"] > 90_000 and totals["levels"] > 0  # the prefix does trade
    for reserve in (True, False):
        cpp = run(binary, PREFIX_ORDERS, 2, 3, reserve=reserve)
        check_same(totals, cpp)
        assert len(cpp.run_seconds) == 2 and cpp.orders_per_sec > 0
    other_seed = run(binary, PREFIX_ORDERS, 1, 4)
    with pytest.raises(CppBookMismatch):
        check_same(totals, other_seed)


def test_full_stream_gives_the_published_outcome(binary: Path) -> None:
    cpp = run(binary, 2_000_000, 1, 3)
    assert (cpp.trades, cpp.resting_orders, cpp.levels) == (917_708, 987_103, 13)
    assert 2 * cpp.traded_qty + cpp.resting_qty == _placed_qty(2_000_000)


def _placed_qty(orders: int) -> int:
    from bench.workloads import insert_only_draws

    _, _, qty_lots = insert_only_draws(3, orders)
    return int(qty_lots.sum()) * 100


def test_bench_without_gpp_says_so_in_one_line(tmp_path: Path) -> None:
    """No g++ on PATH: one line on stderr, a non-zero exit, no traceback."""
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "engine", "--workload", "c", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "g++ not found" in lines[0], proc.stderr
    assert proc.stdout == ""
