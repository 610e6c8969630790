"""API keys bound to one login session: what the trading page signs with after an email login.

The trading page signs its REST and WS API requests with an HMAC key (the dialect's only
signed credential), so an email login needs a key. Made as an ordinary key, each login (each
tab) left one behind whenever the tab was closed without "Log out", up to the user's 20-key
cap. A session key instead belongs to the back-office session (the refresh-token family) that
asked for it (``POST /api/v1/me/api-keys`` with ``"session": true``) and is revoked in the
gateway's key store when that session ends:

* at once on ``POST /api/v1/auth/logout`` (this session's key; every one with ``"all"``);
* by the sweep (`SessionKeys.sweep`, every `SWEEP_EVERY_S` and before a new key is counted)
  when the session was revoked some other way (password reset, refresh-token reuse), or has
  gone idle: its newest refresh token is older than `IDLE_MS`. The page refreshes its session
  every few minutes while it is open, so a closed tab's key dies within `IDLE_MS` plus one
  sweep, and a page that slept longer is asked to log in again.

One session has at most one key: asking again revokes the previous one (a reload of the same
tab keeps its key in sessionStorage and does not ask).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

import structlog

from backoffice.store import IdentityStore, now_ms

if TYPE_CHECKING:
    from gateway.keys import KeyStore

log = structlog.get_logger(__name__)

IDLE_MS: Final = 15 * 60_000
"""A session not refreshed for this long loses its key (the page refreshes every 4 min)."""
SWEEP_EVERY_S: Final = 60.0


class SessionKeys:
    def __init__(self, store: IdentityStore, keys: KeyStore, idle_ms: int = IDLE_MS) -> None:
        assert idle_ms > 0
        self.store, self.keys, self.idle_ms = store, keys, idle_ms
        self._task: asyncio.Task[None] | None = None

    async def bind(self, api_key: str, family_id: str, user_id: str) -> int:
        """Record ``api_key`` as the session's key; revoke the one it had. Returns how many
        keys that revoked (0 or 1)."""
        ended = await self._end(
            await self.store.db.fetch(
                "SELECT api_key FROM bo_session_keys WHERE family_id = $1", family_id
            )
        )
        await self.store.db.execute(
            "INSERT INTO bo_session_keys (api_key, family_id, user_id, created_ms) "
            "VALUES ($1, $2, $3, $4)",
            api_key,
            family_id,
            user_id,
            now_ms(),
        )
        return ended

    async def end_session(self, family_id: str) -> int:
        rows = await self.store.db.fetch(
            "SELECT api_key FROM bo_session_keys WHERE family_id = $1", family_id
        )
        return await self._end(rows)

    async def end_user(self, user_id: str) -> int:
        rows = await self.store.db.fetch(
            "SELECT api_key FROM bo_session_keys WHERE user_id = $1", user_id
        )
        return await self._end(rows)

    async def sweep(self, at_ms: int | None = None) -> int:
        """Revoke the keys of sessions that were revoked, expired or idle past `idle_ms`."""
        now = now_ms() if at_ms is None else at_ms
        rows = await self.store.db.fetch(
            "SELECT k.api_key FROM bo_session_keys k WHERE NOT EXISTS ("
            "SELECT 1 FROM bo_refresh_tokens r WHERE r.family_id = k.family_id "
            "AND r.revoked_ms IS NULL AND r.expires_ms > $1 AND r.issued_ms > $2)",
            now,
            now - self.idle_ms,
        )
        return await self._end(rows)

    async def _end(self, rows: list[dict[str, object]]) -> int:
        n = 0
        for row in rows:
            api_key = str(row["api_key"])
            with contextlib.suppress(KeyError):  # revoked already (by the user, or an operator)
                self.keys.revoke(api_key)
                n += 1
            await self.store.db.execute("DELETE FROM bo_session_keys WHERE api_key = $1", api_key)
        if n:
            log.info("session_keys_revoked", count=n)
        return n

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="session-keys")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                await self.sweep()
            except Exception as exc:  # a store hiccup: log, try again next round
                log.warning("session_keys_sweep_failed", error=str(exc)[:200])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
