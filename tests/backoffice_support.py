"""Identity stores for tests: SQLite in a temporary data directory, or a PostgreSQL database
made for one test (unique name, dropped afterwards) on the local server."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from tests.gateway_support import ServerThread

ADMIN_DSN = os.environ.get("KOOTABASE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def pg_database() -> Iterator[str]:
    """DSN of a new database, dropped when the block ends."""
    name = f"kootabase_bo_{secrets.token_hex(6)}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


BACKENDS = ["sqlite", "postgres"]


@contextmanager
def identity_dsn(backend: str) -> Iterator[str | None]:
    """None for SQLite in the data dir, else the DSN of a new PostgreSQL database (dropped when
    the block ends): for tests that restart a server on the same identity store."""
    if backend == "sqlite":
        yield None
        return
    with pg_database() as dsn:
        yield dsn


def start_server(tmp_path: Path, dsn: str | None) -> ServerThread:
    """A real gateway without fixture accounts on ``tmp_path``'s data dir and ``dsn``."""
    extra = {"backoffice_dsn": dsn} if dsn else {}
    return ServerThread(tmp_path, fixture_accounts=False, marketdata=False, **extra)


def backoffice_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerThread]:
    """A real gateway whose identity store is SQLite in its data dir, then PostgreSQL (a test
    module makes it a fixture: ``server = pytest.fixture(params=BACKENDS)(backoffice_server)``).
    """
    if request.param == "sqlite":
        srv = ServerThread(tmp_path, fixture_accounts=False, marketdata=False)
        try:
            yield srv
        finally:
            srv.stop()
        return
    with pg_database() as dsn:
        srv = ServerThread(tmp_path, fixture_accounts=False, marketdata=False, backoffice_dsn=dsn)
        try:
            yield srv
        finally:
            srv.stop()
