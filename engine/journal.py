"""The durable command journal: an append-only, numbered, checksummed log of commands.

The journal is the source of truth (see DESIGN.md): every state change enters the engine as a
journaled command, and replaying the journal rebuilds every derived state. It therefore refuses
to guess: a damaged record is a hard error unless the damage is exactly what an interrupted
append leaves behind (a "torn tail", defined on `SegmentJournal`).

Records are ``(sequence, timestamp_ns, payload)``. The payload is an already-encoded command;
the journal treats it as opaque bytes. Sequences start at 1 and are contiguous; timestamps are
non-decreasing. The `Journal` protocol is the seam for a later NATS JetStream implementation.

On-disk layout of `SegmentJournal` (all integers little-endian):

* segment file ``{first_sequence:020d}.seg`` starting with the header ``<4sHQ``:
  magic ``b"KBJ1"``, format version (u16), sequence of its first record (u64);
* then records, each ``<IIQq`` + body: body length (u32), CRC32C (u32) over the sequence,
  timestamp and body bytes (which are contiguous on disk), sequence (u64), timestamp_ns (i64),
  body. A record never spans segments.

Format versions (the segment header says which; a journal may hold both, old segments first):

* **1**: the body is the payload.
* **2** (written since the audit chain): the body is the record's *chain digest* (32 bytes)
  followed by the payload. The digest is BLAKE2b-256 over the previous record's digest, the
  sequence, timestamp and payload (`chain_digest`); the first record of a journal chains from
  `GENESIS_DIGEST`. Version-1 records have no stored digest but take part in the
  chain all the same (an auditor recomputes theirs), so appending to an old journal continues
  one chain: a writer that finds a version-1 tail computes its head once and starts a new,
  version-2 segment. Editing, removing or reordering any record changes every later digest;
  `engine.auditchain` verifies the chain and exports anchors (the head at a sequence).

Replay is byte-identical across versions: `read_from` yields the same ``(sequence,
timestamp_ns, payload)`` whatever the segment's version.

This module holds the `Journal` seam and `SegmentJournal`'s append and read paths. The bytes'
layout is in `engine.journalformat`, one segment's in-memory view in `engine.journalsegment`,
and what opening does (validation, sealed indexes, torn tails) in `engine.journalrecovery`.
"""

from __future__ import annotations

import bisect
import hashlib
import mmap
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import google_crc32c
import structlog

from engine.filemodes import PRIVATE_DIR, PRIVATE_FILE, tighten
from engine.journalformat import (  # the format's names, re-exported for callers
    _CRC_START,
    _LEN_CRC,
    _SEQ_TS,
    DIGEST_BYTES,
    FORMAT_VERSION,
    GENESIS_DIGEST,
    MAGIC,
    MAX_PAYLOAD_BYTES,
    RECORD_HEADER,
    SEGMENT_HEADER,
    ChainedRecord,
    JournalCorruption,
    _body_offset,
    _walk,
    chain_digest,
)
from engine.journallock import WriterLock
from engine.journalrecovery import _JournalRecovery
from engine.journalsegment import INDEX_INTERVAL, _Segment, _segment_name, fsync_dir
from engine.usererror import UserError

if TYPE_CHECKING:
    from engine.journalscan import ScanStep

log = structlog.get_logger(__name__)

Record = tuple[int, int, bytes]
"""(sequence, timestamp_ns, payload) as appended to and read from a journal."""

DEFAULT_SEGMENT_BYTES = 64 << 20
_MAX_U64 = (1 << 64) - 1
_blake2b = hashlib.blake2b
_MIN_I64, _MAX_I64 = -(1 << 63), (1 << 63) - 1


class JournalMissing(UserError, FileNotFoundError):
    """A reader was pointed at a journal directory that does not exist (nothing is created)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            f"journal directory {directory} does not exist",
            hint="check the path (--journal or --data-dir)",
        )
        self.directory = directory


class Journal(Protocol):
    """What the sequencer and replay need from a journal; implementations are single-writer."""

    @property
    def first_sequence(self) -> int:
        """Sequence of the first readable record (``last_sequence + 1`` when none is)."""

    @property
    def last_sequence(self) -> int:
        """Sequence of the last durable record, 0 for an empty journal."""

    def append_batch(self, records: Sequence[Record]) -> None:
        """Append contiguous records; they are durable when this returns (group commit)."""

    def read_from(self, sequence: int, to: int | None = None) -> Iterator[Record]:
        """Yield records from ``sequence`` up to ``to`` inclusive (default: the last one)."""

    def close(self) -> None:
        """Release files and locks; further appends are refused."""


class SegmentJournal(_JournalRecovery):
    """A `Journal` kept as segment files in one directory, fsync'd per batch (group commit).

    Single writer: one `SegmentJournal` per directory appends, enforced with an exclusive
    ``flock`` on ``LOCK`` (a second open, even in the same process, fails). Readers iterate
    over the records that were durable when `read_from` was called.

    Opening validates every record of the last segment, and of every sealed segment that has
    no valid index file; a sealed segment with one (written when the journal rolled past it,
    `engine.segindex`) is checked by its size, header and last record only, so start-up does
    not grow with history. A byte changed inside a sealed segment is then found by the first
    read of it (every read re-verifies checksums) and by ``kootabase audit verify``, not at
    open. A *torn tail* is damage confined to the end of the last segment, of the kind an
    append interrupted by a crash leaves behind:

    * the last segment is shorter than its header and those bytes are a prefix of the header
      its name implies (the header is rewritten), or, at the first invalid record offset:
    * fewer than a record header's bytes remain before EOF, or
    * the declared record end lies past EOF (payload cut short), the declared length is within
      the bound, and no record with a valid checksum and the next sequence follows it, or
    * the record ends exactly at EOF and its checksum does not match.

    A torn tail is truncated away (file truncated, fsync'd) with a warning naming the segment,
    offset and bytes dropped. Every other defect raises `JournalCorruption`: a bad checksum
    followed by more bytes, an oversized length, a sequence gap or a timestamp going back
    (within or between segments, including a header's first sequence), a bad magic or version,
    or any torn record in a non-last segment.

    ``read_only=True`` opens a *reader* beside a live writer (audit replay, the ledger
    projection): no lock, nothing truncated or rewritten, no appends. What would be a torn tail
    is, for a reader, most likely the writer's batch in flight, so the reader stops before it;
    it sees the records that were complete when it opened.
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
        read_only: bool = False,
    ) -> None:
        if segment_bytes < SEGMENT_HEADER.size + RECORD_HEADER.size:
            raise ValueError(f"segment_bytes={segment_bytes} cannot hold a single record")
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._segments: list[_Segment] = []
        self._first_seqs: list[int] = []
        self._last_seq = 0
        self._last_ts: int | None = None
        self._last_digest: bytes | None = None
        self._fd: int | None = None
        self._failed: BaseException | None = None
        self._closed = False
        self._read_only = read_only
        self._lock: WriterLock | None = None
        if read_only:
            if not self._dir.is_dir():
                raise JournalMissing(self._dir)
            self._recover()
            return
        if not self._dir.is_dir():
            self._dir.mkdir(parents=True, mode=PRIVATE_DIR)
            if fsync:
                fsync_dir(self._dir.parent)
        self._lock = WriterLock(self._dir)  # raises JournalLocked naming the holder
        try:
            if not fsync:
                log.warning("journal_durability_off", directory=str(self._dir))
            self._recover()
            tighten(self._dir, PRIVATE_DIR)  # segments of older versions were 0644
            for seg in self._segments:
                tighten(seg.path, PRIVATE_FILE)
            # An old-format tail: compute its chain head now, at start-up, rather than on the
            # first append (which runs on the gateway's loop: a long stall for a large history).
            self._chain_head()
        except BaseException:
            self.close()
            raise

    # -- public API -------------------------------------------------------------------------

    @property
    def first_sequence(self) -> int:
        """Sequence of the first readable record; ``last_sequence + 1`` when there is none."""
        return self._segments[0].first_seq if self._segments else 1

    @property
    def last_sequence(self) -> int:
        """Sequence of the last durable record, 0 when nothing was ever appended."""
        return self._last_seq

    @property
    def last_timestamp_ns(self) -> int | None:
        """Timestamp of the last durable record, None when no record is readable."""
        return self._last_ts

    def append_batch(self, records: Sequence[Record]) -> None:
        """Append ``records`` durably: one write and one fsync per segment touched.

        The whole batch is validated before any byte is written, so a rejected batch changes
        nothing. A batch normally lands in one segment (one write, one fsync); when it fills
        the current segment it is split at a record boundary and the new segment's directory
        entry is fsync'd too. If a write or fsync fails the journal refuses further appends:
        the on-disk tail is unknown (fsync errors are not retryable), reopening recovers it.
        """
        if self._closed:
            raise RuntimeError("journal is closed")
        if self._read_only:
            raise RuntimeError("journal is open read-only")
        if self._failed is not None:
            raise RuntimeError("journal failed on an earlier write; reopen it") from self._failed
        if not records:
            return
        self._validate(records)
        prev = self._chain_head()
        chunk = bytearray()
        seg = self._segments[-1] if self._segments else None
        offset = seg.size if seg is not None else 0
        key = prev
        last_off = last_ts = -1
        try:
            for seq, ts, payload in records:
                size = RECORD_HEADER.size + DIGEST_BYTES + len(payload)
                full = offset + size > self._segment_bytes and offset > SEGMENT_HEADER.size
                if seg is None or full or seg.version != FORMAT_VERSION:
                    if seg is not None and chunk:  # empty: an old-format tail is left as is
                        self._write_durably(seg, chunk, offset, seq)
                        seg.last_digest, seg.last_offset, seg.last_ts = key, last_off, last_ts
                    if seg is not None:
                        self._seal(seg)
                    seg = self._new_segment(seq)
                    chunk = bytearray(SEGMENT_HEADER.pack(MAGIC, FORMAT_VERSION, seq))
                    offset = SEGMENT_HEADER.size
                seq_ts = _SEQ_TS.pack(seq, ts)
                key = _blake2b(key + seq_ts + payload, digest_size=DIGEST_BYTES).digest()
                body = seq_ts + key + payload
                chunk += _LEN_CRC.pack(DIGEST_BYTES + len(payload), google_crc32c.value(body))
                chunk += body
                if seq % INDEX_INTERVAL == 0:
                    seg.add_index(seq, offset)
                if seg.first_ts is None:
                    seg.first_ts = ts
                last_off, last_ts = offset, ts
                offset += size
            assert seg is not None
            self._write_durably(seg, chunk, offset, records[-1][0] + 1)
        except OSError as exc:
            self._failed = exc
            raise
        self._last_seq = records[-1][0]
        self._last_ts = records[-1][1]
        self._last_digest = key
        seg.last_digest, seg.last_offset, seg.last_ts = key, last_off, last_ts

    @property
    def chain_head(self) -> bytes:
        """Chain digest of the last durable record (`GENESIS_DIGEST` for an empty journal)."""
        return self._chain_head()

    def read_from(self, sequence: int, to: int | None = None) -> Iterator[Record]:
        """Yield records ``sequence..to`` (inclusive), re-verifying each checksum.

        Bounds are checked now, not on first iteration: ``sequence`` must lie in
        ``first_sequence..last_sequence + 1`` and ``to`` (clamped to the last durable record,
        which fixes the end of this iteration) must not be below ``sequence - 1``. The start
        is found through the sparse index, so at most ``INDEX_INTERVAL`` records are skipped.
        """
        walk = self._walk_plan(sequence, to)
        return iter(()) if walk is None else self._iterate(*walk)

    def read_batches(
        self,
        sequence: int,
        to: int | None = None,
        max_records: int = 4_096,
        step: ScanStep | None = None,
    ) -> Iterator[Any]:
        """The records of `read_from` as arrays (`engine.journalscan.RecordBatch`), checked
        the same way but without a Python object per record: replay's and recovery's path.
        ``step``: how a batch is made from the segment's bytes (`engine.journalscan.ScanStep`;
        replay's also parses the command rows, `engine.core.journalrows.row_step`)."""
        from engine.journalscan import iterate_batches, record_step  # numba: loaded by replay

        walk = self._walk_plan(sequence, to)
        if walk is None:
            return iter(())
        return iterate_batches(*walk, max_records, step=step or record_step)

    def read_chained(self, sequence: int, to: int | None = None) -> Iterator[ChainedRecord]:
        """Like `read_from`, with each record's stored chain digest (None in version 1)."""
        walk = self._walk_plan(sequence, to)
        return iter(()) if walk is None else self._iterate_chained(*walk)

    def _walk_plan(
        self, sequence: int, to: int | None
    ) -> tuple[list[tuple[Path, int, int, int]], int, int, int, int] | None:
        """Where a read of ``sequence..to`` starts: the segments from the one holding
        ``sequence``, the sparse-index entry at or before it (its seq and offset), and the
        range; None when the range is empty. Checks the range the same way for every reader."""
        if self._closed:
            raise RuntimeError("journal is closed")
        if not self.first_sequence <= sequence <= self._last_seq + 1:
            raise ValueError(
                f"cannot read from sequence {sequence}: journal holds "
                f"{self.first_sequence}..{self._last_seq}"
            )
        end = self._last_seq if to is None else min(to, self._last_seq)
        if to is not None and to < sequence - 1:
            raise ValueError(f"read range {sequence}..{to} is reversed")
        if end < sequence:
            return None
        first = bisect.bisect_right(self._first_seqs, sequence) - 1
        seg = self._segments[first]
        slot = bisect.bisect_right(seg.index_seqs, sequence) - 1
        plan = [(s.path, s.first_seq, s.size, s.version) for s in self._segments[first:]]
        return plan, seg.index_seqs[slot], seg.index_offsets[slot], sequence, end

    def close(self) -> None:
        """Close the active segment and release the writer lock; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def note_holder(self, **info: object) -> None:
        """Tell a second would-be writer who holds this journal (e.g. the server's ``url``)."""
        if self._lock is not None:
            self._lock.note(**info)

    def __enter__(self) -> SegmentJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- appending --------------------------------------------------------------------------

    def _chain_head(self) -> bytes:
        """Digest of the last record, computing the chain over version-1 records once."""
        if self._last_digest is None:
            if self._last_seq == 0:
                self._last_digest = GENESIS_DIGEST
            else:
                # An old (version-1) tail: its digests were never stored, so walk the whole
                # history once; every later record then chains from it.
                log.info("journal_chain_computing_old_records", last_sequence=self._last_seq)
                head = GENESIS_DIGEST
                for seq, ts, payload, stored in self.read_chained(self.first_sequence):
                    head = chain_digest(head, seq, ts, payload) if stored is None else stored
                self._last_digest = head
        return self._last_digest

    def _validate(self, records: Sequence[Record]) -> None:
        """Refuse the whole batch unless it continues the journal exactly (nothing written)."""
        expected = self._last_seq + 1
        prev_ts = self._last_ts
        for i, (seq, ts, payload) in enumerate(records):
            if type(seq) is not int or type(ts) is not int:
                raise TypeError(f"sequence and timestamp must be int, got {seq!r}, {ts!r}")
            if seq != expected:
                where = "first record" if i == 0 else f"record {i} of the batch"
                raise ValueError(f"{where} has sequence {seq}, expected {expected}")
            if not isinstance(payload, bytes):
                raise TypeError(f"payload of sequence {seq} is {type(payload).__name__}")
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError(f"payload of sequence {seq} exceeds {MAX_PAYLOAD_BYTES} bytes")
            if not _MIN_I64 <= ts <= _MAX_I64 or seq > _MAX_U64:
                raise ValueError(f"sequence {seq} or timestamp {ts} out of range")
            if prev_ts is not None and ts < prev_ts:
                raise ValueError(f"timestamp of sequence {seq} goes back: {ts} < {prev_ts}")
            expected += 1
            prev_ts = ts

    def _new_segment(self, first_seq: int) -> _Segment:
        """Create the next segment file and make it the append target."""
        path = self._dir / _segment_name(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, PRIVATE_FILE)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        seg = _Segment(path, first_seq, 0, first_seq, FORMAT_VERSION)
        seg.add_index(first_seq, SEGMENT_HEADER.size)
        self._segments.append(seg)
        self._first_seqs.append(first_seq)
        return seg

    def _write_durably(self, seg: _Segment, chunk: bytearray, end: int, next_seq: int) -> None:
        """Write ``chunk`` at the end of ``seg`` and fsync before the records count as there."""
        assert self._fd is not None and seg is self._segments[-1]
        assert seg.size + len(chunk) == end, "chunk does not extend the segment exactly"
        view = memoryview(chunk)
        written = 0
        while written < len(chunk):  # os.write may be partial (signals, nearly full disk)
            written += os.write(self._fd, view[written:])
        view.release()
        if self._fsync:
            os.fsync(self._fd)
            if seg.size == 0:
                fsync_dir(self._dir)
        seg.size = end
        seg.next_seq = next_seq

    # -- reading ----------------------------------------------------------------------------

    def _iterate(
        self, plan: list[tuple[Path, int, int, int]], seq: int, offset: int, start: int, end: int
    ) -> Iterator[Record]:
        """Walk segments from (``seq`` at ``offset``) and yield ``start..end`` verified.

        The replay hot path: `_walk`'s loop inlined (a generator per record costs)."""
        for n, (path, first_seq, size, version) in enumerate(plan):
            if n > 0:
                assert seq == first_seq, f"{path}: segment starts at {first_seq}, not {seq}"
                offset = SEGMENT_HEADER.size
            payload_at = _body_offset(version)
            with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
                while offset < size:
                    length, crc = _LEN_CRC.unpack_from(m, offset)
                    body_end = offset + RECORD_HEADER.size + length
                    if seq >= start:
                        body = m[offset + _CRC_START : body_end]
                        rseq, ts = _SEQ_TS.unpack_from(body, 0)
                        if google_crc32c.value(body) != crc or rseq != seq:
                            raise JournalCorruption(path, offset, "record changed since open")
                        yield seq, ts, body[payload_at:]
                        if seq == end:
                            return
                    seq += 1
                    offset = body_end
        raise AssertionError(f"journal ended at sequence {seq - 1} before {end}")

    def _iterate_chained(
        self, plan: list[tuple[Path, int, int, int]], seq: int, offset: int, start: int, end: int
    ) -> Iterator[ChainedRecord]:
        for rseq, ts, body, version in _walk(plan, seq, offset, start, end):
            if version >= 2:
                digest = body[_SEQ_TS.size : _SEQ_TS.size + DIGEST_BYTES]
                yield rseq, ts, body[_SEQ_TS.size + DIGEST_BYTES :], digest
            else:
                yield rseq, ts, body[_SEQ_TS.size :], None
