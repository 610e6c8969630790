"""Hostile input below the level the fuzz tests generate at (tests/test_gateway_fuzz_*.py send
well-framed requests): raw HTTP/1.1 bytes and raw WebSocket frames on real sockets.

- HTTP: requests pipelined behind one that is refused (bad percent-encoding, malformed JSON,
  a body over the limit) are each answered, in order, on the same connection; JSON numbers
  beyond any range and bytes that are not UTF-8 in an operator-API body are a 400 in the
  ``{code, msg}`` envelope, not a 5xx.
- WebSocket (trading API and market data): a text frame that is not UTF-8 closes with 1007
  and a continuation frame without a start with 1002 (RFC 6455; the next connection is
  served); a binary frame, integers and floats out of range, an empty frame, a NUL, a JSON
  array are each one error answer and the connection keeps answering; a message split into
  fragments is one request.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from collections.abc import Iterator

import pytest

from tests.gateway_fuzz_support import fuzz_server
from tests.gateway_support import ServerThread

server = pytest.fixture(scope="module")(fuzz_server)
TEXT, BINARY, CONTINUATION, CLOSE = 1, 2, 0, 8


def _port(server: ServerThread) -> int:
    return int(server.http.rsplit(":", 1)[1])


def _exchange(server: ServerThread, data: bytes, timeout_s: float = 5.0) -> bytes:
    """Send ``data`` at once and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=timeout_s) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _responses(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """(status, body) of each HTTP/1.1 response in ``raw`` (Content-Length framed)."""
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = next(
            int(v)
            for k, _, v in (h.partition(b":") for h in lines[1:])
            if k.lower() == b"content-length"
        )
        yield status, rest[:length]
        raw = rest[length:]


def _get(path: str, *, close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _post_json(path: str, body: bytes, *, close: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "Connection: close\r\n" if close else ""
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.mark.parametrize(
    "refused",
    [
        _get("/api/v3/depth?symbol=%FF%FE"),
        _post_json("/ops/v1/auth/login", b"{"),
        _post_json("/ops/v1/auth/login", b"{" * 100_000),
    ],
    ids=["bad-percent-encoding", "truncated-json", "body-over-limit"],
)
def test_requests_pipelined_behind_a_refused_one_are_answered(
    server: ServerThread, refused: bytes
) -> None:
    raw = _exchange(server, refused + _get("/api/v3/time") + _get("/api/v3/ping", close=True))
    answers = list(_responses(raw))
    assert [s for s, _ in answers] == [400, 200, 200], answers
    assert "serverTime" in json.loads(answers[1][1])
    assert json.loads(answers[2][1]) == {}


@pytest.mark.parametrize(
    "body",
    [b'{"email":' + b"9" * 5000 + b"}", b'{"email":1e99999}', b'{"email":"\xff\xfe"}', b"\x00"],
    ids=["integer-5000-digits", "float-out-of-range", "not-utf8", "nul"],
)
def test_operator_api_bodies_out_of_range_are_400(server: ServerThread, body: bytes) -> None:
    raw = _exchange(server, _post_json("/ops/v1/auth/login", body, close=True))
    ((status, reply),) = list(_responses(raw))
    assert status == 400, reply
    assert json.loads(reply)["code"] == "BAD_REQUEST", reply


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One client frame (masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws(server: ServerThread, path: str, frames: list[bytes]) -> list[tuple[int, bytes]]:
    """Open ``path``, send ``frames``, and return the server's frames (opcode, payload) until
    it closes or goes quiet."""
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=2.0) as sock:
        sock.sendall(upgrade.encode() + b"".join(frames))
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except TimeoutError:
            pass
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    out = []
    while len(rest) >= 2:
        n, at = rest[1] & 0x7F, 2
        if n == 126:
            n, at = struct.unpack("!H", rest[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", rest[2:10])[0], 10
        out.append((rest[0] & 0x0F, rest[at : at + n]))
        rest = rest[at + n :]
    return out


PATHS = ["/ws-api/v3", "/ws"]


def _probe(path: str) -> bytes:
    """A request each endpoint answers with its own id 9 (trading API: ping; market data:
    LIST_SUBSCRIPTIONS)."""
    method = "ping" if path.startswith("/ws-api") else "LIST_SUBSCRIPTIONS"
    return json.dumps({"id": 9, "method": method}).encode()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("opcode", "payload", "close_code"),
    [(TEXT, b'{"id":1,"method":"\xff"}', 1007), (CONTINUATION, b"abc", 1002)],
    ids=["text-not-utf8", "continuation-without-start"],
)
def test_ws_protocol_violations_close_cleanly(
    server: ServerThread, path: str, opcode: int, payload: bytes, close_code: int
) -> None:
    frames = _ws(server, path, [_frame(opcode, payload)])
    assert frames and frames[-1][0] == CLOSE, frames
    assert struct.unpack("!H", frames[-1][1][:2])[0] == close_code, frames
    answers = _ws(server, path, [_frame(TEXT, _probe(path))])  # the next one is served
    assert any(json.loads(p).get("id") == 9 for op, p in answers if op == TEXT), answers


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "bad",
    [
        _frame(BINARY, b'{"id":1,"method":"ping"}'),
        _frame(TEXT, b'{"id":' + b"9" * 5000 + b',"method":"ping"}'),
        _frame(TEXT, b'{"id":1e99999,"method":"ping"}'),
        _frame(TEXT, b""),
        _frame(TEXT, b"\x00"),
        _frame(TEXT, b"[1,2]"),
    ],
    ids=["binary", "integer-5000-digits", "float-out-of-range", "empty", "nul", "array"],
)
def test_ws_bad_messages_are_one_error_each_and_the_connection_stays(
    server: ServerThread, path: str, bad: bytes
) -> None:
    frames = _ws(server, path, [bad, _frame(TEXT, _probe(path))])
    texts = [json.loads(p) for op, p in frames if op == TEXT]
    assert all(op == TEXT for op, _ in frames), frames  # no close
    assert len(texts) == 2, texts
    assert texts[0].get("status", 400) == 400 and "error" in texts[0], texts[0]
    assert texts[1]["id"] == 9 and "error" not in texts[1], texts[1]


@pytest.mark.parametrize("path", PATHS)
def test_ws_fragmented_message_is_one_request(server: ServerThread, path: str) -> None:
    whole = _probe(path)
    frames = _ws(
        server,
        path,
        [
            _frame(TEXT, whole[:5], fin=False),
            _frame(CONTINUATION, whole[5:11], fin=False),
            _frame(CONTINUATION, whole[11:]),
        ],
    )
    texts = [json.loads(p) for op, p in frames if op == TEXT]
    assert len(texts) == 1 and texts[0]["id"] == 9 and "error" not in texts[0], texts


@pytest.mark.parametrize(
    "path",
    ["/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT", "/api/v3/time?x=1&x=1"],
    ids=["different-values", "same-value"],
)
def test_a_query_parameter_sent_twice_is_refused(server: ServerThread, path: str) -> None:
    """Public endpoints answered with the first value (a proxy may read the last); signed
    ones already refused it: now every route of the trading API does (-1101)."""
    ((status, reply),) = list(_responses(_exchange(server, _get(path, close=True))))
    assert status == 400, reply
    assert json.loads(reply) == {
        "code": -1101, "msg": "Duplicate values for a parameter detected."
    }  # fmt: skip
