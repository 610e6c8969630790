"""What the HTTP server logs about requests it cannot handle, at a bounded rate.

aiohttp logs every malformed request (a header line over 8 KiB, a bad method, broken chunked
encoding...) with a full traceback, so anyone can fill the log and the disk with one loop.
`ServerLog` stands in for aiohttp's server logger (the ``logger`` argument of its request
handler): a malformed request is one warning line without a traceback (it is the client's
mistake, not ours), an unexpected error keeps its traceback (it is a bug), and both share a
budget of ``per_minute`` lines per fixed minute; what goes over is counted and reported on the
next line that is written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger

log = structlog.get_logger("gateway.http")


class ServerLog:
    """A duck-typed `logging.Logger` for aiohttp's ``RequestHandler`` (it calls ``debug`` and
    ``exception`` only)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        assert per_minute >= 1
        self.per_minute = per_minute
        self._clock = clock
        self._window = -1
        self._written = 0
        self.suppressed = 0
        """Lines not written since the last one that was (reported on the next)."""
        self.malformed = 0
        """Malformed requests seen in total."""
        self.failed = 0
        """Other errors (bugs: a handler raised) seen in total."""
        self.lines = 0
        """Lines written in total."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        server_logger.debug(msg, *args, **kwargs)  # only in asyncio debug mode (aiohttp's rule)

    def exception(self, msg: str, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        malformed = isinstance(exc, HttpProcessingError)
        if malformed:
            self.malformed += 1
        else:
            self.failed += 1
        window = int(self._clock() // 60)
        if window != self._window:
            self._window, self._written = window, 0
        if self._written >= self.per_minute:
            self.suppressed += 1
            return
        self._written += 1
        self.lines += 1
        suppressed, self.suppressed = self.suppressed, 0
        remote = args[0] if args else None
        reason = f"{type(exc).__name__}: {exc}"[:300] if exc is not None else msg
        if malformed:
            log.warning(
                "malformed_http_request", remote=remote, reason=reason, suppressed_before=suppressed
            )
        else:
            log.error(
                "http_request_failed",
                remote=remote,
                reason=reason,
                suppressed_before=suppressed,
                exc_info=exc,
            )
