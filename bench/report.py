"""Human output of ``kootabase bench engine``: a header and a rich table.

Kept apart from the measurements so that ``--json`` runs never import rich.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench.engine_bench import Result

_console = Console()


def print_header(machine: dict[str, Any]) -> None:
    _console.rule("[bold]kootabase bench engine")
    _console.print(
        f"cpu: {machine['cpu']} x{machine['cpu_count']} | python {machine['python']} "
        f"({machine['implementation']}) | numba {machine['numba']} | numpy {machine['numpy']}"
    )
    _console.print(
        "[dim]Engine only: no journal, no fsync, no sequencer, no network in the loop. "
        "Generation, encoding, setup and the prefilled book are outside the timed region; "
        "the GC is off while timing.[/dim]"
    )


def _si(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:,.2f}{unit}"
    return f"{value:,.0f}"


def _opt(value: float | None, fmt: Callable[[float], str]) -> str:
    """``-`` where a workload has no such measurement (the C++ book runs on (c) only)."""
    return "-" if value is None else fmt(value)


def _rows(r: Result) -> list[tuple[str, str]]:
    lat = r.latency_ns
    return [
        ("stream commands", f"{r.commands:,}"),
        ("resting orders / levels before",
         f"{r.resting_after_prefill:,} / {r.levels_after_prefill:,}"),
        ("resting orders / levels after", f"{r.resting_orders:,} / {r.levels:,}"),
        ("trades per run", f"{r.trades:,}"),
        ("accounts", f"{r.accounts:,}"),
        ("compiled cmds/s (median)", f"[bold]{_si(r.commands_per_sec)}[/bold]"),
        ("  mean per command in batch (ns)", f"{1e9 / r.commands_per_sec:,.0f}"),
        ("  runs (s)", " ".join(f"{t:.3f}" for t in r.run_seconds)),
        ("  events per run", f"{r.events_per_run:,}"),
        ("latency p50 (ns)", f"{lat['p50']:,.0f}"),
        ("latency p99 (ns)", f"{lat['p99']:,.0f}"),
        ("latency p99.9 (ns)", f"{lat['p999']:,.0f}"),
        ("  empty call (ns, subtracted)", f"{r.empty_call_ns:,.0f}"),
        ("reference cmds/s", _si(r.reference_commands_per_sec)),
        ("  reference commands timed", f"{r.reference_commands:,}"),
        ("compiled via process() (objects) cmds/s", _si(r.compiled_objects_commands_per_sec)),
        ("ratio compiled/reference", f"[bold]{r.ratio:,.1f}x[/bold]"),
        ("C++ book orders/s (bench/cppbook)", _opt(r.cpp_book_orders_per_sec, _si)),
        ("  ratio compiled/C++ book", _opt(r.ratio_to_cpp_book, lambda v: f"{v:.2f}x")),
        ("  C++ book, index grown in the loop", _opt(r.cpp_book_growing_index_orders_per_sec, _si)),
        ("  ratio compiled/that", _opt(r.ratio_to_cpp_book_growing_index, lambda v: f"{v:.2f}x")),
        ("bytes per resting order", f"{r.bytes_per_resting_order:,.0f}"),
        ("rejected fraction", f"{r.rejected_fraction:.3%}"),
        ("generation (s)", f"{r.generation_seconds:.1f}"),
        ("workload digest", r.digest[:16]),
    ]  # fmt: skip


def print_results(results: Sequence[Result]) -> None:
    table = Table(title="Matching engine: compiled core vs reference model")
    table.add_column("measure")
    for r in results:
        table.add_column(f"workload {r.workload} (seed {r.seed})", justify="right")
    columns = [_rows(r) for r in results]
    for i, (label, _) in enumerate(columns[0]):
        table.add_row(label, *(col[i][1] for col in columns))
    _console.print(table)
    for r in results:
        mix = ", ".join(f"{k} {v / r.commands:.1%}" for k, v in r.mix.items())
        _console.print(
            f"[bold]{r.workload}[/bold] stream mix: {mix}; fills followed during generation "
            f"by {r.generator_simulator}"
        )
    if results:
        r = results[0]
        _console.print(
            f"[dim]Throughput: median of {len(r.run_seconds)} runs over the whole stream "
            f"({r.clock}), "
            f"{r.batch:,} rows per process_encoded call, each run from a fresh prefilled engine. "
            f"Latency: {r.latency_sample:,} single-command process_encoded calls from the middle "
            "of the stream, timed with perf_counter_ns, minus the median cost of an empty call "
            "(timer + Python wrapper: an empty call returns before the kernel, so numba's "
            "dispatch of the kernel stays in the figures; compare the batch mean). "
            "Reference: the same stream's first commands through ReferenceEngine.process; the "
            "ratio compares it with the compiled engine's encoded path (the objects path on the "
            "same prefix is shown too). The first workload's generation includes JIT "
            "compilation or numba cache loading. Rejected fraction: rejections the scratch engine "
            "reported while generating the stream (same records, same engine). "
            f"Bytes per order: {r.bytes_note}.[/dim]"
        )
