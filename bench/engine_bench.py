"""``kootabase bench engine``: throughput and latency of the matching engine alone.

What is timed, and why it is fair:

- Only the engine. No journal, no fsync, no sequencer, no network: those have their own
  costs and their own benchmarks; this one answers "how fast does the core match".
- Workload generation (`bench.workloads`) and encoding to command rows happen before any clock
  starts. Setup (assets, markets, accounts, deposits) and the prefilled book are processed
  before timing too; every repetition starts from a fresh engine in the same prefilled state.
- Throughput: the compiled engine's ``process_encoded`` over the whole stream, in slices of
  `BATCH` rows (one call each, so the per-call cost is amortised as in a group commit); the
  median of several repetitions. Every timed region is measured as process CPU time
  (``time.process_time``), so other jobs on a shared machine do not count against the
  engine. The reference model runs a prefix of the same stream in the same run, so the
  ratio compares the two engines on the same machine, same moment.
- Workload (c) only: the C++ book of ``bench/cppbook`` (ours, plain C++17, compiled with
  ``g++ -O2 -std=c++17``; `bench.cppbook_runner`) runs after every engine repetition (A B A B)
  on the same stream, timed the same way (CPU time of the insert loop); its trades, traded and
  resting quantity, resting orders and levels must equal the engine's, or the run fails.
- Latency inside the engine: a window of the stream sent one command per call, each call
  bracketed by ``time.perf_counter_ns``; the median cost of an empty call (timer plus call
  machinery) is subtracted and reported. The garbage collector is off while timing.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgspec
import numpy as np

from bench.compiled_api import (
    CompiledHandle,
    book_totals,
    bytes_per_resting_order,
    reference_engine_class,
)
from bench.cppbook_runner import SideBySide, compiler, engine_totals
from bench.workloads import INSERT_ONLY_SEED, WORKLOADS, Record, Workload

BATCH = 4_096
"""Rows per ``process_encoded`` call in the throughput runs."""

DEFAULT_COMMANDS: dict[str, int] = {"a": 1_000_000, "b": 500_000, "c": 2_000_000}
"""Stream sizes that keep a full ``bench engine`` (every workload) within a few minutes on a
2-core machine, generation and the reference run included. (c) is the C++ benchmark's own
size: 2,000,000 orders."""

DEFAULT_SEEDS: dict[str, int] = {"a": 0, "b": 0, "c": INSERT_ONLY_SEED}
"""Seed when ``--seed`` is not given: (c) is the C++ benchmark's ``srand(3)``."""

REFERENCE_COMMANDS = 100_000
"""The reference model is timed on at most this many commands of the same stream."""

LATENCY_SAMPLE = 20_000
REPETITIONS = 5


@dataclass
class Result:
    """One workload's measurements; `to_json` is the ``--json`` line."""

    workload: str
    seed: int
    commands: int
    commands_per_sec: float
    run_seconds: list[float]
    events_per_run: int
    reference_commands: int
    reference_commands_per_sec: float
    ratio: float
    compiled_objects_commands_per_sec: float
    """The compiled engine through ``process`` (objects in, objects out), same prefix."""
    latency_ns: dict[str, float]
    latency_sample: int
    empty_call_ns: float
    bytes_per_resting_order: float
    bytes_note: str
    rejected_fraction: float
    resting_after_prefill: int
    levels_after_prefill: int
    resting_at_end: int
    levels_at_end: int
    accounts: int
    mix: dict[str, int]
    digest: str
    generation_seconds: float
    generator_simulator: str
    trades: int
    """Trades of one timed run, read from the engine afterwards (every market's last id)."""
    resting_orders: int
    """Open orders in the engine after one timed run."""
    levels: int
    """Price levels in the engine's books after one timed run (triggers' books excluded)."""
    clock: str = "process CPU time"
    batch: int = BATCH
    extra: dict[str, Any] = field(default_factory=dict)
    cpp_book_orders_per_sec: float | None = None
    """(c) only: the C++ book's median, its order index sized before the clock (as the
    engine's tables are); `ratio_to_cpp_book` is the engine's figure over it."""
    ratio_to_cpp_book: float | None = None
    cpp_book_growing_index_orders_per_sec: float | None = None
    """(c) only: the same book letting its ``unordered_map`` grow inside the timed loop."""
    ratio_to_cpp_book_growing_index: float | None = None
    cpp_book: dict[str, Any] | None = None

    def to_json(self, machine: dict[str, Any]) -> bytes:
        return msgspec.json.encode({**asdict(self), "machine": machine})


def machine_info() -> dict[str, Any]:
    """What a reader needs to compare numbers across machines."""
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def _timed(fn: Callable[[], object]) -> float:
    """CPU seconds of this process taken by ``fn()``, with the garbage collector off (no pause
    lands inside). CPU time, not wall time: the machine may be shared."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        fn()
        return time.process_time() - start
    finally:
        gc.enable()


def _slices(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def measure_compiled(
    handle: CompiledHandle,
    stream_rows: np.ndarray,
    reps: int,
    between: Callable[[], None] = lambda: None,
) -> tuple[list[float], int, Any]:
    """Seconds per repetition over the whole stream, the events one repetition produced, and
    the engine of the last repetition (to read what the stream did). ``between`` runs after
    each repetition, untimed (the other side of an interleaved comparison)."""
    batches = _slices(stream_rows, BATCH)
    times: list[float] = []
    events = 0
    engine: Any = None
    for _ in range(reps):
        engine = handle.fresh()
        produced = [0]

        def run(engine: Any = engine, produced: list[int] = produced) -> None:
            total = 0
            for batch in batches:
                total += engine.process_encoded(batch)
            produced[0] = total

        times.append(_timed(run))
        events = produced[0]
        between()
    return times, events, engine


def measure_latency(
    handle: CompiledHandle, stream_rows: np.ndarray, sample: int
) -> tuple[np.ndarray, float]:
    """Per-command latencies (ns, empty-call cost subtracted) and that empty-call cost.

    The window sits in the middle of the stream, after the book has reached its steady state.
    """
    engine = handle.fresh()
    n = len(stream_rows)
    sample = min(sample, n)
    start = (n - sample) // 2
    for batch in _slices(stream_rows[:start], BATCH):
        engine.process_encoded(batch)
    singles = [stream_rows[i : i + 1] for i in range(start, start + sample)]
    empty = stream_rows[:0]
    clock = time.perf_counter_ns
    call = engine.process_encoded
    gc.collect()
    gc.disable()
    try:
        empties = np.empty(2_000, dtype=np.int64)
        for i in range(len(empties)):
            t0 = clock()
            call(empty)
            empties[i] = clock() - t0
        raw = np.empty(sample, dtype=np.int64)
        for i, row in enumerate(singles):
            t0 = clock()
            call(row)
            raw[i] = clock() - t0
    finally:
        gc.enable()
    empty_ns = float(np.median(empties))
    return np.maximum(raw - empty_ns, 0.0), empty_ns


def measure_objects(handle: CompiledHandle, workload: Workload, commands: int) -> float:
    """Seconds of the compiled engine's ``process`` (command and event objects) on a prefix:
    the same API as the reference model, so this is the like-for-like side of the ratio."""
    engine = handle.fresh()
    prefix = workload.stream[:commands]
    batches = [prefix[i : i + BATCH] for i in range(0, len(prefix), BATCH)]

    def run() -> None:
        for batch in batches:
            engine.process(batch)

    return _timed(run)


def measure_reference(workload: Workload, commands: int) -> tuple[int, float]:
    """(commands, seconds) of the reference model on a prefix of the stream."""
    engine = reference_engine_class()(workload.config)
    engine.process(workload.setup)
    engine.process(workload.prefill)
    prefix = workload.stream[:commands]
    batches = [prefix[i : i + BATCH] for i in range(0, len(prefix), BATCH)]

    def run() -> None:
        for batch in batches:
            engine.process(batch)

    return len(prefix), _timed(run)


def run_workload(
    name: str,
    seed: int,
    commands: int,
    *,
    reps: int = REPETITIONS,
    reference_commands: int = REFERENCE_COMMANDS,
    latency_sample: int = LATENCY_SAMPLE,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Result:
    """Generate one workload and take every measurement of the report on it."""
    progress(f"workload {name}: generating {commands:,} commands (seed {seed})")
    t0 = time.perf_counter()
    workload = WORKLOADS[name](seed, commands)
    generation = time.perf_counter() - t0
    handle = CompiledHandle(workload)
    stream_rows = handle.encode(workload.stream)
    side = SideBySide(commands, seed) if name == "c" else None
    also = " and the C++ book, interleaved," if side else ""
    progress(f"workload {name}: warming up (JIT) and timing the compiled engine{also} x{reps}")
    handle.warm_up(stream_rows)
    times, events, after = measure_compiled(
        handle, stream_rows, reps, side.after_engine_run if side else lambda: None
    )
    trades, resting, levels = book_totals(after)
    cps = len(workload.stream) / statistics.median(times)
    cpp = side.report(engine_totals(after, stream_rows), cps) if side else {}
    sample = min(latency_sample, len(stream_rows))
    progress(f"workload {name}: latency sample of {sample:,} single-command calls")
    latencies, empty_ns = measure_latency(handle, stream_rows, sample)
    progress(f"workload {name}: timing the reference model")
    ref_n, ref_seconds = measure_reference(workload, reference_commands)
    objects_seconds = measure_objects(handle, workload, ref_n)
    per_order, note = bytes_per_resting_order(handle.engine_for_inspection(), workload.config)
    ref_cps = ref_n / ref_seconds
    return Result(
        workload=name,
        seed=seed,
        commands=len(workload.stream),
        commands_per_sec=cps,
        run_seconds=times,
        events_per_run=events,
        reference_commands=ref_n,
        reference_commands_per_sec=ref_cps,
        ratio=cps / ref_cps,
        compiled_objects_commands_per_sec=ref_n / objects_seconds,
        latency_ns={
            "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)),
            "p999": float(np.percentile(latencies, 99.9)),
            "max": float(latencies.max()),
        },
        latency_sample=len(latencies),
        empty_call_ns=empty_ns,
        bytes_per_resting_order=per_order,
        bytes_note=note,
        rejected_fraction=workload.rejected_fraction,
        resting_after_prefill=workload.resting_after_prefill,
        levels_after_prefill=workload.levels_after_prefill,
        resting_at_end=workload.resting_at_end,
        levels_at_end=workload.levels_at_end,
        accounts=sum(1 for _, _, c in workload.setup if type(c).__name__ == "CreateAccount"),
        mix=workload.mix,
        digest=workload.digest(),
        generation_seconds=generation,
        generator_simulator=workload.simulator,
        trades=trades,
        resting_orders=resting,
        levels=levels,
        **cpp,
    )


def _selected(choice: str) -> Sequence[str]:
    return tuple(DEFAULT_COMMANDS) if choice == "all" else (choice,)


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``kootabase bench engine`` (see gateway/clibench.py)."""
    from bench.report import print_header, print_results

    if "c" in _selected(args.workload):
        compiler()  # workload (c) needs g++ for the C++ book: say so now, in one line
    machine = machine_info()
    json_out: bool = bool(args.json)
    results: list[Result] = []
    if not json_out:
        print_header(machine)
    for name in _selected(args.workload):
        commands = args.commands or DEFAULT_COMMANDS[name]
        seed = DEFAULT_SEEDS[name] if args.seed is None else args.seed
        progress = (lambda _m: None) if json_out else _stderr_progress
        result = run_workload(name, seed, commands, progress=progress)
        results.append(result)
        if json_out:
            _write_line(result.to_json(machine))
    if not json_out:
        print_results(results)
    return 0


def _write_line(payload: bytes) -> None:
    """One JSON object per line on stdout (the CLI's output, not logging)."""
    import sys

    sys.stdout.write(payload.decode() + "\n")
    sys.stdout.flush()


def _stderr_progress(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).log(message)


__all__ = ["Record", "Result", "machine_info", "run_cli", "run_workload"]
