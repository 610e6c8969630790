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
from engine.core.imagebytes import image_state_hash, spliced_image
from engine.journal import DEFAULT_SEGMENT_BYTES, SegmentJournal
from engine.provenance import SnapshotMismatch, anchor_at
from engine.replay import ReplayMismatch, replay_journal
from engine.schema import Command, EngineConfig, Event, encode_command
from engine.sequencer import Sequencer
from engine.snapshot import Snapshot, latest_valid, write_snapshot

__all__ = ["EngineNode", "NodeConfig", "SnapshotMismatch"]

log = structlog.get_logger(__name__)


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
    """At start, require the snapshot's journal anchor to match the journal's record at the
    snapshot's sequence (one record read: issue 11, a snapshot from a different history is
    refused, not trusted; issue 17, start-up does not grow with history). A snapshot without
    an anchor (older versions) is checked by full replay once and rewritten with one. Off only
    when the snapshot's provenance is known (``serve --trust-snapshots``)."""
    verify_snapshot_full: bool = False
    """Also replay the journal from genesis to the snapshot and require its state hash (proves
    this engine computes that state from that history; grows with history length)."""


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
        self.snapshot_check = "none"
        """How the start snapshot's provenance was checked: none, trusted, anchor, full."""
        self.recovered_records = 0
        """Journal records replayed at start (verification and tail): the tail length unless
        a full check ran."""
        snapshot = latest_valid(self.snapshot_dir)
        if snapshot is None:
            engine = CompiledEngine(self.config.engine, prefault=True)
        else:
            if snapshot.last_seq > self.journal.last_sequence:
                raise RuntimeError(
                    f"snapshot {snapshot.path} covers seq {snapshot.last_seq} but the journal "
                    f"ends at {self.journal.last_sequence}: the journal lost acknowledged commands"
                )
            engine = self._from_snapshot(snapshot)
        replayed = replay_journal(engine, self.journal)
        self.recovered_records += replayed
        log.info(
            "engine_recovered",
            snapshot_seq=snapshot.last_seq if snapshot else 0,
            snapshot_check=self.snapshot_check,
            replayed=self.recovered_records,
            last_seq=engine.last_seq,
            seconds=round(time.perf_counter() - started, 3),
        )
        return engine

    def _from_snapshot(self, snapshot: Snapshot) -> CompiledEngine:
        """The engine at the snapshot, after the configured provenance check."""
        if not self.config.verify_snapshot:
            self.snapshot_check = "trusted"
            return CompiledEngine.from_image(snapshot.image, prefault=True)
        if snapshot.anchor is not None:
            self._check_anchor(snapshot)
            self.snapshot_check = "anchor"
            if not self.config.verify_snapshot_full:
                return CompiledEngine.from_image(snapshot.image, prefault=True)
        engine = self._replayed_to(snapshot)
        self.snapshot_check = "full"
        if snapshot.anchor is None:  # an older version's snapshot: the next start is O(1)
            write_snapshot(
                self.snapshot_dir,
                snapshot.image,
                keep=self.config.snapshot_keep,
                anchor=anchor_at(self.journal, snapshot.last_seq),
            )
        return engine

    def _check_anchor(self, snapshot: Snapshot) -> None:
        """One journal record read: the record at the snapshot's sequence must be the one the
        snapshot was taken after; a mismatch names both and refuses to start."""
        assert snapshot.anchor is not None
        try:
            found = anchor_at(self.journal, snapshot.last_seq)
        except ValueError as exc:
            raise SnapshotMismatch.by_anchor(snapshot.path, snapshot.anchor, str(exc)) from None
        if found != snapshot.anchor:
            raise SnapshotMismatch.by_anchor(snapshot.path, snapshot.anchor, found)

    def _replayed_to(self, snapshot: Snapshot) -> CompiledEngine:
        """The engine replayed from genesis to the snapshot's sequence, whose state hash must
        equal the snapshot's; a mismatch names both hashes and refuses to start."""
        engine = CompiledEngine(snapshot.image.config, prefault=True)
        try:
            self.recovered_records += replay_journal(
                engine,
                self.journal,
                to_seq=snapshot.last_seq,
                checkpoints={snapshot.last_seq: snapshot.state_hash},
            )
        except ReplayMismatch:
            raise SnapshotMismatch.by_hash(
                snapshot.path, snapshot.last_seq, snapshot.state_hash, image_state_hash(engine)
            ) from None
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
        # Encoding only: the accounts and orders go in as their canonical msgpack, so the
        # engine's thread builds no Python object per resting order (same bytes and hash).
        image = spliced_image(self.engine)
        snap = write_snapshot(
            self.snapshot_dir,
            image,
            keep=self.config.snapshot_keep,
            quiet=quiet,
            anchor=anchor_at(self.journal, image.last_seq),
        )
        self._last_snapshot_seq = image.last_seq
        return snap.state_hash

    def state_hash(self) -> str:
        return image_state_hash(self.engine)

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
