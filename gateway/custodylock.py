"""Cluster mode: at most one gateway runs custody for a stream.

Custody keeps its state in a local SQLite store (`custody.store`): deposit addresses by index,
scanned blocks, withdrawals and their four-eyes decisions, signer nonces. Two gateways of one
cluster each running custody would derive addresses independently from the same xpub (two
accounts with one address), each see only the withdrawals requested through it, and sign with
the same hot key from two nonce counters. So the deployment rule is one custody gateway per
stream (docs/custody.md#cluster-mode), and it is enforced here, not left to care.

The claim is a PostgreSQL session-level advisory lock in the back-office database every
cluster gateway already shares (``--backoffice-dsn``), keyed by the stream's name. It needs no
table and no cleanup: the lock is the connection's, so a gateway that dies (even by SIGKILL)
releases it when PostgreSQL sees the connection go. ``kootabase serve`` asks before anything
starts (`check_free`: one clear line instead of a second custody), and the gateway holds the
claim while it runs (`CustodyClaim`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

import asyncpg
import structlog

from engine.usererror import UserError

log = structlog.get_logger(__name__)

NAMESPACE: Final = "kootabase-custody"


def lock_key(stream: str) -> int:
    """The advisory lock's bigint key for ``stream`` (stable across processes and versions)."""
    digest = hashlib.blake2b(f"{NAMESPACE}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _taken(stream: str) -> UserError:
    return UserError(
        f"another gateway already runs custody for stream {stream} (it holds the custody "
        "lock in the --backoffice-dsn database)",
        hint="run --custody-config on one gateway of a cluster only (docs/custody.md)",
    )


async def check_free(dsn: str, stream: str) -> None:
    """`UserError` unless the claim is free right now (taken and released at once)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        key = lock_key(stream)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            raise _taken(stream)
        await conn.fetchval("SELECT pg_advisory_unlock($1)", key)
    finally:
        await conn.close()


class CustodyClaim:
    """The held claim: one PostgreSQL connection owning the advisory lock until `release`."""

    def __init__(self, conn: asyncpg.Connection, stream: str) -> None:
        self._conn = conn
        self.stream = stream
        self.released = False

    @classmethod
    async def acquire(
        cls, dsn: str, stream: str, on_lost: Callable[[], None] | None = None
    ) -> CustodyClaim:
        """Take the claim or raise `UserError`; ``on_lost`` runs if the connection (and so
        the lock) goes away while the gateway still runs."""
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(stream)):
                raise _taken(stream)
        except BaseException:
            await conn.close()
            raise
        claim = cls(conn, stream)
        if on_lost is not None:

            def lost(_conn: object) -> None:
                if not claim.released:
                    log.critical("custody_claim_lost", stream=stream)
                    on_lost()

            conn.add_termination_listener(lost)
        return claim

    async def release(self) -> None:
        """Closing the connection is the release."""
        self.released = True
        if not self._conn.is_closed():
            await self._conn.close()
