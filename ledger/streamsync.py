"""``kootabase ledger sync --nats``: the PostgreSQL projection as one more replica of the stream.

Cluster mode has no local journal to replay, so the projector follows the command stream the
way every replica does (`engine.replica`): it starts from the newest *verified* Object Store
snapshot at or before its checkpoint (`engine.snapstore`: only a snapshot whose hash matches the
replicas' recorded hash is loaded), replays the stream without projecting up to the checkpoint,
and from there projects the events of every batch in chunks of whole batches, so the
checkpoint always falls on a batch boundary. The projector's own exactly-once rules
(`ledger.pg.projector`) do the rest: a chunk is one transaction, the checkpoint moves with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass

import structlog

from engine.core.compiled import CompiledEngine
from engine.replica import Applied, Replica
from engine.schema import EngineConfig
from engine.snapstore import load_newest
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from ledger.pg.projector import Projector, SyncResult
from ledger.source import DEFAULT_CHUNK_COMMANDS, Chunk

log = structlog.get_logger(__name__)


@dataclass
class _Follow:
    replica: Replica
    projected_seq: int


async def _start(stream_log: StreamLog, projected_seq: int) -> _Follow:
    snap = await load_newest(stream_log, at_most_last_seq=projected_seq)
    replica = snap.replica if snap is not None else Replica(CompiledEngine(EngineConfig()))
    return _Follow(replica, projected_seq)


async def _catch_up(
    stream_log: StreamLog, state: _Follow, projector: Projector, chunk_commands: int
) -> tuple[int, int]:
    """Apply the stream up to its current end; project what is past the checkpoint.
    Returns (commands projected, postings written)."""
    end = await stream_log.last_sequence()
    chunks: list[Chunk] = []
    pending: list[Applied] = []
    commands = postings = 0
    next_seq = state.projected_seq + 1

    def cut() -> None:
        if pending:
            times = {seq: a.ts_ns for a in pending for seq in range(a.first_seq, a.last_seq + 1)}
            events = [e for a in pending for e in a.events]
            chunks.append(Chunk(pending[0].first_seq, pending[-1].last_seq, times, events))
            pending.clear()

    async for msg in stream_log.read(state.replica.stream_seq + 1, end):
        applied = state.replica.apply(msg)
        if applied is None or applied.last_seq < applied.first_seq:
            continue  # redelivery, rejected or duplicate message: no command
        if applied.last_seq <= state.projected_seq:
            continue  # projected before (replaying from the snapshot up to the checkpoint)
        assert applied.first_seq == next_seq, "the checkpoint falls inside a batch"
        next_seq = applied.last_seq + 1
        pending.append(applied)
        if sum(a.last_seq - a.first_seq + 1 for a in pending) >= chunk_commands:
            cut()
        if len(chunks) >= 4:
            postings += await projector.project(chunks)
            commands += sum(c.last_seq - c.first_seq + 1 for c in chunks)
            state.projected_seq = projector.last_seq
            chunks.clear()
    cut()
    if chunks:
        postings += await projector.project(chunks)
        commands += sum(c.last_seq - c.first_seq + 1 for c in chunks)
        state.projected_seq = projector.last_seq
    return commands, postings


async def sync_stream(
    dsn: str,
    options: NatsOptions,
    spec: StreamSpec,
    *,
    follow_s: float | None = None,
    chunk_commands: int = DEFAULT_CHUNK_COMMANDS,
) -> SyncResult:
    """Catch the projection up with the stream; with ``follow_s`` keep doing so every
    ``follow_s`` seconds until SIGTERM/SIGINT."""
    started = time.perf_counter()
    # the stream first: a mistyped --stream must not create the projection's tables
    stream_log = await StreamLog.connect(options, spec, create=False)
    try:
        projector = await Projector.connect(dsn)
    except BaseException:
        await stream_log.close()
        raise
    start = projector.last_seq
    total_commands = total_postings = 0
    try:
        state = await _start(stream_log, projector.last_seq)
        stop = asyncio.Event()
        if follow_s is not None:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
        while True:
            commands, postings = await _catch_up(stream_log, state, projector, chunk_commands)
            total_commands += commands
            total_postings += postings
            if commands:
                log.info(
                    "ledger_synced_from_stream",
                    to_seq=projector.last_seq,
                    commands=commands,
                    postings=postings,
                )
            if follow_s is None or stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), follow_s)
    finally:
        await stream_log.close()
        await projector.close()
    return SyncResult(
        start, start + total_commands, total_commands, total_postings, time.perf_counter() - started
    )
