"""Replica snapshots in the JetStream Object Store (cluster mode).

A snapshot is a `engine.replica.ReplicaImage` (derivation state + engine image) at one stream
sequence, stored as object ``<stream seq, 20 digits>`` in bucket ``KB_<stream>_SNAP``. The body
starts with a fixed header ``<4sHQQ32s>``: magic ``KBR1``, format version, stream sequence,
engine sequence, BLAKE2b-256 state hash; then the msgpack image. Snapshots are taken only at
cross-check points (`engine.crosscheck.CHECKPOINT_EVERY`), so each has a hash that the
replicas recorded independently.

Loading trusts nothing it cannot check: the header must match the body (sequence, hash of the
decoded engine image) *and* the restored engine's checkpoint digest must be the one the replicas
recorded at that stream sequence in the KV bucket. A snapshot that fails is refused loudly and
the next older one is tried; with none left the replica starts from the stream's first message:
a bad snapshot costs time, never correctness (issue 18: a replica never loads a snapshot whose
hash does not match).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import nats.js.errors
import structlog
from nats.js import api
from nats.js.object_store import ObjectStore

from engine.crosscheck import recorded_checkpoint
from engine.replica import REPLICA_IMAGE_DECODER, REPLICA_IMAGE_ENCODER, Replica, ReplicaImage
from engine.schema import FORMAT_VERSION, state_hash
from engine.streamlog import StreamLog

log = structlog.get_logger(__name__)

MAGIC: Final = b"KBR1"
HEADER: Final = struct.Struct("<4sHQQ32s")
SNAPSHOT_EVERY_CHECKPOINTS: Final = 16
"""A snapshot every 16 cross-check points (4,096 stream messages)."""
MAX_CHUNK_BYTES: Final = 512 * 1024


class SnapshotRefused(Exception):
    """A stored snapshot that does not check out; names the object and why."""


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    name: str
    stream_seq: int
    last_seq: int
    state_hash: str
    replica: Replica


def bucket_name(stream: str) -> str:
    return f"KB_{stream}_SNAP"


def object_name(stream_seq: int) -> str:
    return f"{stream_seq:020d}"


async def snapshot_bucket(stream_log: StreamLog, *, create: bool = True) -> ObjectStore:
    name = bucket_name(stream_log.spec.name)
    try:
        return await stream_log.js.object_store(name)
    except nats.js.errors.BucketNotFoundError:
        if not create:
            raise
    config = api.ObjectStoreConfig(storage=api.StorageType.FILE, replicas=stream_log.spec.replicas)
    return await stream_log.create_placed(
        lambda: stream_log.js.create_object_store(name, config=config)
    )


def encode_snapshot(image: ReplicaImage) -> tuple[bytes, str]:
    digest = state_hash(image.engine)
    header = HEADER.pack(
        MAGIC, FORMAT_VERSION, image.state.stream_seq, image.engine.last_seq, bytes.fromhex(digest)
    )
    return header + REPLICA_IMAGE_ENCODER.encode(image), digest


def decode_snapshot(name: str, data: bytes, recorded: str | None) -> LoadedSnapshot:
    """Verify and decode one stored snapshot; ``recorded`` is the replicas' hash at its
    stream sequence (None: nothing recorded, which is refused too)."""
    if len(data) < HEADER.size:
        raise SnapshotRefused(f"{name}: truncated ({len(data)} bytes)")
    magic, version, stream_seq, last_seq, digest = HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise SnapshotRefused(f"{name}: magic {magic!r} / format version {version}")
    try:
        image = REPLICA_IMAGE_DECODER.decode(data[HEADER.size :])
    except Exception as exc:
        raise SnapshotRefused(f"{name}: undecodable image ({exc})") from exc
    actual = state_hash(image.engine)
    if image.state.stream_seq != stream_seq or image.engine.last_seq != last_seq:
        raise SnapshotRefused(f"{name}: header and body disagree on sequences")
    if actual != digest.hex():
        raise SnapshotRefused(f"{name}: state hash {actual} != header {digest.hex()}")
    if recorded is None:
        raise SnapshotRefused(
            f"{name}: no hash recorded by the replicas at stream seq {stream_seq}"
        )
    replica = Replica.from_image(image)
    digest = replica.checkpoint_digest()
    if digest != recorded:
        raise SnapshotRefused(
            f"{name}: checkpoint digest {digest} != recorded {recorded} at stream seq {stream_seq}"
        )
    return LoadedSnapshot(name, stream_seq, last_seq, actual, replica)


async def save(stream_log: StreamLog, image: ReplicaImage) -> str | None:
    """Store ``image`` unless a snapshot exists at its stream sequence already (every replica
    reaches the same points; the first one stores). Returns the object name, None if skipped.
    Encoding (hashing and msgpack of the whole state) runs in a worker thread."""
    import asyncio

    store = await snapshot_bucket(stream_log)
    name = object_name(image.state.stream_seq)
    try:
        await store.get_info(name)
        return None
    except nats.js.errors.ObjectNotFoundError:
        pass
    data, digest = await asyncio.to_thread(encode_snapshot, image)
    await store.put(name, data)
    log.info(
        "stream_snapshot_stored",
        name=name,
        stream_seq=image.state.stream_seq,
        last_seq=image.engine.last_seq,
        state_hash=digest,
        bytes=len(data),
    )
    return name


async def list_names(stream_log: StreamLog) -> list[str]:
    try:
        store = await snapshot_bucket(stream_log, create=False)
        infos = await store.list(ignore_deletes=True)
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
        return []
    return sorted(i.name for i in infos if i.name and not i.deleted)


async def load_newest(
    stream_log: StreamLog,
    *,
    at_most_last_seq: int | None = None,
) -> LoadedSnapshot | None:
    """The newest snapshot that verifies (engine seq at most ``at_most_last_seq``), or None."""
    names = await list_names(stream_log)
    if not names:
        return None
    store = await snapshot_bucket(stream_log, create=False)
    for name in reversed(names):
        try:
            data = (await store.get(name)).data or b""
            snap = decode_snapshot(name, data, await recorded_checkpoint(stream_log, int(name)))
        except (SnapshotRefused, nats.js.errors.Error) as exc:
            log.error("stream_snapshot_refused", name=name, reason=str(exc))
            continue
        if at_most_last_seq is not None and snap.last_seq > at_most_last_seq:
            continue
        log.info(
            "stream_snapshot_loaded",
            name=name,
            stream_seq=snap.stream_seq,
            last_seq=snap.last_seq,
            state_hash=snap.state_hash,
        )
        return snap
    return None
