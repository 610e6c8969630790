"""Snapshot provenance: does a snapshot belong to this journal's history?

A snapshot's own state hash proves its image is intact, not where it came from: a snapshot
copied from another data directory at the same sequence is internally perfect. Two checks tie
it to the journal (issue 11 item 5, issue 17):

* the *journal anchor* (default, O(1)): when a snapshot is written it records the sequence,
  timestamp and BLAKE2b-256 digest of the journal record at its ``last_seq``; at start the node
  reads that one record (through the journal's sparse index) and requires the same anchor. A
  journal with another history at that sequence has another record there.
* the *full replay* (opt-in, and once for snapshots written before anchors existed): replay the
  journal from genesis to the snapshot's sequence and require the snapshot's state hash. This
  also proves the snapshot's state is what this engine computes from that history (it catches
  a snapshot written by a faulty or different engine on the same journal), at the cost of a
  replay that grows with history length.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from engine.journal import Journal
from engine.usererror import UserError

_SEQ_TS: Final = struct.Struct("<Qq")
DIGEST_BYTES: Final = 32
ANCHOR: Final = struct.Struct(f"<Qq{DIGEST_BYTES}s")
"""On-disk anchor: sequence (u64), timestamp_ns (i64), BLAKE2b-256 digest of the record."""


@dataclass(frozen=True, slots=True)
class JournalAnchor:
    """Identity of one journal record: its sequence, timestamp and the BLAKE2b-256 digest of
    its sequence (u64 LE), timestamp (i64 LE) and payload bytes. Sequence 0 (a snapshot of the
    empty state) has timestamp 0 and an all-zero digest: there is no record to match."""

    seq: int
    timestamp_ns: int
    digest: str

    def __post_init__(self) -> None:
        assert self.seq >= 0
        assert len(self.digest) == 2 * DIGEST_BYTES

    def pack(self) -> bytes:
        return ANCHOR.pack(self.seq, self.timestamp_ns, bytes.fromhex(self.digest))

    @classmethod
    def unpack(cls, data: bytes) -> JournalAnchor:
        seq, ts, digest = ANCHOR.unpack(data)
        return cls(seq, ts, digest.hex())

    def __str__(self) -> str:
        return f"seq {self.seq} ts {self.timestamp_ns} record {self.digest}"


GENESIS_ANCHOR: Final = JournalAnchor(0, 0, "00" * DIGEST_BYTES)


def anchor_at(journal: Journal, seq: int) -> JournalAnchor:
    """The anchor of record ``seq`` (one record read, its checksum re-verified by the journal);
    raises ValueError when the journal does not hold that record."""
    if seq == 0:
        return GENESIS_ANCHOR
    for rseq, ts, payload in journal.read_from(seq, seq):
        assert rseq == seq
        digest = hashlib.blake2b(_SEQ_TS.pack(rseq, ts), digest_size=DIGEST_BYTES)
        digest.update(payload)
        return JournalAnchor(rseq, ts, digest.hexdigest())
    raise ValueError(f"journal holds no record {seq}")


class SnapshotMismatch(UserError):
    """The newest snapshot does not describe the journal's history (copied from another data
    directory, or written by a different engine): starting from it would serve a state no
    replay reproduces."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="move the snapshot aside (the journal is the source of truth) and start again",
        )

    @classmethod
    def by_hash(cls, path: object, seq: int, recorded: str, replayed: str) -> SnapshotMismatch:
        return cls(
            f"snapshot {path} records state hash {recorded} after seq {seq}, but replaying the "
            f"journal to that seq gives {replayed}: the snapshot is from a different history; "
            "refusing to start"
        )

    @classmethod
    def by_anchor(
        cls, path: object, expected: JournalAnchor, found: JournalAnchor | str
    ) -> SnapshotMismatch:
        return cls(
            f"snapshot {path} is anchored to journal record ({expected}), but the journal has "
            f"({found}): the snapshot is from a different history; refusing to start"
        )
