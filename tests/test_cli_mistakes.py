"""More ordinary mistakes at the ``kootabase`` command line, one per subcommand family that
`tests/test_cli_errors_*.py` did not reach: one line on stderr, no traceback, a non-zero exit,
and nothing created by a command that only reads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.js.errors import NotFoundError

from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import free_port

NATS = "nats://127.0.0.1:4222"


async def _stream_exists(name: str) -> bool:
    nc = await nats.connect(NATS)
    try:
        await nc.jetstream().stream_info(name)
        return True
    except NotFoundError:
        return False
    finally:
        await nc.close()


def test_a_missing_stream_is_one_line_for_every_command_and_none_creates_it(
    tmp_path: Path,
    empty_db: str,
) -> None:
    """A typo in --stream: `journal export`, `marketdata`, `replay`, `audit verify|anchor` and
    `ledger sync` said so in a traceback (NotFoundError), or, for the audit commands, created
    the mistyped stream and reported its empty chain as verified."""
    stream = f"NO_SUCH_{uuid.uuid4().hex[:8]}"
    nats_args = ("--nats", NATS, "--stream", stream)
    commands = [
        ("journal", "export", *nats_args, "--journal", str(tmp_path / "exported")),
        ("marketdata", *nats_args, "--port", str(free_port())),
        ("replay", *nats_args),
        ("audit", "verify", *nats_args),
        ("audit", "anchor", *nats_args),
        ("ledger", "sync", "--dsn", empty_db, *nats_args),
    ]
    for argv in commands:
        line = assert_one_line(run_cli(*argv), f"stream {stream} does not exist", "--stream")
        assert line.startswith(f"kootabase {argv[0]}"), line
    assert not asyncio.run(_stream_exists(stream))
    assert asyncio.run(_tables(empty_db)) == 0  # ledger sync migrated nothing either


async def _tables(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        )
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "window",
    [("--from", "10", "--to", "5"), ("--from-time", "2030-01-01", "--to-time", "2020-01-01")],
)
def test_ledger_statement_with_a_reversed_window(
    demo_dir: Path,
    window: tuple[str, ...],
) -> None:
    journal = str(demo_dir / "journal")
    proc = run_cli("ledger", "statement", "--journal", journal, "--account", "1", *window)
    assert_one_line(proc, "the window is reversed", f"from {window[1]} is after to {window[3]}")


def test_a_data_dir_that_is_a_file_or_unwritable_is_one_line(tmp_path: Path) -> None:
    """An OSError on a path the user named is the environment, not a bug: one line."""
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    proc = run_cli("serve", "--data-dir", str(a_file), "--port", str(free_port()))
    line = proc.stderr.splitlines()[-1]  # after serve's effective-config log line
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    assert line.startswith("kootabase serve:") and str(a_file) in line, line
    assert "Not a directory" in line and "--data-dir" in line, line


def test_serve_with_a_missing_custody_config_starts_nothing(tmp_path: Path) -> None:
    """The custody file is read before the node opens: a typo in --custody-config used to
    create a new exchange (journal, demo markets) in the data directory before failing, with a
    hint naming custody's own --config."""
    data_dir = tmp_path / "fresh"
    missing = tmp_path / "custdy.toml"
    proc = run_cli(
        "serve", "--data-dir", str(data_dir), "--custody-config", str(missing), "--port", "0"
    )
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    line = proc.stderr.splitlines()[-1]
    assert f"custody config {missing} does not exist" in line, line
    assert "pass --custody-config FILE" in line, line
    assert not data_dir.exists()


def test_bench_ledger_with_a_wrong_dsn_is_one_line_before_the_workload() -> None:
    name = f"kb_missing_{uuid.uuid4().hex[:8]}"
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    assert_one_line(run_cli("bench", "ledger", "--dsn", dsn), "does not exist", "createdb")
    port = free_port()
    dsn = f"postgresql://postgres@127.0.0.1:{port}/x"
    assert_one_line(run_cli("bench", "ledger", "--dsn", dsn), "cannot connect", "refused")


def _with_closed_stdout(*argv: str) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` that has already exited
    try:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)


def test_every_report_command_ends_quietly_on_a_closed_stdout(demo_dir: Path) -> None:
    """`| head`: 141 and nothing on stderr, for each command whose answer is on stdout. `replay`
    printed through rich, which turned the closed pipe into a silent exit 1."""
    journal = str(demo_dir / "journal")
    for argv in [
        ("replay", "--journal", journal),
        ("audit", "verify", "--journal", journal),
        ("audit", "anchor", "--journal", journal),
        ("ledger", "statement", "--journal", journal, "--account", "1", "--format", "json"),
        ("ledger", "trial-balance", "--journal", journal),
        ("accounts", "list", "--data-dir", str(demo_dir)),
    ]:
        proc = _with_closed_stdout(*argv)
        assert (proc.returncode, proc.stderr) == (141, ""), (argv, proc)


def test_replay_piped_prints_plain_lines(demo_dir: Path) -> None:
    """Piped, `replay` prints its result lines only: no blank line left by the progress bar,
    none wrapped at a console width."""
    proc = run_cli("replay", "--journal", str(demo_dir / "journal"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    assert lines[0].startswith("replayed seq 1..9: 9 commands in ")
    assert lines[1].startswith("state hash: ") and len(lines[1]) == len("state hash: ") + 64


def test_serve_with_unreachable_nats_fails_at_the_first_connect(tmp_path: Path) -> None:
    """The cluster start point's connect used to swallow the failure (logged as 'no start
    point') and attach then waited out the same first-connect bound again: twice the wait for
    one line. Now the first failure is the answer."""
    port = free_port()
    proc = run_cli(
        "serve",
        "--data-dir",
        str(tmp_path / "gw"),
        "--nats",
        f"nats://127.0.0.1:{port}",
        "--port",
        str(free_port()),
    )
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr
    assert "cluster_start_point" not in proc.stderr, proc.stderr
    line = proc.stderr.splitlines()[-1]
    assert line.startswith("kootabase serve: cannot reach NATS"), line
    assert f"127.0.0.1:{port}" in line, line


def test_ledger_reports_of_an_unknown_account_are_one_line(demo_dir: Path, empty_db: str) -> None:
    """`ledger balances|statement --account 999` printed an empty table and exited 0, which
    reads like a real account with nothing in it. The ledger knows an account by its postings:
    one it never posted to is refused, from the journal and from PostgreSQL alike, and a known
    account still reports."""
    journal = str(demo_dir / "journal")
    sync = run_cli("ledger", "sync", "--dsn", empty_db, "--journal", journal)
    assert sync.returncode == 0, sync.stderr
    for source in (("--journal", journal), ("--dsn", empty_db)):
        for report in ("balances", "statement"):
            proc = run_cli("ledger", report, *source, "--account", "999")
            line = assert_one_line(proc, "account 999 is unknown to the ledger", "ledger balances")
            assert line.startswith(f"kootabase ledger {report}"), line
            assert proc.stdout == "", proc.stdout
            known = run_cli("ledger", report, *source, "--account", "1", "--format", "json")
            assert known.returncode == 0 and "123456789012" in known.stdout, known


def test_custody_alerts_where_custody_never_ran_create_no_store(tmp_path: Path) -> None:
    """`custody alerts list|resolve` opened (so created) custody.sqlite in any data dir they
    were pointed at, and `list` then answered with no alerts, exit 0: a typo in --data-dir read
    as "no chain halted". Like `custody float`, they now need the store custody made."""
    config = tmp_path / "custody.toml"
    docs = Path(__file__).resolve().parent.parent / "docs"
    config.write_text((docs / "custody.regtest.toml").read_text())
    before = sorted(p.name for p in tmp_path.iterdir())
    base = ("--data-dir", str(tmp_path), "--config", str(config))
    for action in (("list",), ("resolve", "1")):
        proc = run_cli("custody", "alerts", action[0], *base, *action[1:])
        assert_one_line(proc, "no custody store at", "custody never ran there")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_refused_sync_or_staff_create_leaves_the_database_and_files_as_they_were(
    tmp_path: Path, empty_db: str
) -> None:
    """`ledger sync --journal TYPO` migrated the database (nine tables) before it found no
    journal; `staff create` with a bad role, e-mail or password created the back office's
    tables (and a master key) before checking them. Both now check first."""
    proc = run_cli("ledger", "sync", "--dsn", empty_db, "--journal", str(tmp_path / "nope"))
    assert_one_line(proc, "journal directory", "does not exist")
    key = tmp_path / "master.key"
    base = ("staff", "create", "--data-dir", str(tmp_path), "--backoffice-dsn", empty_db)
    base = (*base, "--master-key-file", str(key))
    for args, password, fragment in (
        (("--email", "a@example.com", "--role", "nosuchrole"), "correct horse battery", "role"),
        (("--email", "not-an-address", "--role", "admin"), "correct horse battery", "email"),
        (("--email", "a@example.com", "--role", "admin"), "short", "WEAK_PASSWORD"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *base, *args],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert_one_line(proc, fragment)
    assert asyncio.run(_tables(empty_db)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_journal_import_of_a_wrong_path_creates_no_stream(tmp_path: Path, demo_dir: Path) -> None:
    """`journal import --journal DATA_DIR` (the data directory, not its journal) created the
    stream and reported "imported 0 commands", exit 0; a missing path created it too."""
    for path, fragment in (
        (demo_dir, "is a data directory, not a journal"),
        (tmp_path / "nope", "does not exist"),
    ):
        stream = f"NO_SUCH_{uuid.uuid4().hex[:8]}"
        argv = ("journal", "import", "--journal", str(path), "--nats", NATS, "--stream", stream)
        assert_one_line(run_cli(*argv), fragment)
        assert not asyncio.run(_stream_exists(stream))
