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

Object body: header ``<4sHQQ32s>`` (magic ``KBG1``, format version, stream seq, engine seq,
BLAKE2b-256 of the rest), then msgpack `ReadModelObject` (the read-model snapshot file's bytes,
`gateway.readmodel.encode`, and the history chain's `SegmentRef` list).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import sqlite3
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
import nats.js.errors
import structlog
from nats.js.object_store import ObjectStore

from engine.filemodes import create_private
from engine.replica import Replica
from engine.schema import StateImage
from engine.snapstore import (
    SnapshotRefused,
    decode_snapshot,
    list_names,
    object_name,
    snapshot_bucket,
)
from engine.streamlog import StreamLog, StreamNotFound
from engine.usererror import UserError
from gateway import histchain, readmodel
from gateway.histchain import SEG_SUFFIX, HistoryChain, SegmentRef
from gateway.readmodel import ReadModelImage

log = structlog.get_logger(__name__)

MAGIC: Final = b"KBG1"
FORMAT_VERSION: Final = 2
HEADER: Final = struct.Struct("<4sHQQ32s")
SUFFIX: Final = ".readmodel"
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


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a replica starts: a verified engine snapshot and the read model at its point."""

    name: str
    stream_seq: int
    last_seq: int
    replica: Replica
    readmodel: ReadModelImage
    history_db: bytes
    """Uncompressed SQLite database image (the chain's base with its deltas applied)."""
    history_refs: list[SegmentRef]
    """The chain it was built from: this replica's snapshots extend it."""


def readmodel_name(stream_seq: int) -> str:
    return object_name(stream_seq) + SUFFIX


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
    sequence; (image, history chain) or `SnapshotRefused` saying why."""
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


def _check_history_db(name: str, history_db: bytes, last_seq: int) -> None:
    mem = sqlite3.connect(":memory:")
    try:
        mem.deserialize(history_db)
        row = mem.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        if mem.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise SnapshotRefused(f"{name}: history index fails SQLite's check")
    except sqlite3.DatabaseError as exc:
        raise SnapshotRefused(f"{name}: history index unreadable ({exc})") from exc
    finally:
        mem.close()
    if row is None or int(row[0]) != last_seq:
        raise SnapshotRefused(f"{name}: history index covers {row}, snapshot {last_seq}")


class ChainBroken(Exception):
    """A segment this replica's chain names is no longer stored: its next snapshot needs a
    new base."""


async def save(
    stream_log: StreamLog,
    stream_seq: int,
    data: bytes,
    refs: list[SegmentRef] | None = None,
    segments: dict[str, bytes] | None = None,
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
    name = readmodel_name(stream_seq)
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
        self, stream_log: StreamLog, stored: set[int], chain: HistoryChain | None = None
    ) -> None:
        self.stream_log = stream_log
        self.stored = stored
        self.chain = chain
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
                    await save(self.stream_log, stream_seq, data, refs, self._segments)
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
    """Delete all but the newest ``keep`` read-model objects, then the history segments no
    kept object names and older than the oldest kept (a newer one may belong to a chain
    another gateway is storing); returns the read-model names deleted."""
    assert keep >= 1
    names = await list_names(stream_log)
    readmodels = [n for n in names if n.endswith(SUFFIX)]
    old, kept = readmodels[:-keep], readmodels[-keep:]
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


async def fetch_history(
    store: ObjectStore, name: str, refs: list[SegmentRef], last_seq: int
) -> bytes:
    """The chain's segments fetched and verified, the deltas applied to the base: the
    history index image at ``last_seq`` (`SnapshotRefused` if any piece is wrong)."""
    bodies: list[tuple[SegmentRef, bytes]] = []
    for ref in refs:
        try:
            data = (await store.get(ref.name)).data or b""
        except nats.js.errors.ObjectNotFoundError as exc:
            raise SnapshotRefused(f"{name}: history segment {ref.name} missing") from exc
        bodies.append((ref, await asyncio.to_thread(histchain.open_segment, ref, data)))
    base_ref, base_db = bodies[0]
    await asyncio.to_thread(_check_history_db, base_ref.name, base_db, base_ref.to_seq)
    return await asyncio.to_thread(histchain.apply_deltas, base_db, bodies[1:], last_seq)


async def stored_points(stream_log: StreamLog) -> set[int]:
    """Stream sequences that have a read-model object already."""
    return {int(n[: -len(SUFFIX)]) for n in await list_names(stream_log) if n.endswith(SUFFIX)}


async def load_start_point(
    stream_log: StreamLog, *, need_marketdata: bool = True, aml_rules_hash: str = ""
) -> StartPoint | None:
    """The newest engine snapshot with a read-model companion that both verify; None (after a
    log line saying why) means replay the whole stream."""
    from engine.crosscheck import recorded_checkpoint

    names = await list_names(stream_log)
    companions = {n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX)}
    engine_names = [n for n in names if n.isdigit()]
    if not engine_names:
        return None
    store = await snapshot_bucket(stream_log, create=False)
    tried = 0
    for name in reversed(engine_names):
        if name not in companions:
            continue
        tried += 1
        started = time.perf_counter()
        try:
            data = (await store.get(name)).data or b""
            recorded = await recorded_checkpoint(stream_log, int(name))
            snap = await asyncio.to_thread(decode_snapshot, name, data, recorded)
            rm_name = readmodel_name(snap.stream_seq)
            rm_data = (await store.get(rm_name)).data or b""
            img, refs = await asyncio.to_thread(
                decode, rm_name, rm_data, snap.stream_seq, snap.replica.engine.image()
            )
            if need_marketdata and img.marketdata is None:
                raise SnapshotRefused(f"{rm_name}: written without market data")
            if aml_rules_hash:
                from backoffice.aml.image import image_rules_hash

                if image_rules_hash(img.aml) != aml_rules_hash:
                    raise SnapshotRefused(f"{rm_name}: no AML state for these AML rules")
            history_db = await fetch_history(store, rm_name, refs, snap.last_seq)
        except (SnapshotRefused, nats.js.errors.Error) as exc:
            log.error("cluster_readmodel_snapshot_refused", name=name, reason=str(exc))
            continue
        log.info(
            "cluster_readmodel_snapshot_loaded",
            name=name,
            stream_seq=snap.stream_seq,
            last_seq=snap.last_seq,
            open_orders=len(img.open_orders),
            history_bytes=len(history_db),
            seconds=round(time.perf_counter() - started, 3),
        )
        return StartPoint(name, snap.stream_seq, snap.last_seq, snap.replica, img, history_db, refs)
    log.warning(
        "cluster_start_full_replay",
        reason="no snapshot with a read model verified" if tried else "no read-model snapshot",
        engine_snapshots=len(engine_names),
        tried=tried,
    )
    return None


def install_history(path: Path, history_db: bytes) -> None:
    """Replace the (derived) history index file with the snapshot's copy, before it is
    opened: written to a temporary name and renamed, stale WAL files removed first."""
    for extra in ("-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    tmp = path.with_suffix(".snapshot-tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(create_private(tmp), "wb") as fh:
        fh.write(history_db)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def fetch_start_point(
    stream_log_factory: Callable[[], Awaitable[StreamLog]],
    *,
    need_marketdata: bool = True,
    aml_rules_hash: str = "",
) -> StartPoint | None:
    """`load_start_point` from synchronous start-up code (the gateway's constructor, which may
    run inside an event loop): on its own loop in a worker thread, with its own connection."""

    async def body() -> StartPoint | None:
        stream_log = await stream_log_factory()
        try:
            return await load_start_point(
                stream_log, need_marketdata=need_marketdata, aml_rules_hash=aml_rules_hash
            )
        finally:
            await stream_log.close()

    def run() -> StartPoint | None:
        try:
            return asyncio.run(body())
        except StreamNotFound as exc:  # no stream yet (a first start): nothing to start from
            log.info("cluster_start_point_none", reason=str(exc))
            return None
        except UserError:  # NATS unreachable: one line now, not again after attach's wait
            raise
        except Exception as exc:  # NATS down, no permission: attach reports it properly
            log.warning("cluster_start_point_unavailable", error=repr(exc))
            return None

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="start-point") as pool:
        return pool.submit(run).result()
