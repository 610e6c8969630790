"""Staff: the role table, staff login with mandatory TOTP and expiring sessions, on SQLite and
real PostgreSQL, and ``kootabase staff create`` (the first admin, TOTP secret printed once)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher

from backoffice import errors, roles
from backoffice.errors import BackofficeError
from backoffice.passwords import Passwords
from backoffice.roles import ACTIONS, Role
from backoffice.secretbox import SecretBox
from backoffice.staff import StaffAuth
from backoffice.store import IdentityStore, open_store
from backoffice.tokens import AccessTokens
from gateway.cli import main
from tests.backoffice_support import pg_database

PASSWORD = "correct horse battery staple"
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1))


def code(secret: str, steps_ahead: int = 0) -> str:
    """The TOTP code ``steps_ahead`` 30 s steps from now (a login accepts one step either way;
    each code is good once)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


@pytest.fixture(params=["sqlite", "postgres"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str | None]]:
    if request.param == "sqlite":
        yield tmp_path / "data", None
    else:
        with pg_database() as dsn:
            yield tmp_path / "data", dsn


def run(
    store_args: tuple[Path, str | None],
    body: Callable[[StaffAuth, IdentityStore], Awaitable[None]],
    ttl_s: int = 3_600,
) -> None:
    async def go() -> None:
        store = await open_store(*store_args)
        try:
            auth = StaffAuth(
                store.db,
                AccessTokens(b"k" * 32),
                SecretBox(b"m" * 32),
                passwords=FAST,
                session_ttl_s=ttl_s,
            )
            await body(auth, store)
        finally:
            await store.close()

    asyncio.run(go())


class _Refused:
    """Expects a `BackofficeError` with this stable code."""

    def __init__(self, code_: str) -> None:
        self.code = code_

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        assert isinstance(exc, BackofficeError), f"expected {self.code}, got {exc!r}"
        assert exc.code == self.code, (exc.code, exc.message)
        return True


def test_one_table_grants_every_action_and_the_auditor_reads_only() -> None:
    for name, action in ACTIONS.items():
        for role in Role:
            assert roles.allowed(role, name) == (role in action.roles)
        if action.writes:
            with _Refused(errors.ROLE_REFUSED):
                roles.require(Role.AUDITOR, name)
    roles.require(Role.ADMIN, "markets.set_state")
    for role in (Role.COMPLIANCE, Role.SUPPORT, Role.FINANCE, Role.AUDITOR):
        with _Refused(errors.ROLE_REFUSED):
            roles.require(role, "markets.set_state")
    with _Refused(errors.ROLE_REFUSED):
        roles.require(Role.SUPPORT, "accounts.freeze")
    with _Refused(errors.BAD_REQUEST):
        roles.parse_role("root")


def test_staff_login_needs_totp_and_sessions_end(store_args: tuple[Path, str | None]) -> None:
    async def body(auth: StaffAuth, store: IdentityStore) -> None:
        staff, secret, uri = await auth.create("Ops@Example.com", PASSWORD, Role.COMPLIANCE)
        assert staff.role == "compliance" and staff.email == "ops@example.com"
        assert uri.startswith("otpauth://totp/") and secret not in str(staff)
        with _Refused(errors.STAFF_EXISTS):
            await auth.create("ops@example.com", PASSWORD, Role.ADMIN)
        creds = {"email": "ops@example.com", "password": PASSWORD}
        with _Refused(errors.TOTP_REQUIRED):
            await auth.login(creds, "127.0.0.1")
        with _Refused(errors.INVALID_TOTP):
            await auth.login({**creds, "totp": "000000"}, "127.0.0.1")
        with _Refused(errors.INVALID_CREDENTIALS):
            await auth.login({**creds, "password": "wrong", "totp": code(secret)}, "127.0.0.1")
        first = code(secret, -1)
        out = await auth.login({**creds, "totp": first}, "127.0.0.1")
        assert out["staff"]["role"] == "compliance" and out["expires_in"] == 3_600
        with _Refused(errors.INVALID_TOTP):  # a code is good once
            await auth.login({**creds, "totp": first}, "127.0.0.1")
        bearer = f"Bearer {out['access_token']}"
        session = await auth.authenticate(bearer)
        assert session.role == "compliance" and session.staff.staff_id == staff.staff_id
        user_tokens = AccessTokens(b"k" * 32)
        assert user_tokens.verify(out["access_token"]) is None  # never a user's token
        forged = user_tokens.issue(staff.staff_id, session.session_id)  # a user token
        with _Refused(errors.UNAUTHENTICATED):
            await auth.authenticate(f"Bearer {forged}")
        assert (await auth.logout(session)) == {"revoked_sessions": 1}
        with _Refused(errors.UNAUTHENTICATED):
            await auth.authenticate(bearer)
        # A staff row without a TOTP seed (made outside the CLI) cannot log in at all.
        await store.db.execute(
            "UPDATE bo_staff SET totp_secret = NULL WHERE staff_id = $1", staff.staff_id
        )
        with _Refused(errors.STAFF_TOTP_MISSING):
            await auth.login({**creds, "totp": code(secret)}, "127.0.0.1")

    run(store_args, body)


def test_staff_session_expires(store_args: tuple[Path, str | None]) -> None:
    async def body(auth: StaffAuth, store: IdentityStore) -> None:
        _, secret, _ = await auth.create("short@example.com", PASSWORD, Role.AUDITOR)
        out = await auth.login(
            {"email": "short@example.com", "password": PASSWORD, "totp": code(secret)}, "::1"
        )
        bearer = f"Bearer {out['access_token']}"
        assert (await auth.authenticate(bearer)).role == "auditor"
        await asyncio.sleep(2.1)  # the token (and the session row) last one second
        with _Refused(errors.UNAUTHENTICATED):
            await auth.authenticate(bearer)

    run(store_args, body, ttl_s=1)


def test_cli_creates_the_first_admin_and_prints_the_totp_secret_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = tmp_path / "master.key"
    common = ["--data-dir", str(data), "--master-key-file", str(key)]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["staff", "create", "--role", "admin", "--email", "root@example.com", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["role"] == "admin" and out["email"] == "root@example.com"
    secret = out["totp_secret"]
    assert out["otpauth_uri"].startswith("otpauth://totp/") and len(secret) >= 16
    assert main(["staff", "list", *common]) == 0
    listed = capsys.readouterr().out
    assert '"root@example.com"' in listed and secret not in listed
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["staff", "create", "--role", "root", "--email", "x@example.com", *common]) != 0
    assert "role must be one of" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["staff", "create", "--role", "admin", "--email", "root@example.com", *common]) != 0
    assert "STAFF_EXISTS" in capsys.readouterr().err

    async def login() -> dict[str, object]:  # the printed secret logs in
        store = await open_store(data, None)
        try:
            from gateway.keys import load_master_key

            auth = StaffAuth(
                store.db, AccessTokens(b"k" * 32), SecretBox(load_master_key(key)), passwords=FAST
            )
            creds = {"email": "root@example.com", "password": PASSWORD, "totp": code(secret)}
            return await auth.login(creds, "127.0.0.1")
        finally:
            await store.close()

    assert asyncio.run(login())["staff"]["role"] == "admin"  # type: ignore[index]
