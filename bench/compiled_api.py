"""The benchmark's only contact points with the two engines.

The engines are developed alongside the benchmarks, so every assumption about their API
(class locations, the encoded fast path, how memory per order is reported, how a prefilled
engine is cloned) lives here, in one place, instead of being spread over the measurements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.specs import Record, Workload
from engine.schema import EngineConfig


def compiled_engine_class() -> Any:
    from engine.core.compiled import CompiledEngine

    return CompiledEngine


def reference_engine_class() -> Any:
    from engine.reference import ReferenceEngine

    return ReferenceEngine


class CompiledHandle:
    """Makes fresh compiled engines in a workload's prefilled state, cheaply and identically.

    The first engine is built by processing setup (admin commands: ``process``) and the
    prefill (encoded rows: ``process_encoded``). Later ones are restored from that engine's
    state image when the class offers ``from_image``, which is what a node does on restart,
    and otherwise rebuilt the same way; either way each timed repetition starts from the same
    state, and the restore is never timed. Engines are built with ``prefault=True``, as a node
    builds its engine: table memory is committed before the clock starts.
    """

    def __init__(self, workload: Workload) -> None:
        self.cls = compiled_engine_class()
        self.workload = workload
        self._template: Any = None
        self._image: Any = None
        self._prefill_rows: np.ndarray | None = None

    def encode(self, records: list[Record]) -> np.ndarray:
        """Command rows for ``process_encoded`` (hot commands only)."""
        probe = self._template if self._template is not None else self.cls(self.workload.config)
        rows = probe.encode(records)
        assert len(rows) == len(records), "encode() dropped records"
        return rows

    def _build(self) -> Any:
        engine = self.cls(self.workload.config, prefault=True)
        engine.process(self.workload.setup)
        if self._prefill_rows is None:
            self._prefill_rows = engine.encode(self.workload.prefill)
        engine.process_encoded(self._prefill_rows)
        return engine

    def fresh(self) -> Any:
        if self._template is None:
            self._template = self._build()
            if hasattr(self.cls, "from_image"):
                self._image = self._template.image()
        if self._image is not None:
            return self.cls.from_image(self._image, prefault=True)
        return self._build()

    def warm_up(self, stream_rows: np.ndarray) -> None:
        """Compile (or load from numba's cache) every kernel before a clock starts."""
        engine = self.fresh()
        for i in range(0, min(len(stream_rows), 200_000), 4_096):
            engine.process_encoded(stream_rows[i : i + 4_096])
        engine.process_encoded(stream_rows[:0])
        engine.process(self.workload.stream[:0])

    def engine_for_inspection(self) -> Any:
        if self._template is None:
            self.fresh()
        return self._template


def book_totals(engine: Any) -> tuple[int, int, int]:
    """(trades, open orders, price levels) of a compiled engine, read from its tables: trade
    ids count up per market from 1, the books hold 2 sides per market (the trigger books that
    follow are not price levels of the order book)."""
    from engine.core.layout import M_LAST_TRADE

    tables = engine._a
    markets = len(tables.mkt)
    trades = int(tables.mkt[:, M_LAST_TRADE].sum())
    levels = int(tables.bkn[: 2 * markets].sum())
    return trades, int(engine.open_orders), levels


def bytes_per_resting_order(engine: Any, config: EngineConfig) -> tuple[float, str]:
    """Memory per resting order as the compiled engine reports it, with how it was obtained.

    Preference: the engine's own report; then ``engine.core.arrays.bytes_per_resting_order``
    (per-slot bytes of the tables that scale with ``max_orders``); last, the nbytes of every
    numpy array the engine holds divided by ``max_orders`` (an upper bound: it also counts
    accounts, balances and the event buffer).
    """
    own = getattr(engine, "bytes_per_resting_order", None)
    if own is not None:
        value = own() if callable(own) else own
        if isinstance(value, dict):
            value = value.get("total_per_order", value.get("total"))
        if isinstance(value, int | float):
            return float(value), "reported by CompiledEngine.bytes_per_resting_order"
    try:
        from engine.core.arrays import bytes_per_resting_order as layout_report
    except ImportError:
        layout_report = None
    if layout_report is not None:
        report = layout_report(config)
        return float(report["total_per_order"]), (
            f"engine.core.arrays.bytes_per_resting_order: order tables "
            f"{report['order_tables']:.0f} B + hash indexes {report['hash_indexes']:.0f} B per "
            f"order slot (levels: {report['per_level']:.0f} B per level slot, not included)"
        )
    arrays = [v for v in vars(engine).values() if isinstance(v, np.ndarray)]
    total = sum(a.nbytes for a in arrays)
    return total / config.max_orders, "all engine arrays' nbytes / max_orders (upper bound)"
