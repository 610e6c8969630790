"""The bridge between the asyncio gateway and the synchronous, single-threaded engine node.

Requests from every session are queued; one consumer task takes *everything queued* (up to
``max_batch``) and hands it to `EngineNode.submit` on a dedicated engine thread: one group
commit (one fsync) for the whole batch, then processing. While that thread works, the loop keeps
parsing and queueing, so the batch size adapts to load by itself: one command per fsync when
idle (lowest latency), hundreds under load (highest throughput), with no timer to tune.

When the node returns, the batch's events are applied to the read model (store, market data,
user streams) on the loop thread *before* any future resolves, so a client that got its ack
reads its own order. Each future gets ``(seq, timestamp_ns, events of that command)``: the
command's events are the contiguous run whose ``seq`` equals its sequence.

Failure rules (the dialect's 5xx "unknown"): a batch whose submit raised may or may not be
durable, so its requests are answered "status unknown" and the bridge stops taking commands (the
node must be restarted to recover from the journal). On shutdown, commands still queued were
never journaled, but they are answered with the same rule for simplicity of client handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from engine.node import EngineNode
from engine.schema import Command, Event
from gateway import errors

log = structlog.get_logger(__name__)
T = TypeVar("T")
Result = tuple[int, int, list[Event]]
BatchHook = Callable[[int, int, list[Event], int], None]
"""(first_seq, timestamp_ns, events, last_seq) -> None, called on the loop thread."""


class Bridge:
    def __init__(
        self,
        node: EngineNode,
        on_batch: BatchHook,
        *,
        max_batch: int = 2_048,
        observe: Callable[[int, float, float], None] | None = None,
        ack_timeout_s: float = 10.0,
    ) -> None:
        self.node = node
        self._on_batch = on_batch
        self._max_batch = max_batch
        self._observe = observe
        """(batch size, submit seconds, fsync seconds) for metrics."""
        self._queue: deque[tuple[Command, asyncio.Future[Result], float]] = deque()
        self._ack_timeout_s = ack_timeout_s
        self._inflight: list[asyncio.Future[Result]] = []
        self._inflight_since = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._task: asyncio.Task[None] | None = None
        self._broken: BaseException | None = None
        self._closing = False
        self._fsync_s = 0.0
        journal = node.journal
        append = journal.append_batch

        def timed_append(records: Sequence[Any]) -> None:
            t0 = time.perf_counter()
            append(records)
            self._fsync_s = time.perf_counter() - t0

        # Instance attribute: the sequencer calls the journal through it (measures fsync).
        journal.append_batch = timed_append  # type: ignore[method-assign]

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="bridge")
            self._watchdog = loop.call_later(0.5, self._watch)

    def _watch(self) -> None:
        """Answer 'status unknown' to requests waiting longer than the ack timeout (one timer
        for all requests instead of one per request). A late result is then ignored."""
        now = time.perf_counter()
        limit = self._ack_timeout_s
        if self._inflight and now - self._inflight_since > limit:
            for fut in self._inflight:
                if not fut.done():
                    fut.set_exception(errors.unknown_outcome("no acknowledgement in time"))
        for _, fut, t in self._queue:
            if now - t <= limit:
                break
            if not fut.done():
                fut.set_exception(errors.unknown_outcome("no acknowledgement in time"))
        if not self._closing:
            self._watchdog = asyncio.get_running_loop().call_later(0.5, self._watch)

    def submit(self, command: Command) -> asyncio.Future[Result]:
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        if self._broken is not None or self._closing:
            fut.set_exception(errors.unknown_outcome("engine unavailable"))
            return fut
        self._queue.append((command, fut, time.perf_counter()))
        self._wake.set()
        return fut

    async def call(self, fn: Callable[[EngineNode], T]) -> T:
        """Run ``fn(node)`` on the engine thread, serialized with the batches."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self.node)

    def _submit_sync(self, commands: list[Command]) -> tuple[int, int, list[Event], float]:
        first = self.node.last_seq + 1
        t0 = time.perf_counter()
        events = self.node.submit(commands)
        elapsed = time.perf_counter() - t0
        ts = self.node.sequencer.last_timestamp_ns or 0
        return first, ts, events, elapsed

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                if self._closing:
                    return
                await self._wake.wait()
                continue
            n = min(len(queue), self._max_batch)
            batch = [queue.popleft() for _ in range(n)]
            commands = [c for c, _, _ in batch]
            self._inflight = [f for _, f, _ in batch]
            self._inflight_since = time.perf_counter()
            try:
                first, ts, events, elapsed = await loop.run_in_executor(
                    self._pool, self._submit_sync, commands)
            except BaseException as exc:  # the journal or engine failed: outcome unknown
                self._broken = exc
                log.error("engine_submit_failed", error=repr(exc), commands=len(commands))
                for _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(errors.unknown_outcome("engine failure"))
                self._fail_queued()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            if self._observe is not None:
                self._observe(n, elapsed, self._fsync_s)
            last = first + n - 1
            try:
                self._on_batch(first, ts, events, last)
            except Exception:  # a read-model bug must not lose the acks
                log.exception("on_batch_failed", first_seq=first)
            i, total = 0, len(events)
            self._inflight = []
            for k, (_, fut, _) in enumerate(batch):
                seq = first + k
                j = i
                while j < total and events[j].seq == seq:
                    j += 1
                if not fut.done():
                    fut.set_result((seq, ts, events[i:j]))
                i = j

    def _fail_queued(self) -> None:
        while self._queue:
            _, fut, _ = self._queue.popleft()
            if not fut.done():
                fut.set_exception(errors.unknown_outcome("shutting down"))

    async def close(self) -> None:
        """Finish the batch in flight, answer the rest 'unknown', stop the engine thread."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._fail_queued()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._pool.shutdown(wait=True)
