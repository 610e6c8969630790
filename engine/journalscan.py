"""Bulk journal reading for replay: a segment's records located and checked in one njit call.

`SegmentJournal.read_from` yields one ``(sequence, timestamp, payload)`` tuple per record,
which costs ~1-2 us of Python per record (struct unpacking, a bytes slice, a CRC call, the
tuple, the generator). Replay and recovery only need the payloads' bytes handed to the command
parser (`engine.core.cmdrows`), so `scan_records` walks a whole segment buffer in compiled
code: it checks each record's CRC32C (byte-identical to `google_crc32c`: SSE4.2's ``crc32``
instruction where numba compiles for a host that has it, else a slice-by-8 table) and
sequence exactly as `read_from` does, and fills arrays of sequences, timestamps and payload
offsets into the buffer. No Python object is built per record.

The layout it reads is `engine.journalformat`'s (versions 1 and 2; the payload offset inside a
record is `_body_offset(version)`). The audit chain's digests are not checked here, as
`read_from` does not check them either: `kootabase audit verify` does.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llvmlite import binding, ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic

from engine.journalformat import (
    _CRC_START,
    RECORD_HEADER,
    SEGMENT_HEADER,
    JournalCorruption,
    _body_offset,
)

_POLY = 0x82F63B78  # CRC32C (Castagnoli), reflected


def _crc_tables() -> np.ndarray:
    """Slice-by-8 tables, flat: ``t[0]`` is the byte-at-a-time table, ``t[k][b]`` advances
    ``k`` more zero bytes."""
    t = np.zeros((8, 256), dtype=np.int64)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t[0, b] = c
    for k in range(1, 8):
        for b in range(256):
            prev = int(t[k - 1, b])
            t[k, b] = (prev >> 8) ^ int(t[0, prev & 0xFF])
    return t.ravel()


CRC_TABLES = _crc_tables()
RECORD_HEADER_BYTES = RECORD_HEADER.size
_SEGMENT_HEADER_BYTES = SEGMENT_HEADER.size
CRC_START = _CRC_START
CHUNK_BYTES = 1 << 20
"""How much of a segment `iterate_batches` reads at a time (see `_segment_batches`)."""

#: `scan_records` outcomes.
SCAN_MORE = 0
"""The output arrays filled up before the range or the buffer ended."""
SCAN_DONE = 1
"""The record with sequence ``end`` was reached."""
SCAN_EOF = 2
"""The buffer ended before ``end`` (the next segment continues)."""
SCAN_CORRUPT = 3
"""A record's checksum or sequence does not match at the returned offset."""


def _host_has_crc32_instruction() -> bool:
    """Does numba compile for this host's CPU, and has it SSE4.2's ``crc32``? Not when a target
    CPU is forced (``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``, e.g. a portable cache): the
    table step then. numba's cache keys its code by the target CPU and its features, so a
    cache written here is not loaded on a CPU without the instruction."""
    if config.CPU_NAME or config.CPU_FEATURES:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return bool(binding.get_host_cpu_features().get("sse4.2", False))


CRC_INSTRUCTION = _host_has_crc32_instruction()


def table_word(crc, buf, p, t):  # type: ignore[no-untyped-def]
    """``crc`` (unfinished: no final XOR) advanced over ``buf[p:p + 8]`` with the slice-by-8
    tables ``t``. int64 arithmetic and one flat table measured ~2x faster than uint32 and a
    2-D table (numba's casts)."""
    lo = crc ^ (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )
    return (
        t[1792 + (lo & 0xFF)]
        ^ t[1536 + ((lo >> 8) & 0xFF)]
        ^ t[1280 + ((lo >> 16) & 0xFF)]
        ^ t[1024 + (lo >> 24)]
        ^ t[768 + np.int64(buf[p + 4])]
        ^ t[512 + np.int64(buf[p + 5])]
        ^ t[256 + np.int64(buf[p + 6])]
        ^ t[np.int64(buf[p + 7])]
    )


@intrinsic
def crc_word(typingctx, crc, buf, p, t):  # type: ignore[no-untyped-def]
    """`table_word` in compiled code: one ``crc32`` instruction on the 8 bytes (read
    unaligned, little-endian, as the tables read them) where the host has it
    (`CRC_INSTRUCTION`), else `table_word` compiled inline. Measured on workload (b)'s
    59 MB journal: ~46 ms of CRC per replay with the tables (docs/benchmarks.md)."""
    sig = types.int64(crc, buf, p, t)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        if not CRC_INSTRUCTION:
            return context.compile_internal(builder, table_word, signature, args)
        i64 = ir.IntType(64)
        ary = context.make_array(signature.args[1])(context, builder, args[1])
        at = builder.bitcast(builder.gep(ary.data, [args[2]]), i64.as_pointer())
        word = builder.load(at, align=1)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i64, [i64, i64]), "llvm.x86.sse42.crc32.64.64"
        )
        return builder.call(fn, [args[0], word])

    return sig, codegen


@njit(cache=True, nogil=True)
def crc32c(buf, start, stop, t):  # pragma: no cover - njit
    """CRC32C of ``buf[start:stop]`` (init and final XOR 0xFFFFFFFF, as `google_crc32c`);
    ``t`` is `CRC_TABLES`: table ``k`` at ``t[256 * k:]``."""
    crc = np.int64(0xFFFFFFFF)
    p = start
    while p + 8 <= stop:
        crc = crc_word(crc, buf, p, t)
        p += 8
    while p < stop:
        crc = t[(crc ^ np.int64(buf[p])) & 0xFF] ^ (crc >> 8)
        p += 1
    return crc ^ 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _u32(buf, p):  # pragma: no cover - njit
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@njit(cache=True, nogil=True)
def _i64(buf, p):  # pragma: no cover - njit
    v = np.uint64(0)
    for k in range(8):
        v |= np.uint64(buf[p + k]) << np.uint64(8 * k)
    return np.int64(v)


@njit(cache=True, nogil=True)
def scan_records(
    buf, offset, seq, start, end, payload_at, out_seq, out_ts, out_start, out_end, t, final
):  # pragma: no cover - njit
    """Walk records of a stretch of one segment's bytes from ``offset`` (holding ``seq``).

    Records below ``start`` are skipped unchecked (as `read_from` does); from ``start`` on,
    each record's CRC32C and sequence are checked and its sequence, timestamp and payload
    bounds written to the output arrays, until ``end`` is written, the arrays are full or the
    buffer ends. ``final``: the buffer ends where the segment ended at open, so a record cut
    by its end is corruption; otherwise the segment continues after it and the cut record is
    where the next stretch starts (SCAN_EOF at its offset). Returns (status, records written,
    offset and sequence to resume from).
    """
    size = len(buf)
    n = 0
    cap = len(out_seq)
    while offset < size:
        if n == cap:
            return SCAN_MORE, n, offset, seq
        if not final and offset + RECORD_HEADER_BYTES > size:
            return SCAN_EOF, n, offset, seq
        length = _u32(buf, offset)
        body_end = offset + RECORD_HEADER_BYTES + length
        if body_end > size:
            return (SCAN_CORRUPT if final else SCAN_EOF), n, offset, seq
        if seq >= start:
            crc = _u32(buf, offset + 4)
            if crc32c(buf, offset + CRC_START, body_end, t) != crc:
                return SCAN_CORRUPT, n, offset, seq
            if _i64(buf, offset + CRC_START) != seq:
                return SCAN_CORRUPT, n, offset, seq
            out_seq[n] = seq
            out_ts[n] = _i64(buf, offset + CRC_START + 8)
            out_start[n] = offset + CRC_START + payload_at
            out_end[n] = body_end
            n += 1
            if seq == end:
                return SCAN_DONE, n, body_end, seq + 1
        seq += 1
        offset = body_end
    return SCAN_EOF, n, offset, seq


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Consecutive journal records as arrays: record ``i`` has sequence ``seqs[i]``, timestamp
    ``stamps[i]`` and payload ``buf[starts[i]:ends[i]]`` (``buf`` is the segment's bytes)."""

    buf: np.ndarray
    seqs: np.ndarray
    stamps: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.seqs)

    def payload(self, i: int) -> bytes:
        return self.buf[self.starts[i] : self.ends[i]].tobytes()

    def records(self) -> list[tuple[int, int, bytes]]:
        """The batch as `engine.journal.Record` tuples (what `read_from` yields)."""
        return [
            (int(s), int(t), self.payload(i))
            for i, (s, t) in enumerate(zip(self.seqs.tolist(), self.stamps.tolist(), strict=True))
        ]


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of one segment's bytes being walked for the records ``start..end`` (payload
    at ``payload_at`` in a record's checksummed bytes; ``final``: see `scan_records`), in
    batches of at most ``max_records``."""

    buf: np.ndarray
    start: int
    end: int
    payload_at: int
    max_records: int
    final: bool

    def record_arrays(self) -> list[np.ndarray]:
        """Fresh output arrays of `scan_records` (sequences, times, payload bounds)."""
        return [np.empty(self.max_records, dtype=np.int64) for _ in range(4)]

    def batch(self, arrays: list[np.ndarray], records: int) -> RecordBatch | None:
        """The first ``records`` of `record_arrays` as a batch (None: no record)."""
        return RecordBatch(self.buf, *(a[:records] for a in arrays)) if records else None


ScanStep = Callable[[Stretch, int, int], tuple[int, int, int, int, Any]]
"""One batch of a `Stretch` from an offset holding a sequence: (status, records, offset and
sequence to resume from, the batch or None when no record) as `scan_records` answers;
`record_step`, or `engine.core.journalrows.row_step` (command rows too)."""


def record_step(stretch: Stretch, at: int, seq: int) -> tuple[int, int, int, int, Any]:
    """`ScanStep` of `scan_records`: the records as a `RecordBatch`."""
    s, out = stretch, stretch.record_arrays()
    status, got, at, seq = scan_records(
        s.buf, at, seq, s.start, s.end, s.payload_at, *out, CRC_TABLES, s.final
    )
    return status, got, at, seq, s.batch(out, got)


def iterate_batches(
    plan: list[tuple[Path, int, int, int]],
    seq: int,
    offset: int,
    start: int,
    end: int,
    max_records: int,
    chunk_bytes: int | None = None,
    step: ScanStep = record_step,
) -> Iterator[Any]:
    """`engine.journal.SegmentJournal.read_batches`'s walk: the records ``start..end`` of
    ``plan`` (segments from the one at ``offset`` holding ``seq``), at most ``max_records``
    per batch (a batch never spans segments), as ``step`` makes batches (`RecordBatch` by
    default). Each segment's bytes from ``offset`` to its size at open are read once, in
    stretches of about ``chunk_bytes`` (`_segment_batches`); every record is checked as
    `read_from` checks it."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    assert max_records > 0 and chunk_bytes > 0
    for n, (path, first_seq, size, version) in enumerate(plan):
        if n > 0:
            assert seq == first_seq, f"{path}: segment starts at {first_seq}, not {seq}"
            offset = _SEGMENT_HEADER_BYTES
        walk = _segment_batches(
            path, size, version, offset, seq, start, end, max_records, chunk_bytes, step
        )
        seq = yield from walk
        if seq > end:
            return
    raise AssertionError(f"journal ended at sequence {seq - 1} before {end}")


def _segment_batches(
    path: Path,
    size: int,
    version: int,
    offset: int,
    seq: int,
    start: int,
    end: int,
    max_records: int,
    chunk_bytes: int,
    step: ScanStep,
) -> Generator[Any, None, int]:
    """One segment's batches; returns the sequence after the last record walked.

    Why stretches: reading the whole segment into one fresh array (64 MB) made the kernel
    clear and copy every page of it and left the bytes out of the caches by the time they
    were parsed (~10 % of a replay's CPU in `clear_page`/`copy_to_iter`). A stretch of a few
    MB is parsed while it is still in the cache, and once one is freed the allocator hands
    its memory to the next without new pages. Each stretch is a fresh array (a batch's
    ``buf`` stays valid after the next one is read); a record cut by a stretch's end starts
    the next stretch."""
    payload_at = _body_offset(version)
    with open(path, "rb") as f:
        f.seek(offset)
        base = offset  # file offset of buf[0]
        tail = np.empty(0, dtype=np.uint8)
        while True:
            want = min(chunk_bytes, size - base - len(tail))
            buf = np.empty(len(tail) + want, dtype=np.uint8)
            buf[: len(tail)] = tail
            if f.readinto(memoryview(buf)[len(tail) :]) != want:
                raise JournalCorruption(path, base + len(tail), "segment shorter than at open")
            final = base + len(buf) == size
            stretch = Stretch(buf, start, end, payload_at, max_records, final)
            at = 0
            while True:
                status, got, at, seq, batch = step(stretch, at, seq)
                if status == SCAN_CORRUPT:
                    raise JournalCorruption(path, base + at, "record changed since open")
                if got:
                    yield batch
                if status == SCAN_DONE:
                    return seq
                if status == SCAN_EOF:
                    break
            if final:
                return seq
            tail, base = buf[at:], base + at


@njit(cache=True, nogil=True)
def _valid_prefix(
    buf, off, seq, prev_ts, has_prev, digest_bytes, max_length, interval, idx_seq, idx_off, t
):  # pragma: no cover - njit
    """Walk records from ``off`` while each one is exactly valid (whole, length in bound, CRC,
    sequence, timestamp not going back, digest present); stop at the first that is not."""
    size = len(buf)
    n_idx = 0
    last_record = -1
    first_ts = np.int64(0)
    has_first = False
    while size - off >= RECORD_HEADER_BYTES:
        length = _u32(buf, off)
        end = off + RECORD_HEADER_BYTES + length
        if length > max_length or end > size or length < digest_bytes:
            break
        if crc32c(buf, off + CRC_START, end, t) != _u32(buf, off + 4):
            break
        if _i64(buf, off + CRC_START) != seq:
            break
        ts = _i64(buf, off + CRC_START + 8)
        if has_prev and ts < prev_ts:
            break
        if seq % interval == 0:
            idx_seq[n_idx] = seq
            idx_off[n_idx] = off
            n_idx += 1
        if not has_first:
            first_ts = ts
            has_first = True
        last_record = off
        prev_ts = ts
        has_prev = True
        seq += 1
        off = end
    return off, seq, prev_ts, has_prev, last_record, first_ts, has_first, n_idx


def valid_prefix(
    data: bytes,
    off: int,
    seq: int,
    prev_ts: int | None,
    digest_bytes: int,
    max_length: int,
    interval: int,
) -> tuple[int, int, int | None, int, int | None, list[tuple[int, int]]]:
    """The records of a segment's bytes ``data`` from ``off`` (holding ``seq``) that are valid,
    checked in one compiled pass: (offset and sequence after them, last timestamp, offset of
    the last valid record or -1, first timestamp or None, sparse-index entries ``(seq,
    offset)`` for sequences divisible by ``interval``). The journal's opening resumes its
    record-by-record checks from the returned offset, which decide what any defect is."""
    buf = np.frombuffer(data, dtype=np.uint8)
    cap = len(data) // (RECORD_HEADER_BYTES * interval) + 2
    idx_seq = np.empty(cap, dtype=np.int64)
    idx_off = np.empty(cap, dtype=np.int64)
    end, next_seq, last_ts, has_last, last_record, first_ts, has_first, n_idx = _valid_prefix(
        buf,
        off,
        seq,
        0 if prev_ts is None else prev_ts,
        prev_ts is not None,
        digest_bytes,
        max_length,
        interval,
        idx_seq,
        idx_off,
        CRC_TABLES,
    )
    index = list(zip(idx_seq[:n_idx].tolist(), idx_off[:n_idx].tolist(), strict=True))
    return (
        int(end),
        int(next_seq),
        int(last_ts) if has_last else None,
        int(last_record),
        int(first_ts) if has_first else None,
        index,
    )
