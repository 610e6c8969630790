"""``kootabase bench replay``: how fast a journal replays through the engine (state only).

Replay is what recovery, audits and every read-model rebuild run, so its speed bounds how fast
a node restarts. The benchmark writes workload (b)'s records (setup, prefill and stream, the
deep-book crypto mix) to a fresh journal in a temporary directory, exactly as the sequencer
journals commands (msgpack payloads, fsync'd batches), then times `engine.replay.replay_journal`
from an empty engine to the last record: reading and checking every record, turning payloads
into command rows, and the engine. Writing the journal and building the engine (prefaulted, as
a node does) are outside the timed region; the clock is process CPU time; median of the runs.
``--journal DIR`` replays an existing journal instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.engine_bench import machine_info
from bench.workloads import workload_b
from engine.core.compiled import CompiledEngine
from engine.gcpause import collector_paused
from engine.journal import SegmentJournal
from engine.replay import replay_journal
from engine.schema import EngineConfig, encode_command, state_hash

DEFAULT_COMMANDS = 500_000
REPETITIONS = 3
_APPEND_BATCH = 4_096


def write_journal(directory: Path, seed: int, commands: int) -> tuple[int, EngineConfig]:
    """Journal workload (b)'s records into ``directory``; returns (records, config)."""
    workload = workload_b(seed, commands)
    records = workload.setup + workload.prefill + workload.stream
    with SegmentJournal(directory) as journal:
        for i in range(0, len(records), _APPEND_BATCH):
            chunk = records[i : i + _APPEND_BATCH]
            journal.append_batch([(seq, ts, encode_command(cmd)) for seq, ts, cmd in chunk])
    return len(records), workload.config


def time_replay(directory: Path, config: EngineConfig) -> tuple[float, float, int, str]:
    """(CPU seconds, wall seconds, commands, state hash) of one replay of the journal from
    genesis. CPU time is the headline (it holds on a loaded machine); the wall time shows
    the read-ahead thread's overlap with the engine (`engine.readahead`) where a second core
    is free."""
    engine = CompiledEngine(config, prefault=True)
    journal = SegmentJournal(directory, read_only=True)
    try:
        with collector_paused():
            start, start_wall = time.process_time(), time.perf_counter()
            done = replay_journal(engine, journal)
            seconds, wall = time.process_time() - start, time.perf_counter() - start_wall
    finally:
        journal.close()
    return seconds, wall, done, state_hash(engine.image())


def run(directory: Path, config: EngineConfig, reps: int) -> dict[str, Any]:
    time_replay(directory, config)  # JIT caches loaded, page cache warm
    runs = [time_replay(directory, config) for _ in range(reps)]
    hashes = {h for *_, h in runs}
    assert len(hashes) == 1, f"replays disagree: {hashes}"
    seconds = [s for s, _, _, _ in runs]
    walls = [w for _, w, _, _ in runs]
    commands = runs[0][2]
    return {
        "commands": commands,
        "commands_per_sec": commands / statistics.median(seconds),
        "run_seconds": seconds,
        "clock": "process CPU time",
        "commands_per_wall_sec": commands / statistics.median(walls),
        "run_wall_seconds": walls,
        "state_hash": runs[0][3],
        "journal_bytes": sum(p.stat().st_size for p in directory.glob("*.seg")),
    }


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``kootabase bench replay`` (see gateway/clibench.py)."""
    machine = machine_info()
    if args.journal is not None:
        result = run(Path(args.journal), EngineConfig(), REPETITIONS)
        result["workload"] = f"journal {args.journal}"
    else:
        with tempfile.TemporaryDirectory(prefix="kootabase-bench-replay-") as tmp:
            directory = Path(tmp) / "journal"
            commands = args.commands or DEFAULT_COMMANDS
            started = time.perf_counter()
            _, config = write_journal(directory, args.seed, commands)
            written = time.perf_counter() - started
            result = run(directory, config, REPETITIONS)
            result |= {"workload": "b", "seed": args.seed, "journal_write_seconds": written}
    result["machine"] = machine
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        print(
            f"replayed {result['commands']:,} commands ({result['workload']}): "
            f"{result['commands_per_sec']:,.0f} commands/s of CPU time (median of "
            f"{len(result['run_seconds'])}: {', '.join(f'{s:.3f}' for s in result['run_seconds'])}"
            f" s), {result['commands_per_wall_sec']:,.0f} of wall time; state hash "
            f"{result['state_hash'][:16]}"
        )
    return 0


__all__ = ["run", "run_cli", "time_replay", "write_journal"]
