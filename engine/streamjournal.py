"""Moving history between a local journal and the command stream, hashes compared.

* export: replay the stream through a replica and append every batch's commands to a new
  local journal with the sequences and journal times the replica derived. Replaying that
  journal gives the stream's state hash (checked before returning).
* import: publish a local journal into an empty stream, one batch per run of records with the
  same journal time (at most `MAX_COMMANDS_PER_BATCH`), each carrying that time
  (``journal_ts_ns``), so the stream's replicas derive the journal's own sequences and times;
  the stream is then replayed and its hash compared with the journal's.

Both refuse to write into a non-empty target: merging two histories is not a copy.

The audit chain (`engine.auditchain`): the stream stores batches published before any sequence
exists (each replica derives sequences and journal times), so no digest can be stamped at
publish time; the stream's integrity is JetStream's own (replicated, checksummed), and replicas
cross-check state hashes. The chain is a pure function of the derived records, so an exported
journal carries the stream's chain (`SegmentJournal` writes it), and `engine.auditchain.
stream_chain` computes the same anchors from the stream itself (``audit anchor|verify --nats``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from engine.journal import SegmentJournal
from engine.replay import ReplayMismatch, replay
from engine.replica import (
    BATCH_FORMAT,
    MAX_COMMANDS_PER_BATCH,
    Applied,
    CommandBatch,
    encode_batch,
    msg_id,
)
from engine.schema import decode_command
from engine.streamlog import StreamLog
from engine.streamreplay import replay_stream

log = structlog.get_logger(__name__)
IMPORT_ORIGIN = 1
"""Origin of imported batches (an import is one publisher, into an empty stream)."""


@dataclass(frozen=True, slots=True)
class Moved:
    messages: int
    commands: int
    state_hash: str


async def export_stream(stream_log: StreamLog, journal_dir: Path) -> Moved:
    if journal_dir.exists() and any(journal_dir.iterdir()):
        raise ValueError(f"{journal_dir} is not empty: export writes a new journal")
    with SegmentJournal(journal_dir) as journal:

        def append(applied: Applied) -> None:
            records = applied.records
            if records:
                journal.append_batch(records)

        _, result = await replay_stream(stream_log, on_applied=append)
    check = replay(journal_dir)
    if check.state_hash != result.state_hash or check.last_seq != result.last_seq:
        raise ReplayMismatch(
            f"exported journal replays to {check.state_hash} at seq "
            f"{check.last_seq}, the stream to {result.state_hash} at "
            f"{result.last_seq}"
        )
    return Moved(result.messages, result.commands, result.state_hash)


async def import_journal(journal_dir: Path, stream_log: StreamLog) -> Moved:
    if await stream_log.last_sequence() != 0:
        raise ValueError(f"stream {stream_log.spec.name} is not empty: import needs a new one")
    expected = replay(journal_dir)
    batch_no = messages = 0
    run: list[tuple[int, int, bytes]] = []

    async def flush() -> None:
        nonlocal batch_no, messages
        if not run:
            return
        batch_no += 1
        batch = CommandBatch(
            IMPORT_ORIGIN, batch_no, [decode_command(p) for _, _, p in run], journal_ts_ns=run[0][1]
        )
        await stream_log.publish(
            encode_batch(batch), msg_id(IMPORT_ORIGIN, batch_no), fmt=BATCH_FORMAT, timeout_s=10.0
        )
        messages += 1
        run.clear()

    with SegmentJournal(journal_dir, read_only=True) as journal:
        if journal.last_sequence:
            for record in journal.read_from(journal.first_sequence):
                if run and (record[1] != run[-1][1] or len(run) >= MAX_COMMANDS_PER_BATCH):
                    await flush()
                run.append(record)
        await flush()
    _, result = await replay_stream(stream_log)
    if result.state_hash != expected.state_hash or result.last_seq != expected.last_seq:
        raise ReplayMismatch(
            f"imported stream replays to {result.state_hash} at seq "
            f"{result.last_seq}, the journal to {expected.state_hash} at "
            f"{expected.last_seq}"
        )
    return Moved(messages, result.commands, result.state_hash)
