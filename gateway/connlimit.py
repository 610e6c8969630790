"""Per-IP caps on open TCP connections, for every endpoint the server has.

The cap is enforced where connections are accepted, before a byte of HTTP is read, so it holds
for REST, the WS API and the market-data streams (``/ws``, ``/stream``) alike, and for
connections that never send a request at all. A connection over the cap gets a short
``429 Too Many Requests`` answer (the dialect's -1003 body) as soon as it sends anything, and
is closed (after `REFUSED_LINGER_S` at the latest, whatever it sends).

`GuardedSite` is aiohttp's `SockSite` with its protocol factory wrapped: each accepted
connection first meets a `_GuardedProtocol`, which either refuses it or hands the transport to
aiohttp's own request handler and from then on only forwards events (the hot methods are
bound straight to the handler's, so forwarding costs no extra call).
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, Final

from aiohttp import web

from gateway.malformed import handler_for

REFUSED_LINGER_S: Final = 2.0
"""How long a refused connection may stay open waiting for its request (to be answered 429
rather than reset)."""


def refusal(limit: int) -> bytes:
    """The raw HTTP answer to a connection over the cap (sent before closing it)."""
    body = json.dumps(
        {"code": -1003, "msg": f"Too many connections; current limit is {limit} per IP."}
    ).encode()
    return (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nRetry-After: 1\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


class ConnectionCaps:
    """Open connections per client IP, at most ``per_ip`` each."""

    def __init__(self, per_ip: int) -> None:
        assert per_ip >= 1
        self.per_ip = per_ip
        self.open: dict[str, int] = {}
        self.refused = 0
        self.refusal = refusal(per_ip)
        """The answer to a connection over the cap."""

    def acquire(self, ip: str) -> bool:
        n = self.open.get(ip, 0)
        if n >= self.per_ip:
            self.refused += 1
            return False
        self.open[ip] = n + 1
        return True

    def release(self, ip: str) -> None:
        n = self.open[ip] - 1
        assert n >= 0
        if n == 0:
            del self.open[ip]
        else:
            self.open[ip] = n


class _GuardedProtocol(asyncio.Protocol):
    """Admits a connection under the cap to aiohttp's handler, refuses the others."""

    def __init__(self, inner: Any, caps: ConnectionCaps) -> None:
        self._inner = inner
        self._caps = caps
        self._ip: str | None = None
        self._refused: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._caps.acquire(ip):
            assert isinstance(transport, asyncio.Transport)
            self._refused = transport
            asyncio.get_running_loop().call_later(REFUSED_LINGER_S, transport.abort)
            return
        self._ip = ip
        inner = self._inner
        # From here on the transport calls the handler's own methods (instance attributes
        # shadow the forwarding methods below).
        self.data_received = inner.data_received  # type: ignore[method-assign]
        self.eof_received = inner.eof_received  # type: ignore[method-assign]
        self.pause_writing = inner.pause_writing  # type: ignore[method-assign]
        self.resume_writing = inner.resume_writing  # type: ignore[method-assign]
        inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ip is None:
            return
        self._caps.release(self._ip)
        self._ip = None
        self._inner.connection_lost(exc)

    # Forwarders for a transport that looked the methods up before connection_made.
    def data_received(self, data: bytes) -> None:
        if self._ip is not None:
            self._inner.data_received(data)
        elif self._refused is not None and not self._refused.is_closing():
            self._refused.write(self._caps.refusal)
            self._refused.close()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._ip is not None else None

    def pause_writing(self) -> None:
        if self._ip is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._ip is not None:
            self._inner.resume_writing()


class GuardedSite(web.SockSite):
    """A `web.SockSite` whose connections pass through `ConnectionCaps` first."""

    def __init__(
        self, runner: web.BaseRunner, sock: socket.socket, caps: ConnectionCaps, **kwargs: Any
    ) -> None:
        super().__init__(runner, sock, **kwargs)
        self.caps = caps

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers with the runner (SockSite.start, unwrapped)
        server = self._runner.server
        assert server is not None
        caps = self.caps
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _GuardedProtocol(handler_for(server), caps),
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
        )
