"""The server's listening socket, bound before anything slow happens.

``kootabase serve`` binds its port first (before opening the data directory, replaying the
journal or compiling the engine), so a port that is taken fails in a fraction of a second with
one line saying which port and what to pass, instead of after the whole start-up.
"""

from __future__ import annotations

import errno
import socket

from engine.usererror import UserError

BACKLOG = 1_024


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = any free port); `UserError` when refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(
            f"cannot listen on {host!r}: {exc.strerror}",
            hint="pass an address of this machine with --host",
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is already in use",
                hint="stop what uses it or pass another --port",
            ) from None
        if exc.errno == errno.EACCES:
            raise UserError(
                f"not allowed to listen on port {port}",
                hint="ports below 1024 need privileges; pass --port 8080",
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UserError(
                f"{host} is not an address of this machine",
                hint="pass --host 127.0.0.1 or --host 0.0.0.0",
            ) from None
        raise
    sock.setblocking(False)
    return sock
