"""The journal's audit chain: every edit, removal or reordering is caught, old journals still
read and replay byte for byte, and the CLI answers in one line.

Tampering is done the way an insider would: re-encoding records with valid checksums (and, in
the strongest case, a recomputed chain for the whole tail), not only by flipping bytes.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import google_crc32c
import pytest

from engine.auditchain import ChainBroken, anchor_at, encode_anchor, verify_chain
from engine.journal import (
    GENESIS_DIGEST,
    MAGIC,
    SEGMENT_HEADER,
    Record,
    SegmentJournal,
    chain_digest,
)

N = 40


def records(count: int = N, first: int = 1) -> list[Record]:
    return [
        (s, 1_000 + s // 3, b"cmd-%04d" % s + b"z" * (s % 7)) for s in range(first, first + count)
    ]


def digests(recs: list[Record], start: bytes = GENESIS_DIGEST) -> list[bytes]:
    out, head = [], start
    for seq, ts, payload in recs:
        head = chain_digest(head, seq, ts, payload)
        out.append(head)
    return out


def encode(seq: int, ts: int, payload: bytes, digest: bytes | None) -> bytes:
    """One record as on disk: version 2 with a digest, version 1 without."""
    body = struct.pack("<Qq", seq, ts) + (digest or b"") + payload
    return struct.pack("<II", len(body) - 16, google_crc32c.value(body)) + body


def write_segment(
    directory: Path, recs: list[Record], digs: list[bytes] | None, version: int = 2
) -> Path:
    """A segment file holding ``recs`` exactly as given (sequences not checked)."""
    first = recs[0][0]
    data = SEGMENT_HEADER.pack(MAGIC, version, first)
    for i, (seq, ts, payload) in enumerate(recs):
        data += encode(seq, ts, payload, digs[i] if digs is not None else None)
    path = directory / f"{first:020d}.seg"
    path.write_bytes(data)
    return path


def written(directory: Path, recs: list[Record], segment_bytes: int = 1 << 20) -> None:
    with SegmentJournal(directory, fsync=False, segment_bytes=segment_bytes) as j:
        for i in range(0, len(recs), 7):
            j.append_batch(recs[i : i + 7])


def test_writer_format_is_the_documented_chain(tmp_path: Path) -> None:
    """The writer's bytes are exactly header + records chained from the previous digest, and the
    journal reports the head; a reopened writer continues the same chain."""
    recs = records()
    written(tmp_path / "j", recs[:20])
    written(tmp_path / "j", recs[20:])  # reopen: the chain continues from the stored head
    expected = write_segment(tmp_path, recs, digests(recs))
    (segment,) = sorted((tmp_path / "j").glob("*.seg"))
    assert segment.read_bytes() == expected.read_bytes()
    with SegmentJournal(tmp_path / "j", read_only=True) as j:
        assert j.chain_head == digests(recs)[-1]
        assert list(j.read_from(1)) == recs
    report = verify_chain(tmp_path / "j")
    assert (report.first_seq, report.last_seq, report.head) == (1, N, digests(recs)[-1].hex())


def test_chain_spans_segments(tmp_path: Path) -> None:
    recs = records()
    written(tmp_path, recs, segment_bytes=400)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert verify_chain(tmp_path).head == digests(recs)[-1].hex()
    assert anchor_at(tmp_path, 17).head == digests(recs)[16].hex()


@pytest.mark.parametrize("victim", [1, 13, N])
def test_edited_payload_with_a_valid_checksum_is_caught_at_its_sequence(
    tmp_path: Path, victim: int
) -> None:
    recs = records()
    digs = digests(recs)
    seq, ts, payload = recs[victim - 1]
    recs[victim - 1] = (seq, ts, payload.replace(b"cmd", b"CMD"))
    write_segment(tmp_path, recs, digs)
    with pytest.raises(ChainBroken, match=f"sequence {victim}: chain digest") as info:
        verify_chain(tmp_path)
    assert info.value.seq == victim


def test_edit_with_its_own_digest_rewritten_breaks_the_next_link(tmp_path: Path) -> None:
    recs = records()
    digs = digests(recs)
    recs[9] = (recs[9][0], recs[9][1], b"pay me")
    digs[9] = digests(recs[:10])[9]
    write_segment(tmp_path, recs, digs)
    with pytest.raises(ChainBroken) as info:
        verify_chain(tmp_path)
    assert info.value.seq == 11


def test_rewritten_tail_is_caught_by_an_anchor(tmp_path: Path) -> None:
    """Recomputing every later digest makes a self-consistent chain: only a head published
    before the rewrite (an anchor) exposes it, at the anchor's sequence."""
    recs = records()
    write_segment(tmp_path, recs, digests(recs))
    anchor = anchor_at(tmp_path, 30)
    recs[4] = (recs[4][0], recs[4][1], b"rewritten history")
    write_segment(tmp_path, recs, digests(recs))
    assert verify_chain(tmp_path).last_seq == N  # self-consistent without the anchor
    with pytest.raises(ChainBroken, match="differs from the anchor") as info:
        verify_chain(tmp_path, [anchor])
    assert info.value.seq == 30


def test_removed_record_is_caught(tmp_path: Path) -> None:
    recs = records()
    digs = digests(recs)
    write_segment(tmp_path, recs[:21] + recs[22:], digs[:21] + digs[22:])
    with pytest.raises(ChainBroken, match="found sequence 23") as info:
        verify_chain(tmp_path)
    assert info.value.seq == 22


def test_removed_and_renumbered_record_is_caught(tmp_path: Path) -> None:
    recs = records()
    digs = digests(recs)
    kept = recs[:21] + [(s - 1, ts, p) for s, ts, p in recs[22:]]
    write_segment(tmp_path, kept, digs[:21] + digs[22:])
    with pytest.raises(ChainBroken, match="chain digest") as info:
        verify_chain(tmp_path)
    assert info.value.seq == 22


def test_reordered_records_are_caught(tmp_path: Path) -> None:
    recs = records()
    digs = digests(recs)
    swapped = list(recs)
    swapped[5], swapped[6] = recs[6], recs[5]  # moved whole, numbers and all
    write_segment(tmp_path, swapped, [*digs[:5], digs[6], digs[5], *digs[7:]])
    with pytest.raises(ChainBroken, match="found sequence 7") as info:
        verify_chain(tmp_path)
    assert info.value.seq == 6
    # swap the payloads only (numbers kept, checksums valid): the digests disagree
    swapped = list(recs)
    swapped[5] = (6, recs[5][1], recs[6][2])
    swapped[6] = (7, recs[6][1], recs[5][2])
    write_segment(tmp_path, swapped, digs)
    with pytest.raises(ChainBroken, match="chain digest") as info:
        verify_chain(tmp_path)
    assert info.value.seq == 6


def test_flipped_byte_and_cut_history_are_caught(tmp_path: Path) -> None:
    recs = records()
    path = write_segment(tmp_path, recs, digests(recs))
    anchor = anchor_at(tmp_path)
    data = bytearray(path.read_bytes())
    data[SEGMENT_HEADER.size + 60] ^= 1  # inside record 1's body
    path.write_bytes(bytes(data))
    with pytest.raises(ChainBroken, match="sequence 1: checksum"):
        verify_chain(tmp_path)
    write_segment(tmp_path, recs[:35], digests(recs)[:35])
    with pytest.raises(ChainBroken, match=f"ends at 35, before anchored sequence {N}"):
        verify_chain(tmp_path, [anchor])


def test_old_journal_reads_byte_identical_and_joins_the_chain(tmp_path: Path) -> None:
    """A version-1 journal (no stored digests) still opens and replays the same records; a
    writer continues it in a new version-2 segment whose chain covers the old records."""
    old = records(25)
    write_segment(tmp_path, old, None, version=1)
    with SegmentJournal(tmp_path, read_only=True) as j:
        assert list(j.read_from(1)) == old
    new = records(10, first=26)
    with SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(new[:4])
        j.append_batch(new[4:])
        assert j.chain_head == digests(old + new)[-1]
    assert len(list(tmp_path.glob("*.seg"))) == 2
    with SegmentJournal(tmp_path, read_only=True) as j:
        assert list(j.read_from(1)) == old + new
        assert list(j.read_from(20, 27)) == (old + new)[19:27]
    report = verify_chain(tmp_path)
    assert (report.last_seq, report.recomputed_v1) == (35, 25)
    assert report.head == digests(old + new)[-1].hex()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_verify_and_anchor(tmp_path: Path) -> None:
    recs = records()
    journal = tmp_path / "journal"
    written(journal, recs)
    anchor_file = tmp_path / "anchor.json"
    done = _cli("anchor", "--journal", str(journal), "--seq", "20", "--out", str(anchor_file))
    assert done.returncode == 0, done.stderr
    assert anchor_file.read_bytes() == encode_anchor(anchor_at(journal, 20))
    done = _cli("verify", "--journal", str(journal), "--anchor", str(anchor_file))
    assert done.returncode == 0, done.stderr
    assert f"records 1..{N}" in done.stdout and "1 anchor(s) matched" in done.stdout
    recs[2] = (3, recs[2][1], b"edited")
    write_segment(journal, recs, digests(recs))
    done = _cli("verify", "--journal", str(journal), "--anchor", str(anchor_file))
    assert done.returncode == 3
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "kootabase audit verify: audit chain broken at sequence" in done.stderr
    done = _cli("anchor", "--journal", str(journal), "--seq", "999")
    assert done.returncode == 1 and "ends at sequence" in done.stderr
    assert "Traceback" not in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    done = _cli("verify", "--journal", str(journal), "--anchor", str(bad))
    assert done.returncode == 1 and "not an anchor file" in done.stderr


def test_old_journal_ending_in_an_empty_segment_continues(tmp_path: Path) -> None:
    """A version-1 writer that rolled to a new segment and stopped before its first record
    leaves a header-only segment; the next writer takes that name over in the current format."""
    old = records(12)
    write_segment(tmp_path, old, None, version=1)
    (tmp_path / f"{13:020d}.seg").write_bytes(SEGMENT_HEADER.pack(MAGIC, 1, 13))
    more = records(3, first=13)
    with SegmentJournal(tmp_path, fsync=False) as j:
        j.append_batch(more)
    with SegmentJournal(tmp_path, read_only=True) as j:
        assert list(j.read_from(1)) == old + more
    assert verify_chain(tmp_path).head == digests(old + more)[-1].hex()
