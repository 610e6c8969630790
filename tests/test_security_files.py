"""Issue 11, item 7: private files from the first byte, /metrics on its own address or behind a
token, and a ``Server`` header that advertises no versions. Against a real ``kootabase serve``."""

from __future__ import annotations

import socket
import stat
import urllib.request
from pathlib import Path

from tests.custody_nodes import free_port
from tests.serve_process import ServeProcess, kootabase


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_metrics_apart_with_a_token_and_no_versions_in_the_server_header(tmp_path: Path) -> None:
    token = tmp_path / "metrics.token"
    token.write_text("s3cret-scrape-token\n")
    port = free_port()
    serve = ServeProcess(
        tmp_path / "data",
        tmp_path / "master.key",
        "--metrics-port",
        str(port),
        "--metrics-token-file",
        str(token),
    )
    try:
        status, headers, _ = _get(serve.http + "/metrics")
        assert status == 404, "metrics must not be on the API port"
        assert headers["Server"] == "kootabase"
        status, headers, _ = _get(serve.http + "/api/v3/ping")
        assert status == 200 and headers["Server"] == "kootabase"
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert _get(metrics)[0] == 401
        assert _get(metrics, {"Authorization": "Bearer wrong"})[0] == 401
        status, headers, body = _get(metrics, {"Authorization": "Bearer s3cret-scrape-token"})
        assert status == 200 and "kootabase_ready 1.0" in body
        assert "Python" not in headers["Server"] and "aiohttp" not in headers["Server"]
        status, _, body = _get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and '"ready": true' in body
        # aiohttp's own answer to a request it cannot parse bypasses the app's hooks: it named
        # "Python/3.11 aiohttp/3.x" on both ports
        for p in (int(serve.http.rsplit(":", 1)[1]), port):
            with socket.create_connection(("127.0.0.1", p), timeout=10) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
                head = raw.recv(4096).split(b"\r\n\r\n")[0].decode()
            assert " 400 " in head and "\r\nServer: kootabase" in head, head
    finally:
        assert serve.stop() == 0


def test_data_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = ServeProcess(data, tmp_path / "master.key")
    try:
        made = kootabase("accounts", "create", "--data-dir", str(data))
        assert made.returncode == 0, made.stderr
        # a back-office user: the identity store (SQLite, password hashes) is created now
        user = b'{"email": "files@example.com", "password": "correct horse battery"}'
        req = urllib.request.Request(serve.http + "/api/v1/auth/signup", data=user, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 201
    finally:
        assert serve.stop() == 0
    # every file and directory, whoever created it (SQLite's files and their -wal/-shm,
    # server.json were 0644): nothing for group or others
    loose = [(str(p), oct(_mode(p))) for p in [data, *data.rglob("*")] if _mode(p) & 0o077]
    assert loose == []
    assert _mode(data) == 0o700
    for directory in (data / "journal", data / "snapshots", data / "gateway"):
        assert _mode(directory) & 0o077 == 0, directory
    files = [
        *(data / "journal").glob("*.seg"),
        *(data / "snapshots").glob("*.snap"),
        data / "gateway" / "keys.json",
        data / "gateway" / "admin.token",
        *(data / "gateway" / "readmodel").glob("*"),
        tmp_path / "master.key",
    ]
    assert len(files) >= 6
    for path in files:
        assert _mode(path) == 0o600, (path, oct(_mode(path)))
    # a data dir written by an older version (world-readable) is tightened at the next start
    (data / "journal").chmod(0o755)
    for seg in (data / "journal").glob("*.seg"):
        seg.chmod(0o644)
    data.chmod(0o755)
    serve = ServeProcess(data, tmp_path / "master.key")
    assert serve.stop() == 0
    assert _mode(data) == 0o700 and _mode(data / "journal") == 0o700
    assert all(_mode(seg) == 0o600 for seg in (data / "journal").glob("*.seg"))
