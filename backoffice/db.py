"""Two SQL backends behind one small interface, so `backoffice.store` is written once.

Queries are written in PostgreSQL's placeholder style (``$1, $2, ...``, each used once and in
order); the SQLite backend turns them into ``?``. Rows come back as plain dicts.

- `SqliteDb`: the embedded default, a file in the data directory created 0600 before SQLite
  opens it (SQLite gives its WAL/SHM side files the database file's mode). Statements run on
  one worker thread of their own, in order: a commit waits for fsync, and the event loop that
  also serves trading must not wait with it.
- `PostgresDb`: asyncpg pool, for a deployment that keeps identity data in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import asyncpg

from backoffice.schema import TABLES
from engine.filemodes import PRIVATE_FILE, tighten

_PLACEHOLDER: Final = re.compile(r"\$\d+")
T = TypeVar("T")


class Db(Protocol):
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None: ...

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class UniqueViolation(Exception):
    """An INSERT hit a UNIQUE/PRIMARY KEY constraint (same meaning on both backends)."""


class SqliteDb:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        tighten(path, PRIVATE_FILE)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for ddl in TABLES:
            self._conn.execute(ddl)

        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="identity-sqlite")

    def _cursor(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(_PLACEHOLDER.sub("?", sql), args)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise UniqueViolation(str(exc)) from None
            raise

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    async def execute(self, sql: str, *args: Any) -> int:
        def run() -> int:
            cur = self._cursor(sql, args)
            if cur.description is not None:  # RETURNING: the rows must be read for the count
                return len(cur.fetchall())
            return cur.rowcount

        return await self._run(run)

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = self._cursor(sql, args).fetchone()
            return dict(row) if row is not None else None

        return await self._run(run)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self._run(lambda: [dict(r) for r in self._cursor(sql, args).fetchall()])

    async def close(self) -> None:
        await self._run(self._conn.close)
        self._worker.shutdown(wait=True)


class PostgresDb:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresDb:
        # min_size 0: a pool with a floor reconnects on its own while the database is gone
        # and prints a raw traceback on stderr each time (gateway/history/pgreader.py)
        pool = await asyncpg.create_pool(dsn, min_size=0, max_size=4, timeout=10)
        async with pool.acquire() as conn:
            for ddl in TABLES:
                await conn.execute(ddl)
        return cls(pool)

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            status = await self._pool.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from None
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(sql, *args)
        return dict(row) if row is not None else None

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._pool.fetch(sql, *args)]

    async def close(self) -> None:
        await self._pool.close()
