"""Ordinary mistakes at the ``kootabase`` command line (issue 12): one line on stderr, no
traceback, a non-zero exit; every case runs the real command in a subprocess, as a user would.
Here: data directories, serve, bench and a closed stdout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import free_port
from tests.serve_support import Serve

# ---- data directories --------------------------------------------------------------------------


def test_read_only_commands_never_create_a_data_dir(tmp_path: Path) -> None:
    typo = tmp_path / "dtaa"
    assert_one_line(
        run_cli("accounts", "list", "--data-dir", str(typo)), "does not exist", "--data-dir"
    )
    assert_one_line(run_cli("custody", "reconcile", "--data-dir", str(typo)), "does not exist")
    assert_one_line(
        run_cli("ledger", "balances", "--journal", str(typo / "journal")), "does not exist"
    )
    assert_one_line(run_cli("staff", "list", "--data-dir", str(typo)), "does not exist")
    assert not typo.exists()
    typo.mkdir()
    assert_one_line(
        run_cli(
            "accounts",
            "deposit",
            "--data-dir",
            str(typo),
            "--account",
            "1",
            "--asset",
            "BTC",
            "--amount",
            "1",
        ),
        "not a kootabase data directory",
    )
    assert list(typo.iterdir()) == []


# ---- serve -------------------------------------------------------------------------------------


def test_serve_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert_one_line(
            run_cli("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port)),
            f"port {port}",
            "--port",
        )


@pytest.mark.parametrize("flag", ["--port", "--metrics-port"])
def test_serve_port_out_of_range_is_refused_before_anything_starts(
    tmp_path: Path, flag: str
) -> None:
    """99999 used to bind port 34463 (the socket layer wraps it): a typo served elsewhere."""
    data_dir = tmp_path / "d"
    assert_one_line(
        run_cli("serve", "--data-dir", str(data_dir), flag, "99999"), "99999", "0-65535", code=2
    )
    assert not data_dir.exists()


def test_serve_data_dir_not_writable_is_one_line_before_the_engine_loads() -> None:
    """/sys refuses a new directory even to root (a chmod 0555 directory does not stop root).
    The line used to come after the engine's import (minutes on a cold numba cache) and after
    the effective-config log line."""
    proc = run_cli("serve", "--data-dir", "/sys/kootabase-test", "--port", "0")
    assert_one_line(proc, "cannot write /sys/kootabase-test", "permission denied", "--data-dir")


def test_serve_ledger_dsn_down_or_missing_is_one_line(tmp_path: Path) -> None:
    """A --ledger-dsn whose server is down (a closed port) or whose database was never created
    used to start the exchange anyway, its ledger follower failing and retrying in the logs;
    now serve checks it once at start, before it creates the data directory."""
    data_dir = tmp_path / "d"
    port = free_port()
    dsn = f"postgresql://postgres:hunter2@127.0.0.1:{port}/kb"
    line = assert_one_line(
        run_cli("serve", "--data-dir", str(data_dir), "--port", "0", "--ledger-dsn", dsn),
        "--ledger-dsn",
        f"127.0.0.1:{port}",
        "connection refused",
        "is the server running",
    )
    assert "hunter2" not in line
    missing = f"kb_missing_{uuid.uuid4().hex[:8]}"
    dsn = f"postgresql://postgres@127.0.0.1:5432/{missing}"
    assert_one_line(
        run_cli("serve", "--data-dir", str(data_dir), "--port", "0", "--ledger-dsn", dsn),
        f"database '{missing}' does not exist",
        f"createdb -h 127.0.0.1 -p 5432 -U postgres {missing}",
    )
    assert not data_dir.exists()


def test_second_server_on_the_same_data_dir_names_the_first(copy_dir: Path, tmp_path: Path) -> None:
    first = Serve(tmp_path, data_dir=copy_dir)
    try:
        line = assert_one_line(
            run_cli("serve", "--data-dir", str(copy_dir), "--port", "0"),
            "already running",
            f"pid {first.proc.pid}",
            first.http,
            "--data-dir",
        )
        assert "LOCK" not in line
    finally:
        code = first.stop()
    assert code == 0


def test_log_level_after_the_subcommand() -> None:
    from gateway.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "--log-level", "debug"]).log_level == "debug"
    assert parser.parse_args(["--log-level", "error", "serve"]).log_level == "error"
    assert parser.parse_args(["serve"]).log_level is None  # main() picks info for serve
    args = parser.parse_args(["ledger", "balances", "--journal", "j", "--log-level", "warning"])
    assert args.log_level == "warning"


# ---- bench -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_bench_seconds_must_be_positive(seconds: str) -> None:
    for bench in ("gateway", "marketdata", "cluster"):
        assert_one_line(run_cli("bench", bench, f"--seconds={seconds}"), "--seconds", code=2)


def test_bench_cluster_needs_an_executable_nats_server(tmp_path: Path) -> None:
    missing = tmp_path / "nats-server"
    assert_one_line(run_cli("bench", "cluster", "--nats-server", str(missing)), "--nats-server")


# ---- broken pipe -------------------------------------------------------------------------------


def test_closed_stdout_ends_quietly(demo_dir: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "ledger",
                "balances",
                "--journal",
                str(demo_dir / "journal"),
                "--format",
                "csv",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141
