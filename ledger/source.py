"""Events from the journal: replay it through the compiled engine, in chunks of commands.

The journal is the source of truth and events are derived (DESIGN.md), so both the in-memory
book and the PostgreSQL projector get their events the same way: by replaying the journal.
A chunk always ends at a command boundary, so a transaction never spans two chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.core.compiled import CompiledEngine
from engine.journal import SegmentJournal
from engine.replay import record_batches, replay_journal
from engine.schema import (
    Command,
    Deposit,
    EngineConfig,
    Event,
    decode_command,
    encode_command,
)
from engine.snapshot import latest_valid

DEFAULT_CHUNK_COMMANDS = 32_768


@dataclass(frozen=True, slots=True)
class Chunk:
    """The events of the commands ``first_seq..last_seq`` and their journal times."""

    first_seq: int
    last_seq: int
    times: dict[int, int]
    """seq -> sequencer timestamp (ns), for every command in the chunk."""
    events: list[Event]
    demo_seqs: frozenset[int] = frozenset()
    """Sequences of the chunk's demo-faucet deposits (`engine.schema.Deposit.is_demo`): the
    events alone do not say where a credit came from, the command does."""

    @property
    def last_ts_ns(self) -> int:
        return self.times[self.last_seq]


def _engine_at(
    journal: SegmentJournal, seq: int, snapshot_dir: Path | None, config: EngineConfig | None
) -> CompiledEngine:
    """An engine whose state is exactly after command ``seq`` (snapshot + fast replay; the
    events of that stretch were projected already, so they are not decoded)."""
    engine = CompiledEngine(config or EngineConfig())
    if seq > 0 and snapshot_dir is not None and snapshot_dir.is_dir():
        snap = latest_valid(snapshot_dir, at_most_seq=seq)
        if snap is not None:
            engine = CompiledEngine.from_image(snap.image)
    replay_journal(engine, journal, to_seq=seq)
    assert engine.last_seq == seq, (engine.last_seq, seq)
    return engine


def journal_chunks(
    journal: SegmentJournal,
    *,
    after_seq: int = 0,
    to_seq: int | None = None,
    chunk_commands: int = DEFAULT_CHUNK_COMMANDS,
    snapshot_dir: Path | None = None,
    config: EngineConfig | None = None,
) -> Iterator[Chunk]:
    """Yield the events of commands ``after_seq + 1 .. to_seq`` (default: the journal's end)."""
    end = journal.last_sequence if to_seq is None else min(to_seq, journal.last_sequence)
    if after_seq > journal.last_sequence:
        raise ValueError(
            f"asked to resume after seq {after_seq}, but the journal ends at "
            f"{journal.last_sequence}: wrong journal for this ledger?"
        )
    if after_seq >= end:
        return
    engine = _engine_at(journal, after_seq, snapshot_dir, config)
    for batch in record_batches(journal.read_from(after_seq + 1, end), chunk_commands):
        records = [(s, ts, decode_command(payload)) for s, ts, payload in batch]
        events = engine.process(records)
        demo = frozenset(s for s, _, c in records if type(c) is Deposit and c.is_demo)
        yield Chunk(batch[0][0], batch[-1][0], {s: ts for s, ts, _ in batch}, events, demo)


def open_journal(journal_dir: Path) -> SegmentJournal:
    """Open a journal for reading, beside a live node if one serves from it: a read-only
    journal takes no lock and sees the records complete when it opened."""
    return SegmentJournal(journal_dir, read_only=True)


def default_snapshot_dir(journal_dir: Path) -> Path:
    return journal_dir.parent / "snapshots"


def write_journal(
    journal_dir: Path, records: list[tuple[int, int, Command]], *, batch: int = 4_096
) -> int:
    """Append ``(seq, ts_ns, command)`` records to a journal (tests, benchmarks, demos: the
    product's write path is the sequencer). Returns the journal's last sequence."""
    with SegmentJournal(journal_dir, fsync=False) as journal:
        for start in range(0, len(records), batch):
            journal.append_batch(
                [(s, ts, encode_command(c)) for s, ts, c in records[start : start + batch]]
            )
        return journal.last_sequence
