"""`CompiledEngine`: the Python face of the compiled core.

Hot commands (PlaceOrder, CancelOrder, AmendOrder, CancelAll) are encoded as int64 rows and run
by one njit loop per batch (`engine.core.kernel.run_batch`); admin and custody commands are
rare and run in Python (`engine.core.admin`) on the same arrays, the batch being split around
them. Events stay as int64 rows in a preallocated buffer until someone asks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.core.adminrows import R_ADMIN_KIND, ParsedAdmin
from engine.core.arrays import CoreArrays, bytes_per_resting_order
from engine.core.codec import decode_rows, encode_records
from engine.core.imaging import build_image, restore_image
from engine.core.kernel import ST_BAD_ROW, run_batch
from engine.core.layout import (
    C_ERROR,
    C_ERROR_SEQ,
    C_EV_POS,
    C_LAST_SEQ,
    C_NEXT_DMS,
    C_NEXT_GTD,
    C_NEXT_TXN,
    C_OPEN_ORDERS,
    CMD_ADMIN,
    ERROR_NAMES,
    R_KIND,
    R_SEQ,
    R_TS,
    R_W,
    ST_ADMIN,
    ST_CAPACITY,
    ST_DONE,
    ST_INVARIANT,
    ST_SEQ,
)
from engine.schema import Command, EngineConfig, Event, StateImage


def _entry_point(dispatcher: Any) -> Any:
    """A kernel's one compiled version, called directly. numba's dispatcher types every
    argument on every call (``run_batch`` has 17 with the state tuple's 16 arrays): measured
    ~8 us per call against ~1.4 us for the entry point, paid once per batch, i.e. per stream
    message of a cluster replica. Safe only because every call passes exactly the compiled
    types (`CompiledEngine.process_encoded` checks ``rows``; ``st`` is built once); with the
    JIT disabled, or a kernel of several versions, the dispatcher itself."""
    overloads = getattr(dispatcher, "overloads", None)
    if not overloads or len(overloads) != 1:
        return dispatcher
    return next(iter(overloads.values())).entry_point


_RUN_BATCH: Any = _entry_point(run_batch)


class SequenceError(ValueError, AssertionError):
    """A command's sequence does not increase (the reference model asserts the same)."""


class CompiledEngine(ParsedAdmin):
    """Deterministic matching engine on flat numpy arrays; same contract as the reference."""

    def __init__(
        self,
        config: EngineConfig = EngineConfig(),  # noqa: B008
        *,
        event_capacity: int = 0,
        prefault: bool = False,
    ) -> None:
        """``prefault``: commit all table memory now (see `CoreArrays`); nodes and replay do."""
        self.config = config
        self._a = CoreArrays(config, event_capacity, prefault=prefault)
        self._st = self._a.state()
        self._init_admin()
        self._admin: dict[int, tuple[int, Command]] = {}
        self._parsed_keys = {}  # see ParsedAdmin
        self._clamped: dict[int, Command] = {}
        self._decoded: list[Event] = []

    # ---- the API shared with the reference model --------------------------------------------

    @property
    def last_seq(self) -> int:
        return int(self._a.ctr[C_LAST_SEQ])

    @property
    def next_txn_id(self) -> int:
        return int(self._a.ctr[C_NEXT_TXN])

    @property
    def open_orders(self) -> int:
        return int(self._a.ctr[C_OPEN_ORDERS])

    def process(self, records: Sequence[tuple[int, int, Command]]) -> list[Event]:
        """Apply ``records`` (seq strictly increasing) and return their events in order (only
        theirs: events left undrained by earlier fast-path calls are discarded first)."""
        self._decoded = []
        self._a.ctr[C_EV_POS] = 0
        self.process_encoded(self.encode(records), keep_events=True)
        return self.drain_events()

    def image(self) -> StateImage:
        return build_image(self)

    @classmethod
    def from_image(
        cls, image: StateImage, *, event_capacity: int = 0, prefault: bool = False
    ) -> CompiledEngine:
        eng = cls(image.config, event_capacity=event_capacity, prefault=prefault)
        restore_image(eng, image)
        return eng

    # ---- fast path ------------------------------------------------------------------------

    def encode(self, records: Sequence[tuple[int, int, Command]]) -> np.ndarray:
        """int64 rows for ``records`` (admin commands become placeholders run in Python)."""
        return encode_records(records, self._admin, self._clamped)

    def process_encoded(
        self, rows: np.ndarray, *, keep_events: bool = False, state_only: bool = False
    ) -> int:
        """Run encoded rows; returns the number of event rows written (a trade row stands for
        the Trade and the postings of its transaction, so rows <= events).

        ``keep_events=True``: every event is kept (decoded lazily) until `drain_events`.
        ``keep_events=False`` (the benchmark default): the event buffer is reused from its
        start; rows that would overflow it are overwritten, so after the call the buffer (and
        `drain_events`) holds the events of the call's last stretch only. Admin commands'
        events are dropped in this mode.
        ``state_only=True`` (replay and recovery): no event is kept at all; each command's
        rows overwrite the previous command's (see `engine.core.kernel.run_batch`), and the
        count returned covers only what the buffer still holds.
        """
        if keep_events and state_only:
            raise ValueError("keep_events and state_only exclude each other")
        if rows.dtype != np.int64 or rows.ndim != 2 or rows.shape[1] != R_W:
            raise ValueError(f"rows must be int64 [n, {R_W}], got {rows.dtype} {rows.shape}")
        if not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows)
        if not keep_events and self._decoded:
            self._decoded = []
        n = len(rows)
        # Fast path: one kernel call runs the whole batch.
        i, status, produced = _RUN_BATCH(rows, 0, n, not keep_events, state_only, self._st)
        if status == ST_DONE:
            return produced
        ctr = self._a.ctr
        while True:
            if status == ST_DONE:
                return produced
            if status == ST_CAPACITY:
                assert int(ctr[C_EV_POS]) > 0, "event buffer smaller than one command's bound"
                self._spill(keep_events)
            elif status == ST_ADMIN:
                seq = int(rows[i, R_SEQ])
                if seq <= self.last_seq:
                    raise SequenceError(f"sequence {seq} after {self.last_seq}: not increasing")
                if rows[i, R_ADMIN_KIND] != 0:  # parsed from a journal (engine.core.adminrows)
                    self._spill(keep_events)
                    i, events_run = self._run_parsed(rows, i, n, keep_events)
                    produced += events_run
                else:
                    parked = self._admin.pop(seq, None)
                    if parked is None:
                        raise ValueError(
                            f"row {i} (seq {seq}) is an admin command encoded by another "
                            "engine: admin rows run only on the engine whose encode() made them"
                        )
                    self._spill(keep_events)
                    ctr[C_LAST_SEQ] = seq
                    events = self._run_admin(seq, parked[0], parked[1])
                    produced += len(events)
                    if keep_events:
                        self._decoded.extend(events)
                    i += 1
            elif status == ST_SEQ:
                raise SequenceError(
                    f"sequence {int(rows[i, R_SEQ])} after {self.last_seq}: not increasing"
                )
            elif status == ST_INVARIANT:
                code = int(ctr[C_ERROR])
                raise AssertionError(
                    f"engine invariant broken at seq {int(ctr[C_ERROR_SEQ])}: "
                    f"{ERROR_NAMES.get(code, code)}"
                )
            elif status == ST_BAD_ROW:
                raise ValueError(f"row {i}: unknown command kind {int(rows[i, 0])}")
            else:
                raise AssertionError(f"unknown kernel status {status}")
            if i >= n:
                return produced
            if self._admin_next(rows, i):
                status = ST_ADMIN  # what run_batch would answer, without its ~20 us call
                continue
            i, status, rows_written = _RUN_BATCH(rows, i, n, False, state_only, self._st)
            produced += rows_written

    def _admin_next(self, rows: np.ndarray, i: int) -> bool:
        """Whether `run_batch` would stop at row ``i`` at once with ``ST_ADMIN``: an admin
        row with a new sequence and no timer due at its time (else the kernel sweeps first).
        Runs of admin commands (a setup's accounts and deposits) then skip a kernel call
        each, whose argument unboxing costs more than the admin command."""
        ctr = self._a.ctr
        now = int(rows[i, R_TS])
        return (
            int(rows[i, R_KIND]) == CMD_ADMIN
            and int(rows[i, R_SEQ]) > int(ctr[C_LAST_SEQ])
            and int(ctr[C_NEXT_DMS]) > now
            and int(ctr[C_NEXT_GTD]) > now
        )

    def bytes_per_resting_order(self) -> dict[str, float]:
        """Memory per order slot of every table that scales with max_orders (see layout)."""
        return bytes_per_resting_order(self.config)

    def event_rows(self) -> np.ndarray:
        """The raw int64 event rows currently in the buffer (a view; see layout.EV_*)."""
        return self._a.ev[: int(self._a.ctr[C_EV_POS])]

    def drain_events(self) -> list[Event]:
        """Decode and return every event kept since the last drain."""
        self._spill(True)
        out = self._decoded
        self._decoded = []
        if self._clamped:
            last = self.last_seq
            self._clamped = {s: c for s, c in self._clamped.items() if s > last}
        return out

    def _spill(self, keep: bool) -> None:
        ctr = self._a.ctr
        pos = int(ctr[C_EV_POS])
        if keep and pos:
            self._decoded.extend(
                decode_rows(
                    self._a.ev[:pos], self._ticks, self._lots, self._market_assets, self._clamped
                )
            )
        ctr[C_EV_POS] = 0
