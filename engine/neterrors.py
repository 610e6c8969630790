"""A network failure in words, for the one-line errors of the command line.

Why: a raw ``ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")`` in an error
line tells an operator less than "connection refused", and its wording changes with Python
and library versions, which the stable-error rule (docs/operations.md) does not allow.
"""

from __future__ import annotations

import socket
import ssl


def unwrap(exc: BaseException) -> BaseException:
    """The OS error inside aiohttp's connector errors (which wrap it), else ``exc`` itself."""
    inner = getattr(exc, "os_error", None)
    return inner if isinstance(inner, OSError) else exc


def describe(exc: BaseException) -> str:
    """What went wrong reaching a server, in words (no class names, no reprs)."""
    exc = unwrap(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc.strerror or 'handshake'})"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection closed by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip()
    return text[:200] if text else "no answer"
