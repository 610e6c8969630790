"""Crash test: SIGKILL an engine node at random points; nothing acknowledged may be lost.

After each kill the node is reopened (newest valid snapshot + journal tail) and must hold every
acknowledged command, and its state hash must equal a clean replay of the journal from genesis.
Then the child is started again on the same data directory, so later rounds also cover recovery
from a recovered node.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.node import EngineNode, NodeConfig
from engine.replay import replay

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 4
STARTUP_TIMEOUT_S = 300.0  # the first start may compile the numba core


def _run_until_killed(data_dir: Path, seed: int, rng: random.Random) -> int:
    """Start the child, let it work for a random time, SIGKILL it; return the last ack'd seq."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_child", str(data_dir), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], STARTUP_TIMEOUT_S)
        assert ready, "crash child did not start"
        first = child.stdout.readline()
        assert first.startswith("ready "), first
        last_ack = int(first.split()[1])
        time.sleep(rng.uniform(0.2, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        for line in child.stdout.read().splitlines():
            if line.startswith("ack "):
                last_ack = int(line.split()[1])
    finally:
        if child.poll() is None:
            child.kill()
    return last_ack


def test_sigkill_loses_no_acknowledged_command(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    data_dir = tmp_path / "node"
    acknowledged = 0
    for round_no in range(ROUNDS):
        last_ack = _run_until_killed(data_dir, seed=round_no, rng=rng)
        assert last_ack >= acknowledged
        acknowledged = last_ack
        with EngineNode(NodeConfig(data_dir=data_dir)) as node:
            assert node.last_seq >= acknowledged, "an acknowledged command was lost"
            recovered_hash = node.state_hash()
            recovered_seq = node.last_seq
            node.close(snapshot=False)
        clean = replay(data_dir / "journal")
        assert clean.last_seq == recovered_seq
        assert clean.state_hash == recovered_hash, f"round {round_no}: recovery != clean replay"
    assert acknowledged > 100, "the child never got going; the test proved nothing"
