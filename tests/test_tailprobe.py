"""`bench cluster --probe`'s tail probe in a real child process: it must see a stall of the
loop thread as the loop's own CPU, and stay out of processes that do not ask for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench import cluster_bench, tailprobe_report
from bench.cluster_bench import _probe_env
from engine.usererror import UserError

CHILD = textwrap.dedent(
    """
    import asyncio, time

    async def serve_forever():
        await asyncio.sleep(0.5)
        cpu = time.thread_time()
        while time.thread_time() - cpu < 0.08:  # the loop thread busy for 80 ms of CPU
            pass
        await asyncio.sleep(0.5)

    asyncio.run(serve_forever())
    """
)


def _child(env: dict[str, str], cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", CHILD], env={**os.environ, **env}, cwd=cwd, check=True, timeout=60
    )


@pytest.mark.timeout(60)
def test_the_probe_sees_a_busy_loop_as_its_own_cpu(tmp_path: Path) -> None:
    began = time.perf_counter()
    _child(_probe_env(tmp_path), tmp_path)
    (probe,) = tmp_path.glob("probe-*.txt")
    lags = [line.split() for line in probe.read_text().splitlines() if " lag/" in line]
    stalls = [(float(wall), kind) for _, kind, wall in lags if float(wall) >= 70]
    assert stalls, lags
    _, kind = max(stalls)
    loop_cpu_ms = float(kind.split("cpu=")[1].split("/")[0])
    assert loop_cpu_ms >= 70, kind  # counted as the loop's own work
    (tmp_path / "window.json").write_text(
        json.dumps({"t0": began, "t1": time.perf_counter(), "offered": 1})
    )
    text = tailprobe_report.report(tmp_path)
    assert "lags >= 10 ms:" in text and "loop thread on CPU" in text, text


@pytest.mark.timeout(60)
def test_without_the_variable_the_probe_does_nothing(tmp_path: Path) -> None:
    env = _probe_env(tmp_path)
    del env["KB_TAILPROBE"]
    _child(env, tmp_path)
    assert not list(tmp_path.glob("probe-*.txt"))


def test_an_unusable_probe_directory_is_a_clear_error_before_anything_starts(
    tmp_path: Path,
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(UserError, match=r"cannot use .* for the probe's files"):
        cluster_bench.run(seconds=0.1, replicas=(3,), probe=a_file / "probe")
