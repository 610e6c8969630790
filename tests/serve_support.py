"""``kootabase serve`` in a child process and PostgreSQL admin statements, for CLI tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def pg_admin(sql: str) -> Any:
    """Run one statement (CREATE/DROP DATABASE) on the maintenance database."""
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        return await conn.execute(sql)
    finally:
        await conn.close()


class Serve:
    """``kootabase serve`` in a child process; its JSON log lines collected as they come."""

    def __init__(self, tmp: Path, *extra: str, data_dir: Path | None = None) -> None:
        env = {**os.environ, "KOOTABASE_MASTER_KEY_FILE": str(tmp / "master.key")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "serve",
                "--data-dir",
                str(data_dir or tmp / "data"),
                "--port",
                "0",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        serving = self.wait_for("serving")
        self.http, self.last_seq = serving["http"], serving["last_seq"]

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def wait_for(self, event: str, timeout_s: float = 240, **match: object) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for e in list(self.events):
                if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                    return e
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no {event} event; stderr: {''.join(self.raw)[-3000:]}")

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(self.http + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        found = re.search(rf"^{name} (\S+)$", text, flags=re.M)
        assert found, name
        return float(found.group(1))

    def health(self) -> dict[str, Any]:
        """``/health``'s JSON, whatever its status (503 while not ready)."""
        try:
            with urllib.request.urlopen(self.http + "/health", timeout=10) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code
