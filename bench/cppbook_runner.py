"""The C++ book of ``bench/cppbook/`` beside the compiled engine on workload (c).

Issue 14 compared the engine with a well-known C++ book measured on another machine, so the
ratio could not be reproduced. ``bench/cppbook/`` is our own plain C++17 book in the same
style (``std::map`` ladders, ``std::list`` FIFO levels, an ``unordered_map`` order index; see
``book.hpp``), generating the same stream with the C library's ``srand``/``rand``. This module
compiles it (``g++ -O2 -std=c++17``, cached by a hash of the sources, flags and compiler
version), runs it, and checks that it did exactly what the engine did: a ratio between two
programs that traded differently would mean nothing, so a mismatch raises instead of being
reported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

SOURCE_DIR = Path(__file__).resolve().parent / "cppbook"
SOURCES = ("book.hpp", "main.cpp")
CXX = "g++"
CXXFLAGS = ("-O2", "-std=c++17")
"""Plain optimised build: no -march=native, no LTO, no profile feedback."""


class CppBookMismatch(AssertionError):
    """The C++ book and the engine did not produce the same trades or book on one stream."""


class CppBookRun(msgspec.Struct, frozen=True):
    """The program's JSON line (quantities in the stream's units: 100 per lot, = atoms here)."""

    orders: int
    trades: int
    traded_qty: int
    resting_orders: int
    resting_qty: int
    levels: int
    run_seconds: list[float]
    orders_per_sec: float
    warm_up_seconds: float
    index_reserved: bool
    seed: int
    clock: str


def compiler() -> str:
    """Path of g++, or a one-line `UserError` saying how to get it."""
    from engine.usererror import UserError

    path = shutil.which(CXX)
    if path is None:
        raise UserError(
            "g++ not found: workload (c) compiles the C++ book (bench/cppbook) to time it "
            "beside the engine",
            hint="install the project's nodes with `make nodes` (Debian package g++)",
        )
    return path


def _cache_root() -> Path:
    """``build/cppbook`` of the checkout (git-ignored), else the temp directory."""
    root = SOURCE_DIR.parents[1] / "build" / "cppbook"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "kootabase-cppbook"


def build() -> Path:
    """The compiled program, built once per (sources, flags, compiler version)."""
    cxx = compiler()
    version = subprocess.run(
        [cxx, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    digest = hashlib.sha256(" ".join((version, *CXXFLAGS)).encode())
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    out_dir = _cache_root() / digest.hexdigest()[:16]
    binary = out_dir / "cppbook"
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    # compile under a private name, then rename: a concurrent build never sees half a file
    partial = out_dir / f"cppbook.{os.getpid()}.tmp"
    proc = subprocess.run(
        [cxx, *CXXFLAGS, "-o", str(partial), str(SOURCE_DIR / "main.cpp")],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"compiling bench/cppbook failed:\n{proc.stderr}")
    os.replace(partial, binary)
    return binary


def run(binary: Path, orders: int, repeats: int = 1, seed: int = 3, *, reserve: bool = True
        ) -> CppBookRun:  # fmt: skip
    """One process: generate ``orders``, one untimed warm-up repetition, ``repeats`` timed."""
    args = [str(binary), str(orders), str(repeats), str(seed), "1" if reserve else "0"]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return msgspec.json.decode(proc.stdout, type=CppBookRun)


def self_check(binary: Path) -> None:
    """The program's own small scenarios (partial fills, level order, cancels)."""
    proc = subprocess.run([str(binary), "check"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cppbook check failed: {proc.stderr.strip()}")


def engine_totals(engine: Any, stream_rows: np.ndarray) -> dict[str, int]:
    """What the compiled engine did to the stream, in the C++ program's terms.

    Trades, resting orders and levels from the tables (`bench.compiled_api.book_totals`);
    resting quantity summed over the open orders; traded quantity from conservation: every
    placed unit either rests or traded against one unit of the other side, so
    traded = (placed - resting) / 2. Single-market streams only (workload (c)).
    """
    from bench.compiled_api import book_totals
    from engine.core.imaging import ordered_slots
    from engine.core.layout import M_EXISTS, M_LOT, O_QTY, R_QTY

    tables = engine._a
    markets = np.nonzero(tables.mkt[:, M_EXISTS])[0]
    assert len(markets) == 1, "engine_totals reads a single-market stream"
    lot_atoms = int(tables.mkt[markets[0], M_LOT])
    trades, resting, levels = book_totals(engine)
    resting_qty = int(tables.ords[ordered_slots(engine), O_QTY].sum()) * lot_atoms
    placed = int(stream_rows[:, R_QTY].sum())
    return {
        "trades": trades,
        "traded_qty": (placed - resting_qty) // 2,
        "resting_orders": resting,
        "resting_qty": resting_qty,
        "levels": levels,
    }


def check_same(engine: dict[str, int], cpp: CppBookRun) -> None:
    """Raise `CppBookMismatch` unless both did the same to the stream."""
    theirs = {key: getattr(cpp, key) for key in engine}
    if theirs != engine:
        raise CppBookMismatch(
            f"the C++ book and the engine disagree on {cpp.orders:,} orders: "
            f"engine {engine}, C++ book {theirs}"
        )


@dataclass
class SideBySide:
    """C++ book runs interleaved with the engine's timed runs (A B A B): after every engine
    run, one C++ process with the index reserved up front and one letting it grow, so
    machine load drifts over both alike."""

    orders: int
    seed: int
    binary: Path = field(default_factory=build)
    reserved: list[CppBookRun] = field(default_factory=list)
    growing: list[CppBookRun] = field(default_factory=list)

    def after_engine_run(self) -> None:
        self.reserved.append(run(self.binary, self.orders, 1, self.seed, reserve=True))
        self.growing.append(run(self.binary, self.orders, 1, self.seed, reserve=False))

    def report(self, engine: dict[str, int], engine_orders_per_sec: float) -> dict[str, Any]:
        """The result fields; checks every C++ run against the engine first."""
        for one in (*self.reserved, *self.growing):
            check_same(engine, one)
        reserved = [s for r in self.reserved for s in r.run_seconds]
        growing = [s for r in self.growing for s in r.run_seconds]
        cps = self.orders / statistics.median(reserved)
        growing_cps = self.orders / statistics.median(growing)
        return {
            "cpp_book_orders_per_sec": cps,
            "ratio_to_cpp_book": engine_orders_per_sec / cps,
            "cpp_book_growing_index_orders_per_sec": growing_cps,
            "ratio_to_cpp_book_growing_index": engine_orders_per_sec / growing_cps,
            "cpp_book": {
                "source": "bench/cppbook (ours: std::map levels, std::list FIFOs, "
                "std::unordered_map order index)",
                "compile": " ".join((CXX, *CXXFLAGS)),
                "run_seconds": reserved,
                "growing_index_run_seconds": growing,
                "totals": engine,
            },
        }


__all__ = [
    "CppBookMismatch",
    "CppBookRun",
    "SideBySide",
    "build",
    "check_same",
    "compiler",
    "engine_totals",
    "run",
    "self_check",
]
