"""One client cannot exhaust the server (issue 11, item 4), against real servers.

- Open connections are capped per IP on every endpoint: REST, the WS API and the market-data
  streams ``/ws`` and ``/stream``; another IP is still served.
- Slowly trickled request heads, silent sockets and trickled bodies are cut off after a bound.
- Malformed HTTP requests are logged at a bounded rate, without a traceback each.
- The limits are ``kootabase serve`` flags (and so ``--config`` keys); the daily order count
  survives a restart, with or without the saved counts file.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from gateway.client import ClientError, WsApiClient
from gateway.limits import Limits
from tests.custody_nodes import free_port
from tests.gateway_support import ServerThread
from tests.gateway_support import http as http_request

CAP = 4


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(
        tmp_path_factory.mktemp("capped"),
        Limits(
            connections_per_ip=CAP,
            http_idle_timeout_s=1.0,
            body_timeout_s=1.0,
            log_lines_per_minute=5,
        ),
    )
    yield s
    s.stop()


def _ping_from(server: ServerThread, source: str) -> int:
    conn = http.client.HTTPConnection(
        "127.0.0.1", server.running.port, timeout=5, source_address=(source, 0)
    )
    try:
        conn.request("GET", "/api/v3/ping")
        return conn.getresponse().status
    finally:
        conn.close()


def _wait_until(cond: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def _open(server: ServerThread) -> int:
    caps = server.running.caps
    assert caps is not None
    return sum(caps.open.values())


@pytest.mark.parametrize("path", ["/ws", "/stream?streams=btcusdt@trade", "/ws-api/v3"])
def test_websocket_connections_are_capped_per_ip(capped: ServerThread, path: str) -> None:
    url = capped.http.replace("http", "ws") + path
    with contextlib.ExitStack() as stack:
        for _ in range(CAP):
            stack.enter_context(ws_connect(url))
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url)
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body)["code"] == -1003
        # another client (another source address) is served meanwhile
        with ws_connect(url, source_address=("127.0.0.2", 0)):
            pass
        assert _ping_from(capped, "127.0.0.2") == 200
    _wait_until(lambda: _open(capped) == 0)
    with ws_connect(url):  # the slots are free again
        pass


def test_idle_rest_sockets_count_and_answer_429(capped: ServerThread) -> None:
    socks = [socket.create_connection(("127.0.0.1", capped.running.port)) for _ in range(CAP)]
    try:
        _wait_until(lambda: _open(capped) == CAP)
        status, _, data = http_request("GET", capped.http + "/api/v3/ping")
        assert status == 429 and data["code"] == -1003
    finally:
        for s in socks:
            s.close()
    _wait_until(lambda: _open(capped) == 0)
    assert http_request("GET", capped.http + "/api/v3/ping")[0] == 200


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes | None) -> float | None:
    """Seconds until the server closed ``sock`` (None if it did not within ``seconds``),
    sending ``trickle`` one byte every 0.2 s meanwhile."""
    started = time.monotonic()
    sock.settimeout(0.2)
    i = 0
    while time.monotonic() - started < seconds:
        try:
            if trickle is not None and i < len(trickle):
                sock.sendall(trickle[i : i + 1])
                i += 1
            data = sock.recv(4096)
            if data == b"" or data.startswith(b"HTTP/1.1 4"):
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None


@pytest.mark.parametrize(
    "trickle",
    [None, b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200],
    ids=["silent", "trickled-headers"],
)
def test_silent_and_slow_header_sockets_are_closed(
    capped: ServerThread, trickle: bytes | None
) -> None:
    with socket.create_connection(("127.0.0.1", capped.running.port)) as sock:
        took = _closed_within(sock, 8.0, trickle)
    assert took is not None and took < 4.0, took


def test_trickled_body_is_cut_off(capped: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", capped.running.port)) as sock:
        sock.sendall(
            b"POST /api/v3/order HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: k\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 500\r\n\r\nsymbol=BTC"
        )
        sock.settimeout(5.0)
        started = time.monotonic()
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 408"), head
        assert time.monotonic() - started < 4.0


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends before it closes the connection (it closes after a parse
    error)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_requests_are_logged_at_a_bounded_rate(
    capped: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    log = capped.running.server_log
    assert log is not None
    before = log.malformed
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    for i in range(30):
        with socket.create_connection(("127.0.0.1", capped.running.port)) as sock:
            line = b"X-Long: " + b"a" * 9_000 if i % 2 else b"Bad\x01Header: x"
            sock.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n")
            sock.settimeout(5.0)
            head, _, payload = _read_response(sock).partition(b"\r\n\r\n")
            assert head[8:13] == b" 400 ", head
            assert b"content-type: application/json" in head.lower(), head
            error = json.loads(payload)
            assert error["code"] == -1199 and error["msg"].startswith("Malformed HTTP request: ")
    _wait_until(lambda: log.malformed - before >= 30)
    assert log.malformed - before == 30
    assert log.lines <= log.per_minute * 2  # at most two minutes were touched
    assert log.suppressed > 0
    tracebacks = [r for r in caplog.records if r.exc_info or "Error handling" in r.getMessage()]
    assert tracebacks == []
    assert http_request("GET", capped.http + "/api/v3/ping")[0] == 200


def test_limits_are_serve_flags(tmp_path: Path) -> None:
    """``kootabase serve`` with limit flags: exchangeInfo reports them and they hold, on the
    API port and on the ``--metrics-port`` listener alike (which had no per-IP cap, aiohttp's
    75 s idle timeout and a traceback per malformed request)."""
    metrics_port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--port",
            "0",
            "--master-key-file",
            str(tmp_path / "master.key"),
            "--weight-per-minute",
            "4321",
            "--orders-per-10s",
            "17",
            "--orders-per-day",
            "99",
            "--connections-per-ip",
            "2",
            "--http-idle-timeout",
            "1.5",
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = ""
        assert proc.stderr is not None
        for line in proc.stderr:
            if '"serving"' in line:
                url = line.split('"http": "')[1].split('"')[0]
                break
        assert url, "the server did not start"
        status, _, info = http_request("GET", url + "/api/v3/exchangeInfo")
        assert status == 200
        got = {
            (r["rateLimitType"], r["interval"], r["intervalNum"]): r["limit"]
            for r in info["rateLimits"]
        }
        assert got[("REQUEST_WEIGHT", "MINUTE", 1)] == 4321
        assert got[("ORDERS", "SECOND", 10)] == 17
        assert got[("ORDERS", "DAY", 1)] == 99
        host, port = url.removeprefix("http://").split(":")
        with (
            socket.create_connection((host, int(port))),
            socket.create_connection((host, int(port))),
        ):
            time.sleep(0.2)
            assert http_request("GET", url + "/api/v3/ping")[0] == 429
        with socket.create_connection((host, int(port))) as silent:
            assert _closed_within(silent, 6.0, None) is not None
        metrics = f"http://{host}:{metrics_port}"
        assert http_request("GET", metrics + "/health")[0] == 200
        with (
            socket.create_connection((host, metrics_port)),
            socket.create_connection((host, metrics_port)),
        ):
            time.sleep(0.2)
            assert http_request("GET", metrics + "/metrics")[0] == 429
        with socket.create_connection((host, metrics_port)) as silent:
            assert _closed_within(silent, 6.0, None) is not None
        with socket.create_connection((host, metrics_port)) as bad:
            bad.sendall(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            assert b" 400 " in bad.recv(64)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.stderr is not None
    rest = proc.stderr.read()
    assert "malformed_http_request" in rest and "Traceback" not in rest, rest[-2000:]


def _place(server: ServerThread, price: str) -> int:
    async def body() -> int:
        async with WsApiClient.connect(server.ws_api, server.accounts.maker) as c:
            await c.logon()
            try:
                await c.place_order(
                    "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price=price, time_in_force="GTC"
                )
            except ClientError as exc:
                return exc.code
            return 0

    return asyncio.run(body())


@pytest.mark.parametrize("keep_file", [True, False], ids=["saved-counts", "journal-only"])
def test_daily_order_count_survives_a_restart(tmp_path: Path, keep_file: bool) -> None:
    limits = Limits(orders_per_day=3, orders_per_10s=1_000)
    s = ServerThread(tmp_path, limits)
    accounts = s.accounts
    try:
        assert [_place(s, "10000"), _place(s, "10001")] == [0, 0]
    finally:
        s.stop()
    counts = tmp_path / "data" / "gateway" / "order_counts.json"
    assert json.loads(counts.read_text())["counts"] == {str(accounts.maker_id): 2}
    if not keep_file:  # as after a crash before the first save: the journal alone
        counts.unlink()
    s2 = ServerThread(tmp_path, limits, fixture_accounts=False)
    s2.accounts = accounts
    try:
        assert [_place(s2, "10002"), _place(s2, "10003")] == [0, -1015]
    finally:
        s2.stop()
