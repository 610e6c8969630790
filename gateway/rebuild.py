"""Rebuilding the gateway's read model (orders, trades, balances), market data and history index
from the engine's snapshots and journal at start-up (`ReadModelRebuild`, a part of
`gateway.app.Gateway`).

The rebuild starts from the newest read-model snapshot that has an engine snapshot at the same
sequence and that the history index covers (`gateway.readmodel`): the engine image is loaded
into a replay engine and only the journal tail is replayed, so the start-up time follows the
live state and the tail, not the history's length. Without such a snapshot (first start,
deleted files) the whole journal is replayed, which also rebuilds the history index.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import structlog

from engine.core.compiled import CompiledEngine
from engine.schema import decode_command
from engine.snapshot import SnapshotError, read_snapshot
from gateway import readmodel
from gateway.history.index import HistoryIndexError
from gateway.history.writer import HistoryWriter
from marketdata import snapshot as md_snapshot

log = structlog.get_logger("gateway.app")
REPLAY_CHUNK = 4_096
REPLAY_MAX_UNWRITTEN = 200_000
"""Rows the history writer may lag behind a replay before the replay waits for it."""


class ReadModelRebuild:
    """The start-up half of `gateway.app.Gateway`: open (or set aside) the history index,
    pick the start point, replay the journal tail into the store and market data. Uses the
    gateway's ``node``, ``config``, ``dir``, ``store``, ``history``, ``marketdata`` and
    ``_apply``."""

    node: Any
    config: Any
    dir: Path
    store: Any
    history: HistoryWriter
    marketdata: Any
    metrics: Any
    _readmodel_seq: int
    start_point: tuple[int, int]

    def _open_history(self) -> HistoryWriter:
        """The history index; one that cannot be used, or that covers more of the journal
        than the journal holds (a journal restored from an older backup), is derived data:
        it is set aside and rebuilt by the replay."""
        path = self.dir / "history.sqlite3"
        cfg = self.config

        def open_writer() -> HistoryWriter:
            return HistoryWriter(
                path,
                retention_days=cfg.history_retention_days,
                commit_interval_s=cfg.history_commit_interval_s,
            )

        try:
            writer = open_writer()
        except HistoryIndexError as exc:
            self._set_aside(path, str(exc))
            return open_writer()
        last = self.node.journal.last_sequence if self.node is not None else None
        if last is not None and writer.durable_seq > last:
            writer.close()
            self._set_aside(path, f"index covers seq {writer.durable_seq}, journal ends at {last}")
            return open_writer()
        return writer

    def _history_metrics(self) -> None:
        """The history index's position and the writer's health on ``/metrics`` (read when
        scraped): a growing lag or failure count means closed orders pile up in memory."""
        from prometheus_client import Gauge

        r, h = self.metrics.registry, self.history
        Gauge(
            "kootabase_history_indexed_seq",
            "last sequence whose closed orders and trades the history index holds",
            registry=r,
        ).set_function(lambda: float(h.durable_seq))
        Gauge(
            "kootabase_history_unwritten_rows",
            "closed orders and trades handed to the history writer and not yet committed",
            registry=r,
        ).set_function(lambda: float(h.queued_rows()))
        Gauge(
            "kootabase_history_write_failures",
            "history index writes that failed (retried)",
            registry=r,
        ).set_function(lambda: float(h.failures))

    @staticmethod
    def _set_aside(path: Path, reason: str) -> None:
        aside = path.with_suffix(f".unusable-{int(time.time())}")
        log.error("history_index_unusable", error=reason, moved_to=str(aside))
        path.rename(aside)
        for extra in ("-wal", "-shm"):
            path.with_name(path.name + extra).unlink(missing_ok=True)

    def _start_point(self) -> tuple[readmodel.ReadModelImage | None, CompiledEngine]:
        """The newest read-model snapshot usable with an engine snapshot at its sequence."""
        last = self.node.journal.last_sequence
        covered = self.history.durable_seq
        for img_seq in readmodel.candidates(self.dir / "readmodel"):
            if img_seq > last or img_seq > covered:
                continue  # the index or the journal does not reach it: not consistent
            try:
                snap = read_snapshot(self.node.snapshot_dir / f"{img_seq:020d}.snap")
                img = readmodel.read(self.dir / "readmodel" / f"{img_seq:020d}.rms")
            except (OSError, ValueError, SnapshotError) as exc:
                log.warning("readmodel_start_point_skipped", seq=img_seq, reason=str(exc))
                continue
            return img, CompiledEngine.from_image(snap.image)
        return None, CompiledEngine(self.node.engine.config)

    def _replay(self) -> None:
        """Rebuild the read model (and market data) from the newest consistent snapshot plus
        the journal tail (or the whole journal), with events; the history index follows."""
        started = time.perf_counter()
        assert self.node is not None
        journal = self.node.journal
        last = journal.last_sequence
        img, engine = self._start_point()
        first = journal.first_sequence
        if img is not None:
            self.store = readmodel.restore(img, memory_orders=self.config.history_memory_orders)
            self._readmodel_seq = img.last_seq
            first = img.last_seq + 1
            if self.marketdata is not None:
                if img.marketdata is not None:
                    md_snapshot.restore(self.marketdata.state, img.marketdata)
                else:
                    self._replay_marketdata(img.last_seq)
        if self.aml is not None and not (img is not None and self.aml.restore(img.aml)):
            self.aml.rebuild_through(img.last_seq if img is not None else first - 1)
        run: list[tuple[int, int, Any]] = []
        if first <= last:
            for seq, ts, payload in journal.read_from(first, last):
                if run and (ts != run[-1][1] or len(run) >= REPLAY_CHUNK):
                    self._replay_run(engine, run)
                    run = []
                run.append((seq, ts, decode_command(payload)))
        if run:
            self._replay_run(engine, run)
        self.start_point = (img.last_seq if img else 0, max(0, last - first + 1))
        log.info(
            "gateway_replayed",
            last_seq=last,
            from_snapshot=self.start_point[0],
            replayed=self.start_point[1],
            seconds=round(time.perf_counter() - started, 3),
        )

    def _replay_run(self, engine: CompiledEngine, run: list[tuple[int, int, Any]]) -> None:
        events = engine.process(run)
        ts, last = run[-1][1], run[-1][0]
        self._apply(ts, events, last)
        if self.marketdata is not None:
            self.marketdata.state.apply_events(ts, events, last)
        if (
            self.history.submitted_seq - self.history.durable_seq > 0
            and self.history.queued_rows() > REPLAY_MAX_UNWRITTEN
        ):
            self.history.flush(self.history.submitted_seq)

    def _replay_marketdata(self, through_seq: int) -> None:
        """A snapshot written without market data: rebuild market data from the journal's
        start through ``through_seq`` (the tail follows with the store)."""
        engine = CompiledEngine(self.node.engine.config)
        journal = self.node.journal
        run: list[tuple[int, int, Any]] = []

        def flush() -> None:
            events = engine.process(run)
            self.marketdata.state.apply_events(run[-1][1], events, run[-1][0])

        for seq, ts, payload in journal.read_from(journal.first_sequence, through_seq):
            if run and (ts != run[-1][1] or len(run) >= REPLAY_CHUNK):
                flush()
                run = []
            run.append((seq, ts, decode_command(payload)))
        if run:
            flush()
