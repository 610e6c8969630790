"""Running the ``kootabase`` command line as a user does, and the ordinary-mistake contract its
errors keep (one line on stderr, no traceback, a non-zero exit); the data directory the CLI
tests read (fixtures in conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.node import EngineNode, NodeConfig
from engine.schema import CreateAccount, Deposit
from engine.service import bootstrap_demo


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command line of this checkout, as a user runs it (stdin closed, output captured);
    ``env``, when given, is its whole environment."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def assert_one_line(
    proc: subprocess.CompletedProcess[str], *fragments: str, code: int | None = None
) -> str:
    """The ordinary-mistake contract: one line on stderr, no traceback, non-zero exit."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.returncode != 0, proc
    if code is not None:
        assert proc.returncode == code, proc
    line = lines[0]
    assert line.startswith("kootabase"), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def make_data_dir(path: Path, *, snapshot: bool) -> Path:
    node = EngineNode(NodeConfig(data_dir=path, fsync=False))
    bootstrap_demo(node)  # seq 1..7: assets and markets
    if snapshot:
        node.snapshot()  # at seq 7
    node.submit([CreateAccount(account_id=1)])
    node.submit(
        [Deposit(account_id=1, asset_id=1, amount_atoms=123_456_789_012, deposit_key="t:1")]
    )
    node.close(snapshot=snapshot)  # at seq 9
    return path
