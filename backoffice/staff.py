"""Staff: operators who run the venue, with a role each (`backoffice.roles`).

Staff log in like users (argon2id password, lockout after `MAX_FAILURES`, per-address
throttle) but TOTP is mandatory: a staff member is created with a TOTP seed (shown once, by
``kootabase staff create``) and a login without a valid, unused code is refused. A staff
session is a row with an absolute expiry (`SESSION_TTL_S`): its access token (a JWT of kind
``staff``, never accepted as a user's) dies with it, on logout or when it expires; there is no
refresh, so an operator logs in again (with a fresh TOTP code) at least every session.

Staff live in the identity store beside users (SQLite in the data dir, or PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pyotp

from backoffice import errors
from backoffice.auth import TOTP_ISSUER, _check_rate, _totp_step, _unauthorized, locked
from backoffice.db import Db, UniqueViolation
from backoffice.errors import BackofficeError
from backoffice.passwords import MAX_PASSWORD_CHARS, Passwords, check_new_password, normalize_email
from backoffice.roles import Role
from backoffice.secretbox import SealedSecretError, SecretBox
from backoffice.store import ACTIVE, new_id, now_ms
from backoffice.throttle import IpThrottle
from backoffice.tokens import AccessTokens

MAX_FAILURES: Final = 5
LOCK_MS: Final = 15 * 60_000
SESSION_TTL_S: Final = 3_600
"""A staff session (and its token) lasts one hour at most; then log in again."""
TOKEN_KIND: Final = "staff"


@dataclass(frozen=True, slots=True)
class Staff:
    staff_id: str
    email: str
    password_hash: str
    role: str
    status: str
    totp_secret: str | None
    totp_last_step: int
    failed_logins: int
    locked_until_ms: int
    created_ms: int
    created_by: str

    def public(self) -> dict[str, Any]:
        return {
            "staff_id": self.staff_id,
            "email": self.email,
            "role": self.role,
            "status": self.status,
            "created_ms": self.created_ms,
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class StaffSession:
    staff: Staff
    session_id: str
    expires_s: int

    @property
    def role(self) -> str:
        return self.staff.role


class StaffStore:
    """Staff rows and staff sessions over the identity store's `Db`."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def create(
        self, email: str, password_hash: str, role: Role, totp_sealed: str, staff_id: str, by: str
    ) -> Staff:
        try:
            await self.db.execute(
                "INSERT INTO bo_staff (staff_id, email, password_hash, role, status, "
                "totp_secret, created_ms, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                staff_id,
                email,
                password_hash,
                role.value,
                ACTIVE,
                totp_sealed,
                now_ms(),
                by,
            )
        except UniqueViolation:
            raise BackofficeError(409, errors.STAFF_EXISTS, "this email is staff already") from None
        staff = await self.get(staff_id)
        assert staff is not None
        return staff

    async def get(self, staff_id: str) -> Staff | None:
        row = await self.db.fetchrow("SELECT * FROM bo_staff WHERE staff_id = $1", staff_id)
        return Staff(**row) if row else None

    async def by_email(self, email: str) -> Staff | None:
        row = await self.db.fetchrow("SELECT * FROM bo_staff WHERE email = $1", email)
        return Staff(**row) if row else None

    async def listing(self) -> list[Staff]:
        rows = await self.db.fetch("SELECT * FROM bo_staff ORDER BY created_ms, staff_id")
        return [Staff(**r) for r in rows]

    async def use_totp_step(self, staff_id: str, step: int) -> bool:
        """A code is good once (as for users)."""
        changed = await self.db.execute(
            "UPDATE bo_staff SET totp_last_step = $1 WHERE staff_id = $2 AND totp_last_step < $3",
            step,
            staff_id,
            step,
        )
        return changed == 1

    async def failed(self, staff_id: str) -> int:
        """Count a failed login; returns the lock's end (0: not locked)."""
        row = await self.db.fetchrow(
            "UPDATE bo_staff SET failed_logins = failed_logins + 1 WHERE staff_id = $1 "
            "RETURNING failed_logins",
            staff_id,
        )
        assert row is not None
        if row["failed_logins"] < MAX_FAILURES:
            return 0
        until = now_ms() + LOCK_MS
        await self.db.execute(
            "UPDATE bo_staff SET failed_logins = 0, locked_until_ms = $1 WHERE staff_id = $2",
            until,
            staff_id,
        )
        return until

    async def succeeded(self, staff_id: str) -> None:
        await self.db.execute("UPDATE bo_staff SET failed_logins = 0 WHERE staff_id = $1", staff_id)

    async def open_session(self, staff_id: str, ttl_s: int) -> tuple[str, int]:
        session_id, at = new_id(), now_ms()
        expires_ms = at + ttl_s * 1000
        await self.db.execute(
            "INSERT INTO bo_staff_sessions (session_id, staff_id, issued_ms, expires_ms) "
            "VALUES ($1, $2, $3, $4)",
            session_id,
            staff_id,
            at,
            expires_ms,
        )
        return session_id, expires_ms

    async def session_live(self, session_id: str, staff_id: str) -> bool:
        row = await self.db.fetchrow(
            "SELECT COUNT(*) AS n FROM bo_staff_sessions WHERE session_id = $1 AND staff_id = $2 "
            "AND revoked_ms IS NULL AND expires_ms > $3",
            session_id,
            staff_id,
            now_ms(),
        )
        return row is not None and int(row["n"]) > 0

    async def revoke_session(self, session_id: str) -> int:
        return await self.db.execute(
            "UPDATE bo_staff_sessions SET revoked_ms = $1 WHERE session_id = $2 "
            "AND revoked_ms IS NULL",
            now_ms(),
            session_id,
        )


class StaffAuth:
    """Creating staff, staff login and the check of every operator request."""

    def __init__(
        self,
        db: Db,
        tokens: AccessTokens,
        box: SecretBox,
        *,
        passwords: Passwords | None = None,
        session_ttl_s: int = SESSION_TTL_S,
    ) -> None:
        assert session_ttl_s > 0
        self.store = StaffStore(db)
        self.tokens, self.box = tokens, box
        self.passwords = passwords or Passwords()
        self.throttle = IpThrottle()
        self.session_ttl_s = session_ttl_s
        self._session_tokens = AccessTokens(tokens._key, ttl_s=session_ttl_s)

    async def create(
        self, email: object, password: object, role: Role, by: str = "cli"
    ) -> tuple[Staff, str, str]:
        """A new staff member; returns (staff, TOTP secret, otpauth URI), the secret in the
        clear only here (stored sealed under the master key)."""
        address = normalize_email(email)
        if not isinstance(password, str):
            raise errors.bad_request("password must be a string")
        check_new_password(password, address)
        if await self.store.by_email(address) is not None:
            raise BackofficeError(409, errors.STAFF_EXISTS, "this email is staff already")
        staff_id = "staff-" + new_id()[:16]
        secret = pyotp.random_base32()
        staff = await self.store.create(
            address,
            await self.passwords.hash(password),
            role,
            self.box.seal(secret, staff_id),
            staff_id,
            by,
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=address, issuer_name=f"{TOTP_ISSUER} staff")
        return staff, secret, uri

    async def login(self, body: dict[str, Any], ip: str) -> dict[str, Any]:
        address = normalize_email(body.get("email"))
        password = body.get("password")
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
            raise errors.bad_request("password must be a string")
        _check_rate(self.throttle, ip, errors.TOO_MANY_ATTEMPTS, "too many failed logins")
        staff = await self.store.by_email(address)
        if staff is not None and staff.locked_until_ms > now_ms():
            raise locked(staff.locked_until_ms, "this staff member")
        ok = await self.passwords.verify(staff.password_hash if staff else None, password)
        if not ok or staff is None:
            await self._failed(ip, staff)
            raise _unauthorized(errors.INVALID_CREDENTIALS, "wrong email or password")
        if staff.totp_secret is None:
            raise BackofficeError(
                403, errors.STAFF_TOTP_MISSING, "staff need TOTP: ask an admin to re-create you"
            )
        code = body.get("totp")
        if code is None:
            raise _unauthorized(errors.TOTP_REQUIRED, "staff log in with a TOTP code")
        try:
            secret = self.box.open(staff.totp_secret, staff.staff_id)
        except SealedSecretError:
            raise BackofficeError(
                503, errors.UNAVAILABLE, "this staff TOTP seed does not open with the master key"
            ) from None
        step = _totp_step(secret, code)
        if step is None or not await self.store.use_totp_step(staff.staff_id, step):
            await self._failed(ip, staff)
            raise _unauthorized(errors.INVALID_TOTP, "wrong or already used TOTP code")
        if staff.status != ACTIVE:
            raise BackofficeError(403, errors.USER_DISABLED, "this staff member is disabled")
        await self.store.succeeded(staff.staff_id)
        session_id, expires_ms = await self.store.open_session(staff.staff_id, self.session_ttl_s)
        return {
            "access_token": self._session_tokens.issue(staff.staff_id, session_id, TOKEN_KIND),
            "token_type": "Bearer",
            "expires_in": self.session_ttl_s,
            "expires_ms": expires_ms,
            "staff": staff.public(),
        }

    async def _failed(self, ip: str, staff: Staff | None) -> None:
        self.throttle.note(ip)
        if staff is not None:
            until = await self.store.failed(staff.staff_id)
            if until:
                raise locked(until, "this staff member")

    async def authenticate(self, authorization: str | None) -> StaffSession:
        """The live staff session of a request's bearer token, else 401/403."""
        if not authorization or not authorization.startswith("Bearer "):
            raise _unauthorized(errors.UNAUTHENTICATED, "a staff access token is required")
        claims = self._session_tokens.verify(authorization[7:].strip(), TOKEN_KIND)
        if claims is None:
            raise _unauthorized(errors.UNAUTHENTICATED, "invalid or expired staff access token")
        if not await self.store.session_live(claims.session_id, claims.user_id):
            raise _unauthorized(errors.UNAUTHENTICATED, "this staff session ended")
        staff = await self.store.get(claims.user_id)
        if staff is None or staff.status != ACTIVE:
            raise BackofficeError(403, errors.USER_DISABLED, "this staff member is disabled")
        return StaffSession(staff, claims.session_id, claims.expires_s)

    async def logout(self, session: StaffSession) -> dict[str, Any]:
        return {"revoked_sessions": await self.store.revoke_session(session.session_id)}
