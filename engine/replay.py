"""Replay: rebuild engine state from the journal, and check it against recorded snapshots.

Replay is how back-office and auditors reproduce any past state (DESIGN.md): the journal is the
source of truth, so state at sequence S is whatever the engine computes from the commands 1..S,
optionally started from a snapshot that was itself verified by its hash. ``--verify`` recomputes
the hash at every snapshot the replay passes and fails loudly on the first difference.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from engine.core.adminrows import deposit_keys
from engine.core.cmdrows import payload_rows
from engine.core.compiled import CompiledEngine
from engine.core.imagebytes import image_state_hash
from engine.core.journalrows import RowBatch, row_step
from engine.core.layout import R_SEQ
from engine.datadir import require_journal_dir
from engine.gcpause import collector_paused
from engine.journal import Record, SegmentJournal
from engine.readahead import read_ahead
from engine.schema import EngineConfig, decode_command
from engine.snapshot import SnapshotError, latest_valid, list_snapshots, read_snapshot
from engine.usererror import UserError

log = structlog.get_logger(__name__)

BATCH_RECORDS = 16_384
"""At most this many records per batch; in practice a batch ends where the 1 MB stretch it was
read in ends (`engine.journalscan.CHUNK_BYTES`: ~11,600 of (b)'s records). Against 4,096:
one parse-then-engine switch per stretch instead of three, -7 % CPU per replay of (b)'s
journal (three sessions, interleaved in one process; docs/benchmarks.md, 3 Dec)."""


class ReplayMismatch(Exception):
    """The replayed state differs from a snapshot's recorded state: the journal, the snapshot or
    the engine is wrong, and nothing built on either may be trusted until it is explained."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    first_seq: int
    last_seq: int
    commands: int
    seconds: float
    """Wall time of the replay loop."""
    cpu_seconds: float
    """Process CPU time of the same loop (what `kootabase bench replay` reports: it holds on a
    loaded machine, where wall time does not)."""
    state_hash: str
    verified_snapshots: int


def record_batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    """Group journal records into lists of ``size`` (the last may be shorter)."""
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def replay_journal(
    engine: CompiledEngine,
    journal: SegmentJournal,
    *,
    to_seq: int | None = None,
    checkpoints: dict[int, str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Feed journal records after the engine's last sequence (up to ``to_seq``) to ``engine``.

    ``checkpoints`` maps a sequence to the state hash recorded there; the engine's hash is
    compared when the replay reaches it (batches are cut at checkpoints so the state is exact).
    Returns the number of commands replayed.
    """
    start = engine.last_seq + 1
    end = journal.last_sequence if to_seq is None else min(to_seq, journal.last_sequence)
    if start > end:
        return 0
    stops = sorted(s for s in (checkpoints or {}) if start <= s <= end)
    # Read and parse ahead in a second thread while the engine runs (engine.readahead); closed
    # here, so the reading thread has stopped before the caller closes the journal.
    batches = read_ahead(journal.read_batches(start, end, BATCH_RECORDS, step=row_step))
    with contextlib.closing(batches):
        done = _apply(engine, batches, stops, checkpoints, on_progress)
    assert engine.last_seq == end, (engine.last_seq, end)
    return done


def _apply(
    engine: CompiledEngine,
    batches: Iterator[RowBatch],
    stops: list[int],
    checkpoints: dict[int, str] | None,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Run ``batches`` through ``engine`` in order, checking the state at each of ``stops``;
    returns the number of commands run."""
    done = 0
    for batch in batches:
        rows = batch_rows(engine, batch)
        first_seq = int(batch.records.seqs[0])
        while len(rows):
            # Cut at a checkpoint so the state there is exact (a record may be several rows).
            cut = len(rows)
            if stops and stops[0] <= int(rows[-1, R_SEQ]):
                cut = int(np.searchsorted(rows[:, R_SEQ], stops[0], side="right"))
            chunk, rows = rows[:cut], rows[cut:]
            # State only: no event is kept, and each command's rows reuse the same few rows.
            engine.process_encoded(chunk, state_only=True)
            commands = engine.last_seq - first_seq + 1
            first_seq = engine.last_seq + 1
            done += commands
            if on_progress is not None:
                on_progress(commands)
            if stops and engine.last_seq == stops[0]:
                _check_checkpoint(engine, stops.pop(0), checkpoints or {})
    return done


def batch_rows(engine: CompiledEngine, batch: RowBatch) -> np.ndarray:
    """Command rows for a batch read by `SegmentJournal.read_batches` with
    `engine.core.journalrows.row_step`: hot commands parsed in place in the segment's bytes
    (`engine.core.cmdrows`), so are CreateAccount and Deposit (`engine.core.adminrows`: run
    in one njit call each run, their deposit keys parked in ``engine``); every other record
    decoded and encoded as `journal_rows` does."""
    rows, fast, records = batch.rows, batch.fast, batch.records
    if batch.admin_rows:
        keys = deposit_keys(records.buf, rows, fast)
        if keys:
            engine.park_deposit_keys(keys)
    if fast.all():
        return rows
    return _merge_slow(
        engine,
        rows,
        fast,
        lambda i: (int(records.seqs[i]), int(records.stamps[i]), records.payload(i)),
    )


def journal_rows(engine: CompiledEngine, records: list[Record]) -> np.ndarray:
    """Command rows for journal records: hot commands parsed straight from their payloads
    (`engine.core.cmdrows`), every other record decoded and encoded as before (it may take
    several rows: a CancelReplaceOrder is two)."""
    rows, fast = payload_rows(records)
    if fast.all():
        return rows
    return _merge_slow(engine, rows, fast, records.__getitem__)


def _merge_slow(
    engine: CompiledEngine,
    rows: np.ndarray,
    fast: np.ndarray,
    record: Callable[[int], Record],
) -> np.ndarray:
    """``rows`` with each record the fast parser left (``~fast``) replaced by its rows from
    `decode_command` and the engine's encoder: one encode call for all of them (per record it
    was ~8 us of the setup's 40,005 admin commands), merged back in sequence order (a
    record's rows keep their order: the sort is stable)."""
    slow = engine.encode(
        [(s, t, decode_command(p)) for s, t, p in map(record, np.flatnonzero(~fast).tolist())]
    )
    merged = np.concatenate([rows[fast], slow])
    return merged[np.argsort(merged[:, R_SEQ], kind="stable")]


def _check_checkpoint(engine: CompiledEngine, seq: int, checkpoints: dict[int, str]) -> None:
    actual = image_state_hash(engine)
    if actual != checkpoints[seq]:
        raise ReplayMismatch(
            f"state hash after seq {seq} is {actual}, the snapshot recorded {checkpoints[seq]}"
        )
    log.info("snapshot_verified", seq=seq, state_hash=actual)


def replay(
    journal_dir: Path,
    *,
    snapshot_dir: Path | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    verify: bool = False,
    config: EngineConfig | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Rebuild state from the journal; start from the newest snapshot at or before
    ``from_seq - 1`` when given (from genesis otherwise)."""
    engine = CompiledEngine(config or EngineConfig(), prefault=True)
    checkpoints: dict[int, str] = {}
    if snapshot_dir is not None:
        if from_seq is not None and from_seq > 1:
            snapshot = latest_valid(snapshot_dir, at_most_seq=from_seq - 1)
            if snapshot is not None:
                engine = CompiledEngine.from_image(snapshot.image, prefault=True)
        if verify:
            for path in list_snapshots(snapshot_dir):
                snap = read_snapshot(path)  # a corrupt snapshot fails verification loudly
                checkpoints[snap.last_seq] = snap.state_hash
    journal = SegmentJournal(journal_dir, read_only=True)
    try:
        first = engine.last_seq + 1
        with collector_paused():  # as `bench replay` times it (`engine.gcpause`)
            started, started_cpu = time.perf_counter(), time.process_time()
            commands = replay_journal(
                engine, journal, to_seq=to_seq, checkpoints=checkpoints, on_progress=on_progress
            )
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - started_cpu
    finally:
        journal.close()
    verified = sum(1 for seq in checkpoints if first <= seq <= engine.last_seq)
    return ReplayResult(
        first, engine.last_seq, commands, seconds, cpu_seconds, image_state_hash(engine), verified
    )


def check_range(last_seq: int, from_seq: int | None, to_seq: int | None) -> None:
    """``replay --from/--to`` must name sequences the journal holds, in order."""
    if from_seq is not None and to_seq is not None and from_seq > to_seq:
        raise UserError(f"--from {from_seq} is after --to {to_seq}")
    for flag, seq in (("--from", from_seq), ("--to", to_seq)):
        if seq is not None and not 1 <= seq <= last_seq:
            raise UserError(
                f"{flag} {seq} is outside the journal, which holds seq 1..{last_seq}",
                hint=f"give a sequence between 1 and {last_seq}",
            )


def run_replay_cli(args: argparse.Namespace) -> int:
    """``kootabase replay``: progress bar, throughput and final state hash on stdout.

    ``--to SEQ`` is the last command replayed (the state after it); ``--from SEQ`` starts from
    the newest valid snapshot taken at or before SEQ-1 instead of genesis (without one, the
    replay starts at 1: state needs every command before SEQ). Both must lie in the journal.
    ``--verify`` checks every snapshot the replay passes and fails when there is none to check.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    journal_dir = require_journal_dir(Path(args.journal))
    snapshot_dir = Path(args.snapshots) if args.snapshots else journal_dir.parent / "snapshots"
    if args.snapshots and not snapshot_dir.is_dir():
        raise UserError(f"snapshot directory {snapshot_dir} does not exist")
    console = Console()
    with SegmentJournal(journal_dir, read_only=True) as probe:
        last = probe.last_sequence
    check_range(last, args.from_seq, args.to_seq)
    total = last if args.to_seq is None else args.to_seq
    if args.verify:
        end = total
        covered = [p for p in list_snapshots(snapshot_dir) if _snapshot_seq(p) <= end]
        if not covered:
            raise UserError(
                f"--verify: no snapshot in {snapshot_dir} covers seq 1..{end}, nothing to verify",
                hint="pass --snapshots DIR, or replay without --verify",
            )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # piped: the result lines only
    ) as progress:
        task = progress.add_task("replaying", total=total)
        try:
            result = replay(
                journal_dir,
                snapshot_dir=snapshot_dir if snapshot_dir.is_dir() else None,
                from_seq=args.from_seq,
                to_seq=args.to_seq,
                verify=args.verify,
                on_progress=lambda n: progress.advance(task, n),
            )
        except ReplayMismatch as exc:
            console.print(f"[bold red]REPLAY MISMATCH[/]: {exc}")
            return 3
        except SnapshotError as exc:  # --verify met a snapshot that cannot be trusted
            raise UserError(
                exc.message,
                hint="the snapshot file is damaged; the journal is "
                "the source of truth (replay without it to rebuild state)",
                exit_code=3,
            ) from None
    if args.verify and result.verified_snapshots == 0:
        raise UserError(
            f"--verify: the replay of seq {result.first_seq}..{result.last_seq} passed no "
            "snapshot, nothing was verified",
            hint="start earlier (--from) or replay further (--to)",
        )
    rate = result.commands / result.seconds if result.seconds > 0 else 0.0
    cpu_rate = result.commands / result.cpu_seconds if result.cpu_seconds > 0 else 0.0
    _out(
        f"replayed seq {result.first_seq}..{result.last_seq}: {result.commands} "
        f"commands in {result.seconds:.3f} s ({rate:,.0f} commands/s); "
        f"CPU {result.cpu_seconds:.3f} s ({cpu_rate:,.0f} commands/s of CPU time)"
    )
    if args.verify:
        _out(f"verified snapshots: {result.verified_snapshots}")
    _out(f"state hash: {result.state_hash}")
    return 0


def _snapshot_seq(path: Path) -> int:
    """The sequence a snapshot file covers, from its zero-padded name (0 if unreadable)."""
    stem = path.stem
    return int(stem) if stem.isdigit() else 0


def _out(line: str) -> None:
    """A result line on stdout as plain text: rich would wrap it at the console width when
    piped and turn a closed pipe into a silent exit 1 (the command line's 141 is the rule)."""
    sys.stdout.write(line + "\n")
