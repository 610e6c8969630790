"""Process-wide structured logging setup (structlog), shared by every room.

It lives in ``engine`` because the engine must not import ``gateway``, yet everyone logs.
The engine's deterministic core must not log from the hot path; this is for the
shell around it (journal, service, replay, CLI).

- Output goes to stderr, one event per line.
- JSON lines when stderr is not a TTY (services, CI, files); a coloured console
  rendering when it is (a person at a terminal).
- Timestamps are ISO 8601 in UTC.
- Events below the configured level are dropped cheaply by the bound logger.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger"]


def _level_number(level: str) -> int:
    """Map a level name (``debug``, ``info``, ``warning``, ``error``, ``critical``) to its
    number; raise ``ValueError`` for an unknown name."""
    mapping = logging.getLevelNamesMapping()
    try:
        return mapping[level.upper()]
    except KeyError:
        known = ", ".join(n.lower() for n in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
        raise ValueError(f"unknown log level {level!r} (expected one of: {known})") from None


def configure_logging(level: str = "info") -> None:
    """Configure structlog for this process: level filter, UTC ISO timestamps, stderr.

    Safe to call more than once; the last call wins.
    """
    stream = sys.stderr
    is_tty = bool(getattr(stream, "isatty", None)) and stream.isatty()

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if is_tty:
        processors.append(structlog.dev.ConsoleRenderer())
    else:
        processors += [
            # structured tracebacks without local variables (they may hold secrets)
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(sort_keys=True),
        ]

    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """Return a structlog logger whose events carry ``logger_name=name``.

    The logger is a lazy proxy: creating it at module import time, before
    :func:`configure_logging` runs, is fine; it picks up the configuration in force when
    it first logs. (The key is ``logger_name`` because ``logger`` is a reserved keyword
    of ``structlog.get_logger``.)
    """
    return structlog.get_logger(logger_name=name)
