"""Where a cluster replica starts: the newest verified engine snapshot and read-model object in
the JetStream Object Store (`gateway.clustersnap` stores and verifies them), with the history
index rebuilt from its chain for a gateway that keeps one.

A gateway without a history index (``serve --history pg``) and a market-data replica need no
history: they accept a read-model object of either kind (with a history chain or without,
`clustersnap.NO_HISTORY_SUFFIX`), preferring the newest point, and fetch no segment.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import nats.js.errors
import structlog
from nats.js.object_store import ObjectStore

from engine.filemodes import create_private
from engine.replica import Replica
from engine.snapstore import SnapshotRefused, decode_snapshot, list_names, snapshot_bucket
from engine.streamlog import StreamLog, StreamNotFound
from engine.usererror import UserError
from gateway import histchain
from gateway.clustersnap import NO_HISTORY_SUFFIX, SUFFIX, decode, readmodel_name
from gateway.histchain import SegmentRef
from gateway.readmodel import ReadModelImage

log = structlog.get_logger("gateway.clustersnap")


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a replica starts: a verified engine snapshot and the read model at its point."""

    name: str
    stream_seq: int
    last_seq: int
    replica: Replica
    readmodel: ReadModelImage
    history_db: bytes
    """Uncompressed SQLite database image (the chain's base with its deltas applied); empty
    when the history was not asked for."""
    history_refs: list[SegmentRef]
    """The chain it was built from: this replica's snapshots extend it."""


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


async def load_start_point(
    stream_log: StreamLog,
    *,
    need_marketdata: bool = True,
    aml_rules_hash: str = "",
    need_history: bool = True,
) -> StartPoint | None:
    """The newest engine snapshot with a read-model companion that both verify; None (after a
    log line saying why) means replay the whole stream. Without ``need_history`` a companion
    without a history chain will do too, and no history is fetched."""
    from engine.crosscheck import recorded_checkpoint

    names = await list_names(stream_log)
    companions = {n[: -len(SUFFIX)]: SUFFIX for n in names if n.endswith(SUFFIX)}
    if not need_history:
        for n in names:
            if n.endswith(NO_HISTORY_SUFFIX):
                companions.setdefault(n[: -len(NO_HISTORY_SUFFIX)], NO_HISTORY_SUFFIX)
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
            rm_name = readmodel_name(snap.stream_seq, companions[name])
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
            history_db = (
                await fetch_history(store, rm_name, refs, snap.last_seq) if need_history else b""
            )
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
    need_history: bool = True,
) -> StartPoint | None:
    """`load_start_point` from synchronous start-up code (the gateway's constructor, which may
    run inside an event loop): on its own loop in a worker thread, with its own connection."""

    async def body() -> StartPoint | None:
        stream_log = await stream_log_factory()
        try:
            return await load_start_point(
                stream_log,
                need_marketdata=need_marketdata,
                aml_rules_hash=aml_rules_hash,
                need_history=need_history,
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
