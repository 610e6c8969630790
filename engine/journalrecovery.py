"""Opening a segment journal: validating its segments, trusting a sealed segment's index after
checking it, and truncating a torn tail (the rules are on `engine.journal.SegmentJournal`).

The append and read paths stay in `engine.journal`; this is the start-up side, a base class of
`SegmentJournal` that works on the journal's own fields (declared below).
"""

from __future__ import annotations

import os
from pathlib import Path

import google_crc32c
import structlog

from engine import segindex
from engine.journalformat import (
    _CRC_START,
    DIGEST_BYTES,
    FORMAT_VERSION,
    MAGIC,
    MAX_PAYLOAD_BYTES,
    READABLE_VERSIONS,
    RECORD_HEADER,
    SEGMENT_HEADER,
    JournalCorruption,
    _index_matches,
    _valid_record_after,
)
from engine.journalsegment import _SUFFIX, INDEX_INTERVAL, _Segment

# The journal's logger name, so its events read as before the recovery had a module of its own.
log = structlog.get_logger("engine.journal")


class _JournalRecovery:
    """Recovery of `engine.journal.SegmentJournal` (its base class; not used alone)."""

    _dir: Path
    _fsync: bool
    _read_only: bool
    _segments: list[_Segment]
    _first_seqs: list[int]
    _last_seq: int
    _last_ts: int | None
    _last_digest: bytes | None
    _fd: int | None
    first_sequence: int

    def _recover(self) -> None:
        """Scan and validate all segments, truncate a torn tail, open the last for appending."""
        paths = sorted(self._dir.glob("*" + _SUFFIX))
        expected: int | None = None
        for i, path in enumerate(paths):
            stem = path.name[: -len(_SUFFIX)]
            if len(stem) != 20 or not stem.isdigit():
                raise JournalCorruption(path, 0, "segment file name is not 20 digits")
            first_seq = int(stem)
            if expected is not None and first_seq != expected:
                raise JournalCorruption(
                    path, 0, f"sequence gap between segments: expected {expected}"
                )
            last = i == len(paths) - 1
            seg = None if last else self._sealed(path, first_seq)
            if seg is None:
                seg = self._scan(path, first_seq, last=last)
                if not (last or self._read_only):
                    self._seal(seg)  # an older journal's segment: index it for next time
            self._segments.append(seg)
            self._first_seqs.append(first_seq)
            expected = seg.next_seq
        for seg in reversed(self._segments):  # the newest record's stored digest, if any
            if seg.next_seq > seg.first_seq:
                self._last_digest = seg.last_digest
                break
        tail = self._segments[-1] if self._segments else None
        if (
            tail
            and not self._read_only
            and tail.version != FORMAT_VERSION
            and tail.size == (SEGMENT_HEADER.size)
        ):  # an old-format segment with no record yet: reuse its name in the current format
            self._rewrite_header(
                tail.path, SEGMENT_HEADER.pack(MAGIC, FORMAT_VERSION, tail.first_seq)
            )
            tail.version = FORMAT_VERSION
        if self._segments:
            self._last_seq = self._segments[-1].next_seq - 1
            if not self._read_only:
                self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)
        log.info(
            "journal_opened",
            directory=str(self._dir),
            segments=len(self._segments),
            first_sequence=self.first_sequence,
            last_sequence=self._last_seq,
        )

    def _sealed(self, path: Path, first_seq: int) -> _Segment | None:
        """A sealed segment from its index file, after checking the index against the segment
        (size, header, last record); None to scan it instead (see `engine.segindex`)."""
        ix = segindex.load(path, first_seq)
        if ix is None or not _index_matches(path, ix):
            return None
        if self._last_ts is not None and ix.first_ts < self._last_ts:
            return None  # let the scan name the record whose time goes back
        seg = _Segment(
            path,
            first_seq,
            ix.size,
            ix.next_seq,
            ix.segment_version,
            ix.last_digest,
            ix.first_ts,
            ix.last_ts,
            ix.last_offset,
            list(ix.index_seqs),
            list(ix.index_offsets),
        )
        self._last_ts = ix.last_ts
        return seg

    def _seal(self, seg: _Segment) -> None:
        """Write a sealed segment's index; a failure only costs a scan at the next open."""
        if seg.next_seq == seg.first_seq or seg.first_ts is None or seg.last_ts is None:
            return
        ix = segindex.SealedIndex(
            seg.version,
            seg.first_seq,
            seg.next_seq,
            seg.size,
            seg.first_ts,
            seg.last_ts,
            seg.last_offset,
            seg.last_digest,
            tuple(seg.index_seqs),
            tuple(seg.index_offsets),
        )
        try:
            segindex.write(seg.path, ix)
        except OSError as exc:
            log.warning("journal_segment_index_not_written", segment=str(seg.path), error=str(exc))

    def _scan(self, path: Path, first_seq: int, *, last: bool) -> _Segment:
        """Validate one segment; return its in-memory view (records up to its valid end)."""
        from engine.journalscan import valid_prefix  # numba: loaded when a journal opens

        data = path.read_bytes()  # one buffered read; segments are bounded
        header = SEGMENT_HEADER.pack(MAGIC, FORMAT_VERSION, first_seq)
        if len(data) < SEGMENT_HEADER.size:
            old_header = SEGMENT_HEADER.pack(MAGIC, 1, first_seq)
            if not (last and (header.startswith(data) or old_header.startswith(data))):
                raise JournalCorruption(path, 0, f"segment header cut short ({len(data)} bytes)")
            if self._read_only:  # the writer is creating this segment right now
                return _Segment(path, first_seq, 0, first_seq)
            log.warning(
                "journal_torn_segment_header", segment=str(path), offset=0, bytes_dropped=len(data)
            )
            self._rewrite_header(path, header)
            data = header
        magic, version, header_seq = SEGMENT_HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise JournalCorruption(path, 0, f"bad magic {magic!r}")
        if version not in READABLE_VERSIONS:
            raise JournalCorruption(path, 0, f"unsupported format version {version}")
        if header_seq != first_seq:
            raise JournalCorruption(path, 0, f"header first sequence {header_seq} != file name")
        seg = _Segment(path, first_seq, len(data), first_seq, version)
        digest_bytes = DIGEST_BYTES if version >= 2 else 0
        last_record = -1
        seg.add_index(first_seq, SEGMENT_HEADER.size)
        prev_ts = self._last_ts
        off, seq, size = SEGMENT_HEADER.size, first_seq, len(data)
        # The valid records in one compiled pass; the loop below checks from the first record
        # that is not (and decides whether it is a torn tail or corruption).
        off, seq, prev_ts, last_record, seg.first_ts, index = valid_prefix(
            data, off, seq, prev_ts, digest_bytes, MAX_PAYLOAD_BYTES + digest_bytes, INDEX_INTERVAL
        )
        for entry in index:
            seg.add_index(*entry)
        while off < size:
            if size - off < RECORD_HEADER.size:
                self._torn(seg, off, last, "record header cut short by end of file")
                break
            length, crc, rseq, ts = RECORD_HEADER.unpack_from(data, off)
            if length > MAX_PAYLOAD_BYTES + digest_bytes:
                raise JournalCorruption(path, off, f"payload length {length} exceeds the bound")
            end = off + RECORD_HEADER.size + length
            if end > size:
                if _valid_record_after(data, off, seq + 1):
                    raise JournalCorruption(path, off, "record overruns into valid records")
                self._torn(seg, off, last, "payload cut short by end of file")
                break
            if google_crc32c.value(data[off + _CRC_START : end]) != crc:
                if end != size:
                    raise JournalCorruption(path, off, "checksum mismatch")
                self._torn(seg, off, last, "checksum mismatch on the record ending at EOF")
                break
            if rseq != seq:
                raise JournalCorruption(path, off, f"sequence gap: expected {seq}, found {rseq}")
            if prev_ts is not None and ts < prev_ts:
                raise JournalCorruption(path, off, f"timestamp goes back: {ts} < {prev_ts}")
            if length < digest_bytes:
                raise JournalCorruption(path, off, f"record of sequence {seq} has no digest")
            if seq % INDEX_INTERVAL == 0:
                seg.add_index(seq, off)
            last_record = off
            if seg.first_ts is None:
                seg.first_ts = ts
            prev_ts, seq, off = ts, seq + 1, end
        seg.next_seq = seq
        if last_record >= 0:
            seg.last_offset, seg.last_ts = last_record, prev_ts
        if digest_bytes and last_record >= 0:
            start = last_record + RECORD_HEADER.size
            seg.last_digest = bytes(data[start : start + DIGEST_BYTES])
        self._last_ts = prev_ts
        return seg

    def _torn(self, seg: _Segment, offset: int, last: bool, reason: str) -> None:
        """Truncate a torn tail of the last segment at ``offset``; elsewhere it is corruption."""
        if not last:
            raise JournalCorruption(seg.path, offset, f"{reason} in a non-last segment")
        if self._read_only:
            log.info(
                "journal_reader_stops_before_tail",
                segment=str(seg.path),
                offset=offset,
                reason=reason,
            )
            seg.size = offset
            return
        dropped = seg.size - offset
        log.warning(
            "journal_torn_tail_truncated",
            segment=str(seg.path),
            offset=offset,
            bytes_dropped=dropped,
            reason=reason,
        )
        with open(seg.path, "r+b") as f:
            f.truncate(offset)
            if self._fsync:
                os.fsync(f.fileno())
        seg.size = offset

    def _rewrite_header(self, path: Path, header: bytes) -> None:
        """Finish a segment whose creation was interrupted inside its header."""
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(header)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
