"""Ordinary mistakes at the ``kootabase`` command line (issue 12): one line on stderr, no
traceback, a non-zero exit; every case runs the real command in a subprocess, as a user would.
Here: the ledger reports, from the journal and from PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import free_port

# ---- ledger and PostgreSQL ---------------------------------------------------------------------


def test_as_of_past_the_end_is_the_same_error_from_the_journal(demo_dir: Path) -> None:
    assert_one_line(
        run_cli("ledger", "balances", "--journal", str(demo_dir / "journal"), "--as-of", "99999"),
        "the journal holds the ledger up to seq",
        "not 99999",
    )


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
