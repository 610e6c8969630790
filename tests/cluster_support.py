"""Cluster-mode test helpers: unique streams on the machine's NATS, replay of a stream.

NATS runs for real (127.0.0.1:4222 with JetStream; `scripts/check-services.sh` requires it).
Every test gets its own stream name, deleted afterwards, so helpers running tests at the same
time never share a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from engine.streamreplay import StreamReplayResult, replay_stream

LOCAL_NATS = "nats://127.0.0.1:4222"
REPO = Path(__file__).resolve().parent.parent


def kootabase(
    *args: str, timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``kootabase`` command line of this checkout in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)},
    )


def share_keys(first: Path, second: Path) -> None:
    """A second in-process gateway (`tests.gateway_support.ServerThread` under ``second``)
    takes the API keys of the first: the same key file and the same master key."""
    (second / "data" / "gateway").mkdir(parents=True)
    shutil.copy(first / "data" / "gateway" / "keys.json", second / "data" / "gateway" / "keys.json")
    shutil.copytree(first / "secrets", second / "secrets")


def unique_stream(prefix: str = "T") -> StreamSpec:
    return StreamSpec(name=f"{prefix}{uuid.uuid4().hex[:12]}")


async def _delete(options: NatsOptions, spec: StreamSpec) -> None:
    from engine.crosscheck import bucket_name

    sl = await StreamLog.connect(options, spec, create=False)
    try:
        for name in (spec.name, f"KV_{bucket_name(spec.name)}", f"OBJ_KB_{spec.name}_SNAP"):
            with contextlib.suppress(Exception):
                await sl.js.delete_stream(name)
    finally:
        await sl.close()


@contextlib.contextmanager
def stream_on(options: NatsOptions | None = None, prefix: str = "T") -> Iterator[StreamSpec]:
    """A fresh stream name for one test; the stream and its buckets are deleted afterwards."""
    options = options or NatsOptions()
    spec = unique_stream(prefix)
    try:
        yield spec
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_delete(options, spec))


def replay(
    options: NatsOptions, spec: StreamSpec, checkpoints: dict[int, str] | None = None
) -> StreamReplayResult:
    async def body() -> StreamReplayResult:
        sl = await StreamLog.connect(options, spec, create=False)
        try:
            _, result = await replay_stream(sl, checkpoints=checkpoints)
            return result
        finally:
            await sl.close()

    return asyncio.run(body())
