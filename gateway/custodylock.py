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
claim while it runs (`ClaimKeeper` over `CustodyClaim`).

A claim can be lost while the gateway runs (PostgreSQL restarted, the connection cut, the
backend terminated). From then until it holds the claim again the gateway must act as if it
did not run custody: the chain watcher stops, and every custody action that writes (four-eyes
decisions, withdrawal requests and cancels, deposit addresses) is refused with
``CUSTODY_CLAIM_NOT_HELD`` (HTTP 503: `backoffice.errors` on /ops/v1, -4013 in
`gateway.errors` on the user API), because another gateway may take the claim meanwhile. The keeper
retries every `RETRY_S`; once it holds the claim again it settles what a crash may have left
(`GatewayCustody.recover`) and restarts the watcher before custody answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg
import structlog

from engine.usererror import UserError

log = structlog.get_logger(__name__)

NAMESPACE: Final = "kootabase-custody"
RETRY_S: Final = 2.0
"""Seconds between two attempts to take a lost claim back."""


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


class ClaimKeeper:
    """The claim for as long as the gateway runs: taken at start (`acquire` raises
    `UserError` when another gateway holds it), taken back after a loss.

    ``on_lost`` (synchronous) stops custody's chain work the moment the connection goes;
    ``on_regained`` runs with the claim held again and before `held` turns true, so no custody
    action is answered before it finished (it settles interrupted four-eyes decisions)."""

    def __init__(
        self,
        dsn: str,
        stream: str,
        on_lost: Callable[[], None],
        on_regained: Callable[[], Awaitable[None]],
        retry_s: float = RETRY_S,
    ) -> None:
        self.dsn, self.stream, self.retry_s = dsn, stream, retry_s
        self._on_lost, self._on_regained = on_lost, on_regained
        self._claim: CustodyClaim | None = None
        self._retry: asyncio.Task[None] | None = None
        self._closed = False
        self.held = False
        self.losses = 0
        """How often the claim was lost since start (`/health`)."""

    async def acquire(self) -> None:
        self._claim = await CustodyClaim.acquire(self.dsn, self.stream, self._lost)
        self.held = True

    def refusal(self) -> str | None:
        """Why custody must not act now (None while the claim is held)."""
        if self.held:
            return None
        return (
            f"this gateway does not hold the custody claim for stream {self.stream} (its "
            "PostgreSQL connection was lost); custody actions resume once it holds it again"
        )

    def status(self) -> dict[str, Any]:
        """``/health``'s ``checks.custody``."""
        return {
            "ok": self.held,
            "claim": "held" if self.held else "lost",
            "stream": self.stream,
            "losses": self.losses,
        }

    def _lost(self) -> None:
        self.held = False
        self._claim = None
        self.losses += 1
        self._on_lost()
        if not self._closed and self._retry is None:
            self._retry = asyncio.get_running_loop().create_task(
                self._take_back(), name="custody-claim"
            )

    async def _take_back(self) -> None:
        try:
            while not self._closed:
                await asyncio.sleep(self.retry_s)
                try:
                    claim = await CustodyClaim.acquire(self.dsn, self.stream, self._lost)
                except Exception as exc:  # taken, or PostgreSQL still away: the loop must live
                    log.warning("custody_claim_retry", stream=self.stream, error=str(exc))
                    continue
                self._claim = claim
                try:
                    await self._on_regained()
                except Exception:  # recovery failed: give the claim up, try again later
                    log.exception("custody_claim_recovery_failed", stream=self.stream)
                    self._claim = None
                    await claim.release()
                    continue
                if self._claim is not claim:  # lost again while recovering: keep trying
                    continue
                self.held = True
                log.warning("custody_claim_regained", stream=self.stream)
                return
        finally:
            self._retry = None

    async def close(self) -> None:
        self._closed = True
        self.held = False
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        if self._claim is not None:
            await self._claim.release()
            self._claim = None
