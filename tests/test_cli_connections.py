"""Every outward connection a command makes at start, when it fails: one line on stderr that
names what could not be reached and what to check, in words (not an exception's repr), a
non-zero exit, no traceback, and nothing before it (no configuration line that reads like a
start) and nothing left behind. The sibling of tests/test_cli_sweep.py (usage mistakes):
real NATS servers (one with users), a real litecoind, a real PostgreSQL.

The unreachable-NATS cases wait out the first-connect bound (15 s: a server may be starting),
so they run side by side.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import Litecoind, free_port, run_litecoind, unreachable_ltc_config
from tests.nats_cluster import nats_server_bin
from tests.serve_support import Serve

LOCAL_NATS = "nats://127.0.0.1:4222"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _clean(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """One line, exit 1, nothing on stdout, words rather than a repr."""
    line = assert_one_line(proc, *fragments, code=1)
    assert proc.stdout == "", proc.stdout
    for repr_text in ("Error(", "Errno", "Connect call failed", "ssl:default"):
        assert repr_text not in line, line
    return line


@pytest.fixture(scope="module")
def nats_with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS server that wants user ``kb`` with password ``right`` (and has no JetStream)."""
    binary = nats_server_bin()
    port = free_port()
    log = tmp_path_factory.mktemp("nats") / "nats.log"
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "--user", "kb", "--pass", "right"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def litecoind() -> Iterator[Litecoind]:
    with run_litecoind() as node:
        yield node


def _run_all(
    *cases: tuple[dict[str, str], tuple[str, ...]],
) -> list[subprocess.CompletedProcess[str]]:
    """Each (extra environment, argv) as a user runs it, side by side (most of each run is
    Python starting up, or the first-connect bound)."""

    def one(case: tuple[dict[str, str], tuple[str, ...]]) -> subprocess.CompletedProcess[str]:
        env, argv = case
        return run_cli(*argv, env={**os.environ, **env})

    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(one, cases))


def test_unreachable_nats_is_one_line_for_every_command(tmp_path: Path) -> None:
    """``serve --nats`` printed its JSON configuration line first, then an error quoting
    ``ConnectionRefusedError(111, ...)``; ``cluster status``, ``replay`` and ``ledger sync``
    quoted the same repr."""
    down = f"nats://127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    cases = {
        "serve": ("serve", "--data-dir", str(data), "--port", "0", "--nats", down),
        "cluster status": ("cluster", "status", "--nats", down),
        "replay": ("replay", "--nats", down, "--stream", "S"),
        "ledger sync": ("ledger", "sync", "--dsn", PG_DSN, "--nats", down),
    }
    procs = _run_all(*(({}, argv) for argv in cases.values()))
    for name, proc in zip(cases, procs, strict=True):
        line = _clean(proc, f"kootabase {name}: cannot reach NATS at {down}", "connection refused")
        assert "check --nats" in line, line
    assert not data.exists()


def test_nats_credentials_refused_is_one_line_at_once(nats_with_users: str, tmp_path: Path) -> None:
    """Wrong or missing credentials were reported as "cannot reach NATS ... within 15 s" with
    the server's error as a repr, after waiting out the bound: the server's refusal is final,
    so it is the answer at once, and it says to check the credentials."""
    url = nats_with_users
    wrong, right = {"KOOTABASE_NATS_PASSWORD": "wrong"}, {"KOOTABASE_NATS_PASSWORD": "right"}
    data = tmp_path / "data"
    serve = ("serve", "--data-dir", str(data), "--port", "0", "--nats", url, "--nats-user", "kb")
    status = ("cluster", "status", "--nats", url, "--nats-user", "kb")
    replay = ("replay", "--nats", url, "--stream", "S")
    served, statused, anonymous, allowed = _run_all(
        (wrong, serve), (wrong, status), ({}, replay), (right, (*replay, "--nats-user", "kb"))
    )
    for proc in (served, statused):
        line = _clean(proc, f"NATS at {url} refused the credentials")
        assert "Authorization Violation" in line and "--nats-user" in line, line
        assert "cannot reach" not in line, line
    line = _clean(anonymous, f"NATS at {url} needs credentials", "none were given")
    assert not data.exists()
    # the right password gets past the credentials; this server runs without JetStream,
    # which was a ServiceUnavailableError traceback
    line = _clean(allowed, f"NATS at {url} has no JetStream")
    assert "-js" in line, line


def test_a_stream_that_does_not_exist_is_one_line() -> None:
    stream = f"NO_SUCH_{uuid.uuid4().hex[:8]}"
    for proc in _run_all(
        ({}, ("replay", "--nats", LOCAL_NATS, "--stream", stream)),
        ({}, ("cluster", "status", "--nats", LOCAL_NATS, "--stream", stream)),
    ):
        line = _clean(proc, f"stream {stream} does not exist on NATS at {LOCAL_NATS}")
        assert "--stream" in line, line


def test_custody_nodes_are_checked_before_serve_starts(
    tmp_path: Path, litecoind: Litecoind
) -> None:
    """``serve --custody-config`` with a wrong node address or wrong RPC credentials started an
    exchange whose log then said ``custody_scan_failed`` every 2 s; now each node is asked once
    first and a wrong config is one line. A node that is merely down is a warning: one chain in
    maintenance must not keep the venue closed (test below)."""
    data = tmp_path / "data"
    config = tmp_path / "custody.toml"
    serve = ("serve", "--data-dir", str(data), "--port", "0", "--custody-config", str(config))
    port = free_port()
    config.write_text(
        unreachable_ltc_config(port).replace(f"http://127.0.0.1:{port}", "http://nosuch.invalid:9")
    )
    _clean(run_cli(*serve), "ltc-regtest node at http://nosuch.invalid:9", "host name not found")
    live = unreachable_ltc_config(port).replace(f"http://127.0.0.1:{port}", litecoind.url)
    config.write_text(  # the chain's node, live, with a wrong RPC password
        live.replace("[[asset]]", 'rpc_user = "kootabase"\nrpc_password = "wrong"\n[[asset]]')
    )
    line = _clean(run_cli(*serve), f"the ltc-regtest node at {litecoind.url} refused the RPC")
    assert "rpc_password" in line, line
    assert not data.exists()


def test_a_custody_node_that_is_down_is_a_warning_and_serve_starts(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "custody.toml"
    config.write_text(unreachable_ltc_config(port))
    server = Serve(tmp_path, "--custody-config", str(config))
    try:
        warning = f"kootabase serve: warning: the ltc-regtest node at http://127.0.0.1:{port}"
        lines = [line for line in server.raw if line.startswith(warning)]
        assert len(lines) == 1, server.raw[:5]
        assert "is down (connection refused)" in lines[0] and "wait until it answers" in lines[0]
        token = next((tmp_path / "data").rglob("admin.token")).read_text().strip()
        request = urllib.request.Request(
            server.http + "/admin/health/overview", headers={"X-Kootabase-Admin-Token": token}
        )
        deadline = time.monotonic() + 30
        while True:  # the chain's watcher says it is failing (the operations console's row)
            with urllib.request.urlopen(request, timeout=10) as resp:
                rows = json.loads(resp.read())["custody"]
            row = next(r for r in rows if r["chain"] == "ltc-regtest")
            if row["ok"] is False:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.5)
        time.sleep(2.5)  # a second failing pass: logged once, not once per pass
        failures = [e for e in server.events if e.get("event") == "custody_scan_failed"]
        assert len(failures) == 1, failures
    finally:
        assert server.stop() == 0
