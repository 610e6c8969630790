"""The identity store on both backends (SQLite file, real PostgreSQL): the same behaviour."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from backoffice.store import EmailTaken, IdentityStore, open_store
from tests.backoffice_support import pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str | None]]:
    if request.param == "sqlite":
        yield tmp_path / "data", None
    else:
        with pg_database() as dsn:
            yield tmp_path / "data", dsn


def run(store_args: tuple[Path, str | None], body) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        store = await open_store(*store_args)
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(go())


def test_users_unique_email_and_lockout(store_args: tuple[Path, str | None]) -> None:
    async def body(s: IdentityStore) -> None:
        u = await s.create_user("a@example.com", "hash", 7)
        assert (await s.user_by_email("a@example.com")) == u
        assert u.account_id == 7 and u.status == "active" and u.failed_logins == 0
        with pytest.raises(EmailTaken):
            await s.create_user("a@example.com", "hash2", 8)
        assert await s.login_failed(u.user_id, 3, 60_000) == 0
        assert await s.login_failed(u.user_id, 3, 60_000) == 0
        until = await s.login_failed(u.user_id, 3, 60_000)
        assert until > 0
        locked = await s.user(u.user_id)
        assert locked is not None and locked.locked_until_ms == until
        await s.set_password(u.user_id, "new")
        reset = await s.user(u.user_id)
        assert reset is not None and reset.locked_until_ms == 0 and reset.password_hash == "new"

    run(store_args, body)


def test_refresh_rotation_and_reuse_revokes_family(store_args: tuple[Path, str | None]) -> None:
    async def body(s: IdentityStore) -> None:
        u = await s.create_user("b@example.com", "hash", None)
        t1 = await s.add_refresh(u.user_id, "fam", 60_000)
        first = await s.use_refresh(t1)
        assert (first.status, first.user_id, first.family_id) == ("ok", u.user_id, "fam")
        t2 = await s.add_refresh(u.user_id, "fam", 60_000)
        again = await s.use_refresh(t1)  # t1 was rotated: someone holds a copy
        assert again.status == "reused"
        assert (await s.use_refresh(t2)).status == "invalid"  # the family is revoked
        assert not await s.family_active("fam")
        assert (await s.use_refresh("never-issued")).status == "invalid"
        expired = await s.add_refresh(u.user_id, "fam2", -1)
        assert (await s.use_refresh(expired)).status == "invalid"

    run(store_args, body)


def test_reset_tokens_once_and_outbox(store_args: tuple[Path, str | None]) -> None:
    async def body(s: IdentityStore) -> None:
        u = await s.create_user("c@example.com", "hash", None)
        token = await s.add_reset(u.user_id, 60_000)
        assert await s.use_reset(token) == u.user_id
        assert await s.use_reset(token) is None
        assert await s.use_reset(await s.add_reset(u.user_id, -1)) is None
        mid = await s.add_mail("password_reset", u.email, "subject", "body")
        pending = await s.pending_mail()
        assert [m["message_id"] for m in pending] == [mid]
        assert await s.mark_sent(mid) and not await s.mark_sent(mid)
        assert await s.pending_mail() == []

    run(store_args, body)


def test_totp_steps_are_used_once(store_args: tuple[Path, str | None]) -> None:
    async def body(s: IdentityStore) -> None:
        u = await s.create_user("d@example.com", "hash", None)
        await s.set_totp_pending(u.user_id, "SECRET")
        await s.confirm_totp(u.user_id, 100)
        v = await s.user(u.user_id)
        assert v is not None and v.totp_secret == "SECRET" and v.totp_pending is None
        assert not await s.use_totp_step(u.user_id, 100)
        assert await s.use_totp_step(u.user_id, 101)
        assert not await s.use_totp_step(u.user_id, 101)

    run(store_args, body)


def test_attempts_recorded_and_pruned(store_args: tuple[Path, str | None]) -> None:
    async def body(s: IdentityStore) -> None:
        for i in range(5):
            await s.record_attempt("e@example.com", f"10.0.0.{i}", "bad_password")
        assert len(await s.attempts("e@example.com")) == 5
        await s.prune_attempts(keep=2)
        assert len(await s.attempts("e@example.com")) <= 2

    run(store_args, body)


def test_sqlite_file_is_private(tmp_path: Path) -> None:
    async def go() -> None:
        store = await open_store(tmp_path / "data")
        await store.create_user("f@example.com", "hash", None)
        await store.close()

    asyncio.run(go())
    db = tmp_path / "data" / "backoffice" / "identity.sqlite3"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
