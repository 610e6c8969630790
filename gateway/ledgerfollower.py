"""``serve --ledger-dsn``: the PostgreSQL projection as a supervised child process.

The projection replays the journal through its own engine, CPU work that must not share the
gateway's event loop, so it runs as ``kootabase ledger sync --follow`` in a child process. This
module keeps that child alive: when it exits it is restarted with exponential backoff (1 s
doubling to 60 s, back to 1 s after a minute of running), every failure is logged once with the
child's own one-line error ("PostgreSQL database 'x' does not exist; create it with ..."), and
its state is visible in ``/metrics`` (``kootabase_ledger_follower_up``,
``kootabase_ledger_follower_restarts_total``) and through `LedgerFollower.status`, which the
gateway lists in ``Gateway.health_checks`` (``/health`` shows it under ``checks``).

The child runs at log level warning and skips a catch-up while the journal has not changed, so
an idle exchange gets no log lines and no database connections from it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

log = structlog.get_logger(__name__)

BACKOFF_FIRST_S: Final = 1.0
BACKOFF_MAX_S: Final = 60.0
HEALTHY_AFTER_S: Final = 60.0
"""A child that ran this long before failing restarts after the first backoff again."""
FOLLOW_INTERVAL_S: Final = 2.0
TAIL_LINES: Final = 20
STOP_TIMEOUT_S: Final = 30.0


class LedgerFollower:
    """Start with `start` (on the running loop), end with `stop`."""

    def __init__(
        self,
        dsn: str,
        journal_dir: Path,
        registry: CollectorRegistry,
        *,
        interval_s: float = FOLLOW_INTERVAL_S,
        backoff_first_s: float = BACKOFF_FIRST_S,
    ) -> None:
        assert interval_s > 0 and backoff_first_s > 0
        self.dsn = dsn
        self.journal_dir = journal_dir
        self.interval_s = interval_s
        self.backoff_first_s = backoff_first_s
        self.up = Gauge(
            "kootabase_ledger_follower_up",
            "1 while the ledger follower child process is running",
            registry=registry,
        )
        self.restarts = Counter(
            "kootabase_ledger_follower_restarts",
            "Times the ledger follower was restarted after it exited",
            registry=registry,
        )
        self.state = "starting"
        self.last_error: str | None = None
        self.restart_count = 0
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_event: asyncio.Event | None = None

    def status(self) -> dict[str, Any]:
        """For a health endpoint: ``ok`` is false while the child is not running."""
        return {
            "ok": self.state == "running",
            "state": self.state,
            "pid": self.pid,
            "restarts": self.restart_count,
            "lastError": self.last_error,
        }

    def start(self) -> None:
        assert self._task is None, "started twice"
        self._stop_event = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gateway.cli",
            "ledger",
            "sync",
            "--log-level",
            "warning",
            "--dsn",
            self.dsn,
            "--journal",
            str(self.journal_dir),
            "--follow",
            str(self.interval_s),
        ]

    async def _supervise(self) -> None:
        backoff = self.backoff_first_s
        while not self._stopping:
            started = time.monotonic()
            tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
            self._proc = await asyncio.create_subprocess_exec(
                *self._command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            self.pid = self._proc.pid
            self.state = "running"
            self.up.set(1)
            log.info("ledger_follower_started", pid=self.pid, journal=str(self.journal_dir))
            assert self._proc.stderr is not None
            async for raw in self._proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    tail.append(line)
            code = await self._proc.wait()
            self.up.set(0)
            self.pid = None
            if self._stopping:
                break
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                backoff = self.backoff_first_s
            self.last_error = (tail[-1] if tail else f"exited with code {code}")[:500]
            self.state = "restarting"
            self.restart_count += 1
            self.restarts.inc()
            log.error(
                "ledger_follower_failed",
                exit_code=code,
                error=self.last_error,
                restart_in_s=backoff,
            )
            assert self._stop_event is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
        self.state = "stopped"

    async def stop(self) -> None:
        """Terminate the child (it finishes its transaction on SIGTERM) and the supervisor."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            await self._task
        self.state = "stopped"
        self.up.set(0)
