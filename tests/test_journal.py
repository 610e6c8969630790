"""SegmentJournal: durability format, recovery of torn tails, refusal of corruption.

Everything runs against real files in a temporary directory. Damage is applied with plain
file operations (truncate, byte flips, crafted segments) exactly as a crash or a bad disk
would leave it.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import google_crc32c
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from engine.journal import (
    DIGEST_BYTES,
    INDEX_INTERVAL,
    MAX_PAYLOAD_BYTES,
    RECORD_HEADER,
    SEGMENT_HEADER,
    JournalCorruption,
    Record,
    SegmentJournal,
)


def make_records(first: int, count: int, ts: int = 1_000, size: int = 10) -> list[Record]:
    """Deterministic records whose payload encodes their sequence (easy to eyeball)."""
    return [
        (s, ts + s, (b"%08d" % s) + b"x" * max(0, size - 8)) for s in range(first, first + count)
    ]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def record_offsets(path: Path) -> list[tuple[int, int, int]]:
    """(offset, end, sequence) of each record, walked independently of the journal code."""
    data = path.read_bytes()
    out, off = [], SEGMENT_HEADER.size
    while off < len(data):
        length, _crc, seq, _ts = RECORD_HEADER.unpack_from(data, off)
        end = off + RECORD_HEADER.size + length
        assert end <= len(data), f"record at {off} spans past the end of {path.name}"
        out.append((off, end, seq))
        off = end
    return out


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def encode_record(seq: int, ts: int, payload: bytes) -> bytes:
    body = struct.pack("<Qq", seq, ts) + payload
    return struct.pack("<II", len(payload), google_crc32c.value(body)) + body


def read_all(journal: SegmentJournal) -> list[Record]:
    return list(journal.read_from(journal.first_sequence))


# -- happy path ------------------------------------------------------------------------------


def test_empty_journal_starts_at_one(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as j:
        assert (j.first_sequence, j.last_sequence, j.last_timestamp_ns) == (1, 0, None)
        assert list(j.read_from(1)) == []
        with pytest.raises(ValueError, match="expected 1"):
            j.append_batch(make_records(2, 1))
        j.append_batch([])
        assert segments(tmp_path) == []


def test_roundtrip_across_segments_and_reopen(tmp_path: Path) -> None:
    written: list[Record] = []
    with SegmentJournal(tmp_path, segment_bytes=400) as j:
        for batch_size in (1, 7, 30, 2, 15):
            batch = make_records(len(written) + 1, batch_size)
            j.append_batch(batch)
            written += batch
        assert read_all(j) == written
    assert len(segments(tmp_path)) > 3
    with SegmentJournal(tmp_path, segment_bytes=400) as j:
        assert (j.first_sequence, j.last_sequence) == (1, len(written))
        assert j.last_timestamp_ns == written[-1][1]
        boundaries = [int(p.stem) for p in segments(tmp_path)]
        for start in {
            1,
            2,
            len(written) // 2,
            len(written),
            *boundaries,
            *(b - 1 for b in boundaries[1:]),
        }:
            assert list(j.read_from(start)) == written[start - 1 :], start
        assert list(j.read_from(len(written) + 1)) == []
        assert list(j.read_from(3, 9)) == written[2:9]
        assert list(j.read_from(5, 5)) == [written[4]]
        assert list(j.read_from(5, 4)) == []
        assert list(j.read_from(50, 10_000)) == written[49:]
        j.append_batch(make_records(len(written) + 1, 3))
        assert j.last_sequence == len(written) + 3


def test_read_bounds_are_refused_eagerly(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(make_records(1, 5))
        with pytest.raises(ValueError, match="cannot read from sequence 7"):
            j.read_from(7)
        with pytest.raises(ValueError, match="cannot read from sequence 0"):
            j.read_from(0)
        with pytest.raises(ValueError, match="reversed"):
            j.read_from(4, 2)


def test_sparse_index_seeks_across_index_entries(tmp_path: Path) -> None:
    count = 3 * INDEX_INTERVAL + 17
    written = make_records(1, count, size=8)
    with SegmentJournal(tmp_path, segment_bytes=100_000, fsync=False) as j:
        for i in range(0, count, 1000):
            j.append_batch(written[i : i + 1000])
    with SegmentJournal(tmp_path, segment_bytes=100_000, fsync=False) as j:
        for start in (
            1,
            INDEX_INTERVAL - 1,
            INDEX_INTERVAL,
            INDEX_INTERVAL + 1,
            2 * INDEX_INTERVAL,
            count,
        ):
            assert next(j.read_from(start)) == written[start - 1]
            assert list(j.read_from(start, start + 2)) == written[start - 1 : start + 2]
        assert read_all(j) == written


def test_segments_roll_at_configured_size(tmp_path: Path) -> None:
    segment_bytes = 300
    with SegmentJournal(tmp_path, segment_bytes=segment_bytes, fsync=False) as j:
        j.append_batch(make_records(1, 40, size=20))
        j.append_batch([(41, 5_000, b"y" * 500)])  # larger than a segment: gets one alone
        j.append_batch(make_records(42, 3, ts=5_000, size=20))
    files = segments(tmp_path)
    expected_seq = 1
    for path, following in zip(files, [*files[1:], None], strict=True):
        recs = record_offsets(path)  # asserts that no record runs past the file's end
        assert int(path.stem) == expected_seq == recs[0][2]
        assert [seq for _, _, seq in recs] == list(range(expected_seq, expected_seq + len(recs)))
        size = path.stat().st_size
        assert size == recs[-1][1]
        assert size <= segment_bytes or len(recs) == 1
        if following is not None:  # rolled only because the next record would not fit
            next_off, next_end, _ = record_offsets(following)[0]
            assert size + (next_end - next_off) > segment_bytes
        expected_seq += len(recs)
    assert expected_seq == 45
    oversized = [p for p in files if p.stat().st_size > segment_bytes]
    assert [int(p.stem) for p in oversized] == [41]


def test_fsync_off_warns_once_at_open(tmp_path: Path) -> None:
    with capture_logs() as logs, SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(make_records(1, 3))
        j.append_batch(make_records(4, 3))
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["journal_durability_off"]


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False), pytest.raises(RuntimeError, match="already open"):
        SegmentJournal(tmp_path, fsync=False)
    SegmentJournal(tmp_path, fsync=False).close()  # lock released on close


# -- refusing bad appends --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "error", "match"),
    [
        (make_records(7, 2), ValueError, "first record has sequence 7, expected 6"),
        ([(6, 2_000, b"a"), (8, 2_000, b"b")], ValueError, "record 1 of the batch"),
        ([(6, 2_000, b"a"), (7, 1_999, b"b")], ValueError, "goes back"),
        ([(6, 1_000, b"a")], ValueError, "goes back"),
        ([(6, 2_000, b"a"), (7, 2_000, b"b" * (MAX_PAYLOAD_BYTES + 1))], ValueError, "exceeds"),
        ([(6, 2_000, "text")], TypeError, "payload"),
        ([(6, 2_000.5, b"a")], TypeError, "must be int"),
    ],
)
def test_bad_batch_writes_nothing(
    tmp_path: Path, batch: list[Record], error: type[Exception], match: str
) -> None:
    with SegmentJournal(tmp_path, segment_bytes=200) as j:
        j.append_batch(make_records(1, 5))
        sizes = [p.stat().st_size for p in segments(tmp_path)]
        with pytest.raises(error, match=match):
            j.append_batch(batch)
        assert [p.stat().st_size for p in segments(tmp_path)] == sizes
        assert j.last_sequence == 5
        j.append_batch(make_records(6, 1, ts=2_000))
    with SegmentJournal(tmp_path) as j:
        assert j.last_sequence == 6


# -- torn tails (recovered) ------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 5, RECORD_HEADER.size - 1, RECORD_HEADER.size + 2])
def test_torn_tail_is_truncated_and_appending_continues(tmp_path: Path, cut: int) -> None:
    written = make_records(1, 20, size=12)  # record = 24 + 12 bytes; cuts above land in it
    with SegmentJournal(tmp_path, segment_bytes=300) as j:
        j.append_batch(written)
    last = segments(tmp_path)[-1]
    last_off, _, last_seq = record_offsets(last)[-1]
    with open(last, "r+b") as f:
        f.truncate(last_off + cut)
    with capture_logs() as logs, SegmentJournal(tmp_path, segment_bytes=300) as j:
        assert j.last_sequence == last_seq - 1 == 19
        assert read_all(j) == written[:-1]
        j.append_batch(make_records(20, 2))
    warnings = [e for e in logs if e["event"] == "journal_torn_tail_truncated"]
    assert len(warnings) == 1
    assert warnings[0]["segment"] == str(last)
    assert (warnings[0]["offset"], warnings[0]["bytes_dropped"]) == (last_off, cut)
    with SegmentJournal(tmp_path) as j:
        assert read_all(j) == written[:-1] + make_records(20, 2)


def test_bad_checksum_on_record_ending_at_eof_is_torn(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, segment_bytes=300) as j:
        j.append_batch(make_records(1, 12))
    last = segments(tmp_path)[-1]
    off, end, _ = record_offsets(last)[-1]
    flip_byte(last, end - 1)
    with capture_logs() as logs, SegmentJournal(tmp_path) as j:
        assert j.last_sequence == 11
    assert last.stat().st_size == off
    assert [e["offset"] for e in logs if e["event"] == "journal_torn_tail_truncated"] == [off]


def test_torn_segment_header_is_rewritten(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, segment_bytes=300) as j:
        j.append_batch(make_records(1, 12))
    files = segments(tmp_path)
    recs = record_offsets(files[-1])
    first_of_last = recs[0][2]
    with open(files[-1], "r+b") as f:
        f.truncate(7)
    with capture_logs() as logs, SegmentJournal(tmp_path, segment_bytes=300) as j:
        assert j.last_sequence == first_of_last - 1
        j.append_batch(make_records(first_of_last, 1))
    assert "journal_torn_segment_header" in [e["event"] for e in logs]
    with SegmentJournal(tmp_path) as j:
        assert read_all(j) == make_records(1, first_of_last)


# -- corruption (refused) --------------------------------------------------------------------


def build(tmp_path: Path, count: int = 30) -> list[Path]:
    with SegmentJournal(tmp_path, segment_bytes=300) as j:
        j.append_batch(make_records(1, count))
    files = segments(tmp_path)
    assert len(files) >= 3
    return files


def assert_corrupt(tmp_path: Path, segment: Path, offset: int, reason: str) -> None:
    with pytest.raises(JournalCorruption, match=reason) as info:
        SegmentJournal(tmp_path)
    assert (info.value.segment, info.value.offset) == (segment, offset)
    assert str(segment) in str(info.value) and f"offset {offset}" in str(info.value)


def test_flipped_payload_in_the_middle_is_corruption(tmp_path: Path) -> None:
    last = build(tmp_path)[-1]
    off, end, _ = record_offsets(last)[0]
    flip_byte(last, end - 2)
    assert_corrupt(tmp_path, last, off, "checksum mismatch")


def test_flip_in_non_last_segment_is_corruption(tmp_path: Path) -> None:
    first = build(tmp_path)[0]
    off, end, _ = record_offsets(first)[-1]  # ends at that file's EOF, still not a torn tail
    flip_byte(first, end - 1)
    assert_corrupt(tmp_path, first, off, "non-last segment")


def test_truncated_non_last_segment_is_corruption(tmp_path: Path) -> None:
    middle = build(tmp_path)[1]
    off, _, _ = record_offsets(middle)[-1]
    with open(middle, "r+b") as f:
        f.truncate(off + 3)
    assert_corrupt(tmp_path, middle, off, "non-last segment")


def test_damaged_length_in_last_segment_is_not_mistaken_for_torn(tmp_path: Path) -> None:
    last = build(tmp_path)[-1]
    off, _, _ = record_offsets(last)[0]
    data = bytearray(last.read_bytes())
    struct.pack_into("<I", data, off, 5_000)  # within the bound, runs past EOF
    last.write_bytes(bytes(data))
    assert_corrupt(tmp_path, last, off, "overruns into valid records")


def test_oversized_length_is_corruption(tmp_path: Path) -> None:
    last = build(tmp_path)[-1]
    off, _, _ = record_offsets(last)[-1]
    data = bytearray(last.read_bytes())
    struct.pack_into(
        "<I", data, off, MAX_PAYLOAD_BYTES + DIGEST_BYTES + 1
    )  # body: digest + payload
    last.write_bytes(bytes(data))
    assert_corrupt(tmp_path, last, off, "exceeds the bound")


def test_sequence_gap_inside_segment_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / f"{1:020d}.seg"
    second = SEGMENT_HEADER.size + RECORD_HEADER.size + 1
    data = SEGMENT_HEADER.pack(b"KBJ1", 1, 1) + encode_record(1, 10, b"a")
    path.write_bytes(data + encode_record(3, 10, b"c") + encode_record(4, 10, b"d"))
    assert_corrupt(tmp_path, path, second, "expected 2, found 3")


def test_timestamp_going_back_on_disk_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / f"{1:020d}.seg"
    data = SEGMENT_HEADER.pack(b"KBJ1", 1, 1) + encode_record(1, 10, b"a")
    path.write_bytes(data + encode_record(2, 9, b"b") + encode_record(3, 11, b"c"))
    assert_corrupt(tmp_path, path, SEGMENT_HEADER.size + RECORD_HEADER.size + 1, "goes back")


def test_missing_segment_is_a_gap(tmp_path: Path) -> None:
    files = build(tmp_path)
    files[1].unlink()
    assert_corrupt(tmp_path, files[2], 0, "gap between segments")


def test_header_first_sequence_must_match_name(tmp_path: Path) -> None:
    files = build(tmp_path)
    data = bytearray(files[1].read_bytes())
    struct.pack_into("<Q", data, 6, int(files[1].stem) + 1)
    files[1].write_bytes(bytes(data))
    assert_corrupt(tmp_path, files[1], 0, "header first sequence")


def test_bad_magic_is_corruption(tmp_path: Path) -> None:
    files = build(tmp_path)
    flip_byte(files[-1], 0)
    assert_corrupt(tmp_path, files[-1], 0, "bad magic")


def test_data_changed_after_open_is_detected_on_read(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(make_records(1, 5))
        only = segments(tmp_path)[0]
        off, end, _ = record_offsets(only)[2]
        flip_byte(only, end - 1)
        with pytest.raises(JournalCorruption, match="changed since open") as info:
            list(j.read_from(1))
        assert info.value.offset == off


# -- property: a crash anywhere in the last segment leaves exactly a durable prefix -----------


@given(
    batches=st.lists(
        st.lists(st.binary(max_size=40), min_size=1, max_size=12), min_size=1, max_size=8
    ),
    segment_bytes=st.integers(min_value=SEGMENT_HEADER.size + RECORD_HEADER.size, max_value=600),
    cut_fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_truncated_last_segment_recovers_exact_prefix(
    batches: list[list[bytes]], segment_bytes: int, cut_fraction: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        written: list[Record] = []
        with SegmentJournal(directory, segment_bytes=segment_bytes, fsync=False) as j:
            for payloads in batches:
                batch = [
                    (len(written) + 1 + i, 7 * len(written), p) for i, p in enumerate(payloads)
                ]
                j.append_batch(batch)
                written += batch
        files = segments(directory)
        last = files[-1]
        cut = int(last.stat().st_size * cut_fraction)
        survivors = sum(len(record_offsets(p)) for p in files[:-1])
        survivors += sum(1 for _, end, _ in record_offsets(last) if end <= cut)
        boundaries = {SEGMENT_HEADER.size} | {end for _, end, _ in record_offsets(last)}
        event("cut at a record boundary" if cut in boundaries else "torn cut")
        with open(last, "r+b") as f:
            f.truncate(cut)
        with SegmentJournal(directory, segment_bytes=segment_bytes, fsync=False) as j:
            assert j.last_sequence == survivors
            assert read_all(j) == written[:survivors]
            j.append_batch([(survivors + 1, 10**9, b"after")])
        with SegmentJournal(directory, segment_bytes=segment_bytes, fsync=False) as j:
            assert read_all(j) == [*written[:survivors], (survivors + 1, 10**9, b"after")]


def test_read_only_reader_beside_a_live_writer(tmp_path: Path) -> None:
    """Audit replay and the ledger projection read a journal a node is writing: no lock, no
    truncation, and a half-written tail is left alone (the writer owns it)."""
    with SegmentJournal(tmp_path, fsync=False) as writer:
        writer.append_batch([(s, s, b"p%d" % s) for s in range(1, 6)])
        segment = sorted(tmp_path.glob("*.seg"))[-1]
        with open(segment, "ab") as fh:  # a batch in flight: a record header, no payload yet
            fh.write(RECORD_HEADER.pack(3, 0, 6, 6))
        size_before = segment.stat().st_size
        with SegmentJournal(tmp_path, read_only=True) as reader:
            assert reader.last_sequence == 5
            assert [r[0] for r in reader.read_from(1)] == [1, 2, 3, 4, 5]
            with pytest.raises(RuntimeError, match="read-only"):
                reader.append_batch([(6, 6, b"x")])
        assert segment.stat().st_size == size_before, "a reader must never truncate"
    with pytest.raises(FileNotFoundError):
        SegmentJournal(tmp_path / "missing", read_only=True)
