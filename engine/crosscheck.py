"""The hash cross-check: replicas record ``(stream seq, state hash)`` and stop on disagreement.

Determinism is checked continuously, not assumed (DESIGN.md, Cluster mode). Every
`CHECKPOINT_EVERY` stream messages (a fixed interval of the stream, so every replica stops at
the same states) a replica computes its checkpoint digest (the canonical state hashed straight
from the engine's arrays, `engine.core.digest`: ~10 times cheaper than the image's state hash
on a large book, the same divergence detection) and writes it to the stream's KV bucket
``KB_<stream>_HASH`` under ``cp.<stream seq>``: the first writer creates the key, every later
one compares with it. A replica whose hash differs has diverged (or was fed a bad snapshot): it
stops serving and raises an alert. The same keys are the recorded hashes an auditor's
``replay --verify`` checks, and that a snapshot must match before a replica loads it.

Each replica also keeps ``replica.<id>`` current for ``kootabase cluster status``: its stream
and engine sequence (every `REPORT_EVERY_S` while they move) and the digest at its last
checkpoint, or where it stands when idle.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import nats.js.errors
import structlog
from nats.js import api
from nats.js.kv import KeyValue

from engine.streamlog import StreamLog

log = structlog.get_logger(__name__)

CHECKPOINT_EVERY: Final = 256
"""Stream messages between checkpoints (a property of the stream: every replica uses it)."""
_CP: Final = "cp."
_REPLICA: Final = "replica."
_GET_AT_ONCE: Final = 64
REPORT_EVERY_S: Final = 1.0


class Divergence(Exception):
    """This replica's state hash differs from the one recorded at the same stream sequence."""


def bucket_name(stream: str) -> str:
    return f"KB_{stream}_HASH"


def checkpoint_key(stream_seq: int) -> str:
    return f"{_CP}{stream_seq:020d}"


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    replica: str
    stream_seq: int
    last_seq: int
    digest: str
    """Checkpoint digest at ``checkpoint_seq``."""
    checkpoint_seq: int
    at_ms: int
    role: str


async def hash_bucket(stream_log: StreamLog, *, create: bool = True) -> KeyValue:
    name = bucket_name(stream_log.spec.name)
    try:
        return await stream_log.js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        if not create:
            raise
    config = api.KeyValueConfig(
        bucket=name, history=1, storage=api.StorageType.FILE, replicas=stream_log.spec.replicas
    )
    return await stream_log.create_placed(lambda: stream_log.js.create_key_value(config))


async def record_checkpoint(kv: KeyValue, stream_seq: int, digest: str) -> str:
    """Record ``digest`` at ``stream_seq`` or compare with the one recorded; returns the
    recorded hash. Raises `Divergence` when they differ."""
    key = checkpoint_key(stream_seq)
    try:
        await kv.create(key, digest.encode())
        return digest
    except nats.js.errors.KeyWrongLastSequenceError:
        pass
    recorded = (await kv.get(key)).value
    assert recorded is not None
    want = recorded.decode()
    if want != digest:
        raise Divergence(
            f"state hash after stream seq {stream_seq} is {digest}, "
            f"the other replicas recorded {want}"
        )
    return want


async def report(kv: KeyValue, rep: ReplicaReport) -> None:
    body = {
        "stream_seq": rep.stream_seq,
        "last_seq": rep.last_seq,
        "digest": rep.digest,
        "checkpoint_seq": rep.checkpoint_seq,
        "at_ms": rep.at_ms,
        "role": rep.role,
    }
    await kv.put(f"{_REPLICA}{rep.replica}", json.dumps(body).encode())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _keys(stream_log: StreamLog, prefix: str) -> list[str]:
    """The bucket's keys that start with ``prefix``, from its stream's per-subject counts: one
    request that answers in full. (nats-py's ``kv.keys()`` lists through a watcher that can
    time out under load and return nothing, which made `cluster status` show no replica and
    ``replay --verify`` check no checkpoint.)"""
    bucket = bucket_name(stream_log.spec.name)
    root = f"$KV.{bucket}."
    info = await stream_log.js.stream_info(f"KV_{bucket}", subjects_filter=f"{root}{prefix}>")
    return sorted(s[len(root) :] for s in (info.state.subjects or {}))


async def _entries(kv: KeyValue, keys: list[str]) -> dict[str, bytes]:
    """Values of ``keys``, each read by its key (a direct get), a bounded number at a time."""
    import asyncio

    async def one(key: str) -> tuple[str, bytes | None]:
        try:
            return key, (await kv.get(key)).value
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return key, None

    out: dict[str, bytes] = {}
    for i in range(0, len(keys), _GET_AT_ONCE):
        for key, value in await asyncio.gather(*(one(k) for k in keys[i : i + _GET_AT_ONCE])):
            if value is not None:
                out[key] = value
    return out


async def read_checkpoints(stream_log: StreamLog) -> dict[int, str]:
    """Every recorded checkpoint of the stream: stream seq -> state hash ({} if none)."""
    try:
        kv = await hash_bucket(stream_log, create=False)
    except nats.js.errors.BucketNotFoundError:
        return {}
    entries = await _entries(kv, await _keys(stream_log, _CP))
    return {int(k[len(_CP) :]): v.decode() for k, v in entries.items()}


async def recorded_checkpoint(stream_log: StreamLog, stream_seq: int) -> str | None:
    """The hash the replicas recorded at ``stream_seq`` (None if none), read by its key: listing
    the bucket's keys goes through a watcher that can time out under load and list nothing,
    which made a good snapshot look unrecorded."""
    try:
        kv = await hash_bucket(stream_log, create=False)
        entry = await kv.get(checkpoint_key(stream_seq))
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.KeyNotFoundError):
        return None
    return entry.value.decode() if entry.value is not None else None


async def read_reports(stream_log: StreamLog) -> list[ReplicaReport]:
    try:
        kv = await hash_bucket(stream_log, create=False)
    except nats.js.errors.BucketNotFoundError:
        return []
    out: list[ReplicaReport] = []
    for key, value in (await _entries(kv, await _keys(stream_log, _REPLICA))).items():
        if key.startswith(_REPLICA):
            d: dict[str, Any] = json.loads(value)
            out.append(
                ReplicaReport(
                    key[len(_REPLICA) :],
                    int(d["stream_seq"]),
                    int(d["last_seq"]),
                    str(d.get("digest", d.get("state_hash", ""))),
                    int(d["checkpoint_seq"]),
                    int(d["at_ms"]),
                    str(d["role"]),
                )
            )
    return sorted(out, key=lambda r: r.replica)


class Checker:
    """Runs beside a live replica: at every checkpoint of the stream it hashes the state (on the
    replica's thread, so the hash is of exactly that point), then records/compares it and
    reports this replica in the KV bucket from a background task; every
    ``snapshot_every`` checkpoints it also stores a snapshot (`engine.snapstore`).

    ``on_divergence`` is called once, on the loop, when the replicas disagree."""

    def __init__(
        self,
        stream_log: StreamLog,
        replica_id: str,
        role: str,
        *,
        on_divergence: Any,
        snapshot_every: int | None = None,
    ) -> None:
        from engine.snapstore import SNAPSHOT_EVERY_CHECKPOINTS

        self.stream_log = stream_log
        self.replica_id = replica_id
        self.role = role
        self.on_divergence = on_divergence
        self.snapshot_every = (
            SNAPSHOT_EVERY_CHECKPOINTS if snapshot_every is None else snapshot_every
        )
        self.checkpoints = 0
        self.divergence: Divergence | None = None
        self._kv: KeyValue | None = None
        self._work: list[tuple[int, asyncio.Future[str], asyncio.Future[Any] | None]] = []
        """(stream seq, its digest being computed, the replica image being built at a snapshot
        point)."""
        self._hasher: ThreadPoolExecutor | None = None
        self._wake: Any = None
        self._tasks: list[Any] = []
        self._replica: Any = None
        self._hash_at: tuple[int, str] = (0, "")
        """(stream seq, state hash) of the last checkpoint (or of the start)."""

    async def start(self, replica: Any) -> None:
        import asyncio

        self._kv = await hash_bucket(self.stream_log)
        self._replica = replica
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name="crosscheck"),
            loop.create_task(self._report_loop(), name="crosscheck-report"),
        ]

    async def _report_loop(self) -> None:
        import asyncio

        reported: tuple[int, int] = (-1, -1)
        previous = -1
        while self.divergence is None:
            await asyncio.sleep(REPORT_EVERY_S)
            replica = self._replica
            seq = replica.stream_seq
            if seq == previous and self._hash_at[0] != seq:
                # Idle for a period: hashing now is cheap for the stream and lets `cluster
                # status` show every replica's hash at the same, current point.
                self._hash_at = (seq, replica.checkpoint_digest())
            previous = seq
            if (seq, self._hash_at[0]) != reported:
                point = (seq, self._hash_at[0])
                try:
                    await self._report(replica.stream_seq, replica.last_seq)
                except Exception as exc:  # again next period: the bucket's stream may be
                    # electing a leader, and an idle stream's last report must still land
                    log.warning("replica_report_failed", error=repr(exc))
                else:
                    reported = point

    async def _report(self, stream_seq: int, last_seq: int) -> None:
        assert self._kv is not None
        cp_seq, digest = self._hash_at
        await report(
            self._kv,
            ReplicaReport(
                self.replica_id, stream_seq, last_seq, digest, cp_seq, now_ms(), self.role
            ),
        )

    def note(self, replica: Any) -> bool:
        """Call after each applied message (cheap unless the stream is at a checkpoint); True
        when this point is a snapshot point (the owner may store its read model beside)."""
        seq = replica.stream_seq
        if seq % CHECKPOINT_EVERY or self.divergence is not None or self._wake is None:
            return False
        # The point's state is copied here, between two messages, so the digest is of
        # exactly this point; the hashing runs on the digest thread (~80 % of its CPU at
        # 100,000 resting orders), off the loop that answers orders.
        from engine.core.digest import finish

        captured = replica.checkpoint_input()
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-digest")
        loop = asyncio.get_running_loop()
        digest = loop.run_in_executor(self._hasher, finish, captured)
        self.checkpoints += 1
        image = None
        if self.snapshot_every and (seq // CHECKPOINT_EVERY) % self.snapshot_every == 0:
            # spliced from the digest's copies on the same thread (`engine.snapimage`), not
            # from the engine on this loop; encoded and stored by the `_run` task
            from engine.snapimage import replica_image

            image = loop.run_in_executor(
                self._hasher, replica_image, replica.snapshot_state(), captured
            )
        self._work.append((seq, digest, image))
        self._wake.set()
        return image is not None

    async def report_now(self, replica: Any) -> None:
        """Hash the state now and report it (start-up: after catching up)."""
        self._replica = replica
        self._hash_at = (replica.stream_seq, replica.checkpoint_digest())
        await self._report(replica.stream_seq, replica.last_seq)

    async def _run(self) -> None:
        from engine.snapstore import save

        assert self._kv is not None
        while True:
            if not self._work:
                self._wake.clear()
                await self._wake.wait()
                continue
            seq, hashing, image = self._work[0]
            try:
                digest = await hashing
                await record_checkpoint(self._kv, seq, digest)
            except Divergence as exc:
                self.divergence = exc
                log.critical(
                    "replica_diverged", replica=self.replica_id, stream_seq=seq, error=str(exc)
                )
                self._work.clear()
                self.on_divergence(exc)
                return
            except Exception as exc:  # NATS unavailable: the next checkpoint tries again
                log.warning("checkpoint_not_recorded", stream_seq=seq, error=repr(exc))
                self._work.pop(0)
                continue
            if seq > self._hash_at[0]:  # report_now may have hashed a later point already
                self._hash_at = (seq, digest)
            try:
                if image is not None:
                    await save(self.stream_log, await image)
            except Exception as exc:
                log.warning("snapshot_not_stored", stream_seq=seq, error=repr(exc))
            self._work.pop(0)

    async def drained(self) -> None:
        """Wait until every checkpoint noted so far is recorded or compared (a replica that
        caught up serves only once the points it passed are checked)."""
        import asyncio

        while self._work and self.divergence is None:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        import asyncio
        import contextlib

        for task in self._tasks:
            # again until it ends: a cancel that lands as an awaited reply arrives can be lost
            # inside nats-py's wait_for (Python 3.11), and the report loop then slept on
            # forever with its close waiting for it
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._hasher is not None:
            self._hasher.shutdown(wait=False, cancel_futures=True)
