"""Users and sessions over HTTP against a real gateway (real journal, real sockets), with the
identity store in SQLite (the embedded default) and in a real PostgreSQL database made for
the test. Here: the identity store's files are private, it survives a
restart, and an unreachable PostgreSQL DSN is one line before anything is created.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.backoffice_http import api, signup_login
from tests.gateway_support import ServerThread


def test_secret_files_are_private(sqlite_server: ServerThread) -> None:
    signup_login(sqlite_server, "files@example.com")
    folder = sqlite_server.gw.config.data_dir / "backoffice"
    for name in ("identity.sqlite3", "jwt.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_identity_store_survives_a_restart(tmp_path: Path) -> None:
    srv = ServerThread(tmp_path, fixture_accounts=False, marketdata=False)
    try:
        s = signup_login(srv, "restart@example.com")
    finally:
        srv.stop()
    srv = ServerThread(tmp_path, fixture_accounts=False, marketdata=False)
    try:
        assert s["account_id"] in srv.gw.store.accounts  # rebuilt from the journal
        status, _, me = api(srv, "GET", "/api/v1/me", token=s["access_token"])
        assert status == 200 and me["account_id"] == s["account_id"]
        assert (
            api(srv, "POST", "/api/v1/auth/refresh", {"refresh_token": s["refresh_token"]})[0]
            == 200
        )
    finally:
        srv.stop()


def test_serve_with_an_unreachable_backoffice_dsn_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "KOOTABASE_MASTER_KEY_FILE": str(tmp_path / "master.key")}
    dsn = f"postgresql://postgres@127.0.0.1:5432/kootabase_bo_missing_{os.getpid()}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
            "--backoffice-dsn",
            dsn,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode != 0
    assert "cannot open the back-office identity store" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()  # the DSN is reached before the node opens
