"""Connecting to PostgreSQL with errors a person can act on.

asyncpg reports a wrong DSN as one of a dozen exception types from three libraries; the
operator needs to know which part of the DSN is wrong and what to run. `connect` translates
the ordinary failures into `UserError` (and leaves the DSN's password out of every message).
"""

from __future__ import annotations

import socket
from typing import Any, Final
from urllib.parse import urlsplit

import asyncpg

from engine.redact import redact_url
from engine.usererror import UserError

CONNECT_TIMEOUT_S: Final = 10.0


def _where(dsn: str) -> tuple[str, int, str, str]:
    """(host, port, user, database) as libpq would default them."""
    try:
        parts = urlsplit(dsn)
        port = parts.port or 5432
    except ValueError:
        return "?", 5432, "?", "?"
    user = parts.username or "postgres"
    database = parts.path.lstrip("/") or user
    return parts.hostname or "localhost", port, user, database


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """``asyncpg.connect`` whose ordinary failures are one actionable `UserError`."""
    kwargs.setdefault("timeout", CONNECT_TIMEOUT_S)
    shown = redact_url(dsn)
    host, port, user, database = _where(dsn)
    try:
        return await asyncpg.connect(dsn, **kwargs)
    except asyncpg.InvalidCatalogNameError:
        raise UserError(
            f"PostgreSQL database {database!r} does not exist ({shown})",
            hint=f"create it with `createdb -h {host} -p {port} -U {user} {database}`",
        ) from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise UserError(
            f"PostgreSQL refused user {user!r} ({shown}): {exc}",
            hint="check the user name in the DSN",
        ) from None
    except asyncpg.InvalidPasswordError as exc:
        raise UserError(
            f"PostgreSQL refused the password of {user!r} ({shown}): {exc}",
            hint="check the password in the DSN",
        ) from None
    except asyncpg.ClientConfigurationError as exc:
        raise UserError(
            f"not a PostgreSQL DSN: {shown!r} ({exc})",
            hint="write it as postgresql://USER@HOST:PORT/DATABASE",
        ) from None
    except socket.gaierror:
        raise UserError(
            f"cannot resolve the PostgreSQL host {host!r} ({shown})",
            hint="check the host in the DSN",
        ) from None
    except (ConnectionRefusedError, TimeoutError) as exc:
        why = "connection refused" if isinstance(exc, ConnectionRefusedError) else "timed out"
        raise UserError(
            f"cannot connect to PostgreSQL at {host}:{port} ({why}; {shown})",
            hint="is the server running, and is that its port? check the DSN",
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot connect to PostgreSQL at {host}:{port} ({shown}): {exc}",
            hint="check the DSN and that the server is running",
        ) from None
