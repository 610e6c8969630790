"""Replay of the command stream (cluster mode): the auditor's replica.

``kootabase replay --nats URL --stream NAME [--verify]`` reads the stream from its first message
through a fresh `engine.replica.Replica`, exactly as every live replica does, and prints the
state hash: an auditor reproduces the exchange's state from the log alone. ``--verify`` also
compares the checkpoint digest at every checkpoint the live replicas recorded
(`engine.crosscheck`) and fails on the first difference, like ``replay --verify`` of a local
journal against its snapshots.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from engine.core.compiled import CompiledEngine
from engine.replay import ReplayMismatch
from engine.replica import Applied, Replica
from engine.schema import EngineConfig
from engine.streamlog import NatsOptions, StreamLog, StreamSpec

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StreamReplayResult:
    messages: int
    last_stream_seq: int
    last_seq: int
    commands: int
    rejected_messages: int
    duplicate_batches: int
    seconds: float
    state_hash: str
    verified_checkpoints: int
    digest: str
    """Checkpoint digest at the end (what `cluster status` shows for a replica there)."""


async def replay_stream(
    stream_log: StreamLog,
    *,
    to_stream_seq: int | None = None,
    checkpoints: dict[int, str] | None = None,
    on_applied: Callable[[Applied], None] | None = None,
) -> tuple[Replica, StreamReplayResult]:
    """Apply the stream (up to ``to_stream_seq``, default its last message now) to a fresh
    replica; ``checkpoints`` maps a stream sequence to the state hash recorded there."""
    replica = Replica(CompiledEngine(EngineConfig()))
    end = await stream_log.last_sequence()
    if to_stream_seq is not None:
        end = min(end, to_stream_seq)
    started = time.perf_counter()
    rejected = duplicates = verified = 0
    checkpoints = checkpoints or {}
    async for msg in stream_log.read(1, end):
        applied = replica.apply(msg)
        if applied is None:
            continue
        rejected += applied.rejected is not None
        duplicates += applied.duplicate
        if on_applied is not None:
            on_applied(applied)
        want = checkpoints.get(applied.stream_seq)
        if want is not None:
            actual = replica.checkpoint_digest()
            if actual != want:
                raise ReplayMismatch(
                    f"state hash after stream seq {applied.stream_seq} is {actual}, "
                    f"the replicas recorded {want}"
                )
            verified += 1
    assert replica.stream_seq == end, (replica.stream_seq, end)
    result = StreamReplayResult(
        end,
        replica.stream_seq,
        replica.last_seq,
        replica.last_seq,
        rejected,
        duplicates,
        time.perf_counter() - started,
        replica.state_hash(),
        verified,
        replica.checkpoint_digest(),
    )
    return replica, result


async def _run(args: argparse.Namespace, options: NatsOptions, spec: StreamSpec) -> int:
    from rich.console import Console

    console = Console()
    stream_log = await StreamLog.connect(options, spec, create=False)
    try:
        checkpoints: dict[int, str] = {}
        if args.verify:
            from engine.crosscheck import read_checkpoints

            checkpoints = await read_checkpoints(stream_log)
        try:
            _, result = await replay_stream(
                stream_log, to_stream_seq=args.to_seq, checkpoints=checkpoints
            )
        except ReplayMismatch as exc:
            console.print(f"[bold red]REPLAY MISMATCH[/]: {exc}")
            return 3
    finally:
        await stream_log.close()
    rate = result.commands / result.seconds if result.seconds > 0 else 0.0
    _out(
        f"replayed stream {spec.name}: {result.messages} messages, seq 1.."
        f"{result.last_seq} ({result.commands} commands) in {result.seconds:.3f} s "
        f"({rate:,.0f} commands/s)"
    )
    _out(
        f"rejected messages: {result.rejected_messages}, duplicate batches: "
        f"{result.duplicate_batches}"
    )
    if args.verify:
        _out(f"verified checkpoints: {result.verified_checkpoints}")
    _out(f"state hash: {result.state_hash}")
    _out(f"checkpoint digest: {result.digest}")
    return 0


def run_stream_replay_cli(args: argparse.Namespace, options: NatsOptions, spec: StreamSpec) -> int:
    return asyncio.run(_run(args, options, spec))


def _out(line: str) -> None:
    """A result line on stdout as plain text: rich would wrap it at the console width when
    piped and turn a closed pipe into a silent exit 1 (the command line's 141 is the rule)."""
    sys.stdout.write(line + "\n")
