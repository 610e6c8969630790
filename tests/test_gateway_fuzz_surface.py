"""The whole surface, fuzzed: every REST route, every WS API method and the market-data streams
get generated requests (hypothesis); every answer is well formed, the connection still
answers, and the engine state hash moves only when a signed trading request was journaled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import time
from http.client import HTTPResponse, RemoteDisconnected
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from gateway import handlers
from gateway.client import Credentials
from gateway.client.ws import _payload
from tests import fuzz_inputs
from tests.gateway_fuzz_support import clear_backoffice_error, clear_error, fuzz_server, witness
from tests.gateway_support import ServerThread, http

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
server = pytest.fixture(scope="module")(fuzz_server)


# ---- the whole surface: every REST route, every WS API method, the market-data streams ------
#
# ``KOOTABASE_FUZZ_EXAMPLES`` generated requests in all (default 10,000: 60 % WS API, 30 % REST,
# 10 % market-data streams), sent in batches over kept connections. After each batch: every
# answer is well formed (4xx with a negative integer code and a message, or a 200 for what is
# allowed to succeed), the connection still answers, and the engine state hash did not move
# unless a request signed by a trading key succeeded or was refused by the engine (journaled).

ENGINE_CODES = frozenset({-2010, -2011, -2021, -2022, -2038, -1013})
"""Refusals the engine itself may give (the command was journaled: the sequence moves)."""
STATEFUL_WS = frozenset(
    {
        "order.place",
        "order.cancel",
        "order.cancelReplace",
        "order.amend.keepPriority",
        "openOrders.cancelAll",
    }
)
WS_BATCH, REST_BATCH, MD_BATCH = 20, 10, 8
FUZZ = settings(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def _ws_signed(creds: Credentials, params: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    p = dict(params)
    p.setdefault("apiKey", creds.api_key)
    if "timestamp" not in p or data.draw(st.booleans()):
        p["timestamp"] = int(time.time() * 1000)
    try:
        p["signature"] = creds.sign(_payload(p))
    except Exception:  # values the client cannot render: a junk signature
        p["signature"] = "0" * 64
    return p


def _ws_frame(server: ServerThread, data: st.DataObject, i: int) -> tuple[str | bytes, str | None]:
    """One frame and, when it is a request with id ``i``, its method."""
    kind = data.draw(st.sampled_from(["method"] * 6 + ["text", "bytes", "json", "deep"]))
    if kind == "text":
        return data.draw(st.text(max_size=300)), None
    if kind == "bytes":
        return data.draw(st.binary(max_size=300)), None
    if kind == "json":
        return fuzz_inputs.dumps(data.draw(fuzz_inputs.json_values)), None
    if kind == "deep":
        return data.draw(fuzz_inputs.deep_json()), None
    method = data.draw(st.sampled_from(sorted(handlers.WS_METHODS)) | st.text(max_size=20))
    params = data.draw(fuzz_inputs.params)
    who = data.draw(st.sampled_from(["none", "reader", "reader", "maker"]))
    if who == "reader" or (who == "maker" and method == "session.logon"):
        params = _ws_signed(server.accounts.reader, params, data)
    elif who == "maker" and method != "deadMansSwitch.set":  # no timers that outlive a batch
        params = _ws_signed(server.accounts.maker, params, data)
    if who != "none" and data.draw(st.integers(0, 4)) == 0:
        # a valid key and timestamp, any signature value: it must be checked, not crash on
        params["signature"] = data.draw(fuzz_inputs.signatures)
        who = "reader"
    frame: dict[str, Any] = {"id": i, "method": method, "params": params}
    if data.draw(st.integers(0, 9)) == 0:  # a broken envelope now and then
        frame[data.draw(st.sampled_from(["id", "params", "method"]))] = data.draw(
            fuzz_inputs.json_values
        )
        return fuzz_inputs.dumps(frame), None
    return fuzz_inputs.dumps(frame), method if who == "maker" else None


def _no_errors_logged(server: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    """No handler failed (the HTTP server's error log, `gateway.serverlog`) and nothing else
    reached the log as an error (asyncio's unretrieved task exceptions...): bad input is the
    client's mistake, answered, not a server failure."""
    server_log = server.running.server_log
    assert server_log is not None and server_log.failed == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors[:5]


def _well_formed(status: Any, body: Any) -> None:
    assert isinstance(status, int) and status < 500, (status, body)
    if status >= 400:
        clear_error(status, body)


def test_ws_api_whole_surface(server: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    target = fuzz_inputs.TOTAL_REQUESTS * 6 // 10
    sent = 0
    kept: list[Any] = []

    @settings(FUZZ, max_examples=-(-target // WS_BATCH))
    @given(data=st.data())
    def batch(data: st.DataObject) -> None:
        nonlocal sent
        server.wait_idle()
        before = server.state_hash()
        traded: dict[int, str] = {}
        ws = kept[0]
        for i in range(WS_BATCH):
            frame, method = _ws_frame(server, data, i)
            if method in STATEFUL_WS:
                traded[i] = method
            ws.send(frame)
        moved = False
        for _ in range(WS_BATCH):
            reply = json.loads(ws.recv(timeout=10))
            while "status" not in reply:  # a user-data event, not an answer
                reply = json.loads(ws.recv(timeout=10))
            _well_formed(reply["status"], reply.get("error", {"code": -1, "msg": "ok"}))
            if reply.get("id") in traded and (
                reply["status"] == 200 or reply["error"]["code"] in ENGINE_CODES
            ):
                moved = True
        sent += WS_BATCH
        ws.send(json.dumps({"id": "alive", "method": "ping"}))  # the connection still works
        reply = json.loads(ws.recv(timeout=10))
        while reply.get("id") != "alive":
            reply = json.loads(ws.recv(timeout=10))
        assert reply["status"] == 200
        server.wait_idle()
        if not moved:
            assert server.state_hash() == before

    with ws_connect(server.ws_api, max_size=None) as ws:
        kept.append(ws)
        batch()
    assert sent >= target
    _no_errors_logged(server, caplog)
    witness(server)


def _routes(server: ServerThread) -> list[tuple[str, str]]:
    out = []
    for route in server.running.runner.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path and route.method != "HEAD":  # "*": any method (a catch-all), sent as POST
            out.append(("POST" if route.method == "*" else route.method, path))
    return sorted(set(out))


def _raw(text: str) -> bytes:
    """UTF-8, lone surrogates included (a client can send any bytes)."""
    return text.encode("utf-8", "surrogatepass")


def _raw_request(method: str, target: bytes, headers: dict[str, str | bytes], body: bytes) -> bytes:
    """``headers``: text (sent as UTF-8, surrogates included) or raw bytes (any but CR/LF)."""
    head = [f"{method} ".encode() + target + b" HTTP/1.1", b"Host: fuzz"]
    head += [
        k.encode() + b": " + (v if isinstance(v, bytes) else _raw(v)) for k, v in headers.items()
    ]
    if body or method in ("POST", "PUT"):
        head += [
            b"Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}".encode(),
        ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _exchange(
    conn: list[socket.socket | None],
    port: int,
    request: bytes,
) -> tuple[int, Any, bool]:
    """Send ``request`` on the kept connection (opened when needed): (status, body, closed)."""
    reused = conn[0] is not None
    if conn[0] is None:
        conn[0] = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = conn[0]
    try:
        sock.sendall(request)
        resp = HTTPResponse(sock)
        resp.begin()
    except (ConnectionError, RemoteDisconnected):
        sock.close()
        conn[0] = None
        if not reused:
            raise
        return _exchange(conn, port, request)  # the server may close a kept connection
    raw = resp.read()
    closed = resp.will_close
    if closed:
        sock.close()
        conn[0] = None
    try:
        return resp.status, json.loads(raw), closed
    except ValueError:
        return resp.status, raw.decode(errors="replace"), closed


def _junk_request(port: int, junk: bytes) -> None:
    """Raw bytes, then end of input: any answer is a 4xx (or a 200 if the bytes happen to
    make a whole request); the server may also just close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with contextlib.suppress(ConnectionError):
            raw.sendall(junk)
            raw.shutdown(socket.SHUT_WR)
        try:
            answer = raw.recv(64)
        except ConnectionError:
            return
    if answer:
        assert re.match(rb"HTTP/1\.[01] (200|4\d\d) ", answer), (junk, answer)


def _backoffice_user(server: ServerThread) -> str:
    """An access token of a back-office user, so the fuzz reaches past the bearer check."""
    body = {"email": "fuzz@example.com", "password": "correct horse battery staple"}
    status, _, _ = http(
        "POST", server.http + "/api/v1/auth/signup", body=json.dumps(body), headers=JSON
    )
    assert status == 201
    status, _, tokens = http(
        "POST", server.http + "/api/v1/auth/login", body=json.dumps(body), headers=JSON
    )
    assert status == 200, tokens
    return str(tokens["access_token"])


JSON = {"Content-Type": "application/json"}


def test_rest_whole_surface(server: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    target = fuzz_inputs.TOTAL_REQUESTS * 3 // 10
    routes = _routes(server)
    assert len(routes) >= 25, routes
    port = server.running.port
    conn: list[socket.socket | None] = [None]
    sent = 0
    acc = server.accounts
    user_bearer = [f"Bearer {_backoffice_user(server)}"]

    @settings(FUZZ, max_examples=-(-target // REST_BATCH))
    @given(data=st.data())
    def batch(data: st.DataObject) -> None:
        nonlocal sent
        server.wait_idle()
        before = server.state_hash()
        moved = False
        for _ in range(REST_BATCH):
            if data.draw(st.integers(0, 9)) == 0:  # not HTTP at all, or HTTP gone wrong
                _junk_request(
                    port,
                    data.draw(
                        st.binary(min_size=1, max_size=400)
                        | st.builds(
                            lambda head, tail: head + tail,
                            st.sampled_from(
                                [
                                    b"GET /api/v3/ping HTTP/1.1\r\n",
                                    b"POST /api/v3/order HTTP/1.1\r\n"
                                    b"Content-Length: 99999999999999999999\r\n",
                                    b"\x16\x03\x01",
                                ]
                            ),
                            st.binary(max_size=200),
                        )
                    ),
                )
                sent += 1
                continue
            route_method, path = data.draw(st.sampled_from(routes))
            method = data.draw(
                st.just(route_method) | st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
            )
            path = re.sub(
                r"\{[^}]*\}",
                lambda _: data.draw(
                    st.text(
                        alphabet="abcdefghijklmnopqrstuvwxyz@_0123456789/", min_size=1, max_size=30
                    )
                ),
                path,
            )
            text = data.draw(fuzz_inputs.form_text)
            who = data.draw(st.sampled_from(["none", "junk", "reader", "maker", "badsig"]))
            creds = {"reader": acc.reader, "maker": acc.maker, "badsig": acc.maker}.get(who)
            if creds is not None:
                text = (text + "&" if text else "") + f"timestamp={int(time.time() * 1000)}"
                signature = (
                    data.draw(fuzz_inputs.signatures)
                    if who == "badsig"  # a valid key, any signature value
                    else creds.sign(_raw(text))
                )
                text += "&" + urlencode(
                    {"signature": signature}, encoding="utf-8", errors="surrogatepass"
                )
            if path.startswith(("/api/v1/", "/ops/v1/")) and data.draw(st.booleans()):
                text = fuzz_inputs.dumps(data.draw(fuzz_inputs.backoffice_bodies))
            in_body = data.draw(st.booleans())
            query = text if not in_body else data.draw(st.just("") | fuzz_inputs.raw_query)
            body = text if in_body else data.draw(st.just("") | fuzz_inputs.form_text)
            headers: dict[str, str | bytes] = (
                {"X-MBX-APIKEY": creds.api_key}
                if creds is not None
                else (
                    {"X-MBX-APIKEY": data.draw(st.text(alphabet="ABCxyz09", max_size=70))}
                    if who == "junk"
                    else {}
                )
            )
            for name in ("Authorization", "X-Kootabase-Admin-Token", "X-MBX-APIKEY"):
                if data.draw(st.integers(0, 5)) == 0:  # secrets in headers: any bytes
                    headers[name] = data.draw(fuzz_inputs.header_values)
            if data.draw(st.integers(0, 5)) == 0:
                headers["Authorization"] = user_bearer[0]  # a live back-office session
            target_bytes = quote(_raw(path), safe="/@{}").encode()
            if query:
                target_bytes += b"?" + quote(_raw(query), safe='=&%+;[]{}"\\:,/').encode()
            status, reply, _ = _exchange(
                conn, port, _raw_request(method, target_bytes, headers, _raw(body))
            )
            sent += 1
            assert status < 500, (method, target_bytes, body, status, reply)
            api = path.startswith(("/api/", "/sapi/"))
            if path.startswith("/api/v1/") and status >= 400 and "error" in reply:
                clear_backoffice_error(status, reply)  # docs/backoffice.md
            elif api and status >= 400:
                clear_error(status, reply)
            if (
                who == "maker"
                and method in ("POST", "PUT", "DELETE")
                and (
                    status == 200 or (isinstance(reply, dict) and reply.get("code") in ENGINE_CODES)
                )
            ):
                moved = True
        status, _, _ = _exchange(conn, port, _raw_request("GET", b"/api/v3/ping", {}, b""))
        assert status == 200
        server.wait_idle()
        if not moved:
            assert server.state_hash() == before

    try:
        batch()
    finally:
        if conn[0] is not None:
            conn[0].close()
    assert sent >= target
    _no_errors_logged(server, caplog)
    witness(server)


@st.composite
def _stream_url(draw: st.DrawFn) -> str:
    name = draw(
        st.sampled_from(["btcusdt@trade", "ethusdt@depth@100ms", "btcusdt@kline_1m", "heartbeat"])
        | st.text(max_size=30)
    )
    return draw(
        st.sampled_from(
            ["/ws", f"/ws/{quote(name, safe='@')}", f"/stream?streams={quote(name, safe='@/')}"]
        )
    )


def test_market_data_streams_whole_surface(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    target = fuzz_inputs.TOTAL_REQUESTS // 10
    base = server.http.replace("http", "ws")
    sent = 0

    @settings(FUZZ, max_examples=-(-target // MD_BATCH))
    @given(data=st.data())
    def batch(data: st.DataObject) -> None:
        nonlocal sent
        url = base + data.draw(_stream_url())
        try:
            ws = ws_connect(url, max_size=None)
        except InvalidStatus as refused:  # a bad stream in the URL: refused before the upgrade
            status = refused.response.status_code
            if status != 404:  # ``/ws/`` with nothing after it is no route at all
                clear_error(status, json.loads(refused.response.body))
            sent += 1
            ws = ws_connect(base + "/ws", max_size=None)
        with ws:
            for _ in range(MD_BATCH - 1):  # the dialect allows 10 messages per second
                kind = data.draw(
                    st.sampled_from(["request"] * 4 + ["json", "deep", "text", "bytes"])
                )
                if kind == "request":
                    msg: dict[str, Any] = {
                        "method": data.draw(
                            st.sampled_from(
                                [
                                    "SUBSCRIBE",
                                    "UNSUBSCRIBE",
                                    "LIST_SUBSCRIPTIONS",
                                    "SET_PROPERTY",
                                    "GET_PROPERTY",
                                ]
                            )
                            | st.text(max_size=12)
                        ),
                        "params": data.draw(
                            st.lists(
                                st.text(max_size=30)
                                | st.sampled_from(["btcusdt@trade", "combined", "btcusdt@depth5"]),
                                max_size=3,
                            )
                            | fuzz_inputs.json_values
                        ),
                        "id": data.draw(st.integers(0, 2**63 - 1) | fuzz_inputs.scalars),
                    }
                    ws.send(fuzz_inputs.dumps(msg))
                elif kind == "json":
                    ws.send(fuzz_inputs.dumps(data.draw(fuzz_inputs.json_values)))
                elif kind == "deep":
                    ws.send(data.draw(fuzz_inputs.deep_json()))
                elif kind == "text":
                    ws.send(data.draw(st.text(max_size=200)))
                else:
                    ws.send(data.draw(st.binary(max_size=200)))
                reply = json.loads(ws.recv(timeout=10))
                while "id" not in reply:  # a stream message, not an answer
                    reply = json.loads(ws.recv(timeout=10))
                if "error" in reply:
                    assert isinstance(reply["error"]["code"], int), reply
                    assert isinstance(reply["error"]["msg"], str), reply
                else:
                    assert "result" in reply, reply
                sent += 1
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "alive"}))
            reply = json.loads(ws.recv(timeout=10))
            while reply.get("id") != "alive":
                reply = json.loads(ws.recv(timeout=10))
            assert isinstance(reply["result"], list)
            sent += 1

    batch()
    assert sent >= target
    _no_errors_logged(server, caplog)
    witness(server)
