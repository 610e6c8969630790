"""The audit chain: check a journal's hash chain end to end, and export anchors.

Every journal record carries a chain digest that commits to the record and, through its key,
to every record before it (`engine.journal.chain_digest`). An auditor therefore needs two
things: a walk that recomputes each digest from the bytes on disk (`verify_chain`), and the
chain head at some sequence published where the exchange cannot rewrite it (an *anchor*,
`anchor_at`). Then:

* editing a record without fixing its checksum breaks the checksum at that sequence;
* editing it and fixing the checksum breaks its digest;
* also rewriting its digest breaks the next record's digest (its key changed);
* removing, inserting or reordering records breaks the sequence numbers or the digests;
* rewriting *every* digest after the edit (the whole tail) is only caught by an anchor taken
  after the edited record: the digest at the anchor's sequence differs. That is what anchors
  are for; the tail after the newest anchor is only as trustworthy as the exchange.

The walk reads the segment files itself instead of trusting `SegmentJournal`'s own checks:
it must name the *sequence* of the first bad record (not a file offset), and a tail the writer
would silently truncate as torn is reported, not skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import msgspec

from engine.journal import (
    DIGEST_BYTES,
    GENESIS_DIGEST,
    MAGIC,
    RECORD_HEADER,
    SEGMENT_HEADER,
    ChainedRecord,
    JournalMissing,
    chain_digest,
)
from engine.journalformat import READABLE_VERSIONS
from engine.usererror import UserError

ANCHOR_FORMAT = "kootabase-anchor/1"
_SEQ_TS = struct.Struct("<Qq")


class Anchor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The chain head after record ``seq``: publish it, keep it, check the journal against it."""

    format: str
    seq: int
    ts_ns: int
    head: str
    """Hex of the chain digest of record ``seq``."""


class ChainBroken(UserError):
    """The journal's bytes are not an unbroken chain: ``seq`` is the first record that fails."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(
            f"audit chain broken at sequence {seq}: {reason}",
            hint="the journal was altered or damaged there; compare with a replica or a backup",
            exit_code=3,
        )
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ChainReport:
    first_seq: int
    last_seq: int
    head: str
    """Hex chain digest of the last record (of ``GENESIS_DIGEST`` for an empty journal)."""
    recomputed_v1: int
    """Records of format version 1 (no stored digest): their digests were computed here."""
    anchors_matched: int


def load_anchor(path: Path) -> Anchor:
    """Read an anchor file; a clear error for anything that is not one."""
    try:
        anchor = msgspec.json.decode(path.read_bytes(), type=Anchor)
    except OSError as exc:
        raise UserError(f"cannot read anchor {path}: {exc.strerror or exc}") from None
    except msgspec.DecodeError as exc:
        raise UserError(f"{path} is not an anchor file: {exc}") from None
    if anchor.format != ANCHOR_FORMAT or anchor.seq < 1 or len(anchor.head) != 2 * DIGEST_BYTES:
        raise UserError(f"{path} is not a {ANCHOR_FORMAT} anchor")
    try:
        bytes.fromhex(anchor.head)
    except ValueError:
        raise UserError(f"{path}: head is not hex") from None
    return anchor


def encode_anchor(anchor: Anchor) -> bytes:
    return msgspec.json.format(msgspec.json.encode(anchor), indent=2) + b"\n"


def walk_records(journal_dir: Path) -> Iterator[ChainedRecord]:
    """Every record on disk in order, checked for framing, checksum, sequence and time.

    Raises `ChainBroken` naming the sequence where the bytes stop being a valid journal. A
    partial record at the very end of the last segment (a batch being written, or a torn tail)
    ends the walk: it was never acknowledged.
    """
    if not journal_dir.is_dir():
        raise JournalMissing(journal_dir)
    paths = sorted(journal_dir.glob("*.seg"))
    expected: int | None = None
    prev_ts: int | None = None
    for n, path in enumerate(paths):
        last = n == len(paths) - 1
        stem = path.stem
        if len(stem) != 20 or not stem.isdigit():
            raise ChainBroken(expected or 1, f"{path.name} is not a segment name")
        first = int(stem)
        if expected is not None and first != expected:
            raise ChainBroken(expected, f"segment {path.name} starts at {first}: records missing")
        expected = first if expected is None else expected
        data = path.read_bytes()
        if len(data) < SEGMENT_HEADER.size:
            if last:
                return
            raise ChainBroken(expected, f"segment {path.name} has no header")
        magic, version, header_seq = SEGMENT_HEADER.unpack_from(data, 0)
        if magic != MAGIC or version not in READABLE_VERSIONS or header_seq != first:
            raise ChainBroken(expected, f"segment {path.name} has a bad header")
        digest_bytes = DIGEST_BYTES if version >= 2 else 0
        off = SEGMENT_HEADER.size
        while off < len(data):
            if len(data) - off < RECORD_HEADER.size:
                if last:
                    return
                raise ChainBroken(expected, "record cut short inside the journal")
            length, crc, seq, ts = RECORD_HEADER.unpack_from(data, off)
            end = off + RECORD_HEADER.size + length
            if end > len(data):
                if last:
                    return
                raise ChainBroken(expected, "record cut short inside the journal")
            body = data[off + 8 : end]
            if google_crc32c.value(body) != crc:
                raise ChainBroken(expected, "checksum mismatch: the record's bytes were changed")
            if seq != expected:
                raise ChainBroken(
                    expected,
                    f"found sequence {seq}: a record was removed, inserted or moved",
                )
            if prev_ts is not None and ts < prev_ts:
                raise ChainBroken(seq, f"timestamp goes back ({ts} < {prev_ts}): records moved")
            if length < digest_bytes:
                raise ChainBroken(seq, "record too short to hold its chain digest")
            if digest_bytes:
                stored = body[_SEQ_TS.size : _SEQ_TS.size + DIGEST_BYTES]
                yield seq, ts, body[_SEQ_TS.size + DIGEST_BYTES :], stored
            else:
                yield seq, ts, body[_SEQ_TS.size :], None
            prev_ts, expected, off = ts, expected + 1, end


def chain_heads(
    records: Iterable[ChainedRecord], start: bytes = GENESIS_DIGEST
) -> Iterator[tuple[int, int, bytes, bool]]:
    """``(seq, ts_ns, digest, was_v1)`` for each record, each stored digest checked.

    Works on any source of records: a journal walk, or the records a replica derives from
    the cluster's stream (whose chain is the same function of the same records).
    """
    head = start
    for seq, ts, payload, stored in records:
        head_next = chain_digest(head, seq, ts, payload)
        if stored is not None and stored != head_next:
            raise ChainBroken(
                seq,
                "chain digest does not match: this record, or the one before it, was changed",
            )
        head = head_next
        yield seq, ts, head, stored is None


def verify_chain(journal_dir: Path, anchors: Iterable[Anchor] = ()) -> ChainReport:
    """Walk the whole journal, recompute every digest, and compare the anchors given."""
    pending = {a.seq: a for a in anchors}
    first = last = 0
    head = GENESIS_DIGEST
    v1 = matched = 0
    for seq, ts, digest, was_v1 in chain_heads(walk_records(journal_dir)):
        first = first or seq
        last, head = seq, digest
        v1 += was_v1
        anchor = pending.pop(seq, None)
        if anchor is not None:
            if anchor.head != digest.hex() or anchor.ts_ns != ts:
                raise ChainBroken(
                    seq,
                    f"chain head {digest.hex()[:16]}... differs from the anchor's "
                    f"{anchor.head[:16]}...: history up to here was rewritten",
                )
            matched += 1
    if pending:
        missing = min(pending)
        raise ChainBroken(
            last + 1, f"the journal ends at {last}, before anchored sequence {missing}"
        )
    return ChainReport(first or 1, last, head.hex(), v1, matched)


def anchor_at(journal_dir: Path, seq: int | None = None) -> Anchor:
    """The chain head after record ``seq`` (default: the last), the chain checked up to it."""
    found: Anchor | None = None
    for rseq, ts, digest, _ in chain_heads(walk_records(journal_dir)):
        found = Anchor(ANCHOR_FORMAT, rseq, ts, digest.hex())
        if rseq == seq:
            return found
    if found is None:
        raise UserError("the journal holds no record: nothing to anchor")
    if seq is not None:
        raise UserError(f"the journal ends at sequence {found.seq}, not {seq}")
    return found


async def stream_chain(
    stream_log: object, seqs: Iterable[int] = ()
) -> tuple[Anchor | None, dict[int, Anchor]]:
    """The chain over the cluster's stream: (the head after its last record, the heads at
    ``seqs``). Records are what a replica derives (`engine.replica.Applied.records`: the same
    as an exported journal's), so these anchors and a journal's agree record for record."""
    from engine.streamreplay import replay_stream

    wanted = set(seqs)
    found: dict[int, Anchor] = {}
    state: dict[str, object] = {"head": GENESIS_DIGEST, "last": None}

    def on_applied(applied: object) -> None:
        head = state["head"]
        assert isinstance(head, bytes)
        for seq, ts, payload in applied.records:  # type: ignore[attr-defined]
            head = chain_digest(head, seq, ts, payload)
            anchor = Anchor(ANCHOR_FORMAT, seq, ts, head.hex())
            state["last"] = anchor
            if seq in wanted:
                found[seq] = anchor
        state["head"] = head

    await replay_stream(stream_log, on_applied=on_applied)  # type: ignore[arg-type]
    last = state["last"]
    assert last is None or isinstance(last, Anchor)
    return last, found
