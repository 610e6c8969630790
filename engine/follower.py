"""A live replica: follow the command stream into a `engine.replica.Replica`, checked.

Every process that needs state (gateway, market data, ledger projector) runs one: it applies
the stream in order, hands each applied message to its owner (``on_applied``: read model,
acks, projection), and runs the hash cross-check (`engine.crosscheck.Checker`) beside it. A
failure (the log skipped a sequence, the engine raised, the hash disagreed with the recorded
one) stops the follower for good: ``failure`` says why and the owner's ``on_failure`` is told,
so it stops serving rather than answer from a state nobody else has.

A cold start may begin from the newest verified Object Store snapshot (`engine.snapstore`)
instead of the stream's first message, when the owner's own state can start there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import structlog

from engine.core.compiled import CompiledEngine
from engine.crosscheck import Checker
from engine.replica import Applied, Replica, StreamGap, StreamMessage
from engine.schema import EngineConfig
from engine.streamlog import StreamLog

log = structlog.get_logger(__name__)
WATCH_S = 0.5
SILENCE_S = 1.0
"""No message and no idle heartbeat (every `HEARTBEAT_S` while the stream is quiet) for this
long: the consumer is gone (it lived on a stream leader that died), subscribe again."""
WATCH_REQUEST_S = (*(0.5,) * 24, 1.0, 2.0, 5.0)
"""How long the watch waits for one JetStream API answer (consumer create, stream info), by
consecutive failures. A request that reaches no leader is never answered: sent while the
cluster elects one, it held the watch for its whole timeout after the election ended
(nats-py's 5 s default, then 1/2/5 s: the replica, and every acknowledgement of its gateway,
resumed up to 5 s late; one leader kill measured 15 s). After a leader's death the metadata
leader also keeps placing new R1 consumers on the dead node for a few seconds (nats-server
2.9: measured, tests/test_cluster_failover.py), and such a create is never answered either.
So: 0.5 s tries, each retried at once after a timeout, for the length of the longest
election and more (24 tries, 12 s or more: nats-server's election timer runs 4-9 s, measured
4.1-8.2 s; a create answers in milliseconds here), longer only after that, for a machine too
slow to answer in 0.5 s. A gateway's replica is also nudged (`Follower.nudge`) when its
publishes are accepted again; the market-data and ledger replicas publish nothing, so with
ten tries (5 s) a 2 s or 5 s try sent late in a long election left them up to 5 s behind
the new leader."""


class Follower:
    def __init__(
        self,
        replica: Replica | None,
        replica_id: str,
        role: str,
        on_applied: Callable[[Applied], None],
        on_failure: Callable[[BaseException], None] | None = None,
        on_snapshot: Callable[[Applied], None] | None = None,
    ) -> None:
        self.replica = replica if replica is not None else Replica(CompiledEngine(EngineConfig()))
        self.replica_id = replica_id
        self.role = role
        self.on_applied = on_applied
        self.on_failure = on_failure
        self.on_snapshot = on_snapshot
        """Called after ``on_applied`` at each point where the engine snapshot is taken, so
        the owner can snapshot its read model at the same state (`gateway.clustersnap`)."""
        self.log: StreamLog | None = None
        self.checker: Checker | None = None
        self.failure: str | None = None
        self.snapshot_stream_seq = 0
        """Stream sequence of the snapshot this replica started from (0: the first message)."""
        self._clock: Callable[[], float] = time.monotonic
        self._watch_task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._last_delivery = 0.0
        self._gap = False
        self._stopped = False
        self._nudge = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self.failure is None and not self._stopped

    async def start_from_snapshot(self, stream_log: StreamLog) -> bool:
        """Before `attach`: replace the (fresh) replica with the newest verified snapshot."""
        from engine.snapstore import load_newest

        assert self.replica.stream_seq == 0, "only a fresh replica starts from a snapshot"
        snap = await load_newest(stream_log)
        if snap is None:
            return False
        self.replica = snap.replica
        self.snapshot_stream_seq = snap.stream_seq
        return True

    async def attach(
        self, stream_log: StreamLog, *, snapshot_every: int | None = None, catch_up: bool = True
    ) -> None:
        """Follow from the replica's position; with ``catch_up`` return once the stream's last
        message as of now is applied."""
        self.log = stream_log
        self.checker = Checker(
            stream_log,
            self.replica_id,
            self.role,
            on_divergence=self.fail,
            snapshot_every=snapshot_every,
        )
        await self.checker.start(self.replica)
        target = await stream_log.last_sequence()
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self._last_delivery = loop.time()
        self._sub = await stream_log.follow(
            self.replica.stream_seq + 1, self._deliver, on_heartbeat=self._alive
        )
        self._watch_task = loop.create_task(self._watch(), name="replica-watch")
        while catch_up and self.replica.stream_seq < target:
            if self.failure is not None:
                break
            await asyncio.sleep(0.01)
        await self.checker.drained()
        if self.failure is not None:
            raise RuntimeError(f"replica failed while catching up: {self.failure}")
        log.info(
            "replica_caught_up",
            role=self.role,
            replica=self.replica_id,
            stream_seq=self.replica.stream_seq,
            last_seq=self.replica.last_seq,
        )
        with contextlib.suppress(Exception):
            await self.checker.report_now(self.replica)

    def nudge(self) -> None:
        """The stream answers again (a publish was accepted after failures: a new stream
        leader). A watch request sent during the election will never be answered: drop it and
        try again now, with the short timeouts."""
        self._nudge.set()

    def _alive(self) -> None:
        """The consumer's idle heartbeat: it lives, the stream is quiet."""
        self._last_delivery = self._clock()

    async def _watch(self) -> None:
        """Keeps the push consumer honest: after a gap, or when neither a message nor a
        heartbeat arrived for `SILENCE_S` (the consumer died with a stream leader), subscribe
        again from the next sequence the replica needs. Each attempt is raced against
        `nudge`, so an answer that will never come does not hold the replica."""
        loop = asyncio.get_running_loop()
        failures = 0
        timed_out = False
        while self.failure is None and self.log is not None and not self._stopped:
            if not timed_out:  # after a timeout, the timeout was the pause: try again now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudge.wait(), WATCH_S)
            timed_out = False
            if self._nudge.is_set():
                self._nudge.clear()
                failures = 0
            silent = loop.time() - self._last_delivery >= SILENCE_S
            if not self._gap and not silent:
                continue
            timeout_s = WATCH_REQUEST_S[min(failures, len(WATCH_REQUEST_S) - 1)]
            attempt = loop.create_task(self._recover(silent, timeout_s))
            nudged = loop.create_task(self._nudge.wait())
            try:
                await asyncio.wait({attempt, nudged}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                nudged.cancel()
                if not attempt.done():
                    attempt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await attempt
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # `close`, while the attempt wound up
                raise asyncio.CancelledError
            if attempt.cancelled():  # nudged: the next loop starts over at once
                log.info("replica_watch_nudged", timeout_s=timeout_s)
                continue
            exc = attempt.exception()
            if exc is None:
                failures = 0
            else:  # NATS unavailable right now: look again soon
                failures += 1
                # a create times out for cause after a leader's death (the metadata leader
                # died too, or the consumer was placed on the dead node)
                timed_out = isinstance(exc, TimeoutError)
                log.info("replica_watch_failed", error=repr(exc), timeout_s=timeout_s)

    async def _recover(self, silent: bool, timeout_s: float) -> None:
        """One attempt of `_watch`: after a gap with deliveries still coming, ask the stream
        whether anything is missing; otherwise subscribe again from the need."""
        assert self.log is not None
        if not silent:  # a gap: messages missing, or only redeliveries?
            last = await asyncio.wait_for(self.log.last_sequence(), timeout_s)
            if last <= self.replica.stream_seq:
                self._gap = False  # nothing missing after all: take deliveries again
                return
        log.warning("replica_resubscribes", stream_seq=self.replica.stream_seq, silent=silent)
        await self.log.unfollow(self._sub)
        self._gap = False
        self._sub = await self.log.follow(
            self.replica.stream_seq + 1,
            self._deliver,
            api_timeout_s=timeout_s,
            on_heartbeat=self._alive,
        )
        self._last_delivery = asyncio.get_running_loop().time()
        log.warning("replica_resubscribed", stream_seq=self.replica.stream_seq)

    def _deliver(self, msg: StreamMessage) -> None:
        """Apply ``msg`` right here, in the subscription's callback: handing it to a task of
        its own cost an event, a future and two more loop iterations per stream message, and
        the stream's messages arrive one per loop iteration at moderate load (measured:
        ``bench.cluster_message_bench``, docs/scaling.md)."""
        self._last_delivery = self._clock()
        if self.failure is not None or self._stopped or self._gap:
            return  # stopped for good, or a gap: the watch subscribes again from the need
        try:
            applied = self.replica.apply(msg)
        except StreamGap as exc:  # the consumer lost messages: read them again
            log.warning("replica_gap", error=str(exc))
            self._gap = True
            return
        except Exception as exc:
            self.fail(exc)
            return
        if applied is None:
            return
        checker = self.checker
        snapshot_point = checker is not None and checker.note(self.replica)
        try:
            self.on_applied(applied)
            if snapshot_point and self.on_snapshot is not None:
                self.on_snapshot(applied)
        except Exception:  # a read-model bug must not stop the replica
            log.exception("on_applied_failed", stream_seq=applied.stream_seq)

    def fail(self, exc: BaseException) -> None:
        """Stop for good (idempotent): nothing more is applied, the owner is told once."""
        if self.failure is not None:
            return
        self.failure = f"{type(exc).__name__}: {exc}"
        log.critical(
            "replica_stopped",
            role=self.role,
            replica=self.replica_id,
            error=self.failure,
            stream_seq=self.replica.stream_seq,
        )
        if self.on_failure is not None:
            self.on_failure(exc)

    async def close(self) -> None:
        self._stopped = True
        if self._watch_task is not None:
            while not self._watch_task.done():  # a cancel lost in a wait_for: cancel again
                self._watch_task.cancel()
                await asyncio.wait({self._watch_task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch_task
        if self.checker is not None:
            await self.checker.close()
        if self.log is not None:
            await self.log.close()
