"""The daily ORDERS count (the dialect's 1-day order limit) survives a restart.

Binance counts an account's new orders per UTC day on its side; a restart of this server must
not hand every account a fresh day. The count is kept two ways, and a start uses both:

- ``<data_dir>/gateway/order_counts.json``: the day, the journal sequence reached, and the
  count per account, rewritten atomically every `SAVE_INTERVAL_S` while serving and at close;
- the journal: every order command (``PlaceOrder``, ``CancelReplaceOrder``, ``AmendOrder``)
  after that sequence and stamped today is counted again for its account. Without a usable
  file (first start, another day), today's first record is found by bisection on the
  journal's timestamps and today's order commands are counted from there.

So after a crash (SIGKILL included) every order that reached the journal today counts. Order
requests refused before journaling (filter failures, bad signatures) count live but are not
rebuilt from the journal beyond the last save, and orders in flight during a save may count
twice: the rebuilt count errs on the high side, never on the low side. Cluster mode (no local
journal) has the file only.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import structlog

from engine.filemodes import create_private
from engine.schema import AmendOrder, CancelReplaceOrder, PlaceOrder, decode_command
from gateway.ratelimit import Window

log = structlog.get_logger(__name__)
DAY_MS: Final = 86_400_000
SAVE_INTERVAL_S: Final = 5.0


def _order_account(command: Any) -> int | None:
    if isinstance(command, PlaceOrder | AmendOrder):
        return command.account_id
    if isinstance(command, CancelReplaceOrder):
        return command.place.account_id
    return None


def _first_seq_at(journal: Any, start_ns: int) -> int:
    """The first sequence stamped at or after ``start_ns`` (journal time only grows)."""
    lo, hi = journal.first_sequence, journal.last_sequence + 1
    while lo < hi:
        mid = (lo + hi) // 2
        _, ts, _ = next(iter(journal.read_from(mid, mid)))
        if ts < start_ns:
            lo = mid + 1
        else:
            hi = mid
    return lo


class DailyOrderCounts:
    """Saves and restores one `Window` (the limiter's per-account daily ORDERS count)."""

    def __init__(self, path: Path, window: Window) -> None:
        assert window.interval_ms == DAY_MS
        self.path = path
        self.window = window

    def restore(self, journal: Any | None, now_ms: int) -> int:
        """Seed the window for today from the file and the journal; returns the orders seen."""
        day = now_ms // DAY_MS
        saved_seq: int | None = None
        try:
            data = json.loads(self.path.read_text())
            if data.get("day") == day:
                saved_seq = int(data["seq"])
                for account, count in data["counts"].items():
                    self.window.add(int(account), int(count), now_ms)
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("order_counts_unreadable", path=str(self.path), error=str(exc))
        total = sum(self.window.counts(now_ms).values())
        if journal is None or journal.last_sequence < journal.first_sequence:
            return total
        first = (
            saved_seq + 1
            if saved_seq is not None
            else _first_seq_at(journal, day * DAY_MS * 1_000_000)
        )
        if first > journal.last_sequence:
            return total
        for _, ts, payload in journal.read_from(first, journal.last_sequence):
            if ts // 1_000_000 // DAY_MS != day:
                continue
            account = _order_account(decode_command(payload))
            if account is not None:
                self.window.add(account, 1, now_ms)
                total += 1
        return total

    async def keep_saved(self, last_seq: Callable[[], int]) -> None:
        """Save every `SAVE_INTERVAL_S` until cancelled (a task of the serving gateway)."""
        while True:
            await asyncio.sleep(SAVE_INTERVAL_S)
            self.save(last_seq(), time.time_ns() // 1_000_000)

    def save(self, seq: int, now_ms: int) -> None:
        """Write today's counts with the journal sequence they cover (atomic replace)."""
        counts = self.window.counts(now_ms)
        data = {
            "day": now_ms // DAY_MS,
            "seq": seq,
            "counts": {str(a): n for a, n in sorted(counts.items())},
        }
        tmp = self.path.with_suffix(".tmp")
        fd = create_private(tmp)
        try:
            os.write(fd, json.dumps(data).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
