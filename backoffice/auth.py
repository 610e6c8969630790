"""Sign-up, login, sessions, TOTP and password reset: the rules, without HTTP.

A *session* is a refresh-token family: login starts one, every refresh rotates its token (the
old one is spent), and presenting a spent token again revokes the family, since only a copy can
do that (OAuth 2.0 Security BCP). Access tokens (`backoffice.tokens`) name their session and
die with it. Failed logins are counted per account (persisted: `ACCOUNT_LOCKED` after
`MAX_FAILURES` in a row, for `LOCK_MS`) and per address (`backoffice.throttle`).

The trading account a user gets at sign-up is made by the caller's ``make_account`` (the
gateway's journaled ``CreateAccount``): this module never touches engine state.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import pyotp

from backoffice import errors
from backoffice.errors import BackofficeError
from backoffice.passwords import MAX_PASSWORD_CHARS, Passwords, check_new_password, normalize_email
from backoffice.secretbox import SealedSecretError, SecretBox
from backoffice.store import ACTIVE, EmailTaken, IdentityStore, User, new_id, now_ms
from backoffice.throttle import IpThrottle
from backoffice.tokens import AccessTokens, Claims

MAX_FAILURES: Final = 5
LOCK_MS: Final = 15 * 60_000
REFRESH_TTL_MS: Final = 30 * 24 * 3_600_000
RESET_TTL_MS: Final = 30 * 60_000
TOTP_ISSUER: Final = "Kootabase"
TOTP_DIGITS: Final = 6
TOTP_CODE: Final = re.compile(f"[0-9]{{{TOTP_DIGITS}}}")
SIGNUPS_PER_HOUR: Final = 10


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    claims: Claims


def locked(until_ms: int, who: str) -> BackofficeError:
    """The answer to a login while ``who`` (a user, a staff member) is locked out: 429 with
    the seconds to wait."""
    wait_s = max(1, (until_ms - now_ms()) // 1000 + 1)
    return BackofficeError(
        429,
        errors.ACCOUNT_LOCKED,
        f"too many failed logins: {who} is locked for a while",
        {"Retry-After": str(wait_s)},
    )


def _unauthorized(code: str, message: str) -> BackofficeError:
    return BackofficeError(401, code, message, {"WWW-Authenticate": "Bearer"})


def _check_rate(throttle: IpThrottle, ip: str, code: str, what: str) -> None:
    wait_s = throttle.retry_after_s(ip)
    if wait_s > 0:
        raise BackofficeError(
            429, code, f"{what} from this address", {"Retry-After": str(int(wait_s) + 1)}
        )


def _totp_step(secret: str, code: object, now_s: float | None = None) -> int | None:
    """The time step (30 s) whose code ``code`` is, within one step of now; None if none."""
    if not isinstance(code, str) or TOTP_CODE.fullmatch(code) is None:
        return None  # ASCII digits only: str.isdigit takes "²", which compare_digest refuses
    totp = pyotp.TOTP(secret)
    now_s = time.time() if now_s is None else now_s
    step = int(now_s) // totp.interval
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


class Auth:
    def __init__(
        self,
        store: IdentityStore,
        tokens: AccessTokens,
        make_account: Callable[[], Awaitable[int]],
        *,
        passwords: Passwords | None = None,
        throttle: IpThrottle | None = None,
        box: SecretBox,
    ) -> None:
        self.store, self.tokens, self.make_account = store, tokens, make_account
        self.box = box
        """Seals TOTP seeds at rest (`backoffice.secretbox`)."""
        self.passwords = passwords or Passwords()
        self.throttle = throttle or IpThrottle()
        self.signups = IpThrottle(max_failures=SIGNUPS_PER_HOUR, window_s=3_600)
        """Sign-ups per address: each journals an account, so a script cannot mint many."""

    def _open(self, sealed: str, user_id: str) -> str:
        try:
            return self.box.open(sealed, user_id)
        except SealedSecretError:
            raise BackofficeError(
                503,
                errors.UNAVAILABLE,
                "this user's TOTP seed does not open with the configured master key",
            ) from None

    # ---- sign-up and login -------------------------------------------------------------------

    async def signup(self, body: dict[str, Any], ip: str) -> dict[str, Any]:
        email = normalize_email(body.get("email"))
        password = check_new_password(body.get("password"), email)
        _check_rate(self.signups, ip, errors.TOO_MANY_SIGNUPS, "too many sign-ups")
        if await self.store.user_by_email(email) is not None:
            raise BackofficeError(409, errors.EMAIL_TAKEN, "this email already has a user")
        password_hash = await self.passwords.hash(password)
        self.signups.note(ip)
        account_id = await self.make_account()
        try:
            user = await self.store.create_user(email, password_hash, account_id)
        except EmailTaken:  # a concurrent sign-up won; its empty account stays unused
            raise BackofficeError(
                409, errors.EMAIL_TAKEN, "this email already has a user"
            ) from None
        return self.profile(user)

    async def login(self, body: dict[str, Any], ip: str) -> dict[str, Any]:
        email = normalize_email(body.get("email"))
        password = body.get("password")
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
            raise errors.bad_request("password must be a string")
        _check_rate(self.throttle, ip, errors.TOO_MANY_ATTEMPTS, "too many failed logins")
        user = await self.store.user_by_email(email)
        if user is not None and user.locked_until_ms > now_ms():
            await self.store.record_attempt(email, ip, "locked")
            raise locked(user.locked_until_ms, "this user")
        ok = await self.passwords.verify(user.password_hash if user else None, password)
        if not ok or user is None:
            await self._failed(email, ip, user, "bad_password")
            raise _unauthorized(errors.INVALID_CREDENTIALS, "wrong email or password")
        if user.totp_secret is not None:
            code = body.get("totp")
            if code is None:
                raise _unauthorized(errors.TOTP_REQUIRED, "this user needs a TOTP code")
            step = _totp_step(self._open(user.totp_secret, user.user_id), code)
            if step is None or not await self.store.use_totp_step(user.user_id, step):
                await self._failed(email, ip, user, "bad_totp")
                raise _unauthorized(errors.INVALID_TOTP, "wrong or already used TOTP code")
        if user.status != ACTIVE:
            raise BackofficeError(403, errors.USER_DISABLED, "this user is disabled")
        await self.store.login_succeeded(user.user_id)
        await self.store.record_attempt(email, ip, "ok")
        return await self._tokens(user.user_id, new_id())

    async def _failed(self, email: str, ip: str, user: User | None, outcome: str) -> None:
        self.throttle.note(ip)
        await self.store.record_attempt(email, ip, outcome)
        if user is not None:
            until = await self.store.login_failed(user.user_id, MAX_FAILURES, LOCK_MS)
            if until:
                raise locked(until, "this user")

    async def _tokens(self, user_id: str, family_id: str) -> dict[str, Any]:
        refresh = await self.store.add_refresh(user_id, family_id, REFRESH_TTL_MS)
        return {
            "access_token": self.tokens.issue(user_id, family_id),
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl_s,
            "refresh_token": refresh,
        }

    async def refresh(self, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("refresh_token")
        if not isinstance(token, str) or not 0 < len(token) <= 256:
            raise errors.bad_request("refresh_token must be a string")
        outcome = await self.store.use_refresh(token)
        if outcome.status == "reused":
            raise _unauthorized(
                errors.REFRESH_TOKEN_REUSED,
                "this refresh token was already used: the session is revoked",
            )
        if outcome.status != "ok":
            raise _unauthorized(
                errors.INVALID_REFRESH_TOKEN, "unknown, expired or revoked refresh token"
            )
        assert outcome.user_id is not None and outcome.family_id is not None
        user = await self.store.user(outcome.user_id)
        if user is None or user.status != ACTIVE:
            await self.store.revoke_family(outcome.family_id)
            raise BackofficeError(403, errors.USER_DISABLED, "this user is disabled")
        return await self._tokens(user.user_id, outcome.family_id)

    # ---- authenticated requests --------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Session:
        if not authorization or not authorization.startswith("Bearer "):
            raise _unauthorized(errors.UNAUTHENTICATED, "an access token is required")
        claims = self.tokens.verify(authorization[7:].strip())
        if claims is None:
            raise _unauthorized(errors.UNAUTHENTICATED, "invalid or expired access token")
        if not await self.store.family_active(claims.session_id):
            raise _unauthorized(errors.UNAUTHENTICATED, "this session was revoked")
        user = await self.store.user(claims.user_id)
        if user is None or user.status != ACTIVE:
            raise BackofficeError(403, errors.USER_DISABLED, "this user is disabled")
        return Session(user, claims)

    async def logout(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        """Revoke this session, or every session of the user with ``{"all": true}``."""
        everywhere = body.get("all", False)
        if not isinstance(everywhere, bool):
            raise errors.bad_request("all must be true or false")
        if everywhere:
            n = await self.store.revoke_user_sessions(session.user.user_id)
        else:
            n = await self.store.revoke_family(session.claims.session_id)
        return {"revoked_refresh_tokens": n}

    @staticmethod
    def profile(user: User) -> dict[str, Any]:
        return {
            "user_id": user.user_id,
            "email": user.email,
            "status": user.status,
            "account_id": user.account_id,
            "totp_enabled": user.totp_secret is not None,
            "created_ms": user.created_ms,
        }

    async def second_factor(self, session: Session, code: object, ip: str) -> None:
        """A fresh TOTP code for an action that can move money out (a key with ``withdraw``):
        a stolen access token alone must not be enough. Each code is accepted once, and a
        wrong one counts towards the user's lockout like a wrong login."""
        user = session.user
        if user.totp_secret is None:
            raise BackofficeError(
                403,
                errors.TOTP_REQUIRED,
                "a key with the withdraw permission needs two-factor authentication: "
                "enable TOTP first (POST /api/v1/auth/totp/enroll)",
            )
        if code is None:
            raise BackofficeError(400, errors.TOTP_REQUIRED, "this key needs a TOTP code (totp)")
        step = _totp_step(self._open(user.totp_secret, user.user_id), code)
        if step is None or not await self.store.use_totp_step(user.user_id, step):
            await self._failed(user.email, ip, user, "bad_totp")
            raise BackofficeError(400, errors.INVALID_TOTP, "wrong or already used TOTP code")

    # ---- TOTP enrolment ----------------------------------------------------------------------

    async def totp_enroll(self, session: Session) -> dict[str, Any]:
        if session.user.totp_secret is not None:
            raise BackofficeError(409, errors.TOTP_ALREADY_ENABLED, "TOTP is already enabled")
        secret = pyotp.random_base32()
        await self.store.set_totp_pending(
            session.user.user_id, self.box.seal(secret, session.user.user_id)
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=session.user.email, issuer_name=TOTP_ISSUER)
        return {"secret": secret, "otpauth_uri": uri}

    async def totp_confirm(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        pending = session.user.totp_pending
        if session.user.totp_secret is not None:
            raise BackofficeError(409, errors.TOTP_ALREADY_ENABLED, "TOTP is already enabled")
        if pending is None:
            raise BackofficeError(409, errors.TOTP_NOT_PENDING, "enroll first")
        step = _totp_step(self._open(pending, session.user.user_id), body.get("code"))
        if step is None:
            raise BackofficeError(400, errors.INVALID_TOTP, "wrong TOTP code")
        await self.store.confirm_totp(session.user.user_id, step)
        return {"totp_enabled": True}

    # ---- password reset ----------------------------------------------------------------------

    async def reset_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Always the same answer (no account enumeration); a known email gets a one-time token
        in the outbox, which a sender process delivers."""
        email = normalize_email(body.get("email"))
        user = await self.store.user_by_email(email)
        if user is not None:
            token = await self.store.add_reset(user.user_id, RESET_TTL_MS)
            await self.store.add_mail(
                "password_reset",
                user.email,
                "Reset your Kootabase password",
                f"Someone asked to reset the password of {user.email}. If it was you, use this "
                f"one-time token within {RESET_TTL_MS // 60_000} minutes:\n\n{token}\n\n"
                "If it was not you, ignore this message.",
            )
        return {"status": "accepted"}

    async def reset_confirm(self, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("token")
        if not isinstance(token, str) or not 0 < len(token) <= 256:
            raise errors.bad_request("token must be a string")
        password = body.get("password")
        if not isinstance(password, str):
            raise errors.bad_request("password must be a string")
        owner = await self.store.reset_owner(token)
        user = await self.store.user(owner) if owner else None
        if user is not None:  # a weak password is refused before the token is spent
            check_new_password(password, user.email)
        if user is None or await self.store.use_reset(token) != user.user_id:
            raise BackofficeError(
                400, errors.INVALID_RESET_TOKEN, "unknown, used or expired reset token"
            )
        await self.store.set_password(user.user_id, await self.passwords.hash(password))
        await self.store.revoke_user_sessions(user.user_id)
        return {"status": "password_changed"}
