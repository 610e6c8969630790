"""Ordinary mistakes at the ``kootabase`` command line: one line on stderr, no traceback, a
non-zero exit (issue 12). Every case runs the real command in a subprocess, as a user would."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.node import EngineNode, NodeConfig
from engine.schema import CreateAccount, Deposit
from engine.service import bootstrap_demo
from tests.custody_nodes import free_port
from tests.serve_support import Serve, pg_admin


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """The command line of this checkout, as a user runs it (stdin closed, output captured)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
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


def _make_data_dir(path: Path, *, snapshot: bool) -> Path:
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


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a journal and a snapshot (not modified by the tests)."""
    return _make_data_dir(tmp_path_factory.mktemp("cli") / "data", snapshot=True)


@pytest.fixture()
def copy_dir(demo_dir: Path, tmp_path: Path) -> Path:
    """A private copy a test may damage."""
    return Path(shutil.copytree(demo_dir, tmp_path / "data"))


# ---- replay ------------------------------------------------------------------------------------


def test_replay_missing_journal(tmp_path: Path) -> None:
    assert_one_line(
        run_cli("replay", "--journal", str(tmp_path / "missing")), "does not exist", "--journal"
    )
    assert not (tmp_path / "missing").exists()


def test_a_data_dir_given_as_the_journal(demo_dir: Path) -> None:
    for argv in (["replay"], ["ledger", "balances"]):
        assert_one_line(
            run_cli(*argv, "--journal", str(demo_dir)),
            "is a data directory, not a journal",
            f"--journal {demo_dir}/journal",
        )


def test_replay_reversed_range_and_past_the_end(demo_dir: Path) -> None:
    journal = str(demo_dir / "journal")
    assert_one_line(
        run_cli("replay", "--journal", journal, "--from", "10", "--to", "5"),
        "--from 10 is after --to 5",
    )
    assert_one_line(
        run_cli("replay", "--journal", journal, "--to", "100000"), "outside the journal"
    )


def test_replay_verify_without_snapshot(tmp_path: Path) -> None:
    data = _make_data_dir(tmp_path / "data", snapshot=False)
    assert_one_line(
        run_cli("replay", "--journal", str(data / "journal"), "--verify"), "nothing to verify"
    )


def test_replay_verify_with_corrupt_snapshot(copy_dir: Path) -> None:
    snap = sorted((copy_dir / "snapshots").glob("*.snap"))[-1]
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    assert_one_line(
        run_cli("replay", "--journal", str(copy_dir / "journal"), "--verify"),
        "cannot be trusted",
        code=3,
    )


def test_replay_verify_passes_on_a_good_snapshot(demo_dir: Path) -> None:
    proc = run_cli(
        "--log-level", "error", "replay", "--journal", str(demo_dir / "journal"), "--verify"
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified snapshots: 2" in proc.stdout


def _corrupt_journal(data_dir: Path) -> None:
    (segment,) = (data_dir / "journal").glob("*.seg")
    raw = bytearray(segment.read_bytes())
    raw[40] ^= 0xFF  # inside the first record: not a torn tail, a damaged journal
    segment.write_bytes(bytes(raw))


def test_corrupt_journal_at_replay_and_at_start(copy_dir: Path) -> None:
    _corrupt_journal(copy_dir)
    assert_one_line(run_cli("replay", "--journal", str(copy_dir / "journal")), "journal corruption")
    assert_one_line(
        run_cli("--log-level", "warning", "serve", "--data-dir", str(copy_dir), "--port", "0"),
        "journal corruption",
        "backup",
    )


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


# ---- ledger and PostgreSQL ---------------------------------------------------------------------


def test_as_of_past_the_end_is_the_same_error_from_the_journal(demo_dir: Path) -> None:
    assert_one_line(
        run_cli("ledger", "balances", "--journal", str(demo_dir / "journal"), "--as-of", "99999"),
        "the journal holds the ledger up to seq",
        "not 99999",
    )


@pytest.fixture()
def empty_db() -> Iterator[str]:
    name = f"kb_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def test_statement_before_sync(empty_db: str) -> None:
    assert_one_line(
        run_cli("ledger", "statement", "--account", "1", "--dsn", empty_db),
        "no ledger projection",
        "kootabase ledger sync",
    )


def test_dsn_mistakes(demo_dir: Path) -> None:
    name = f"kb_missing_{uuid.uuid4().hex[:8]}"
    assert_one_line(
        run_cli("ledger", "trial-balance", "--dsn", f"postgresql://postgres@127.0.0.1:5432/{name}"),
        "does not exist",
        f"createdb -h 127.0.0.1 -p 5432 -U postgres {name}",
    )
    port = free_port()
    assert_one_line(
        run_cli("ledger", "balances", "--dsn", f"postgresql://postgres@127.0.0.1:{port}/x"),
        f"127.0.0.1:{port}",
        "connection refused",
    )
    assert_one_line(
        run_cli("ledger", "balances", "--dsn", "mysql://postgres:pw@127.0.0.1/x"),
        "not a PostgreSQL DSN",
        "postgresql://",
    )
    line = assert_one_line(
        run_cli(
            "ledger",
            "sync",
            "--dsn",
            f"postgresql://postgres:hunter2@127.0.0.1:{port}/x",
            "--journal",
            str(demo_dir / "journal"),
        ),
        "connection refused",
    )
    assert "hunter2" not in line


# ---- accounts: keys and the master key ---------------------------------------------------------


def _ed25519_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_ed25519_public_key_as_pem_text_or_file(copy_dir: Path, tmp_path: Path) -> None:
    def create(key: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "accounts",
            "create",
            "--data-dir",
            str(copy_dir),
            "--master-key-file",
            str(tmp_path / "master.key"),
            "--ed25519-public-key",
            key,
        )

    as_text = create(_ed25519_pem())
    assert as_text.returncode == 0, as_text.stderr
    assert '"kind": "ed25519"' in as_text.stdout
    pem_file = tmp_path / "key.pem"
    pem_file.write_text(_ed25519_pem())
    as_file = create(str(pem_file))
    assert as_file.returncode == 0, as_file.stderr
    assert_one_line(create(str(tmp_path / "nope.pem")), "neither a PEM public key nor a file")
    assert_one_line(create("-----BEGIN PUBLIC KEY-----\nxx\n"), "not a PEM public key")


def test_master_key_that_does_not_decrypt_is_refused(copy_dir: Path, tmp_path: Path) -> None:
    right = tmp_path / "right.key"
    created = run_cli(
        "accounts", "create", "--data-dir", str(copy_dir), "--master-key-file", str(right)
    )
    assert created.returncode == 0, created.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_text("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=\n")  # 32 other bytes
    assert_one_line(
        run_cli("accounts", "list", "--data-dir", str(copy_dir), "--master-key-file", str(wrong)),
        "does not decrypt",
        str(wrong),
    )
    missing = tmp_path / "missing.key"
    assert_one_line(
        run_cli("accounts", "list", "--data-dir", str(copy_dir), "--master-key-file", str(missing)),
        "does not exist",
        "never generated",
    )
    assert not missing.exists()  # no new key silently replaces the one that encrypted them
    listed = run_cli(
        "accounts", "list", "--data-dir", str(copy_dir), "--master-key-file", str(right)
    )
    assert listed.returncode == 0, listed.stderr


# ---- custody reconcile -------------------------------------------------------------------------


def test_custody_reconcile_without_config_or_node(copy_dir: Path) -> None:
    assert_one_line(
        run_cli("custody", "reconcile", "--data-dir", str(copy_dir)),
        "custody.toml does not exist",
        "--config",
    )
    port = free_port()
    config = copy_dir / "custody.toml"
    config.write_text(f"""
[[chain]]
name = "ltc-regtest"
kind = "bitcoin"
hrp = "rltc"
rpc_url = "http://127.0.0.1:{port}"
hot_address = "rltc1qhkydyzuhpmvf8f0gjkue4hmlny4t7juttqm07l"
bitcoinlib_network = "litecoin_testnet"
[[asset]]
asset_id = 4
symbol = "LTC"
chain = "ltc-regtest"
chain_decimals = 8
engine_decimals = 8
""")
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


# ---- reports -----------------------------------------------------------------------------------


def test_reports_show_symbols_whole_amounts_and_take_a_symbol(demo_dir: Path) -> None:
    import csv
    import io
    import json

    journal = str(demo_dir / "journal")
    as_csv = run_cli("ledger", "balances", "--journal", journal)  # not a TTY: CSV
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows and {r["asset"] for r in rows} <= {"USDT", "BTC", "ETH", "LTC"}
    assert {
        "account": "1",
        "asset": "BTC",
        "bucket": "AVAILABLE",
        "atoms": "123456789012",
        "amount": "1234.56789012",
    } in rows
    by_symbol = run_cli(
        "ledger",
        "statement",
        "--journal",
        journal,
        "--account",
        "1",
        "--asset",
        "btc",
        "--format",
        "json",
    )
    by_id = run_cli(
        "ledger",
        "statement",
        "--journal",
        journal,
        "--account",
        "1",
        "--asset",
        "1",
        "--format",
        "json",
    )
    assert by_symbol.returncode == 0, by_symbol.stderr
    lines = json.loads(by_symbol.stdout)["rows"]
    assert lines == json.loads(by_id.stdout)["rows"]
    assert any(r["reason"] == "DEPOSIT" and r["amount"] == "1234.56789012" for r in lines), lines
    assert_one_line(
        run_cli("ledger", "balances", "--journal", journal, "--asset", "DOGE"),
        "unknown asset 'DOGE'",
        "known assets",
    )
    # a table on a terminal 40 columns wide still prints every digit of every amount
    table = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ledger.tables import emit\n"
            "emit('t', ('asset', 'amount'), [('USDT', '123456789012345678901234.123456')],"
            " 'table')",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "40", "TERM": "xterm"},
        timeout=60,
    )
    assert "123456789012345678901234.123456" in table.stdout, table.stdout


def test_replay_from_starts_at_a_snapshot(demo_dir: Path) -> None:
    journal = str(demo_dir / "journal")
    whole = run_cli("replay", "--journal", journal)
    tail = run_cli("replay", "--journal", journal, "--from", "8")  # from the snapshot at seq 7
    assert whole.returncode == tail.returncode == 0, (whole.stderr, tail.stderr)
    assert "replayed seq 1..9" in whole.stdout
    assert "replayed seq 8..9" in tail.stdout
    assert whole.stdout.splitlines()[-1] == tail.stdout.splitlines()[-1]  # the same state hash


def test_cluster_commands_without_nats_or_stream_are_one_line() -> None:
    """Unreachable NATS: one line after the first-connect bound, not a retry loop forever; a
    stream that does not exist: one line at once."""
    port = free_port()
    proc = run_cli("cluster", "status", "--nats", f"nats://127.0.0.1:{port}")
    assert_one_line(proc, "cannot reach NATS", f"127.0.0.1:{port}", "ConnectionRefused")
    stream = f"NO_SUCH_{uuid.uuid4().hex[:8]}"
    proc = run_cli("cluster", "status", "--nats", "nats://127.0.0.1:4222", "--stream", stream)
    line = assert_one_line(proc, f"stream {stream} does not exist")
    assert "--stream" in line
