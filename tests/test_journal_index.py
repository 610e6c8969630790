"""Sealed-segment index files (engine/segindex.py): opening a journal trusts a sealed segment's
index after checking it against the segment, and falls back to the full scan for anything that
does not match; what open no longer sees, reads and the audit chain still catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.auditchain import ChainBroken, verify_chain
from engine.journal import (
    DIGEST_BYTES,
    RECORD_HEADER,
    SEGMENT_HEADER,
    JournalCorruption,
    Record,
    SegmentJournal,
)
from engine.segindex import path_for

SEGMENT_BYTES = 600


def records(count: int) -> list[Record]:
    return [(s, 10 * s, b"payload-%05d" % s) for s in range(1, count + 1)]


def build(directory: Path, count: int = 60) -> list[Path]:
    with SegmentJournal(directory, segment_bytes=SEGMENT_BYTES, fsync=False) as j:
        for i in range(0, count, 9):
            j.append_batch(records(count)[i : i + 9])
    segs = sorted(directory.glob("*.seg"))
    assert len(segs) >= 4
    return segs


def flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    record = RECORD_HEADER.size + DIGEST_BYTES + len(b"payload-00001")
    data[SEGMENT_HEADER.size + record + RECORD_HEADER.size + DIGEST_BYTES + 3] ^= 0x20
    # ^ inside the second record's payload
    path.write_bytes(bytes(data))


def test_sealed_segments_are_indexed_and_reopen_reads_the_same(tmp_path: Path) -> None:
    segs = build(tmp_path)
    assert all(path_for(s).is_file() for s in segs[:-1]), "every sealed segment is indexed"
    assert not path_for(segs[-1]).exists(), "the segment being written is not"
    with SegmentJournal(tmp_path, segment_bytes=SEGMENT_BYTES, fsync=False) as j:
        assert list(j.read_from(1)) == records(60)
        assert list(j.read_from(23, 31)) == records(60)[22:31]
        j.append_batch([(61, 610, b"more")])
    assert verify_chain(tmp_path).last_seq == 61


def test_change_inside_an_indexed_segment_is_found_by_reads_and_audit(tmp_path: Path) -> None:
    """Open checks an indexed segment's size, header and last record, not every record: a
    byte changed in its middle is found when it is read, and by the audit chain."""
    segs = build(tmp_path)
    flip_middle(segs[1])
    with SegmentJournal(tmp_path, segment_bytes=SEGMENT_BYTES, fsync=False) as j:
        assert j.last_sequence == 60  # opened without reading that segment's records
        with pytest.raises(JournalCorruption, match="changed since open"):
            list(j.read_from(1))
    with pytest.raises(ChainBroken, match="checksum") as info:
        verify_chain(tmp_path)
    first_of_seg1 = int(segs[1].stem)
    assert info.value.seq == first_of_seg1 + 1


def test_missing_stale_or_damaged_index_falls_back_to_the_scan(tmp_path: Path) -> None:
    segs = build(tmp_path)
    flip_middle(segs[1])
    path_for(segs[1]).unlink()  # missing: the scan finds the damage at open
    with pytest.raises(JournalCorruption, match="checksum mismatch"):
        SegmentJournal(tmp_path, read_only=True)
    flip_middle(segs[1])  # repaired; now make the index lie about the segment
    with SegmentJournal(tmp_path, segment_bytes=SEGMENT_BYTES, fsync=False):
        pass  # the writer re-indexes the segment it scanned
    assert path_for(segs[1]).is_file()
    index = path_for(segs[2])
    data = bytearray(index.read_bytes())
    data[-1] ^= 1  # damaged index (its CRC)
    index.write_bytes(bytes(data))
    with open(segs[3], "ab") as f:
        f.write(b"\0" * 5)  # a sealed segment grew: its index no longer matches
    with pytest.raises(JournalCorruption, match="non-last segment"):
        SegmentJournal(tmp_path, read_only=True)


def test_old_journals_get_indexed_by_the_writer_not_by_readers(tmp_path: Path) -> None:
    segs = build(tmp_path)
    for s in segs:
        path_for(s).unlink(missing_ok=True)
    with SegmentJournal(tmp_path, read_only=True) as j:
        assert j.last_sequence == 60
    assert not any(path_for(s).exists() for s in segs)
    with SegmentJournal(tmp_path, segment_bytes=SEGMENT_BYTES, fsync=False) as j:
        assert j.last_sequence == 60
    assert all(path_for(s).is_file() for s in segs[:-1])
