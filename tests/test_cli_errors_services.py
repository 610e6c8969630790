"""Ordinary mistakes at the ``kootabase`` command line (issue 12): one line on stderr, no
traceback, a non-zero exit; every case runs the real command in a subprocess, as a user would.
Here: commands that need a node, a custody config or NATS they were not given.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from custody.config import load_config
from custody.store import CustodyStore
from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import free_port, unreachable_ltc_config

# ---- custody reconcile -------------------------------------------------------------------------


def test_custody_reconcile_without_config_or_node(copy_dir: Path) -> None:
    assert_one_line(
        run_cli("custody", "reconcile", "--data-dir", str(copy_dir)),
        "custody.toml does not exist",
        "--config",
    )
    port = free_port()
    config = copy_dir / "custody.toml"
    config.write_text(unreachable_ltc_config(port))
    before = sorted(copy_dir.rglob("*"))
    assert_one_line(  # custody never ran here: said so, and no store is left behind
        run_cli("custody", "reconcile", "--data-dir", str(copy_dir)),
        "no custody store at",
        "custody never ran there",
    )
    assert sorted(copy_dir.rglob("*")) == before
    CustodyStore(load_config(config, copy_dir).store_path).close()
    assert_one_line(
        run_cli("custody", "reconcile", "--data-dir", str(copy_dir)),
        "cannot reach the ltc-regtest node",
        f"127.0.0.1:{port}",
    )
    config.write_text("[[chain]]\nname = 'x'\n")
    assert_one_line(
        run_cli("custody", "reconcile", "--data-dir", str(copy_dir)),
        "custody config",
        "missing key",
    )


def test_cluster_commands_without_nats_or_stream_are_one_line() -> None:
    """Unreachable NATS: one line after the first-connect bound, not a retry loop forever; a
    stream that does not exist: one line at once."""
    port = free_port()
    proc = run_cli("cluster", "status", "--nats", f"nats://127.0.0.1:{port}")
    line = assert_one_line(proc, "cannot reach NATS", f"127.0.0.1:{port}", "connection refused")
    assert "Error" not in line, line  # words, not an exception's repr
    stream = f"NO_SUCH_{uuid.uuid4().hex[:8]}"
    proc = run_cli("cluster", "status", "--nats", "nats://127.0.0.1:4222", "--stream", stream)
    line = assert_one_line(proc, f"stream {stream} does not exist")
    assert "--stream" in line
