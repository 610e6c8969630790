"""The identity store: users, refresh tokens, login attempts, reset tokens, the mail outbox and
which API keys belong to which user. One implementation over `backoffice.db.Db`, so SQLite
(embedded default) and PostgreSQL behave the same; `open_store` picks the backend.

Only digests of bearer secrets are stored (`token_digest`): a copy of the store does not let
anyone refresh a session or reset a password.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg

from backoffice.db import Db, PostgresDb, SqliteDb, UniqueViolation
from engine.usererror import UserError

ACTIVE: Final = "active"
MAX_ATTEMPTS_KEPT: Final = 100_000
"""Login attempts kept in the store (oldest pruned): an audit trail with a bound."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    return secrets.token_hex(16)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    email: str
    password_hash: str
    status: str
    account_id: int | None
    totp_secret: str | None
    totp_pending: str | None
    totp_last_step: int
    failed_logins: int
    locked_until_ms: int
    created_ms: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> User:
        return cls(**row)


class EmailTaken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What presenting a refresh token found: ``ok`` (rotated: the caller issues the next one
    in ``family_id``), ``reused`` (already rotated: the family is now revoked), ``invalid``."""

    status: str
    user_id: str | None = None
    family_id: str | None = None


class IdentityStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def close(self) -> None:
        await self.db.close()

    # ---- users -------------------------------------------------------------------------------

    async def create_user(self, email: str, password_hash: str, account_id: int | None) -> User:
        user_id = new_id()
        try:
            await self.db.execute(
                "INSERT INTO bo_users (user_id, email, password_hash, status, account_id, "
                "created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                user_id,
                email,
                password_hash,
                ACTIVE,
                account_id,
                now_ms(),
            )
        except UniqueViolation:
            raise EmailTaken(email) from None
        user = await self.user(user_id)
        assert user is not None
        return user

    async def user(self, user_id: str) -> User | None:
        row = await self.db.fetchrow("SELECT * FROM bo_users WHERE user_id = $1", user_id)
        return User.of(row) if row else None

    async def user_by_email(self, email: str) -> User | None:
        row = await self.db.fetchrow("SELECT * FROM bo_users WHERE email = $1", email)
        return User.of(row) if row else None

    async def set_account(self, user_id: str, account_id: int) -> None:
        await self.db.execute(
            "UPDATE bo_users SET account_id = $1 WHERE user_id = $2", account_id, user_id
        )

    async def set_password(self, user_id: str, password_hash: str) -> None:
        """A new password also clears a lockout (the reset proved control of the mailbox)."""
        await self.db.execute(
            "UPDATE bo_users SET password_hash = $1, failed_logins = 0, locked_until_ms = 0 "
            "WHERE user_id = $2",
            password_hash,
            user_id,
        )

    async def login_failed(self, user_id: str, max_failures: int, lock_ms: int) -> int:
        """Count a failure; at ``max_failures`` in a row the account locks for ``lock_ms``.
        Returns the lock's end (0: not locked)."""
        row = await self.db.fetchrow(
            "UPDATE bo_users SET failed_logins = failed_logins + 1 WHERE user_id = $1 "
            "RETURNING failed_logins",
            user_id,
        )
        assert row is not None
        if row["failed_logins"] < max_failures:
            return 0
        until = now_ms() + lock_ms
        await self.db.execute(
            "UPDATE bo_users SET failed_logins = 0, locked_until_ms = $1 WHERE user_id = $2",
            until,
            user_id,
        )
        return until

    async def login_succeeded(self, user_id: str) -> None:
        await self.db.execute("UPDATE bo_users SET failed_logins = 0 WHERE user_id = $1", user_id)

    async def set_totp_pending(self, user_id: str, secret: str) -> None:
        await self.db.execute(
            "UPDATE bo_users SET totp_pending = $1 WHERE user_id = $2", secret, user_id
        )

    async def confirm_totp(self, user_id: str, step: int) -> None:
        await self.db.execute(
            "UPDATE bo_users SET totp_secret = totp_pending, totp_pending = NULL, "
            "totp_last_step = $1 WHERE user_id = $2 AND totp_pending IS NOT NULL",
            step,
            user_id,
        )

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record a TOTP code's time step as used; False if it (or a later one) was: a code is
        good once, so one seen over a shoulder or in a log cannot be replayed."""
        changed = await self.db.execute(
            "UPDATE bo_users SET totp_last_step = $1 WHERE user_id = $2 AND totp_last_step < $3",
            step,
            user_id,
            step,
        )
        return changed == 1

    # ---- login attempts ----------------------------------------------------------------------

    async def record_attempt(self, email: str, ip: str, outcome: str) -> None:
        at = now_ms()
        await self.db.execute(
            "INSERT INTO bo_login_attempts (attempt_id, email, ip, outcome, at_ms) "
            "VALUES ($1, $2, $3, $4, $5)",
            new_id(),
            email[:254],
            ip[:64],
            outcome,
            at,
        )

    async def attempts(self, email: str) -> list[dict[str, Any]]:
        return await self.db.fetch(
            "SELECT ip, outcome, at_ms FROM bo_login_attempts WHERE email = $1 ORDER BY at_ms",
            email,
        )

    async def prune_attempts(self, keep: int = MAX_ATTEMPTS_KEPT) -> int:
        row = await self.db.fetchrow(
            "SELECT at_ms FROM bo_login_attempts ORDER BY at_ms DESC LIMIT 1 OFFSET $1", keep
        )
        if row is None:
            return 0
        return await self.db.execute(
            "DELETE FROM bo_login_attempts WHERE at_ms <= $1", row["at_ms"]
        )

    # ---- refresh tokens ----------------------------------------------------------------------

    async def add_refresh(self, user_id: str, family_id: str, ttl_ms: int) -> str:
        token = secrets.token_urlsafe(32)
        at = now_ms()
        await self.db.execute(
            "INSERT INTO bo_refresh_tokens (token_sha256, family_id, user_id, issued_ms, "
            "expires_ms) VALUES ($1, $2, $3, $4, $5)",
            token_digest(token),
            family_id,
            user_id,
            at,
            at + ttl_ms,
        )
        return token

    async def use_refresh(self, token: str) -> RefreshOutcome:
        """Rotate: mark the token used in one conditional UPDATE (two concurrent refreshes with
        the same token cannot both win). A token already rotated means a copy is in someone
        else's hands: the whole family is revoked (OAuth 2.0 Security BCP, refresh rotation)."""
        digest, at = token_digest(token), now_ms()
        won = await self.db.fetchrow(
            "UPDATE bo_refresh_tokens SET rotated_ms = $1 WHERE token_sha256 = $2 "
            "AND rotated_ms IS NULL AND revoked_ms IS NULL AND expires_ms > $3 "
            "RETURNING user_id, family_id",
            at,
            digest,
            at,
        )
        if won is not None:
            return RefreshOutcome("ok", won["user_id"], won["family_id"])
        row = await self.db.fetchrow(
            "SELECT family_id, rotated_ms FROM bo_refresh_tokens WHERE token_sha256 = $1", digest
        )
        if row is not None and row["rotated_ms"] is not None:
            await self.revoke_family(row["family_id"])
            return RefreshOutcome("reused", family_id=row["family_id"])
        return RefreshOutcome("invalid")

    async def refresh_owner(self, token: str) -> dict[str, Any] | None:
        return await self.db.fetchrow(
            "SELECT user_id, family_id FROM bo_refresh_tokens WHERE token_sha256 = $1",
            token_digest(token),
        )

    async def revoke_family(self, family_id: str) -> int:
        return await self.db.execute(
            "UPDATE bo_refresh_tokens SET revoked_ms = $1 WHERE family_id = $2 "
            "AND revoked_ms IS NULL",
            now_ms(),
            family_id,
        )

    async def revoke_user_sessions(self, user_id: str) -> int:
        return await self.db.execute(
            "UPDATE bo_refresh_tokens SET revoked_ms = $1 WHERE user_id = $2 "
            "AND revoked_ms IS NULL",
            now_ms(),
            user_id,
        )

    async def family_active(self, family_id: str) -> bool:
        row = await self.db.fetchrow(
            "SELECT COUNT(*) AS n FROM bo_refresh_tokens WHERE family_id = $1 "
            "AND revoked_ms IS NULL",
            family_id,
        )
        return row is not None and int(row["n"]) > 0

    # ---- password reset and the outbox -------------------------------------------------------

    async def add_reset(self, user_id: str, ttl_ms: int) -> str:
        token = secrets.token_urlsafe(32)
        await self.db.execute(
            "INSERT INTO bo_reset_tokens (token_sha256, user_id, expires_ms) VALUES ($1, $2, $3)",
            token_digest(token),
            user_id,
            now_ms() + ttl_ms,
        )
        return token

    async def reset_owner(self, token: str) -> str | None:
        """The user of a live (unused, unexpired) reset token, without spending it."""
        row = await self.db.fetchrow(
            "SELECT user_id FROM bo_reset_tokens WHERE token_sha256 = $1 AND used_ms IS NULL "
            "AND expires_ms > $2",
            token_digest(token),
            now_ms(),
        )
        return row["user_id"] if row else None

    async def use_reset(self, token: str) -> str | None:
        """Spend a reset token (once, before it expires); returns its user."""
        at = now_ms()
        row = await self.db.fetchrow(
            "UPDATE bo_reset_tokens SET used_ms = $1 WHERE token_sha256 = $2 AND used_ms IS NULL "
            "AND expires_ms > $3 RETURNING user_id",
            at,
            token_digest(token),
            at,
        )
        return row["user_id"] if row else None

    async def add_mail(self, kind: str, recipient: str, subject: str, body: str) -> str:
        message_id = new_id()
        await self.db.execute(
            "INSERT INTO bo_outbox (message_id, kind, recipient, subject, body, created_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            message_id,
            kind,
            recipient,
            subject,
            body,
            now_ms(),
        )
        return message_id

    async def pending_mail(self, limit: int = 100) -> list[dict[str, Any]]:
        """What a sender process would drain, oldest first."""
        return await self.db.fetch(
            "SELECT message_id, kind, recipient, subject, body, created_ms FROM bo_outbox "
            "WHERE sent_ms IS NULL ORDER BY created_ms LIMIT $1",
            limit,
        )

    async def mark_sent(self, message_id: str) -> bool:
        return (
            await self.db.execute(
                "UPDATE bo_outbox SET sent_ms = $1 WHERE message_id = $2 AND sent_ms IS NULL",
                now_ms(),
                message_id,
            )
            == 1
        )

    # ---- API keys owned by users -------------------------------------------------------------

    async def add_api_key(self, user_id: str, api_key: str, ip_allow: list[str]) -> None:
        await self.db.execute(
            "INSERT INTO bo_api_keys (api_key, user_id, ip_allow, created_ms) "
            "VALUES ($1, $2, $3, $4)",
            api_key,
            user_id,
            json.dumps(ip_allow),
            now_ms(),
        )

    async def api_keys(self, user_id: str) -> dict[str, list[str]]:
        rows = await self.db.fetch(
            "SELECT api_key, ip_allow FROM bo_api_keys WHERE user_id = $1 ORDER BY created_ms",
            user_id,
        )
        return {r["api_key"]: json.loads(r["ip_allow"]) for r in rows}


IDENTITY_FILE: Final = "identity.sqlite3"
"""The SQLite identity store's file in ``<data_dir>/backoffice``."""


async def open_store(data_dir: Path, dsn: str | None = None) -> IdentityStore:
    """PostgreSQL when ``dsn`` is given, else ``<data_dir>/backoffice/identity.sqlite3``."""
    if dsn:
        return IdentityStore(await PostgresDb.open(dsn))
    from engine.filemodes import private_dir

    folder = private_dir(data_dir / "backoffice")
    return IdentityStore(SqliteDb(folder / IDENTITY_FILE))


OPEN_ERRORS: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What opening the store raises when the DSN or the database is wrong (not a bug)."""


def open_error(exc: BaseException) -> UserError:
    """The one line every command that opens the store says when it cannot."""
    return UserError(
        f"cannot open the back-office identity store: {exc}",
        hint="check --backoffice-dsn (a PostgreSQL DSN) or leave it out for SQLite in the data dir",
    )


async def check_dsn(dsn: str) -> None:
    """Connect once and close, touching nothing: `serve` asks this before it opens the node, so
    an unreachable ``--backoffice-dsn`` fails before a data directory is created."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except OPEN_ERRORS as exc:
        raise open_error(exc) from None
    await conn.close()
