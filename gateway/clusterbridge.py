"""The gateway's bridge in cluster mode: publish batches to the stream, answer from the replica.

Same contract as `gateway.bridge.Bridge` (``submit_cb``/``submit``/``start``/``close``), so
order entry, custody, admin and the dead-man's ticker run unchanged; what differs is where a
command becomes durable and who stamps it:

1. Requests queue up; the publisher takes everything queued (up to ``max_batch``) as one
   `CommandBatch` (``origin`` = this process, ``batch_no`` counting) and publishes it with
   ``Nats-Msg-Id``. Up to ``max_inflight`` publishes are outstanding at once (pipelining, so a
   replicated R3 append does not cap the rate at one batch per round trip); while they are,
   the queue grows and the next batch is larger: batching adapts to load as in the embedded
   bridge. While a batch is in flight, the next one waits for an acknowledgement or until its
   oldest request is ``linger_s`` old, whichever comes first (Nagle's rule with a deadline):
   every stream message costs every replica and every NATS node the same whatever it holds,
   and pipelining small batches spent that cost on one or two orders each. ``interval_s``
   (off by default) also keeps two publishes at least that far apart, so under load
   messages grow with the interval whatever the acknowledgement time.
2. A publish that fails (timeout, no responders, connection lost) is retried with the same
   message id until the ack deadline: the stream keeps one copy within its duplicate window,
   and the replica's own window recognises a later duplicate.
3. The replica (`engine.replica.Replica`) consumes the stream in order, for every publisher,
   and applies each batch's events to the read model (``on_batch``). A request is answered
   when *both* happened: the stream acknowledged its batch (stored, replicated) and this
   process's replica processed it (DESIGN.md: an ack means durable and processed).
4. A batch with no answer by ``ack_timeout_s`` is answered "status unknown" (the dialect's 5xx
   rule, a stable error code): it may still execute later, and the client is told to check.
   Nothing is dropped silently.

A replica failure (the stream skipped a sequence, the engine raised) stops the bridge: every
pending and later request is answered "status unknown" and ``healthy`` turns false.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
import structlog

from engine.follower import Follower
from engine.replica import (
    BATCH_FORMAT,
    MAX_COMMANDS_PER_BATCH,
    Applied,
    CommandBatch,
    Replica,
    encode_batch,
    msg_id,
)
from engine.schema import Command, Event
from engine.streamlog import StreamLog
from gateway import errors
from gateway.bridge import BatchHook, RequestIntake, _Request, answer_batch

log = structlog.get_logger(__name__)
PUBLISH_TIMEOUT_S = 1.0
RETRY_PAUSE_S = 0.1


@dataclass(slots=True)
class _Pending:
    """A published batch waiting for its PubAck and for the replica to process it."""

    requests: list[_Request]
    published_at: float
    stored: bool = False
    applied: Applied | None = None
    done: bool = False


class ClusterBridge(RequestIntake):
    def __init__(
        self,
        replica: Replica,
        on_batch: BatchHook,
        *,
        max_batch: int = 2_048,
        max_inflight: int = 8,
        linger_s: float = 0.002,
        interval_s: float = 0.0,
        observe: Callable[[int, float, float, list[float]], None] | None = None,
        ack_timeout_s: float = 10.0,
        on_snapshot: Callable[[Applied], None] | None = None,
        snapshot_every: int | None = None,
        on_commands: Callable[[Applied], None] | None = None,
    ) -> None:
        assert 1 <= max_batch <= MAX_COMMANDS_PER_BATCH
        super().__init__(ack_timeout_s)
        self.log: StreamLog | None = None
        self.origin = secrets.randbits(63) or 1
        self._batch_no = 0
        self._on_batch = on_batch
        self._on_commands = on_commands
        """Sees each applied message's commands before ``on_batch`` (the audit log's index)."""
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._linger_s = linger_s
        self._interval_s = interval_s
        self._last_publish = 0.0
        self._observe = observe
        self._pending: dict[int, _Pending] = {}
        self._slot = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publishes: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._snapshot_every = snapshot_every
        self.stored_readmodels: set[int] = set()
        """Stream sequences with a read-model snapshot stored (`gateway.clustersnap`)."""
        self.uploader: Any = None
        """The `gateway.clustersnap.Uploader` once this replica stored a read model."""
        self.follower = Follower(
            replica,
            f"{self.origin:x}",
            "gateway",
            self._on_applied,
            on_failure=self._break,
            on_snapshot=on_snapshot,
        )

    @property
    def replica(self) -> Replica:
        return self.follower.replica

    @property
    def checker(self) -> Any:
        return self.follower.checker

    @property
    def failure(self) -> str | None:
        """Why this replica stopped serving (None while healthy)."""
        return self.follower.failure

    # ---- lifecycle ------------------------------------------------------------------------

    async def attach(self, stream_log: StreamLog) -> None:
        """Follow the stream from the replica's position; returns once caught up with the
        stream's last sequence as of now (the read model is then current)."""
        self.log = stream_log
        await self.follower.attach(stream_log, snapshot_every=self._snapshot_every)

    def start(self) -> None:
        if not any(t.get_name() == "publisher" for t in self._tasks):
            loop = asyncio.get_running_loop()
            self._tasks.append(loop.create_task(self._publisher(), name="publisher"))
            self._watchdog = loop.call_later(0.5, self._watch)

    async def close(self) -> None:
        """Answer what is still pending 'unknown', stop consuming, close the connection."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._fail_all("shutting down")
        for task in [*self._tasks, *self._publishes]:
            task.cancel()
        for task in [*self._tasks, *self._publishes]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.uploader is not None:
            await self.uploader.close()
        await self.follower.close()

    # ---- submitting -------------------------------------------------------------------------

    def _refusal(self) -> str:  # never published
        return f"replica stopped: {self.failure or self._broken}"

    async def call(self, fn: Callable[[Replica], Any]) -> Any:
        return fn(self.replica)

    async def publish_system(
        self, batch_no: int, commands: list[Command], *, origin: int = 0
    ) -> None:
        """Publish a deterministic system batch (same id from every process) and wait until
        this replica has applied it (or a duplicate of it). ``origin`` 0 is the demo
        bootstrap's; AML freezes use one derived from their case id."""
        assert self.log is not None
        data = encode_batch(CommandBatch(origin, batch_no, commands))
        res = await self.log.publish(data, msg_id(origin, batch_no), fmt=BATCH_FORMAT)
        while self.replica.stream_seq < res.stream_seq:
            await asyncio.sleep(0.01)

    async def _publisher(self) -> None:
        queue = self._queue
        while not self._closing:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            inflight = len(self._pending)
            if inflight >= self._max_inflight:
                self._slot.clear()
                await self._slot.wait()
                continue
            if len(queue) < self._max_batch:
                now = time.perf_counter()
                hold_s = self._last_publish + self._interval_s - now
                if hold_s > 0:  # at most one publish per interval: fewer, larger messages
                    await asyncio.sleep(hold_s)
                    continue
                wait_s = queue[0].queued_at + self._linger_s - now
                if inflight and wait_s > 0:  # an ack (a slot freed) or the deadline, first
                    self._slot.clear()
                    timer = asyncio.get_running_loop().call_later(wait_s, self._slot.set)
                    await self._slot.wait()
                    timer.cancel()
                    continue
            reqs = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
            self._last_publish = time.perf_counter()
            self._batch_no += 1
            batch_no = self._batch_no
            self._pending[batch_no] = _Pending(reqs, time.perf_counter())
            data = encode_batch(CommandBatch(self.origin, batch_no, [r.command for r in reqs]))
            task = asyncio.get_running_loop().create_task(self._publish(batch_no, data))
            self._publishes.add(task)
            task.add_done_callback(self._publishes.discard)

    async def _publish(self, batch_no: int, data: bytes) -> None:
        assert self.log is not None
        mid = msg_id(self.origin, batch_no)
        p = self._pending[batch_no]
        deadline = p.published_at + self._ack_timeout_s
        retries = 0
        while not p.done:
            try:
                await self.log.publish(
                    data,
                    mid,
                    fmt=BATCH_FORMAT,
                    timeout_s=min(PUBLISH_TIMEOUT_S, max(0.05, deadline - time.perf_counter())),
                )
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                if time.perf_counter() >= deadline:
                    self._settle_unknown(batch_no, "stream did not acknowledge in time")
                    return
                log.warning("publish_retry", batch_no=batch_no, error=type(exc).__name__)
                retries += 1
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            if retries:  # the stream answers again (a new leader): the replica's consumer
                # may have died with the old one, re-create it now rather than at the watch's
                # next look
                log.warning("publish_resumed", batch_no=batch_no, retries=retries)
                self.follower.nudge()
            p.stored = True
            if p.applied is not None and not p.done:
                self._answer(batch_no, p)
            return

    # ---- consuming --------------------------------------------------------------------------

    def _on_applied(self, applied: Applied) -> None:
        """Every message of the stream, in order: read model first, then this gateway's acks."""
        if applied.events or applied.commands:
            if self._on_commands is not None and applied.commands:
                try:
                    self._on_commands(applied)
                except Exception:  # the audit index must not cost the read model its batch
                    log.exception("on_commands_failed", first_seq=applied.first_seq)
            try:
                self._on_batch(applied.first_seq, applied.ts_ns, applied.events, applied.last_seq)
            except Exception:  # a read-model bug must not lose the acks
                log.exception("on_batch_failed", first_seq=applied.first_seq)
        if applied.origin != self.origin or applied.duplicate:
            return
        p = self._pending.get(applied.batch_no)
        if p is not None and p.applied is None:
            p.applied = applied
            if p.stored:
                self._answer(applied.batch_no, p)

    def _answer(self, batch_no: int, p: _Pending) -> None:
        applied = p.applied
        assert applied is not None and p.stored and not p.done
        p.done = True
        del self._pending[batch_no]
        self._slot.set()
        events: list[Event] = applied.events
        if applied.rejected is not None:  # this build wrote it: must not happen, never silent
            for req in p.requests:
                req.fail(errors.unknown_outcome("batch rejected by the replica"))
            return
        assert applied.last_seq - applied.first_seq + 1 == len(p.requests)
        answer_batch(p.requests, applied.first_seq, applied.ts_ns, events)
        if self._observe is not None:
            now = time.perf_counter()
            self._observe(
                len(p.requests), now - p.published_at, 0.0, [now - r.queued_at for r in p.requests]
            )

    # ---- failures ---------------------------------------------------------------------------

    def _settle_unknown(self, batch_no: int, reason: str) -> None:
        p = self._pending.pop(batch_no, None)
        if p is None or p.done:
            return
        p.done = True
        self._slot.set()
        log.warning(
            "batch_status_unknown", batch_no=batch_no, reason=reason, commands=len(p.requests)
        )
        for req in p.requests:
            req.fail(errors.unknown_outcome(reason))

    def _watch(self) -> None:
        now = time.perf_counter()
        limit = self._ack_timeout_s
        for batch_no, p in list(self._pending.items()):
            if now - p.published_at > limit + PUBLISH_TIMEOUT_S:
                self._settle_unknown(batch_no, "no acknowledgement in time")
        self._fail_overdue_queued(now)
        if not self._closing:
            self._watchdog = asyncio.get_running_loop().call_later(0.5, self._watch)

    def _break(self, exc: BaseException) -> None:
        """The follower stopped (divergence, gap, engine failure): stop serving for good and
        answer everything pending 'unknown' (a diverged replica must not answer anyone)."""
        if self._broken is None:
            self._broken = exc
            self._fail_all("replica failure")

    def _fail_all(self, reason: str) -> None:
        for batch_no in list(self._pending):
            self._settle_unknown(batch_no, reason)
        while self._queue:
            self._queue.popleft().fail(errors.unknown_outcome(reason))
