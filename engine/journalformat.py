"""The journal's on-disk format: record and segment framing, the audit chain's digest, and the
checks that read bytes back (used by `engine.journal.SegmentJournal`; the layout is described
in that module's docstring).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c

from engine import segindex
from engine.usererror import UserError

MAGIC = b"KBJ1"
FORMAT_VERSION = 2
"""The version new segments are written in."""
READABLE_VERSIONS = (1, 2)
DIGEST_BYTES = 32
GENESIS_DIGEST = bytes(DIGEST_BYTES)
"""The key of the first record's chain digest."""
SEGMENT_HEADER = struct.Struct("<4sHQ")
RECORD_HEADER = struct.Struct("<IIQq")
_LEN_CRC = struct.Struct("<II")
_SEQ_TS = struct.Struct("<Qq")
_SEQ = struct.Struct("<Q")
#: Offset of the checksummed bytes (sequence, timestamp, payload) inside a record.
_CRC_START = _LEN_CRC.size
MAX_PAYLOAD_BYTES = 1 << 20
ChainedRecord = tuple[int, int, bytes, bytes | None]
"""(sequence, timestamp_ns, payload, stored chain digest or None for a version-1 record)."""


def chain_digest(prev_digest: bytes, seq: int, ts_ns: int, payload: bytes) -> bytes:
    """The record's link in the audit chain: BLAKE2b-256 over the previous digest, the
    sequence and timestamp (``<Qq``) and the payload.

    Covering the previous digest makes each digest commit to the whole history before it;
    covering sequence and timestamp makes renumbering or re-timing a record a break too.
    (Prefixing rather than keying: the same commitment, measured ~15% cheaper per record.)
    """
    return hashlib.blake2b(
        prev_digest + _SEQ_TS.pack(seq, ts_ns) + payload, digest_size=DIGEST_BYTES
    ).digest()


def _body_offset(version: int) -> int:
    """Offset of the payload inside a record's checksummed bytes, for a segment version."""
    return _SEQ_TS.size + (DIGEST_BYTES if version >= 2 else 0)


class JournalCorruption(UserError):
    """The journal holds bytes that are not a valid prefix of appended records.

    Raised instead of skipping anything: replaying around a hole would silently diverge from
    the state that was acknowledged to traders. An operator has to look at ``segment`` at
    ``offset``.
    """

    def __init__(self, segment: Path, offset: int, reason: str) -> None:
        super().__init__(
            f"journal corruption in {segment} at offset {offset}: {reason}",
            hint="nothing was changed; restore the data directory from a backup or a replica "
            "(never edit or delete segment files by hand)",
        )
        self.segment = segment
        self.offset = offset
        self.reason = reason


def _walk(
    plan: list[tuple[Path, int, int, int]], seq: int, offset: int, start: int, end: int
) -> Iterator[tuple[int, int, bytes, int]]:
    """(sequence, timestamp, checksummed bytes, segment version) of ``start..end``, verified."""
    for n, (path, first_seq, size, version) in enumerate(plan):
        if n > 0:
            assert seq == first_seq, f"{path}: segment starts at {first_seq}, not {seq}"
            offset = SEGMENT_HEADER.size
        with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as m:
            while offset < size:
                length, crc = _LEN_CRC.unpack_from(m, offset)
                body_end = offset + RECORD_HEADER.size + length
                if seq >= start:
                    body = m[offset + _CRC_START : body_end]
                    rseq, ts = _SEQ_TS.unpack_from(body, 0)
                    if google_crc32c.value(body) != crc or rseq != seq:
                        raise JournalCorruption(path, offset, "record changed since open")
                    yield seq, ts, body, version
                    if seq == end:
                        return
                seq += 1
                offset = body_end
    raise AssertionError(f"journal ended at sequence {seq - 1} before {end}")


def _index_matches(path: Path, ix: segindex.SealedIndex) -> bool:
    """Whether ``path`` still is the segment ``ix`` describes: same size, same header, and a
    last record with a valid checksum, the last sequence, time and digest, ending at EOF."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != ix.size:
                return False
            header = f.read(SEGMENT_HEADER.size)
            f.seek(ix.last_offset)
            head = f.read(RECORD_HEADER.size)
            if len(head) != RECORD_HEADER.size:
                return False
            length, crc, seq, ts = RECORD_HEADER.unpack(head)
            if length > MAX_PAYLOAD_BYTES + DIGEST_BYTES:
                return False
            rest = f.read(length)
    except OSError:
        return False
    if header != SEGMENT_HEADER.pack(MAGIC, ix.segment_version, ix.first_seq):
        return False
    if ix.last_offset + RECORD_HEADER.size + length != ix.size or len(rest) != length:
        return False
    if google_crc32c.value(head[_CRC_START:] + rest) != crc:
        return False
    digest = rest[:DIGEST_BYTES] if ix.segment_version >= 2 else None
    return seq == ix.next_seq - 1 and ts == ix.last_ts and digest == ix.last_digest


def _valid_record_after(data: bytes, offset: int, seq: int) -> bool:
    """Whether a checksummed record with sequence ``seq`` starts somewhere after ``offset``.

    Guards the torn-tail rule: a length field damaged in the middle of the last segment also
    "runs past EOF", but then intact records follow it and truncating would drop acknowledged
    commands. Finding the next sequence's bytes with a matching checksum proves that case.
    """
    needle = _SEQ.pack(seq)
    at = data.find(needle, offset + 1 + _CRC_START)
    while at != -1:
        rec = at - _CRC_START
        if rec + RECORD_HEADER.size <= len(data):
            length, crc = _LEN_CRC.unpack_from(data, rec)
            rec_end = rec + RECORD_HEADER.size + length
            if (
                length <= MAX_PAYLOAD_BYTES + DIGEST_BYTES
                and rec_end <= len(data)
                and (google_crc32c.value(data[rec + _CRC_START : rec_end]) == crc)
            ):
                return True
        at = data.find(needle, at + 1)
    return False
