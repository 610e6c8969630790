"""A lean RFC 6455 client for load generation: raw asyncio Protocol, no per-message tasks.

Why not the ``websockets`` library: the gateway benchmark runs the server and the load generator
on the same small machine, so every microsecond the client spends per order is taken from the
server it is measuring. A general client pays for things a load generator does not need (one
``await`` and a frame object per send, a queue and a task switch per received message, a full
JSON decode of every reply). This one:

- writes many client frames, each with its own fresh random mask (RFC 6455 5.3: one
  ``os.urandom`` call per burst, masked by the C ``apply_mask`` of ``websockets.speedups`` when it
  is importable), as ONE ``transport.write`` per burst;
- parses server frames incrementally straight from ``data_received`` and hands the load loop only
  what it measures: the request ids answered in this chunk and how many were not status 200
  (server replies start with ``{"id":<n>,"status":<code>,`` - see gateway/wsapi.py);
- answers pings with pongs and closes cleanly, and records a lost connection or a protocol
  violation in `WsLoadConnection.failure` so the load loop can raise instead of hanging.

Text frames only, unfragmented (the gateway never fragments); anything else is a protocol error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct
import time
from collections.abc import Callable
from typing import Final


def apply_mask_pure(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask`` as one big-int operation (no byte loop):
    the fallback where the C routine is not installed."""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


try:  # C masking from an installed dependency (websockets ships it as a compiled extension)
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    apply_mask = apply_mask_pure


_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD16: Final = struct.Struct("!BBH").pack
_HEAD64: Final = struct.Struct("!BBQ").pack
_REPLY: Final = b'{"id":'
_OK: Final = b'"status":200'
OP_TEXT: Final = 0x1
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

OnReplies = Callable[[list[int], int, float], None]
"""``(ids, non_200_count, perf_counter_at_arrival)``: called once per received chunk."""


class HandshakeError(ConnectionError):
    """The server did not upgrade the connection the way RFC 6455 requires."""


class ProtocolError(ConnectionError):
    """The server sent something this client does not accept (masked, binary, fragmented)."""


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer for ``Sec-WebSocket-Key`` ``key``."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def _frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One masked client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65_536:
        head = _HEAD16(0x80 | opcode, 0xFE, n)
    else:
        head = _HEAD64(0x80 | opcode, 0xFF, n)
    return head + mask + apply_mask(payload, mask)


class WsLoadConnection(asyncio.Protocol):
    """One client connection. Use `connect`; then `send_texts` and `on_replies`."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._request_head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        )
        self._key = base64.b64encode(os.urandom(16))
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._upgraded = False
        self._handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter: asyncio.Future[bytes] | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_replies: OnReplies | None = None
        """Where answers go; while `request` waits, the next text frame goes to it instead."""
        self.on_failure: Callable[[], None] | None = None
        """Called once when `failure` is set, so a waiting load loop wakes up at once."""
        self.failure: BaseException | None = None
        """Why the connection is unusable (lost, closed by the server, protocol error)."""
        self.close_code: int | None = None

    # ---- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(
            f"{self._request_head}Sec-WebSocket-Key: {self._key.decode()}\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(
            exc
            or ConnectionError(f"connection closed by the server (close code {self.close_code})")
        )
        if not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if not self._upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buf = data
                return
            try:
                self._check_upgrade(data[:end])
            except HandshakeError as exc:
                self._fail(exc)
                return
            self._upgraded = True
            self._handshake.set_result(None)
            data = data[end + 4 :]
        self._frames(data)

    # ---- frames -----------------------------------------------------------------------------

    def _check_upgrade(self, head: bytes) -> None:
        status, *lines = head.decode("latin-1").split("\r\n")
        if status.split(" ", 2)[1:2] != ["101"]:
            raise HandshakeError(f"no upgrade: {status!r}")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if (
            headers.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in headers.get("connection", "").lower()
        ):
            raise HandshakeError(f"not a websocket upgrade: {headers}")
        if headers.get("sec-websocket-accept", "").encode() != accept_key(self._key):
            raise HandshakeError("wrong Sec-WebSocket-Accept")

    def _frames(self, data: bytes) -> None:
        """Consume every whole frame in ``data``; keep the incomplete tail for next time."""
        now = time.perf_counter()
        ids: list[int] = []
        errors = 0
        pos = 0
        end = len(data)
        while end - pos >= 2:
            b0 = data[pos]
            n = data[pos + 1]
            if n & 0x80:
                return self._fail(ProtocolError("masked frame from the server"))
            h = pos + 2
            if n == 126:
                if end - h < 2:
                    break
                n = (data[h] << 8) | data[h + 1]
                h += 2
            elif n == 127:
                if end - h < 8:
                    break
                n = int.from_bytes(data[h : h + 8], "big")
                h += 8
            stop = h + n
            if stop > end:
                break
            pos = stop
            if b0 == 0x80 | OP_TEXT:
                waiter = self._waiter
                if waiter is not None:
                    self._waiter = None
                    if not waiter.done():
                        waiter.set_result(data[h:stop])
                    continue
                if data.startswith(_REPLY, h):
                    comma = data.find(b",", h + 6, stop)
                    if comma < 0:
                        errors += 1
                        continue
                    rid = data[h + 6 : comma]
                    if rid.isdigit():  # not "id":null (the server could not read a request)
                        ids.append(int(rid))
                    if not data.startswith(_OK, comma + 1):
                        errors += 1
                else:  # an event or an unexpected answer: not an acknowledgement
                    errors += 1
            elif b0 == 0x80 | OP_PING:
                self._send(OP_PONG, data[h:stop])  # same payload back
            elif b0 == 0x80 | OP_PONG:
                pass
            elif b0 == 0x80 | OP_CLOSE:
                self.close_code = int.from_bytes(data[h : h + 2], "big") if n >= 2 else 1005
                self._send(OP_CLOSE, data[h : h + 2])
                assert self._transport is not None
                self._transport.close()
                break
            else:
                return self._fail(ProtocolError(f"unsupported frame 0x{b0:02x}"))
        if pos < end:
            self._buf = data[pos:]
        if (ids or errors) and self.on_replies is not None:
            self.on_replies(ids, errors, now)

    def _send(self, opcode: int, payload: bytes) -> None:
        t = self._transport
        if t is not None and not t.is_closing():
            t.write(_frame(opcode, payload, os.urandom(4)))

    def _fail(self, exc: BaseException) -> None:
        if self.failure is not None:
            return
        self.failure = exc
        for fut in (self._handshake, self._waiter):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        if self._transport is not None:
            self._transport.close()
        if self.on_failure is not None:
            self.on_failure()

    # ---- API --------------------------------------------------------------------------------

    def send_texts(self, payloads: list[bytes]) -> None:
        """Send text frames, each masked with its own random key, in ONE transport write."""
        if self.failure is not None:
            raise self.failure
        assert self._transport is not None
        masks = os.urandom(4 * len(payloads))
        parts = [
            _frame(OP_TEXT, payload, masks[4 * k : 4 * k + 4]) for k, payload in enumerate(payloads)
        ]
        self._transport.write(b"".join(parts))

    async def request(self, payload: bytes, timeout: float = 10.0) -> bytes:
        """Send one text frame and return the next text frame's payload (setup only: logon)."""
        self._waiter = asyncio.get_running_loop().create_future()
        self.send_texts([payload])
        return await asyncio.wait_for(self._waiter, timeout)

    async def close(self, timeout: float = 2.0) -> None:
        """Close handshake (code 1000), bounded: the transport is closed either way."""
        if self._transport is not None and self.failure is None:
            self._send(OP_CLOSE, (1000).to_bytes(2, "big"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        if self._transport is not None:
            self._transport.close()


async def connect(host: str, port: int, path: str, timeout: float = 10.0) -> WsLoadConnection:
    """Open a TCP connection and complete the WebSocket upgrade (raises `HandshakeError`)."""
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(
        loop.create_connection(lambda: WsLoadConnection(host, port, path), host, port), timeout
    )
    try:
        await asyncio.wait_for(conn._handshake, timeout)
    except BaseException:
        await conn.close(0)
        raise
    return conn
