"""Read-model snapshots in the JetStream Object Store: a cluster replica's start-up without
replaying the stream's history.

An engine snapshot alone (`engine.snapstore`) lets a replica's *engine* start late, but a
gateway also needs everything its read model folded from the whole history: balances and open
orders (`gateway.readmodel`), market data's books, trades and candles (`marketdata.snapshot`),
and the closed orders and trades in the history index (`gateway.history`), which order.status
and allOrders answer for old orders. So at every engine snapshot point a gateway replica also
stores object ``<stream seq, 20 digits>.readmodel`` in the same bucket: the read-model image
and the history index at the same engine sequence, as a chain of segments (a base and the
deltas since, `gateway.histchain`) stored beside it: each snapshot ships only the rows closed
since the previous one. A new or restarted replica then
starts from the newest engine snapshot that has such a companion, plus the stream's tail.

Trust: the engine snapshot is checked against the hash the replicas recorded
(`engine.snapstore.decode_snapshot`). The read-model object has no recorded hash of its own,
so it is checked three ways before use: its header (magic, format, both sequences equal to the
engine snapshot's) and a BLAKE2b-256 of its body catch corruption and truncation; and the image
must *agree with the verified engine image* on every balance and on the set of open orders, so
a forged object that is self-consistent but shows other money is refused too. The history
segments are checked against the hashes the object lists, and for sequence continuity.
A refused object is logged (``cluster_readmodel_snapshot_refused``) and the next older pair
is tried; with none left the replica replays the whole stream (``cluster_start_full_replay``):
slower, never wrong.

A gateway without a history index (``serve --history pg``) stores its read model as
``<stream seq>.readmodel-nohistory`` with an empty chain: a name of its own, so it never takes
the place of a full object that gateways with an index need (they ignore these), while a gateway
without an index starts from either kind (`gateway.clusterstart`).

Object body: header ``<4sHQQ32s>`` (magic ``KBG1``, format version, stream seq, engine seq,
BLAKE2b-256 of the rest), then msgpack `ReadModelObject` (the read-model snapshot file's bytes,
`gateway.readmodel.encode`, and the history chain's `SegmentRef` list).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import struct
from collections.abc import Sequence
from typing import Final

import msgspec
import nats.js.errors
import structlog

from engine.schema import StateImage
from engine.snapstore import (
    SnapshotRefused,
    list_names,
    object_name,
    snapshot_bucket,
)
from engine.streamlog import StreamLog
from gateway import histchain, readmodel
from gateway.histchain import SEG_SUFFIX, HistoryChain, SegmentRef
from gateway.readmodel import ReadModelImage

log = structlog.get_logger(__name__)

MAGIC: Final = b"KBG1"
FORMAT_VERSION: Final = 2
HEADER: Final = struct.Struct("<4sHQQ32s")
SUFFIX: Final = ".readmodel"
NO_HISTORY_SUFFIX: Final = ".readmodel-nohistory"
"""A read-model object without a history chain (``--history pg``)."""
KEEP: Final = 3
"""Read-model objects kept (newest first), with the history segments their chains name. Older
engine snapshots stay (small; the ledger projector starts from one at or before its
checkpoint)."""


class ReadModelObject(msgspec.Struct, array_like=True, frozen=True):
    readmodel: bytes
    """`gateway.readmodel.encode` bytes (its own header and CRC32C)."""
    history: list[SegmentRef]
    """The history index through the snapshot's engine sequence: a base and deltas, each
    segment a separate object (`gateway.histchain`)."""


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(ReadModelObject)


def readmodel_name(stream_seq: int, suffix: str = SUFFIX) -> str:
    return object_name(stream_seq) + suffix


def history_image(db: sqlite3.Connection, last_seq: int) -> bytes:
    """A copy of the history index (call on the writer's thread, between its commits) that says
    it covers exactly ``last_seq``: the tail the restored replica applies rewrites any later
    row it already holds (``INSERT OR REPLACE``)."""
    mem = sqlite3.connect(":memory:")
    try:
        db.backup(mem)
        mem.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (last_seq,))
        mem.commit()
        image = bytearray(mem.serialize())
    finally:
        mem.close()
    # the copy keeps the source's WAL mark (header bytes 18 and 19 = 2), which a database
    # opened from memory cannot honour: mark it a rollback-journal file (1); the index turns
    # WAL on again when it opens the installed copy
    image[18:20] = b"\x01\x01"
    return bytes(image)


def encode(
    stream_seq: int, last_seq: int, readmodel_bytes: bytes, history: list[SegmentRef]
) -> bytes:
    body = _ENCODER.encode(ReadModelObject(readmodel_bytes, history))
    digest = hashlib.blake2b(body, digest_size=32).digest()
    return HEADER.pack(MAGIC, FORMAT_VERSION, stream_seq, last_seq, digest) + body


def decode(
    name: str, data: bytes, stream_seq: int, engine: StateImage
) -> tuple[ReadModelImage, list[SegmentRef]]:
    """Verify one stored read-model object against the verified engine image at the same stream
    sequence; (image, history chain) or `SnapshotRefused` saying why. An object named as one
    without history must list no chain; any other must list a complete one."""
    if len(data) < HEADER.size:
        raise SnapshotRefused(f"{name}: truncated ({len(data)} bytes)")
    magic, version, h_stream_seq, h_last_seq, digest = HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise SnapshotRefused(f"{name}: magic {magic!r} / format version {version}")
    if (h_stream_seq, h_last_seq) != (stream_seq, engine.last_seq):
        raise SnapshotRefused(
            f"{name}: sequences {h_stream_seq}/{h_last_seq}, engine snapshot at "
            f"{stream_seq}/{engine.last_seq}"
        )
    body = data[HEADER.size :]
    actual = hashlib.blake2b(body, digest_size=32).digest()
    if actual != digest:
        raise SnapshotRefused(f"{name}: body hash {actual.hex()} != header {digest.hex()}")
    try:
        obj = _DECODER.decode(body)
        img = readmodel.decode(obj.readmodel, name)
    except (ValueError, msgspec.DecodeError) as exc:
        raise SnapshotRefused(f"{name}: undecodable ({exc})") from exc
    if img.last_seq != engine.last_seq:
        raise SnapshotRefused(f"{name}: image at seq {img.last_seq}, engine {engine.last_seq}")
    disagreement = disagrees_with_engine(img, engine)
    if disagreement is not None:
        raise SnapshotRefused(f"{name}: disagrees with the engine snapshot: {disagreement}")
    if name.endswith(NO_HISTORY_SUFFIX):
        if obj.history:
            raise SnapshotRefused(f"{name}: a history chain in an object without history")
    else:
        histchain.check_chain(name, obj.history, engine.last_seq)
    return img, obj.history


def disagrees_with_engine(img: ReadModelImage, engine: StateImage) -> str | None:
    """What the read model shows differently from the engine (None: balances and open orders
    agree): the money and the orders a client sees must be the engine's."""
    want = {
        a.account_id: {
            b.asset_id: (b.available_atoms, b.held_orders_atoms, b.held_withdrawals_atoms)
            for b in a.balances
            if b.available_atoms or b.held_orders_atoms or b.held_withdrawals_atoms
        }
        for a in engine.accounts
    }
    have = {
        a.account_id: {asset: (av, ho, hw) for asset, av, ho, hw in a.balances if av or ho or hw}
        for a in img.accounts
    }
    for account_id in sorted(set(want) | set(have)):
        if want.get(account_id, {}) != have.get(account_id, {}):
            return f"balances of account {account_id}"
    engine_orders = {o.order_id for o in engine.orders}
    engine_orders.update(o.order_id for o in engine.conditional_orders)
    image_orders = {o.order_id for o in img.open_orders}
    if engine_orders != image_orders:
        return f"open orders ({len(image_orders)} shown, {len(engine_orders)} in the engine)"
    return None


class ChainBroken(Exception):
    """A segment this replica's chain names is no longer stored: its next snapshot needs a
    new base."""


async def save(
    stream_log: StreamLog,
    stream_seq: int,
    data: bytes,
    refs: list[SegmentRef] | None = None,
    segments: dict[str, bytes] | None = None,
    suffix: str = SUFFIX,
) -> str | None:
    """Store the history segments not stored yet (always: the next snapshot's chain extends
    them), then the read-model object unless one exists at ``stream_seq`` (every gateway
    replica reaches the same points; the first stores). Returns the name, None if skipped;
    `ChainBroken` if a segment the chain names is gone (pruned by another gateway)."""
    store = await snapshot_bucket(stream_log)
    present = set(await list_names(stream_log))
    for seg_name, seg_data in (segments or {}).items():
        if seg_name not in present:
            await store.put(seg_name, seg_data)
            present.add(seg_name)
    missing = [r.name for r in refs or [] if r.name not in present]
    if missing:
        raise ChainBroken(f"history segments {missing} not stored")
    name = readmodel_name(stream_seq, suffix)
    try:
        await store.get_info(name)
        return None
    except nats.js.errors.ObjectNotFoundError:
        pass
    await store.put(name, data)
    log.info("cluster_readmodel_snapshot_stored", name=name, bytes=len(data))
    return name


class Uploader:
    """Stores read-model objects one at a time, newest first: a point that arrives while another
    is uploading replaces any point still waiting (a start-up needs only the newest pair, and a
    replica catching up passes many points in a burst that timed out when stored at once).
    A failed store is retried with a growing pause until it is stored or a newer point
    supersedes it: giving up after a few attempts left a quiet stream with no snapshot at all
    until the next point, however long that took."""

    RETRY_PAUSE_MAX_S: Final = 5.0

    def __init__(
        self,
        stream_log: StreamLog,
        stored: set[int],
        chain: HistoryChain | None = None,
        *,
        suffix: str = SUFFIX,
    ) -> None:
        self.stream_log = stream_log
        self.stored = stored
        self.chain = chain
        self.suffix = suffix
        """`SUFFIX`, or `NO_HISTORY_SUFFIX` for a gateway without a history index."""
        self._next: tuple[int, bytes, list[SegmentRef]] | None = None
        self._segments: dict[str, bytes] = {}
        """Segments not stored yet that the newest chain names: a superseded point's delta
        is kept, the newer chain extends it."""
        self._task: asyncio.Task[None] | None = None

    def offer(
        self,
        stream_seq: int,
        data: bytes,
        refs: list[SegmentRef] | None = None,
        segments: Sequence[tuple[SegmentRef, bytes]] = (),
    ) -> None:
        self._next = (stream_seq, data, refs or [])
        self._segments.update((r.name, d) for r, d in segments)
        wanted = {r.name for r in refs or []}
        self._segments = {n: d for n, d in self._segments.items() if n in wanted}
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rm-upload")

    async def _run(self) -> None:
        while self._next is not None:
            stream_seq, data, refs = self._next
            self._next = None
            attempt = 0
            while True:
                attempt += 1
                try:
                    await save(self.stream_log, stream_seq, data, refs, self._segments, self.suffix)
                except ChainBroken as exc:
                    log.warning("cluster_history_chain_broken", reason=str(exc))
                    if self.chain is not None:
                        self.chain.broken = True  # the next point ships a new base
                    break
                except Exception as exc:
                    log.warning(
                        "cluster_readmodel_snapshot_not_stored",
                        stream_seq=stream_seq,
                        attempt=attempt,
                        error=repr(exc),
                    )
                    if self._next is not None:
                        break  # superseded: the newer point is the one worth storing
                    await asyncio.sleep(min(0.5 * attempt, self.RETRY_PAUSE_MAX_S))
                    continue
                self.stored.add(stream_seq)
                stored_now = {r.name for r in refs}
                self._segments = {n: d for n, d in self._segments.items() if n not in stored_now}
                with contextlib.suppress(Exception):  # another gateway may be pruning too
                    await prune(self.stream_log)
                break

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def prune(stream_log: StreamLog, keep: int = KEEP) -> list[str]:
    """Delete all but the newest ``keep`` read-model objects of each kind (with and without
    history), then the history segments no kept object names and older than the oldest kept (a
    newer one may belong to a chain another gateway is storing); returns the names deleted."""
    assert keep >= 1
    names = await list_names(stream_log)
    readmodels = [n for n in names if n.endswith(SUFFIX)]
    old, kept = readmodels[:-keep], readmodels[-keep:]
    lite = [n for n in names if n.endswith(NO_HISTORY_SUFFIX)]
    old += lite[:-keep]
    if not old:
        return old
    store = await snapshot_bucket(stream_log, create=False)
    for name in old:
        await store.delete(name)
    log.info("cluster_readmodel_snapshots_pruned", names=old)
    wanted: set[str] = set()
    for name in kept:  # small objects now: the history is in the segments
        with contextlib.suppress(Exception):
            data = (await store.get(name)).data or b""
            wanted.update(r.name for r in _DECODER.decode(data[HEADER.size :]).history)
    if not wanted:
        return old  # nothing readable kept: leave the segments for a later prune
    oldest_base = min(int(n.split("-", 1)[0]) for n in wanted)
    dropped = [
        n
        for n in names
        if n.endswith(SEG_SUFFIX) and n not in wanted and int(n.split("-", 1)[0]) < oldest_base
    ]
    for name in dropped:
        await store.delete(name)
    if dropped:
        log.info("cluster_history_segments_pruned", names=dropped)
    return old


async def stored_points(stream_log: StreamLog, *, any_history: bool = False) -> set[int]:
    """Stream sequences that have a read-model object already (with ``any_history``, for a
    gateway without a history index, one of either kind)."""
    suffixes = (SUFFIX, NO_HISTORY_SUFFIX) if any_history else (SUFFIX,)
    return {int(n.rsplit(".", 1)[0]) for n in await list_names(stream_log) if n.endswith(suffixes)}
