"""``kootabase serve`` for an operator (issue 12): the config file whose keys are the flags, the
effective config logged with secrets redacted, SIGHUP like SIGTERM with one line at a clean stop,
the supervised ledger follower, and the notice before a cold numba compile."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from engine.usererror import UserError
from gateway.cli import build_parser
from gateway.serveconfig import config_actions, effective, parse_with_config, subparser
from tests.serve_support import Serve, pg_admin

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "docs" / "kootabase.example.toml"


# ---- the config file ---------------------------------------------------------------------------


def test_every_serve_flag_is_a_config_key_and_the_sample_lists_them_all() -> None:
    parser = build_parser()
    keys = config_actions(parser)
    serve = subparser(parser, "serve")
    flags = {o[2:] for a in serve._actions for o in a.option_strings if o.startswith("--")}
    assert flags - {"help", "config"} <= set(keys)
    assert "log-level" in keys
    text = SAMPLE.read_text()
    listed = set(re.findall(r"^#? ?([a-z][a-z0-9-]*) = ", text, flags=re.M))
    assert listed == set(keys), (set(keys) - listed, listed - set(keys))


def test_sample_config_loads_and_flags_override_it(tmp_path: Path) -> None:
    parser = build_parser()
    args = parse_with_config(parser, ["serve", "--config", str(SAMPLE)])
    assert (args.port, args.host, args.data_dir, args.log_level) == (
        8080,
        "127.0.0.1",
        Path("./data"),
        "info",
    )
    # the commented keys of the sample, uncommented, load too (with their own types)
    full = tmp_path / "full.toml"
    full.write_text(re.sub(r"^# ?([a-z][a-z0-9-]* = )", r"\1", SAMPLE.read_text(), flags=re.M))
    args = parse_with_config(build_parser(), ["serve", "--config", str(full), "--port", "9"])
    assert args.port == 9 and args.custody_signer is False and args.replicas == 1
    assert args.master_key_file == Path("/etc/kootabase/master.key")
    shown = effective(build_parser(), args)
    assert shown["ledger-dsn"] == "postgresql://kootabase:***@127.0.0.1:5432/kootabase"
    assert "secret" not in json.dumps(shown)
    # a level given before the subcommand beats the file's
    args = parse_with_config(
        build_parser(), ["--log-level", "error", "serve", "--config", str(full)]
    )
    assert args.log_level == "error"


def test_operations_doc_config_example_loads(tmp_path: Path) -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    path = tmp_path / "from-doc.toml"
    path.write_text(block)
    args = parse_with_config(build_parser(), ["serve", "--config", str(path)])
    assert args.host == "0.0.0.0" and args.data_dir == Path("/var/lib/kootabase")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("prot = 8080\n", "did you mean 'port'?"),
        ('port = "eighty"\n', "port: not an integer"),
        ("no-fsync = 1\n", "true or false"),
        ('log-level = "loud"\n', "must be one of"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(UserError, match=re.escape(fragment)):
        parse_with_config(build_parser(), ["serve", "--config", str(path)])
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and fragment in proc.stderr


# ---- a running server --------------------------------------------------------------------------


def test_config_logged_redacted_and_sighup_stops_with_one_line(
    tmp_path: Path, empty_db: str
) -> None:
    # a password in the DSN (PostgreSQL here trusts local connections and ignores it)
    dsn = empty_db.replace("postgres@", "postgres:hunter2@")
    config = tmp_path / "serve.toml"
    config.write_text(f'ledger-dsn = "{dsn}"\nlog-level = "info"\n')
    server = Serve(tmp_path, "--config", str(config))
    try:
        shown = server.wait_for("config")
        assert shown["effective"]["ledger-dsn"] == dsn.replace("hunter2", "***")
        assert shown["effective"]["port"] == 0  # the command line over the default
        assert "hunter2" not in "".join(server.raw)
        before = len(server.events)
    finally:
        code = server.stop(signal.SIGHUP)
    assert code == 0
    after = [
        e for e in server.events[before:] if not str(e.get("event")).startswith("ledger_follower_")
    ]
    assert [e["event"] for e in after] == ["stopped"], after
    assert after[0]["signal"] == "SIGHUP"
    assert "Traceback" not in "".join(server.raw)


@pytest.fixture()
def db_name() -> Iterator[str]:
    name = f"kb_follow_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _checkpoint(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT last_seq FROM projection_checkpoint"))
    finally:
        await conn.close()


def _projected(dsn: str, seq: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if asyncio.run(_checkpoint(dsn)) >= seq > 0:
                return
        except (asyncpg.UndefinedTableError, asyncpg.InvalidCatalogNameError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"the follower did not project the journal to {seq}")


def test_ledger_follower_is_supervised_and_quiet_when_idle(tmp_path: Path, db_name: str) -> None:
    """serve refuses a --ledger-dsn it cannot use at start (test_cli_errors_serve.py); a
    database lost while it runs is the supervisor's: logged, restarted, caught up."""
    dsn = f"postgresql://postgres@127.0.0.1:5432/{db_name}"
    asyncio.run(pg_admin(f"CREATE DATABASE {db_name}"))
    server = Serve(tmp_path, "--ledger-dsn", dsn)
    try:
        _projected(dsn, server.last_seq)
        asyncio.run(pg_admin(f"DROP DATABASE {db_name} WITH (FORCE)"))
        data_dir = str(tmp_path / "data")
        created = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "accounts", "create", "--data-dir", data_dir],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr  # a journaled command to project
        failed = server.wait_for("ledger_follower_failed")
        assert f"createdb -h 127.0.0.1 -p 5432 -U postgres {db_name}" in failed["error"]
        assert "Traceback" not in "".join(server.raw)
        assert server.metric("kootabase_ledger_follower_restarts_total") >= 1
        check = server.health()["checks"]["ledgerFollower"]
        assert check["restarts"] >= 1 and "createdb" in check["lastError"]
        asyncio.run(pg_admin(f"CREATE DATABASE {db_name}"))  # the operator follows the hint
        _projected(dsn, server.last_seq + 1)
        assert server.metric("kootabase_ledger_follower_up") == 1
        check = server.health()["checks"]["ledgerFollower"]
        assert check["ok"] is True and check["state"] == "running"
        deadline = time.monotonic() + 30  # history from PostgreSQL comes up once (logged)
        while server.health()["checks"].get("pgHistory", {}).get("state", "running") != "running":
            assert time.monotonic() < deadline, server.health()["checks"]["pgHistory"]
            time.sleep(0.2)
        quiet_from = len(server.raw)
        time.sleep(6)  # three follow intervals of an idle exchange
        assert server.raw[quiet_from:] == []
    finally:
        code = server.stop()
    assert code == 0


# ---- the first start ---------------------------------------------------------------------------


def test_cold_numba_cache_is_announced(tmp_path: Path) -> None:
    probe = (
        "import json, structlog\n"
        "from engine.compilenotice import announce_compilation, kernels_cached\n"
        "seen = []\n"
        "class Log:\n"
        "    def info(self, event, **kw): seen.append((event, kw))\n"
        "announce_compilation(Log())\n"
        "print(json.dumps([kernels_cached(), seen]))\n"
    )

    def run(cache_dir: str | None) -> Any:
        env = dict(os.environ)
        env.pop("NUMBA_CACHE_DIR", None)
        if cache_dir:
            env["NUMBA_CACHE_DIR"] = cache_dir
        out = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
            check=True,
        ).stdout
        return json.loads(out)

    cached, seen = run(str(tmp_path / "empty-cache"))
    assert cached is False
    assert seen[0][0] == "compiling_engine" and "numba" in seen[0][1]["detail"]
    assert re.search(r"about \d+-\d+ s", seen[0][1]["detail"])
    cached, seen = run(None)  # the repository's own cache (tests already compiled it)
    assert cached is True and seen == []


def test_serve_checks_mistakes_before_loading_the_engine() -> None:
    """The lock, port and config checks run before numba is even imported, so on a cold cache
    they fail in a moment and the compile notice comes before the compile."""
    probe = "import sys, gateway.cli, gateway.server; print('numba' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "False"


def test_make_run_installs_runtime_dependencies_only() -> None:
    def recipe(target: str) -> str:
        return subprocess.run(
            ["make", "-n", "-B", target, "VENV=/nonexistent/venv"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    run = recipe("run")
    assert "pip install -e ." in run and "[dev]" not in run
    assert "kootabase serve" in run
    assert "pip install -e '.[dev]'" in recipe("test")
