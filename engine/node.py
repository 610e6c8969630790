"""An engine node: sequencer + journal + compiled engine + snapshots, recoverable after a crash.

This is the write path of DESIGN.md in one object: commands are stamped and made durable (group
commit) before the engine sees them, and the events returned are the acknowledgement. Start-up is
the newest valid snapshot plus the journal tail, so a node killed at any instant comes back with
every acknowledged command applied and the state a clean replay gives.

Single-threaded by design: one node owns its data directory (the journal holds a lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from engine.core.compiled import CompiledEngine
from engine.journal import DEFAULT_SEGMENT_BYTES, SegmentJournal
from engine.replay import ReplayMismatch, replay_journal
from engine.schema import Command, EngineConfig, Event, encode_command, state_hash
from engine.sequencer import Sequencer
from engine.snapshot import Snapshot, latest_valid, write_snapshot
from engine.usererror import UserError

log = structlog.get_logger(__name__)


class SnapshotMismatch(UserError):
    """The newest snapshot does not describe the journal's history (copied from another data
    directory, or written by a different engine): starting from it would serve a state no
    replay reproduces."""

    def __init__(self, snapshot: Snapshot, replayed_hash: str) -> None:
        super().__init__(
            f"snapshot {snapshot.path} records state hash {snapshot.state_hash} after seq "
            f"{snapshot.last_seq}, but replaying the journal to that seq gives {replayed_hash}: "
            "the snapshot is from a different history; refusing to start",
            hint="move the snapshot aside (the journal is the source of truth) and start again",
        )


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: Path
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Used only for a new data directory; afterwards the snapshot's own config rules."""
    fsync: bool = True
    """Off only for benchmarks: without it an acknowledged command can be lost."""
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    snapshot_every: int = 100_000
    """Commands between snapshots (bounds recovery time); 0 = only on clean shutdown."""
    snapshot_keep: int = 3
    verify_snapshot: bool = True
    """At start, replay the journal from genesis up to the snapshot and require the snapshot's
    recorded state hash (issue 11: a snapshot from a different history is refused, not trusted).
    Costs a full replay per start; off only when the snapshot's provenance is known."""


class EngineNode:
    def __init__(self, config: NodeConfig, clock: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.journal_dir = config.data_dir / "journal"
        self.snapshot_dir = config.data_dir / "snapshots"
        self.journal = SegmentJournal(
            self.journal_dir, segment_bytes=config.segment_bytes, fsync=config.fsync
        )
        try:
            self.engine = self._recover()
        except BaseException:
            self.journal.close()
            raise
        self.sequencer = Sequencer(self.journal, clock)
        self._last_snapshot_seq = self.engine.last_seq
        self._closed = False

    def _recover(self) -> CompiledEngine:
        started = time.perf_counter()
        snapshot = latest_valid(self.snapshot_dir)
        if snapshot is None:
            engine = CompiledEngine(self.config.engine, prefault=True)
        else:
            if snapshot.last_seq > self.journal.last_sequence:
                raise RuntimeError(
                    f"snapshot {snapshot.path} covers seq {snapshot.last_seq} but the journal "
                    f"ends at {self.journal.last_sequence}: the journal lost acknowledged commands"
                )
            if self.config.verify_snapshot:
                engine = self._verified(snapshot)
            else:
                engine = CompiledEngine.from_image(snapshot.image, prefault=True)
        replayed = replay_journal(engine, self.journal)
        log.info(
            "engine_recovered",
            snapshot_seq=snapshot.last_seq if snapshot else 0,
            replayed=replayed,
            last_seq=engine.last_seq,
            seconds=round(time.perf_counter() - started, 3),
        )
        return engine

    def _verified(self, snapshot: Snapshot) -> CompiledEngine:
        """The engine replayed from genesis to the snapshot's sequence, whose state hash must
        equal the snapshot's; a mismatch names both hashes and refuses to start."""
        engine = CompiledEngine(snapshot.image.config, prefault=True)
        try:
            replay_journal(engine, self.journal, to_seq=snapshot.last_seq,
                           checkpoints={snapshot.last_seq: snapshot.state_hash})
        except ReplayMismatch:
            raise SnapshotMismatch(snapshot, state_hash(engine.image())) from None
        return engine

    @property
    def last_seq(self) -> int:
        return self.engine.last_seq

    @property
    def last_snapshot_seq(self) -> int:
        """Sequence of the newest snapshot this node wrote or started from (read models that
        snapshot alongside the engine, at the same sequence, watch it)."""
        return self._last_snapshot_seq

    def submit(self, commands: Sequence[Command]) -> list[Event]:
        """Journal the batch durably, then process it; the events acknowledge it."""
        if not commands:
            return []
        records = self.sequencer.stamp_and_commit([encode_command(c) for c in commands])
        events = self.engine.process(
            [(seq, ts, command) for (seq, ts, _), command in zip(records, commands, strict=True)]
        )
        every = self.config.snapshot_every
        if every and self.engine.last_seq - self._last_snapshot_seq >= every:
            self.snapshot()
        return events

    def snapshot(self, *, quiet: bool = False) -> str:
        image = self.engine.image()
        snap = write_snapshot(self.snapshot_dir, image, keep=self.config.snapshot_keep,
                              quiet=quiet)
        self._last_snapshot_seq = image.last_seq
        return snap.state_hash

    def state_hash(self) -> str:
        return state_hash(self.engine.image())

    def close(self, *, snapshot: bool = True) -> None:
        """Clean shutdown writes a snapshot so the next start replays nothing. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if snapshot and self.engine.last_seq > self._last_snapshot_seq:
                self.snapshot(quiet=True)  # the caller reports its clean stop in one line
        finally:
            self.journal.close()

    def __enter__(self) -> EngineNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
