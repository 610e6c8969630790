"""Issue 11, item 5: fail closed and say so; the state hash while running; a snapshot from a
different history refused at start.

The disk-full case is real: the data directory lives on a tiny tmpfs mounted for the test
(the tests run as root here; without the mount the test fails, it does not skip), which is
then filled, so the journal's next write gets ENOSPC from the kernel.
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import Credentials
from gateway.health import EXIT_FAIL_CLOSED
from tests.gateway_support import http, signed_query
from tests.serve_process import ServeProcess, kootabase

FS_BYTES = 4 << 20


@contextlib.contextmanager
def tiny_filesystem(path: Path) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {done.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Write until the filesystem is full (ENOSPC from the kernel)."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as fh:
        chunk = b"\0" * 4096
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        for _ in range(64):  # the last bytes of a partly free block
            with contextlib.suppress(OSError):
                fh.write(b"\0")
    return filler


def _order(serve: ServeProcess, creds: Credentials, price: str) -> tuple[int, Any]:
    query = signed_query(
        creds,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": price,
        },
    )
    status, _, body = http(
        "POST", serve.http + "/api/v3/order", query=query, headers={"X-MBX-APIKEY": creds.api_key}
    )
    return status, body


def _status(serve: ServeProcess, creds: Credentials, order_id: int) -> tuple[int, Any]:
    return _query(serve, creds, "/api/v3/order", orderId=order_id)


def _query(serve: ServeProcess, creds: Credentials, path: str, **params: Any) -> tuple[int, Any]:
    query = signed_query(creds, {"symbol": "BTCUSDT", **params})
    status, _, body = http(
        "GET", serve.http + path, query=query, headers={"X-MBX-APIKEY": creds.api_key}
    )
    return status, body


def _account(data: Path) -> Credentials:
    made = kootabase("accounts", "create", "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    funded = kootabase(
        "accounts",
        "deposit",
        "--data-dir",
        str(data),
        "--account",
        str(key["account_id"]),
        "--asset",
        "USDT",
        "--amount",
        "100000",
    )
    assert funded.returncode == 0, funded.stderr
    return Credentials.hmac(key["api_key"], key["secret"])


def _replayed_hash(journal: Path, to_seq: int) -> str:
    done = kootabase("replay", "--journal", str(journal), "--to", str(to_seq))
    assert done.returncode == 0, done.stderr
    found = re.search(r"state hash: ([0-9a-f]{64})", done.stdout)
    assert found, done.stdout
    return found.group(1)


def test_disk_full_fails_closed_says_why_and_exits(tmp_path: Path) -> None:
    with tiny_filesystem(tmp_path / "fs") as fs:
        data = fs / "data"
        serve = ServeProcess(data, tmp_path / "master.key", log_dir=tmp_path)
        try:
            creds = _account(data)
            status, placed = _order(serve, creds, "20000")
            assert status == 200, placed
            first_id = placed["orderId"]

            # the state hash while running equals a replay of the journal to its sequence; it
            # is recomputed at most once a second, so it catches up with the sequence shortly
            deadline = time.monotonic() + 5.0
            while True:
                status, health = serve.get("/health")
                assert status == 200 and health["ready"] is True and health["reason"] is None
                assert 0 < health["stateHashSeq"] <= health["lastSeq"]
                if health["stateHashSeq"] == health["lastSeq"] or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            assert health["stateHashSeq"] == health["lastSeq"], health
            assert _replayed_hash(data / "journal", health["stateHashSeq"]) == health["stateHash"]
            _, metrics = serve.get("/metrics")
            assert (
                f'kootabase_state_hash_seq{{hash="{health["stateHash"]}"}} '
                f"{float(health['stateHashSeq'])}" in metrics
            )
            assert "kootabase_ready 1.0" in metrics

            fill(fs)
            for n in range(1, 1000):  # until the journal's page has no room left
                status, failed = _order(serve, creds, f"{20000 + n}")
                if status != 200:
                    break
            assert (status, failed["code"]) == (503, -1007), failed  # its batch: unknown
            status, refused = _order(serve, creds, "20002")  # never journaled: definite
            assert (status, refused["code"]) == (503, -1001), refused
            status, health = serve.get("/health")
            assert status == 503 and health["ready"] is False and health["live"] is True
            assert "No space left on device" in health["reason"], health
            _, metrics = serve.get("/metrics")
            assert "kootabase_ready 0.0" in metrics
            assert re.search(r'kootabase_commands_stopped\{reason="[^"]*No space left', metrics)
            status, unknown = _status(serve, creds, first_id)  # exists, but: unknown now
            assert (status, unknown["code"]) == (503, -1006), unknown
            for path in ("/api/v3/openOrders", "/api/v3/allOrders", "/api/v3/myTrades"):
                status, unknown = _query(serve, creds, path)  # the read model may be behind
                assert (status, unknown["code"]) == (503, -1006), (path, unknown)
            assert serve.proc.wait(timeout=60) == EXIT_FAIL_CLOSED
            assert "fail_closed" in serve.stderr()
        finally:
            serve.stop()
        (fs / "filler").unlink()
        # the restart recovers the truth from the journal
        again = ServeProcess(data, tmp_path / "master.key", log_dir=tmp_path)
        try:
            status, order = _status(again, creds, first_id)
            assert status == 200 and order["status"] == "NEW", order
            status, health = again.get("/health")
            assert status == 200 and health["ready"] is True
        finally:
            assert again.stop() == 0


def test_snapshot_from_another_history_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for data, price in ((a, "20000"), (b, "20001")):
        serve = ServeProcess(data, tmp_path / "master.key")
        try:
            assert _order(serve, _account(data), price)[0] == 200
        finally:
            assert serve.stop() == 0  # a clean stop writes a snapshot
    [snap_a] = sorted((a / "snapshots").glob("*.snap"))[-1:]
    [snap_b] = sorted((b / "snapshots").glob("*.snap"))[-1:]
    assert snap_a.name == snap_b.name  # same sequence, different history
    shutil.copy(snap_b, snap_a)
    done = kootabase(
        "serve",
        "--data-dir",
        str(a),
        "--port",
        "0",
        "--master-key-file",
        str(tmp_path / "master.key"),
    )
    assert done.returncode != 0
    hashes = re.findall(r"[0-9a-f]{64}", done.stderr)
    assert "different history" in done.stderr and len(set(hashes)) == 2, done.stderr
    assert "anchored to journal record" in done.stderr  # one record read, no replay
    assert "Traceback" not in done.stderr
    # the journal is the truth: with the foreign snapshot moved aside it starts again
    snap_a.rename(tmp_path / "foreign.snap")
    for extra in (a / "gateway" / "readmodel").glob("*"):
        extra.unlink()
    serve = ServeProcess(a, tmp_path / "master.key")
    assert serve.stop() == 0
