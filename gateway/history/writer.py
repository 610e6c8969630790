"""The history index writer: one thread, one SQLite transaction per commit interval.

The bridge acknowledges a batch as soon as the journal has it and the read model applied it
(DESIGN.md); the index is derived data, so it is written *after*, off the event loop: the loop
hands over the batch's closed orders and trades (a list append), this thread turns them into
rows and commits, then publishes ``durable_seq``. The read model keeps every row the index has
not committed yet (`Store.trim`), so nothing acknowledged is ever unreadable meanwhile.

Why commits are batched in time (at most one per ``commit_interval_s``, or sooner once
``MAX_GROUP_ROWS`` are waiting): a commit writes every B-tree page it touched to the WAL, about
ten pages per account in the group (the orders and trades tables and their indexes), however
few rows changed. One commit per engine batch wrote ~18 KB of WAL per order at 1,000 orders/s
(a batch per order) and a 32 MiB checkpoint every two seconds; that disk traffic sat in front of
the journal's fsync and tripled the ack latency's tail (docs/benchmarks.md). Batched, the same
pages carry hundreds of orders. The price is a longer lag (bounded by the interval plus one
commit), during which the rows are answered from memory as before.

A write that fails is logged and retried with the next group; ``durable_seq`` does not move
past it, so the read model keeps the rows in memory and the next start rebuilds the index from
the journal tail.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from gateway.history.index import HistoryIndex, order_row, trade_row
from gateway.records import OrderRecord, TradeRecord

Row = tuple[object, ...]

log = structlog.get_logger(__name__)

MAX_GROUP_ROWS: Final = 50_000
"""Rows per transaction at most (a catching-up writer still commits regularly)."""
COMMIT_INTERVAL_S: Final = 0.25
"""At most one commit per this many seconds while rows trickle in (see the module's docstring);
a `flush` commits at once."""
PRUNE_EVERY_NS: Final = 3_600 * 1_000_000_000
"""Retention runs at most once per hour of journal time."""
DAY_NS: Final = 86_400 * 1_000_000_000


@dataclass(slots=True)
class _After:
    """Run ``fn`` on the writer thread once everything through ``seq`` is committed (skipped,
    with a log line, if a failed write left the index short of it)."""

    seq: int
    fn: Callable[[], None]
    what: str


@dataclass(slots=True)
class _Flush:
    """Commit what is queued now instead of waiting out the commit interval."""


@dataclass(slots=True)
class _Batch:
    last_seq: int
    ts_ns: int
    orders: list[OrderRecord]
    trades: list[tuple[int, TradeRecord]]


class HistoryWriter:
    def __init__(
        self,
        path: Path,
        *,
        retention_days: int = 90,
        commit_interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        assert retention_days >= 0, "0 keeps everything forever"
        assert commit_interval_s >= 0
        self.commit_interval_s = commit_interval_s
        self.index = HistoryIndex(path)
        self.retention_ns = retention_days * DAY_NS
        self.durable_seq = self.index.last_seq
        """Every batch through this sequence is committed (read from any thread)."""
        self.submitted_seq = self.durable_seq
        self.failures = 0
        self.commits = 0
        """Index transactions committed (metrics, tests)."""
        self.on_rows: Callable[[int, list[Row], list[Row]], None] | None = None
        """Called on this thread with each commit's rows (a cluster replica's history chain,
        `gateway.histchain`: its snapshots ship only the rows since the previous one)."""
        self._queue: queue.SimpleQueue[_Batch | _After | _Flush | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._wake = threading.Condition()
        """Wakes a sleeping writer when a flush is asked for (``_flushes_asked`` moves past
        ``_flushes_taken``, counted under this lock so no request is missed) or at close."""
        self._flushes_asked = 0
        self._flushes_taken = 0
        self._closing = False
        self._next_prune_ns = 0
        self._retry: list[_Batch] = []
        self._submitted_rows = 0
        self._written_rows = 0
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        last_seq: int,
        ts_ns: int,
        orders: list[OrderRecord],
        trades: list[tuple[int, TradeRecord]],
    ) -> None:
        """Queue one batch's rows (called on the loop thread, in sequence order)."""
        assert last_seq >= self.submitted_seq, (last_seq, self.submitted_seq)
        self.submitted_seq = last_seq
        self._submitted_rows += len(orders) + len(trades)
        self._queue.put(_Batch(last_seq, ts_ns, orders, trades))

    def after(self, seq: int, fn: Callable[[], None], what: str) -> None:
        """Run ``fn`` on this thread once the index covers ``seq`` (e.g. write a read-model
        snapshot that needs the index through its sequence), without the caller waiting."""
        if seq > self.submitted_seq:
            self.submit(seq, 0, [], [])
        with self._wake:  # like a flush: a snapshot must not wait out the commit interval
            self._flushes_asked += 1
            self._wake.notify()
        self._queue.put(_After(seq, fn, what))

    def queued_rows(self) -> int:
        """Rows submitted and not yet committed (each counter has one writing thread)."""
        return self._submitted_rows - self._written_rows

    def flush(self, last_seq: int, timeout_s: float = 60.0) -> bool:
        """Make the index cover ``last_seq`` (even with no rows since) and wait for it."""
        if last_seq > self.submitted_seq:
            self.submit(last_seq, 0, [], [])
        with self._wake:  # asked before the item is queued: a sleeping writer wakes for it
            self._flushes_asked += 1
            self._wake.notify()
        self._queue.put(_Flush())
        deadline = time.monotonic() + timeout_s
        with self._done:
            while self.durable_seq < last_seq:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._done.wait(min(left, 0.5))
        return True

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._queue.put(None)
        self._thread.join(60)
        self.index.close()

    def _run(self) -> None:
        next_commit = 0.0
        stop = False
        while not stop:
            group, stop, behind = self._collect(next_commit)
            batches, self._retry = self._retry, []
            for item in group:
                if isinstance(item, _Batch):
                    batches.append(item)
                elif isinstance(item, _After):  # what is queued before it, committed first
                    if batches:
                        self._write(batches)
                        batches = []
                    self._run_after(item)
            if batches:
                self._write(batches)
            next_commit = 0.0 if behind else time.monotonic() + self.commit_interval_s

    def _collect(self, next_commit: float) -> tuple[list[_Batch | _After | _Flush], bool, bool]:
        """Wait for work, sleep until ``next_commit`` (a flush or close wakes it early), then
        take what is queued, up to ``MAX_GROUP_ROWS``. Sleeping rather than waiting on the
        queue keeps the loop's hand-overs from waking this thread (and asking for the GIL)
        once per engine batch. Returns the group, whether the writer is closing, and whether
        rows were left queued (then the next commit does not wait)."""
        first = self._queue.get()
        if first is None:
            return [], True, False
        group: list[_Batch | _After | _Flush] = [first]
        if isinstance(first, (_Flush, _After)):
            self._took_flush()
        else:
            left = next_commit - time.monotonic()
            if left > 0:
                with self._wake:
                    self._wake.wait_for(
                        lambda: self._closing or self._flushes_asked > self._flushes_taken, left
                    )
        rows = len(first.orders) + len(first.trades) if isinstance(first, _Batch) else 0
        while rows < MAX_GROUP_ROWS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return group, False, False
            if item is None:
                return group, True, False
            group.append(item)
            if isinstance(item, _Batch):
                rows += len(item.orders) + len(item.trades)
            elif isinstance(item, (_Flush, _After)):
                self._took_flush()
        return group, False, True

    def _took_flush(self) -> None:
        with self._wake:
            self._flushes_taken += 1

    def _run_after(self, item: _After) -> None:
        if self.durable_seq < item.seq:
            log.error(item.what + "_skipped", seq=item.seq, reason="history index behind")
            return
        try:
            item.fn()
        except Exception as exc:  # a snapshot is an optimisation: the journal rebuilds it
            log.error(item.what + "_failed", seq=item.seq, error=repr(exc))

    def _write(self, batches: list[_Batch]) -> None:
        last_seq = batches[-1].last_seq
        ts_ns = max(b.ts_ns for b in batches)
        try:
            orders = [order_row(o) for b in batches for o in b.orders]
            trades = [trade_row(a, t) for b in batches for a, t in b.trades]
            self.index.write(last_seq, orders, trades)
            if self.on_rows is not None:
                self.on_rows(last_seq, orders, trades)
            if self.retention_ns and ts_ns >= self._next_prune_ns:
                self._next_prune_ns = ts_ns + PRUNE_EVERY_NS
                dropped = self.index.prune_unfilled(ts_ns - self.retention_ns)
                if dropped:
                    log.info(
                        "history_pruned", orders=dropped, retention_days=self.retention_ns // DAY_NS
                    )
        except Exception as exc:  # disk full, I/O error: keep rows in memory, retry later
            self.failures += 1
            log.error("history_write_failed", error=repr(exc), last_seq=last_seq)
            self._retry = batches  # retried, in order, with the next group
            time.sleep(0.1)
            return
        with self._done:
            self._written_rows += sum(len(b.orders) + len(b.trades) for b in batches)
            self.commits += 1
            self.durable_seq = last_seq
            self._done.notify_all()
