"""The history index in cluster snapshots as a chain of segments: a base plus deltas.

Why: a read-model snapshot used to carry a copy of the whole history index (closed orders and
trades), ~2.8 us of CPU and ~60 bytes of Object Store per closed order *held*, paid again at
every snapshot point (docs/scaling.md, "history copy"). Rows are written once, when an order
closes or a trade happens, so a snapshot only needs the rows written since the previous one.

A chain is a list of `SegmentRef`: first a *base* (the index as an SQLite image, covering
engine sequences ``(0, to_seq]``), then *deltas* (the rows the history writer committed in
``(from_seq, to_seq]``, msgpack, zlib), each starting where the previous ended. The read-model
object (`gateway.clustersnap`) lists its chain with each segment's BLAKE2b-256, so its own hash
authenticates every segment; a segment that is missing, damaged or out of sequence makes the
whole read-model object refused (the replica falls back to an older one or to a full replay).
A new base is cut when the deltas since the last base outweigh a quarter of it (bytes,
`DELTAS_PER_BASE`) or the chain reaches `MAX_SEGMENTS`: the base's cost is then spread over
the points since, a constant per row closed (not per row held), and a cold start inserts a
bounded share of the rows instead of installing them with the base.

Segments are content-addressed (``<to_seq>-<from_seq>-<hash prefix>.hseg``): two gateways that
cut the same delta store one object; each gateway's base is its own.

Known difference from the local index: retention (`HistoryIndex.prune_unfilled`) deletes rows,
deltas only add, so a chain may hold unfilled orders older than the retention the source had
dropped; the restored replica's writer prunes them at its first commit.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import struct
import zlib
from collections.abc import Callable
from typing import Final

import msgspec

from engine.snapstore import SnapshotRefused
from gateway.history.index import _ORDER_INSERT, _TRADE_INSERT, ORDER_KEY, TRADE_KEY

SEG_MAGIC: Final = b"KBH1"
SEG_HEADER: Final = struct.Struct("<4sBQQ")
"""magic, kind, from_seq, to_seq; the body follows (its hash is in the referring chain)."""
SEG_SUFFIX: Final = ".hseg"
BASE: Final = 0
DELTA: Final = 1
DELTAS_PER_BASE: Final = 4
"""A new base is cut once the deltas since the last exceed 1/4 of its bytes. Amortized, a point
then ships ~5x its delta; a cold start applies at most a quarter of the base's bytes as rows
(inserting a row costs a cold start ~10 us, installing it in the base ~nothing; measured in
`bench.history_snapshot_bench`)."""
MAX_SEGMENTS: Final = 32
"""Chain length at most (each is one Object Store fetch at a cold start)."""

MAX_PENDING_ROWS: Final = 1_000_000
"""Rows held for the next delta at most (~100 MB); past it the next snapshot ships a base."""

Row = tuple[object, ...]


class SegmentRef(msgspec.Struct, array_like=True, frozen=True):
    name: str
    kind: int
    from_seq: int
    to_seq: int
    digest: bytes
    """BLAKE2b-256 of the whole stored segment object."""
    size_bytes: int


class _Delta(msgspec.Struct, array_like=True, frozen=True):
    orders: list[tuple[int, int, int, int, int, int, bool, bytes]]
    trades: list[tuple[int, int, int, int, int, bytes]]


_ENCODER: Final = msgspec.msgpack.Encoder()
_DELTA_DECODER: Final = msgspec.msgpack.Decoder(_Delta)


def segment(kind: int, from_seq: int, to_seq: int, body: bytes) -> tuple[SegmentRef, bytes]:
    """One stored segment object and the reference a chain keeps to it."""
    data = SEG_HEADER.pack(SEG_MAGIC, kind, from_seq, to_seq) + zlib.compress(body, 1)
    digest = hashlib.blake2b(data, digest_size=32).digest()
    name = f"{to_seq:020d}-{from_seq:020d}-{digest[:8].hex()}{SEG_SUFFIX}"
    return SegmentRef(name, kind, from_seq, to_seq, digest, len(data)), data


def check_chain(name: str, refs: list[SegmentRef], last_seq: int) -> None:
    """A base from sequence 0, then deltas each starting where the previous ended, ending at
    the snapshot's ``last_seq``."""
    if not refs or refs[0].kind != BASE or refs[0].from_seq != 0:
        raise SnapshotRefused(f"{name}: history chain does not start with a base")
    for prev, ref in itertools.pairwise(refs):
        if ref.kind != DELTA or ref.from_seq != prev.to_seq:
            raise SnapshotRefused(f"{name}: history chain gap: {ref.name} follows {prev.to_seq}")
    if refs[-1].to_seq != last_seq:
        raise SnapshotRefused(f"{name}: history chain ends at {refs[-1].to_seq}, not {last_seq}")


def open_segment(ref: SegmentRef, data: bytes) -> bytes:
    """The uncompressed body of a fetched segment, after its hash and header are checked."""
    actual = hashlib.blake2b(data, digest_size=32).digest()
    if actual != ref.digest:
        raise SnapshotRefused(f"history segment {ref.name}: hash {actual.hex()[:16]} differs")
    if len(data) < SEG_HEADER.size:
        raise SnapshotRefused(f"history segment {ref.name}: truncated")
    header = SEG_HEADER.unpack_from(data)
    if header != (SEG_MAGIC, ref.kind, ref.from_seq, ref.to_seq):
        raise SnapshotRefused(f"history segment {ref.name}: header {header[1:]}")
    try:
        return zlib.decompress(data[SEG_HEADER.size :])
    except zlib.error as exc:
        raise SnapshotRefused(f"history segment {ref.name}: undecodable ({exc})") from exc


def apply_deltas(base_db: bytes, deltas: list[tuple[SegmentRef, bytes]], last_seq: int) -> bytes:
    """The base image with the deltas' rows written in order (``INSERT OR REPLACE``, as the
    writer does), saying it covers ``last_seq``: the image to install."""
    if not deltas:
        return base_db
    mem = sqlite3.connect(":memory:")
    try:
        mem.deserialize(base_db)
        for ref, body in deltas:
            try:
                delta = _DELTA_DECODER.decode(body)
            except msgspec.DecodeError as exc:
                raise SnapshotRefused(f"history segment {ref.name}: undecodable ({exc})") from exc
            # In key order, not commit order: each insert then lands next to the previous one
            # instead of seeking across the whole B-tree (~25 % less CPU a row, docs/scaling.md).
            # The sort is stable, so a key written twice in one delta keeps its last version.
            mem.executemany(_ORDER_INSERT, sorted(delta.orders, key=ORDER_KEY))
            mem.executemany(_TRADE_INSERT, sorted(delta.trades, key=TRADE_KEY))
        mem.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (last_seq,))
        mem.commit()
        image = bytearray(mem.serialize())
    except sqlite3.DatabaseError as exc:
        raise SnapshotRefused(f"history deltas do not apply ({exc})") from exc
    finally:
        mem.close()
    image[18:20] = b"\x01\x01"  # rollback-journal mark, as `clustersnap.history_image`
    return bytes(image)


class HistoryChain:
    """The chain this replica's snapshots extend, and the rows committed since its end.

    Threads: `add` and `cut` run on the history writer's thread only (``add`` is the writer's
    ``on_rows`` hook, ``cut`` runs in a snapshot's ``after`` callback); ``broken`` is set from
    the loop when a stored segment disappeared, and makes the next cut a base."""

    def __init__(self, refs: list[SegmentRef], from_seq: int) -> None:
        self.refs = list(refs) if refs and refs[-1].to_seq == from_seq else []
        self.from_seq = from_seq
        self.orders: list[Row] = []
        self.trades: list[Row] = []
        self.broken = False

    def add(self, last_seq: int, orders: list[Row], trades: list[Row]) -> None:
        """Keep a commit's rows for the next delta; none while a base is due anyway (a full
        replay from the stream's start), nor past `MAX_PENDING_ROWS` (a replica passing many
        stored points while catching up): the next cut is then a base."""
        if not self.refs or self.broken:
            return
        if len(self.orders) + len(self.trades) > MAX_PENDING_ROWS:
            self.broken = True
            self.orders, self.trades = [], []
            return
        self.orders.extend(orders)
        self.trades.extend(trades)

    def cut(
        self, last_seq: int, base_image: Callable[[], bytes]
    ) -> tuple[list[SegmentRef], list[tuple[SegmentRef, bytes]]]:
        """The chain through ``last_seq`` and the new segment to store; ``base_image`` (the
        index image, `clustersnap.history_image`) is taken only when a base is due: it is the
        cost this chain exists to avoid."""
        assert last_seq >= self.from_seq, (last_seq, self.from_seq)
        rows = _Delta(self.orders, self.trades)  # type: ignore[arg-type]
        self.orders, self.trades = [], []
        new: list[tuple[SegmentRef, bytes]] = []
        if self.refs and not self.broken and len(self.refs) < MAX_SEGMENTS:
            body = _ENCODER.encode(rows)
            ref, data = segment(DELTA, self.from_seq, last_seq, body)
            deltas = sum(r.size_bytes for r in self.refs[1:]) + ref.size_bytes
            if deltas * DELTAS_PER_BASE <= self.refs[0].size_bytes:
                self.refs.append(ref)
                new.append((ref, data))
        if not new:
            ref, data = segment(BASE, 0, last_seq, base_image())
            self.refs = [ref]
            new.append((ref, data))
            self.broken = False
        self.from_seq = last_seq
        return list(self.refs), new
