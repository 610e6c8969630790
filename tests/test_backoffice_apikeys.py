"""A user's own API keys through ``/api/v1/me/api-keys`` on a real gateway: made in the
gateway's key store (signed requests work with them), IP allow-list enforced on REST and the
WS API, listed, revoked (then refused), and never someone else's."""

from __future__ import annotations

import json
import time

import pyotp
import pytest
from websockets.sync.client import connect

from backoffice import errors
from gateway.client import Credentials
from tests.backoffice_http import PASSWORD, api, bo, code, signup_login
from tests.backoffice_support import BACKENDS, backoffice_server
from tests.gateway_support import ServerThread, http, signed_query

server = pytest.fixture(params=BACKENDS)(backoffice_server)


def account_status(srv: ServerThread, creds: Credentials) -> int:
    status, _, _ = http(
        "GET",
        srv.http + "/api/v3/account",
        query=signed_query(creds, {}),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status


def ws_account(srv: ServerThread, creds: Credentials) -> int:
    params = {"apiKey": creds.api_key, "timestamp": time.time_ns() // 1_000_000}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params)).encode()
    params["signature"] = creds.sign(payload)
    with connect(srv.ws_api) as ws:
        ws.send(json.dumps({"id": 1, "method": "account.status", "params": params}))
        return int(json.loads(ws.recv(timeout=10))["status"])


def test_user_api_keys(server: ServerThread) -> None:
    alice = signup_login(server, "keys@example.com")
    token = alice["access_token"]
    status, _, k1 = api(
        server,
        "POST",
        "/api/v1/me/api-keys",
        {"permissions": ["read", "trade"], "ip_allow": ["127.0.0.1"]},
        token=token,
    )
    assert status == 201 and k1["ip_allow"] == ["127.0.0.1/32"] and k1["kind"] == "hmac"
    ok = Credentials.hmac(k1["api_key"], k1["secret"])
    assert account_status(server, ok) == 200
    assert ws_account(server, ok) == 200
    # a key allowed only from elsewhere is refused from here, on REST and on the WS API
    _, _, k2 = api(
        server,
        "POST",
        "/api/v1/me/api-keys",
        {"permissions": ["read"], "ip_allow": ["10.0.0.0/8", "2001:db8::/32"]},
        token=token,
    )
    far = Credentials.hmac(k2["api_key"], k2["secret"])
    assert account_status(server, far) == 401
    assert ws_account(server, far) == 401
    status, _, listing = api(server, "GET", "/api/v1/me/api-keys", token=token)
    assert status == 200
    assert [(e["api_key"], e["ip_allow"], e["revoked_ms"]) for e in listing] == [
        (k1["api_key"], ["127.0.0.1/32"], None),
        (k2["api_key"], ["10.0.0.0/8", "2001:db8::/32"], None),
    ]
    assert all("secret" not in e and "secret_enc" not in e for e in listing)

    # revoke: refused at once; another user cannot see or revoke alice's keys
    bob = signup_login(server, "bob@example.com")
    assert code(
        api(server, "DELETE", f"/api/v1/me/api-keys/{k1['api_key']}", token=bob["access_token"])
    ) == (404, errors.API_KEY_NOT_FOUND)
    assert api(server, "GET", "/api/v1/me/api-keys", token=bob["access_token"])[2] == []
    assert account_status(server, ok) == 200
    assert api(server, "DELETE", f"/api/v1/me/api-keys/{k1['api_key']}", token=token)[0] == 200
    assert account_status(server, ok) == 401
    assert code(api(server, "DELETE", f"/api/v1/me/api-keys/{k1['api_key']}", token=token)) == (
        404,
        errors.API_KEY_NOT_FOUND,
    )
    listing = api(server, "GET", "/api/v1/me/api-keys", token=token)[2]
    assert listing[0]["revoked_ms"] is not None and listing[1]["revoked_ms"] is None
    owned = server.call(bo(server).store.api_keys(alice["user_id"]))
    assert set(owned) == {k1["api_key"], k2["api_key"]}

    # refusals
    for body, expected in [
        ({"permissions": ["read", "withdraw"]}, errors.INVALID_IP_ALLOW),
        ({"permissions": ["admin"]}, errors.INVALID_PERMISSION),
        ({"permissions": []}, errors.INVALID_PERMISSION),
        ({"permissions": "read"}, errors.INVALID_PERMISSION),
        ({"ip_allow": ["not-an-ip"]}, errors.INVALID_IP_ALLOW),
        ({"ip_allow": "127.0.0.1"}, errors.INVALID_IP_ALLOW),
        ({"ip_allow": ["1.2.3.4"] * 40}, errors.INVALID_IP_ALLOW),
        ({"ed25519_public_pem": "-----BEGIN nonsense"}, errors.BAD_REQUEST),
        ({"ed25519_public_pem": 7}, errors.BAD_REQUEST),
    ]:
        assert code(api(server, "POST", "/api/v1/me/api-keys", body, token=token)) == (
            400,
            expected,
        ), body
    # a key that may withdraw needs TOTP enabled and a fresh code: a stolen access token
    # alone cannot make one
    wd_body = {"permissions": ["read", "withdraw"], "ip_allow": ["127.0.0.1"]}
    assert code(api(server, "POST", "/api/v1/me/api-keys", wd_body, token=token)) == (
        403,
        errors.TOTP_REQUIRED,
    )
    enrol = api(server, "POST", "/api/v1/auth/totp/enroll", token=token)[2]
    totp = pyotp.TOTP(enrol["secret"])
    assert api(server, "POST", "/api/v1/auth/totp/confirm", {"code": totp.now()}, token=token)[0]
    keys_before = len(api(server, "GET", "/api/v1/me/api-keys", token=token)[2])
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    assert code(api(server, "POST", "/api/v1/me/api-keys", wd_body, token=token)) == (
        400,
        errors.TOTP_REQUIRED,
    )
    for bad in (wrong, "²²²²²²", 123456):  # each counts towards the lockout (5)
        assert code(
            api(server, "POST", "/api/v1/me/api-keys", {**wd_body, "totp": bad}, token=token)
        ) == (400, errors.INVALID_TOTP), bad
    assert len(api(server, "GET", "/api/v1/me/api-keys", token=token)[2]) == keys_before
    fresh = totp.at(time.time() + totp.interval)  # confirm used the current step
    status, _, wd = api(
        server, "POST", "/api/v1/me/api-keys", {**wd_body, "totp": fresh}, token=token
    )
    assert status == 201 and wd["permissions"] == ["read", "withdraw"]
    assert code(
        api(server, "POST", "/api/v1/me/api-keys", {**wd_body, "totp": fresh}, token=token)
    ) == (400, errors.INVALID_TOTP)  # a code is accepted once
    # the operator's rotation (gateway/keys.py) keeps the allow-list
    rotated = server.gw.keys.rotate(k2["api_key"])
    new = server.gw.keys.get(rotated.api_key)
    assert new is not None and [str(n) for n in new.ip_allow] == ["10.0.0.0/8", "2001:db8::/32"]
    assert account_status(server, Credentials.hmac(rotated.api_key, rotated.secret)) == 401


def test_key_cap_per_user(server: ServerThread) -> None:
    from backoffice.apikeys import MAX_KEYS_PER_USER

    token = signup_login(server, "cap@example.com")["access_token"]
    for _ in range(MAX_KEYS_PER_USER):
        assert api(server, "POST", "/api/v1/me/api-keys", {}, token=token)[0] == 201
    assert code(api(server, "POST", "/api/v1/me/api-keys", {}, token=token)) == (
        409,
        errors.TOO_MANY_API_KEYS,
    )


def test_session_keys_end_with_their_session(server: ServerThread) -> None:
    """The trading page's keys (``"session": true``): one per login session, revoked when it
    logs out (its own; every one with ``all``), when it goes idle (the sweep), and replaced
    when the same session asks again; keys made without ``session`` are untouched."""
    from backoffice.sessionkeys import IDLE_MS
    from backoffice.store import now_ms

    def session_key(token: str) -> Credentials:
        status, _, k = api(
            server,
            "POST",
            "/api/v1/me/api-keys",
            {"permissions": ["read", "trade"], "session": True},
            token=token,
        )
        assert status == 201 and k["session"] is True, k
        return Credentials.hmac(k["api_key"], k["secret"])

    def login() -> dict[str, str]:
        body = {"email": "tabs@example.com", "password": PASSWORD}
        status, _, tokens = api(server, "POST", "/api/v1/auth/login", body)
        assert status == 200, tokens
        return tokens  # type: ignore[no-any-return]

    tab_a = signup_login(server, "tabs@example.com")
    a1 = session_key(tab_a["access_token"])
    assert account_status(server, a1) == 200
    a2 = session_key(tab_a["access_token"])  # the same session again: the first key goes
    assert (account_status(server, a1), account_status(server, a2)) == (401, 200)
    tab_b = login()
    b = session_key(tab_b["access_token"])
    status, _, plain = api(server, "POST", "/api/v1/me/api-keys", {}, token=tab_b["access_token"])
    assert status == 201 and plain["session"] is False
    kept = Credentials.hmac(plain["api_key"], plain["secret"])

    status, _, out = api(server, "POST", "/api/v1/auth/logout", {}, token=tab_a["access_token"])
    assert status == 200 and out["revoked_session_keys"] == 1, out
    assert (account_status(server, a2), account_status(server, b)) == (401, 200)

    # idle: tab B refreshes its session (the page does every 4 minutes), so a sweep just
    # inside the idle limit keeps its key and one past it (a closed tab) revokes it
    status, _, tab_b = api(
        server, "POST", "/api/v1/auth/refresh", {"refresh_token": tab_b["refresh_token"]}
    )
    assert status == 200
    keys = bo(server).session_keys
    assert keys is not None
    assert server.call(keys.sweep(now_ms() + IDLE_MS - 60_000)) == 0
    assert account_status(server, b) == 200
    assert server.call(keys.sweep(now_ms() + IDLE_MS + 1)) == 1
    assert (account_status(server, b), account_status(server, kept)) == (401, 200)

    tab_c, tab_d = login(), login()
    c, d = session_key(tab_c["access_token"]), session_key(tab_d["access_token"])
    body = {"all": True}
    status, _, out = api(server, "POST", "/api/v1/auth/logout", body, token=tab_c["access_token"])
    assert status == 200 and out["revoked_session_keys"] == 2, out
    assert [account_status(server, k) for k in (c, d, kept)] == [401, 401, 200]

    token = login()["access_token"]
    bad = {"permissions": ["read"], "session": "yes"}
    assert code(api(server, "POST", "/api/v1/me/api-keys", bad, token=token)) == (
        400,
        errors.BAD_REQUEST,
    )
