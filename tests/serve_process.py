"""``kootabase serve`` as a real child process (the CLI a user runs), for the security tests.

The child gets its own data dir and master key file and a free port; it is ready when
``<data_dir>/gateway/server.json`` names its pid. Stdout and stderr go to files so a test can
read what an operator would see (the demo secret, the one-line refusals, the logs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.cli_support import run_cli
from tests.custody_nodes import free_port

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 240.0  # the first start may compile the numba core


def kootabase(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``kootabase`` CLI to completion (same interpreter as the tests)."""
    return run_cli(*args)


class ServeProcess:
    def __init__(
        self,
        data_dir: Path,
        master_key: Path,
        *extra: str,
        port: int | None = None,
        wait: bool = True,
        log_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.out = (log_dir or data_dir.parent) / f"serve-{self.port}-{time.monotonic_ns()}.out"
        self.err = self.out.with_suffix(".err")
        self.args = [
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--master-key-file",
            str(master_key),
            *extra,
        ]
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *self.args],
                cwd=ROOT,
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        if wait:
            self.wait_ready()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        info = self.data_dir / "gateway" / "server.json"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.stderr()}")
            try:
                # the demo account (if any) is made just after the bind: wait for it
                if json.loads(info.read_text())["pid"] == self.proc.pid and (
                    "--demo" not in self.args or "serving" in self.stderr()
                ):
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not start: {self.stderr()}")

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.http + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")
