"""Index files of sealed journal segments: what opening a journal needs to know about a
segment that will never change again, so that start-up does not read all of history.

A segment is *sealed* when the journal rolls to the next one; from then on its bytes never
change. The writer then writes ``{first_seq:020d}.idx`` beside it: the segment's size, its
first and last sequence and timestamp, the offset and chain digest of its last record, and its
sparse index, all under one CRC32C. Opening a journal trusts a sealed segment's index after
cheap checks against the segment itself (`trusted`: the size, the header, and the last record's
checksum, sequence, time and digest) instead of reading every record; anything that does not
match (a missing, torn or stale index, a segment changed since) falls back to the full scan.

What this gives up, on purpose: a byte changed in the *middle* of a sealed segment is no longer
found at open. It is still found by every read (`SegmentJournal.read_from` re-verifies each
record's checksum) and by ``kootabase audit verify``, which walks every record and its chain.
The index is an optimisation, never a source of truth: it is written without fsync, replaced
atomically, and may be deleted at any time.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from engine.filemodes import PRIVATE_FILE

SUFFIX = ".idx"
MAGIC = b"KBX1"
VERSION = 1
_HEAD = struct.Struct("<4sHHQQQqqQ32sI")
"""magic, index version, segment version, first_seq, next_seq, size, first_ts, last_ts,
last record's offset, last record's digest (zeros for a version-1 segment), entries."""
_ENTRY = struct.Struct("<QQ")
_CRC = struct.Struct("<I")
MAX_ENTRIES = 1 << 20


@dataclass(frozen=True, slots=True)
class SealedIndex:
    segment_version: int
    first_seq: int
    next_seq: int
    size: int
    first_ts: int
    last_ts: int
    last_offset: int
    last_digest: bytes | None
    index_seqs: tuple[int, ...]
    index_offsets: tuple[int, ...]


def path_for(segment: Path) -> Path:
    return segment.with_suffix(SUFFIX)


def encode(ix: SealedIndex) -> bytes:
    body = _HEAD.pack(
        MAGIC,
        VERSION,
        ix.segment_version,
        ix.first_seq,
        ix.next_seq,
        ix.size,
        ix.first_ts,
        ix.last_ts,
        ix.last_offset,
        ix.last_digest or bytes(32),
        len(ix.index_seqs),
    ) + b"".join(_ENTRY.pack(s, o) for s, o in zip(ix.index_seqs, ix.index_offsets, strict=True))
    return body + _CRC.pack(google_crc32c.value(body))


def load(segment: Path, first_seq: int) -> SealedIndex | None:
    """The segment's index if its file is whole and names this segment; else None."""
    try:
        data = path_for(segment).read_bytes()
    except OSError:
        return None
    if len(data) < _HEAD.size + _CRC.size:
        return None
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if google_crc32c.value(data[: -_CRC.size]) != crc:
        return None
    magic, version, seg_version, first, nxt, size, first_ts, last_ts, last_off, digest, n = (
        _HEAD.unpack_from(data, 0)
    )
    if magic != MAGIC or version != VERSION or first != first_seq or not first < nxt:
        return None
    if n > MAX_ENTRIES or len(data) != _HEAD.size + n * _ENTRY.size + _CRC.size:
        return None
    entries = [_ENTRY.unpack_from(data, _HEAD.size + i * _ENTRY.size) for i in range(n)]
    return SealedIndex(
        seg_version,
        first,
        nxt,
        size,
        first_ts,
        last_ts,
        last_off,
        digest if seg_version >= 2 else None,
        tuple(s for s, _ in entries),
        tuple(o for _, o in entries),
    )


def write(segment: Path, ix: SealedIndex) -> None:
    """Replace the segment's index atomically (no fsync: a lost index only costs a scan)."""
    target = path_for(segment)
    tmp = target.with_suffix(SUFFIX + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.write(fd, encode(ix))
    finally:
        os.close(fd)
    os.replace(tmp, target)
