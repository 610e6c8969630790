"""Bulk journal reading (`engine.journalscan`, `SegmentJournal.read_batches`) against the
record-at-a-time reader: same records, same checks, for journal formats 1 and 2.

Replay and recovery read through `read_batches`; `read_from` stays the reference reader, so
every test here compares the two on real segment files (written by the journal, or crafted
byte by byte for format 1, as an old version wrote them).
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
from numba import njit

from engine import journalscan
from engine.core.compiled import CompiledEngine
from engine.core.journalrows import RowBatch, row_step
from engine.journal import SEGMENT_HEADER, JournalCorruption, Record, SegmentJournal
from engine.journalformat import MAGIC
from engine.journalscan import CRC_TABLES, ScanStep, crc32c, record_step, table_word
from engine.replay import replay_journal
from engine.schema import encode_command, state_hash

STEPS = [record_step, row_step]
"""Both ways a batch is made: records only, and replay's (records and command rows)."""


def batched(
    journal: SegmentJournal, start: int, to: int | None, size: int, step: ScanStep = record_step
) -> list[Record]:
    out: list[Record] = []
    for batch in journal.read_batches(start, to, size, step=step):
        assert 0 < len(batch) <= size
        out += records_of(batch)
    return out


def records_of(batch: object) -> list[Record]:
    """A batch's records, whichever step made it."""
    assert isinstance(batch, RowBatch | journalscan.RecordBatch)
    return (batch.records if isinstance(batch, RowBatch) else batch).records()


def write_v1_segment(directory: Path, recs: list[Record]) -> None:
    """A format-1 segment (no chain digests), byte for byte as the version-1 writer left it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = SEGMENT_HEADER.pack(MAGIC, 1, recs[0][0])
    for seq, ts, payload in recs:
        body = struct.pack("<Qq", seq, ts) + payload
        data += struct.pack("<II", len(payload), google_crc32c.value(body)) + body
    (directory / f"{recs[0][0]:020d}.seg").write_bytes(data)


def test_crc32c_matches_the_library() -> None:
    rng = random.Random(7)
    data = bytes(rng.randrange(256) for _ in range(4_096))
    buf = np.frombuffer(data, dtype=np.uint8)
    for _ in range(300):
        a = rng.randrange(0, 2_000)
        b = a + rng.randrange(0, 200)
        assert crc32c(buf, a, b, CRC_TABLES) == google_crc32c.value(data[a:b]), (a, b)


def test_table_step_matches_the_library() -> None:
    """The table step is what hosts without SSE4.2's ``crc32`` run (this one may have it: the
    test above then checks the instruction); plain Python and compiled, same CRCs."""
    rng = random.Random(11)
    data = bytes(rng.randrange(256) for _ in range(1_024))
    buf = np.frombuffer(data, dtype=np.uint8)
    compiled = njit(table_word)
    for _ in range(40):
        a = rng.randrange(0, 500)
        words = rng.randrange(0, 40)
        crc = py_crc = 0xFFFFFFFF
        for p in range(a, a + 8 * words, 8):
            crc = compiled(crc, buf, p, CRC_TABLES)
            py_crc = int(table_word(py_crc, buf, p, CRC_TABLES))
        assert crc == py_crc
        assert crc ^ 0xFFFFFFFF == google_crc32c.value(data[a : a + 8 * words]), (a, words)


def test_forced_target_cpu_takes_the_table_step(tmp_path: Path) -> None:
    """With a target CPU forced (``NUMBA_CPU_NAME``: a cache meant for other machines) the
    compiled `crc32c` uses the table step inside the intrinsic, and gives the library's CRCs."""
    code = (
        "import random, google_crc32c, numpy as np\n"
        "from engine.journalscan import CRC_INSTRUCTION, CRC_TABLES, crc32c\n"
        "assert not CRC_INSTRUCTION\n"
        "data = bytes(random.Random(5).randrange(256) for _ in range(777))\n"
        "buf = np.frombuffer(data, dtype=np.uint8)\n"
        "for a, b in ((0, 777), (3, 700), (9, 17), (5, 5)):\n"
        "    assert crc32c(buf, a, b, CRC_TABLES) == google_crc32c.value(data[a:b]), (a, b)\n"
        "print('table step ok')\n"
    )
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2_000:]
    assert "table step ok" in out.stdout


def test_batches_equal_read_from_across_formats_and_segments(tmp_path: Path) -> None:
    """A format-1 segment followed by format-2 segments (a writer continued an old journal):
    every start, end and batch size gives exactly `read_from`'s records."""
    rng = random.Random(3)
    old = [(s, 1_000 + s, bytes(rng.randrange(256) for _ in range(s % 23))) for s in range(1, 41)]
    new = [(s, 1_000 + s, b"p%05d" % s + b"q" * (s % 5)) for s in range(41, 121)]
    write_v1_segment(tmp_path, old)
    with SegmentJournal(tmp_path, fsync=False, segment_bytes=900) as j:
        for i in range(0, len(new), 9):
            j.append_batch(new[i : i + 9])
    assert len(list(tmp_path.glob("*.seg"))) > 3
    with SegmentJournal(tmp_path, read_only=True) as j:
        assert batched(j, 1, None, 4_096) == old + new
        for start, to, size in [(1, 40, 7), (17, 63, 5), (40, 41, 1), (120, None, 3), (55, 54, 2)]:
            assert batched(j, start, to, size) == list(j.read_from(start, to)), (start, to)
        assert list(j.read_batches(121)) == []
        with pytest.raises(ValueError, match="cannot read from"):
            j.read_batches(122)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("chunk_bytes", [1, 5, 37, 64, 1_000])
def test_batches_read_in_stretches_cut_records_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int, step: ScanStep
) -> None:
    """A segment is read a stretch at a time: stretches shorter than a record header, than a
    record, or ending inside one give `read_from`'s records all the same."""
    monkeypatch.setattr(journalscan, "CHUNK_BYTES", chunk_bytes)
    recs = [(s, 7_000 + s, b"r" * (s % 41)) for s in range(1, 90)]
    with SegmentJournal(tmp_path, fsync=False, segment_bytes=2_000) as j:
        for i in range(0, len(recs), 8):
            j.append_batch(recs[i : i + 8])
    with SegmentJournal(tmp_path, read_only=True) as j:
        for start, to, size in [(1, None, 4_096), (1, None, 3), (30, 61, 7), (89, 89, 1)]:
            assert batched(j, start, to, size, step) == list(j.read_from(start, to))


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("chunk_bytes", [None, 1, 50, 64])
def test_changed_record_is_corruption_at_its_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_bytes: int | None, step: ScanStep
) -> None:
    """A byte changed after open is refused by the bulk reader at the same offset as by
    `read_from`; records before it are still handed out (whatever the stretch size)."""
    if chunk_bytes is not None:
        monkeypatch.setattr(journalscan, "CHUNK_BYTES", chunk_bytes)
    recs = [(s, 5_000 + s, b"payload-%03d" % s) for s in range(1, 30)]
    with SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(recs)
        path = next(tmp_path.glob("*.seg"))
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x40  # inside the last record's payload
        path.write_bytes(bytes(data))
        with pytest.raises(JournalCorruption, match="changed since open") as slow:
            list(j.read_from(1))
        got: list[Record] = []
        with pytest.raises(JournalCorruption, match="changed since open") as fast:
            for batch in j.read_batches(1, None, 10, step=step):
                got += records_of(batch)
        assert fast.value.offset == slow.value.offset
        assert fast.value.segment == slow.value.segment
        # records before the damaged one (the last), never it; tiny stretches end batches
        # early, so more of the records before it may come out than whole batches of 10
        assert got == recs[: len(got)] and 20 <= len(got) < len(recs)
        assert chunk_bytes is not None or len(got) == 20


def test_replay_of_a_format_1_and_2_journal_equals_live(tmp_path: Path) -> None:
    """Real commands journaled half in format 1, half in format 2 replay (bulk reader, fast
    parser, admin commands between) to the state hash the live engine reached."""
    from bench.workloads import workload_b

    wl = workload_b(9, 2_000, accounts=100, resting=1_000)
    records = [(s, t, encode_command(c)) for s, t, c in wl.setup + wl.prefill + wl.stream]
    half = len(records) // 2
    write_v1_segment(tmp_path / "j", records[:half])
    with SegmentJournal(tmp_path / "j", fsync=False) as j:
        j.append_batch(records[half:])
    live = CompiledEngine(wl.config)
    live.process(wl.setup + wl.prefill + wl.stream)
    engine = CompiledEngine(wl.config)
    with SegmentJournal(tmp_path / "j", read_only=True) as j:
        assert replay_journal(engine, j) == len(records)
    assert engine.last_seq == live.last_seq
    assert state_hash(engine.image()) == state_hash(live.image())


@pytest.mark.parametrize("step", STEPS)
def test_segment_cut_after_open_is_corruption(tmp_path: Path, step: ScanStep) -> None:
    """A segment shorter than the reader saw at open (cut by something else) is refused with
    the bulk reader's own error, not read past."""
    recs = [(s, 9_000 + s, b"x" * 50) for s in range(1, 40)]
    with SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(recs)
    with SegmentJournal(tmp_path, read_only=True) as j:
        path = next(tmp_path.glob("*.seg"))
        os.truncate(path, path.stat().st_size - 100)
        with pytest.raises(JournalCorruption, match="shorter than at open"):
            batched(j, 1, None, 4_096, step)
