"""Users and sessions over HTTP against a real gateway (real journal, real sockets), with the
identity store in SQLite (the embedded default) and in a real PostgreSQL database made for
the test. Here: sign-up makes a journaled trading account, login,
TOTP, refresh rotation and reuse detection, logout, lockout and the per-address throttle,
password reset through the outbox, and the sealed TOTP seed.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from backoffice import errors
from backoffice.secretbox import SealedSecretError, SecretBox
from backoffice.throttle import IpThrottle
from tests.backoffice_http import PASSWORD, api, bo, code, signup_login
from tests.backoffice_support import BACKENDS, backoffice_server
from tests.gateway_support import ServerThread

server = pytest.fixture(params=BACKENDS)(backoffice_server)


def test_signup_login_refresh_rotation_reuse_logout(server: ServerThread) -> None:
    accounts_before = set(server.gw.store.accounts)
    status, _, user = api(
        server, "POST", "/api/v1/auth/signup", {"email": "Alice@Example.com ", "password": PASSWORD}
    )
    assert status == 201 and user["email"] == "alice@example.com"
    # the trading account came through the journaled CreateAccount path
    assert set(server.gw.store.accounts) - accounts_before == {user["account_id"]}
    assert code(
        api(
            server,
            "POST",
            "/api/v1/auth/signup",
            {"email": "alice@example.com", "password": PASSWORD},
        )
    ) == (409, errors.EMAIL_TAKEN)
    assert code(
        api(
            server,
            "POST",
            "/api/v1/auth/login",
            {"email": "alice@example.com", "password": "wrong password!"},
        )
    ) == (401, errors.INVALID_CREDENTIALS)
    assert code(
        api(
            server,
            "POST",
            "/api/v1/auth/login",
            {"email": "nobody@example.com", "password": PASSWORD},
        )
    ) == (401, errors.INVALID_CREDENTIALS)
    status, _, t1 = api(
        server, "POST", "/api/v1/auth/login", {"email": "alice@example.com", "password": PASSWORD}
    )
    assert status == 200 and t1["token_type"] == "Bearer" and t1["expires_in"] == 300
    status, _, me = api(server, "GET", "/api/v1/me", token=t1["access_token"])
    assert status == 200 and me["user_id"] == user["user_id"] and not me["totp_enabled"]
    assert code(api(server, "GET", "/api/v1/me")) == (401, errors.UNAUTHENTICATED)
    assert code(api(server, "GET", "/api/v1/me", token=t1["access_token"] + "x")) == (
        401,
        errors.UNAUTHENTICATED,
    )

    status, _, t2 = api(
        server, "POST", "/api/v1/auth/refresh", {"refresh_token": t1["refresh_token"]}
    )
    assert status == 200 and t2["refresh_token"] != t1["refresh_token"]
    assert api(server, "GET", "/api/v1/me", token=t2["access_token"])[0] == 200
    # the spent token comes back: a copy exists, the whole session is revoked
    assert code(
        api(server, "POST", "/api/v1/auth/refresh", {"refresh_token": t1["refresh_token"]})
    ) == (401, errors.REFRESH_TOKEN_REUSED)
    assert code(
        api(server, "POST", "/api/v1/auth/refresh", {"refresh_token": t2["refresh_token"]})
    ) == (401, errors.INVALID_REFRESH_TOKEN)
    assert code(api(server, "GET", "/api/v1/me", token=t2["access_token"])) == (
        401,
        errors.UNAUTHENTICATED,
    )

    # logout ends this session only; {"all": true} ends every one
    _, _, a = api(
        server, "POST", "/api/v1/auth/login", {"email": "alice@example.com", "password": PASSWORD}
    )
    _, _, b = api(
        server, "POST", "/api/v1/auth/login", {"email": "alice@example.com", "password": PASSWORD}
    )
    assert api(server, "POST", "/api/v1/auth/logout", {}, token=a["access_token"])[0] == 200
    assert code(api(server, "GET", "/api/v1/me", token=a["access_token"])) == (
        401,
        errors.UNAUTHENTICATED,
    )
    assert api(server, "GET", "/api/v1/me", token=b["access_token"])[0] == 200
    assert (
        api(server, "POST", "/api/v1/auth/logout", {"all": True}, token=b["access_token"])[0] == 200
    )
    assert code(
        api(server, "POST", "/api/v1/auth/refresh", {"refresh_token": b["refresh_token"]})
    ) == (401, errors.INVALID_REFRESH_TOKEN)


def test_totp_enrolment_and_login(server: ServerThread) -> None:
    s = signup_login(server, "totp@example.com")
    token = s["access_token"]
    assert code(
        api(server, "POST", "/api/v1/auth/totp/confirm", {"code": "123456"}, token=token)
    ) == (409, errors.TOTP_NOT_PENDING)
    status, _, enrol = api(server, "POST", "/api/v1/auth/totp/enroll", token=token)
    assert status == 200 and enrol["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrol["secret"])
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    assert code(api(server, "POST", "/api/v1/auth/totp/confirm", {"code": wrong}, token=token)) == (
        400,
        errors.INVALID_TOTP,
    )
    assert (
        api(server, "POST", "/api/v1/auth/totp/confirm", {"code": totp.now()}, token=token)[0]
        == 200
    )
    assert code(api(server, "POST", "/api/v1/auth/totp/enroll", token=token)) == (
        409,
        errors.TOTP_ALREADY_ENABLED,
    )
    creds = {"email": "totp@example.com", "password": PASSWORD}
    assert code(api(server, "POST", "/api/v1/auth/login", creds)) == (401, errors.TOTP_REQUIRED)
    assert code(api(server, "POST", "/api/v1/auth/login", {**creds, "totp": wrong})) == (
        401,
        errors.INVALID_TOTP,
    )
    # the confirming code's step is spent: the next step's code (within the window) logs in
    nxt = totp.at(time.time() + totp.interval)
    status, _, tokens = api(server, "POST", "/api/v1/auth/login", {**creds, "totp": nxt})
    assert status == 200, tokens
    assert code(api(server, "POST", "/api/v1/auth/login", {**creds, "totp": nxt})) == (
        401,
        errors.INVALID_TOTP,
    )  # a code is good once
    _, _, me = api(server, "GET", "/api/v1/me", token=tokens["access_token"])
    assert me["totp_enabled"] is True
    # the seed is sealed at rest under the master key: the store alone does not give it away
    stored = server.call(bo(server).store.user_by_email("totp@example.com"))
    assert stored is not None and stored.totp_secret is not None
    assert stored.totp_secret.startswith("v1:") and enrol["secret"] not in stored.totp_secret


def test_lockout_per_account_and_throttle_per_address(server: ServerThread) -> None:
    signup_login(server, "lock@example.com")
    signup_login(server, "other@example.com")
    bad = {"email": "lock@example.com", "password": "not the password"}
    answers = [code(api(server, "POST", "/api/v1/auth/login", bad)) for _ in range(5)]
    assert answers == [(401, errors.INVALID_CREDENTIALS)] * 4 + [(429, errors.ACCOUNT_LOCKED)]
    status, headers, body = api(
        server, "POST", "/api/v1/auth/login", {"email": "lock@example.com", "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (429, errors.ACCOUNT_LOCKED)
    assert 1 <= int(headers["Retry-After"]) <= 15 * 60 + 1
    # another user is not locked by it
    assert (
        api(
            server,
            "POST",
            "/api/v1/auth/login",
            {"email": "other@example.com", "password": PASSWORD},
        )[0]
        == 200
    )

    # one address spraying many accounts: the per-address throttle (made small here)
    bo(server).auth.throttle = IpThrottle(max_failures=3, window_s=60)
    for i in range(3):
        assert code(
            api(
                server,
                "POST",
                "/api/v1/auth/login",
                {"email": f"spray{i}@example.com", "password": PASSWORD},
            )
        ) == (401, errors.INVALID_CREDENTIALS)
    status, headers, body = api(
        server, "POST", "/api/v1/auth/login", {"email": "other@example.com", "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (429, errors.TOO_MANY_ATTEMPTS)
    assert int(headers["Retry-After"]) >= 1
    attempts = server.call(bo(server).store.attempts("lock@example.com"))
    assert [a["outcome"] for a in attempts] == ["ok"] + ["bad_password"] * 5 + ["locked"]


def test_ip_throttle_memory_is_bounded() -> None:
    t = IpThrottle(max_failures=2, window_s=10, max_addresses=100)
    for i in range(1_000):
        t.note(f"10.0.{i // 256}.{i % 256}", now=1.0)
    assert len(t) == 100
    t.note("192.0.2.1", now=1.0)
    t.note("192.0.2.1", now=2.0)
    assert t.retry_after_s("192.0.2.1", now=3.0) == pytest.approx(8.0)
    assert t.retry_after_s("192.0.2.1", now=11.5) == 0.0  # the first failure aged out


def test_password_reset_through_the_outbox(server: ServerThread) -> None:
    s = signup_login(server, "reset@example.com")
    store = bo(server).store
    unknown = api(server, "POST", "/api/v1/auth/password/forgot", {"email": "unknown@example.com"})
    known = api(server, "POST", "/api/v1/auth/password/forgot", {"email": "reset@example.com"})
    assert (unknown[0], unknown[2]) == (known[0], known[2]) == (202, {"status": "accepted"})
    mails = server.call(store.pending_mail())
    assert [m["recipient"] for m in mails] == ["reset@example.com"]
    token = re.search(r"\n\n(\S+)\n\n", mails[0]["body"]).group(1)  # type: ignore[union-attr]
    assert code(
        api(server, "POST", "/api/v1/auth/password/reset", {"token": token, "password": "short"})
    ) == (400, errors.WEAK_PASSWORD)
    new_password = "a whole new password"
    assert (
        api(
            server,
            "POST",
            "/api/v1/auth/password/reset",
            {"token": token, "password": new_password},
        )[0]
        == 200
    )
    assert code(
        api(
            server,
            "POST",
            "/api/v1/auth/password/reset",
            {"token": token, "password": "yet another password"},
        )
    ) == (400, errors.INVALID_RESET_TOKEN)
    # every session of the user ended; the old password no longer works
    assert code(
        api(server, "POST", "/api/v1/auth/refresh", {"refresh_token": s["refresh_token"]})
    ) == (401, errors.INVALID_REFRESH_TOKEN)
    assert code(
        api(
            server,
            "POST",
            "/api/v1/auth/login",
            {"email": "reset@example.com", "password": PASSWORD},
        )
    ) == (401, errors.INVALID_CREDENTIALS)
    assert (
        api(
            server,
            "POST",
            "/api/v1/auth/login",
            {"email": "reset@example.com", "password": new_password},
        )[0]
        == 200
    )


def test_signups_per_address_are_bounded(sqlite_server: ServerThread) -> None:
    srv = sqlite_server
    bo(srv).auth.signups = IpThrottle(max_failures=2, window_s=60)
    signup_login(srv, "s1@example.com")
    signup_login(srv, "s2@example.com")
    seq_hash = srv.seq_and_hash()
    status, headers, body = api(
        srv, "POST", "/api/v1/auth/signup", {"email": "s3@example.com", "password": PASSWORD}
    )
    assert (status, body["error"]["code"]) == (429, errors.TOO_MANY_SIGNUPS)
    assert int(headers["Retry-After"]) >= 1
    assert srv.seq_and_hash() == seq_hash  # no account was journaled
    assert code(
        api(srv, "POST", "/api/v1/auth/login", {"email": "s3@example.com", "password": PASSWORD})
    ) == (401, errors.INVALID_CREDENTIALS)


def test_sealed_totp_seed_opens_only_for_its_owner_and_key() -> None:
    box = SecretBox(b"k" * 32)
    sealed = box.seal("JBSWY3DPEHPK3PXP", "user-a")
    assert box.open(sealed, "user-a") == "JBSWY3DPEHPK3PXP"
    assert sealed != box.seal("JBSWY3DPEHPK3PXP", "user-a")  # a fresh nonce each time
    for bad_box, owner, value in [
        (box, "user-b", sealed),
        (SecretBox(b"j" * 32), "user-a", sealed),
        (box, "user-a", sealed[:-4] + "AAAA"),
        (box, "user-a", "JBSWY3DPEHPK3PXP"),
    ]:
        with pytest.raises(SealedSecretError):
            bad_box.open(value, owner)


def test_totp_codes_are_ascii_digits(sqlite_server: ServerThread) -> None:
    """A six-character "code" of Unicode digits (``²``, ``٣``, full-width) is a wrong code, at
    confirmation and at login; ``str.isdigit`` let it through to `hmac.compare_digest`, which
    raised TypeError: a 500 before (at login, after the password) any TOTP check."""
    s = signup_login(sqlite_server, "digits@example.com")
    token = s["access_token"]
    status, _, enrol = api(sqlite_server, "POST", "/api/v1/auth/totp/enroll", token=token)
    assert status == 200
    bad_codes = ("²²²²²²", "٣٣٣٣٣٣", "１２３４５６", "12345\n")
    for bad in bad_codes:
        answer = api(sqlite_server, "POST", "/api/v1/auth/totp/confirm", {"code": bad}, token=token)
        assert code(answer) == (400, errors.INVALID_TOTP), (bad, answer)
    totp = pyotp.TOTP(enrol["secret"])
    assert (
        api(sqlite_server, "POST", "/api/v1/auth/totp/confirm", {"code": totp.now()}, token=token)[
            0
        ]
        == 200
    )
    creds = {"email": "digits@example.com", "password": PASSWORD}
    for bad in bad_codes[:3]:
        answer = api(sqlite_server, "POST", "/api/v1/auth/login", {**creds, "totp": bad})
        assert code(answer) == (401, errors.INVALID_TOTP), (bad, answer)
    assert sqlite_server.running.server_log is not None
    assert sqlite_server.running.server_log.failed == 0
