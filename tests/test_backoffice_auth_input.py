"""Users and sessions over HTTP against a real gateway (real journal, real sockets), with the
identity store in SQLite (the embedded default) and in a real PostgreSQL database made for
the test. Here: bad input (bodies, lone surrogates, bearer tokens of any
bytes, keys of unknown algorithms) answered with stable codes, changing nothing.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from backoffice import errors
from tests.backoffice_http import PASSWORD, api, code, signup_login
from tests.gateway_support import ServerThread

BAD_BODIES: list[bytes] = [
    b"not json",
    b"[1, 2]",
    b'"text"',
    b"{" * 40 + b"}" * 40,
    b'{"email": 5, "password": []}',
    b'{"email": "x"}',
    b'{"email": "a@b.c", "password": "' + b"p" * 20_000 + b'"}',
    b"\xff\xfe",
    b'{"refresh_token": 12}',
    b'{"token": null}',
]
POSTS = [
    "/api/v1/auth/signup",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/password/forgot",
    "/api/v1/auth/password/reset",
]
KNOWN = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}


def test_bad_input_gets_stable_errors_and_changes_nothing(sqlite_server: ServerThread) -> None:
    srv = sqlite_server
    seq_hash = srv.seq_and_hash()
    for path in POSTS:
        for raw in BAD_BODIES:
            status, _, body = api(srv, "POST", path, raw=raw)
            assert 400 <= status < 500, (path, raw[:40], status, body)
            assert body["error"]["code"] in KNOWN, body
    for method, path in [
        ("GET", "/api/v1/auth/nothing"),
        ("PUT", "/api/v1/me/x"),
        ("GET", "/api/v1/auth/login"),
    ]:
        assert code(api(srv, method, path)) == (404, errors.NOT_FOUND)
    for method, path in [
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/totp/enroll"),
        ("GET", "/api/v1/me/api-keys"),
        ("POST", "/api/v1/me/api-keys"),
        ("DELETE", "/api/v1/me/api-keys/abc"),
    ]:
        assert code(api(srv, method, path, {})) == (401, errors.UNAUTHENTICATED)
    assert srv.seq_and_hash() == seq_hash  # nothing reached the engine
    assert code(
        api(srv, "POST", "/api/v1/auth/signup", {"email": "no-at-sign", "password": PASSWORD})
    ) == (400, errors.INVALID_EMAIL)
    assert code(
        api(
            srv,
            "POST",
            "/api/v1/auth/signup",
            {"email": "w@example.com", "password": "aaaaaaaaaaaa"},
        )
    ) == (400, errors.WEAK_PASSWORD)
    assert srv.seq_and_hash() == seq_hash


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/signup", '{"email":"s@example.com","password":"correct horse \\ud800 x"}'),
        ("/api/v1/auth/login", '{"email":"s@example.com","password":"correct horse \\ud800"}'),
        ("/api/v1/auth/login", '{"email":"s\\udfff@example.com","password":"correct horse"}'),
        ("/api/v1/auth/password/forgot", '{"email":"s\\ud800@example.com"}'),
        ("/api/v1/auth/password/reset", '{"token":"\\ud800","password":"correct horse battery"}'),
        ("/api/v1/auth/refresh", '{"refresh_token":"\\ud800"}'),
        ("/ops/v1/auth/login", '{"email":"s@example.com","password":"\\ud800","totp":"1"}'),
    ],
)
def test_lone_surrogates_in_a_body_are_a_400(
    sqlite_server: ServerThread, path: str, body: str
) -> None:
    """JSON may spell a lone surrogate (``"\\ud800"``); ``json.loads`` made it a ``str`` that no
    UTF-8 encoder takes, and the password hash, the e-mail lookup or the token check raised
    UnicodeEncodeError: a 500 on every pre-login route. Bodies are decoded by
    `engine.jsondepth.decode_json`, which refuses them."""
    status, _, reply = api(sqlite_server, "POST", path, raw=body.encode())
    assert status == 400, (status, reply)
    assert sqlite_server.running.server_log is not None
    assert sqlite_server.running.server_log.failed == 0


@pytest.mark.parametrize("path", ["/api/v1/me", "/ops/v1/me"])
def test_a_bearer_token_of_any_bytes_is_a_401(sqlite_server: ServerThread, path: str) -> None:
    """Header bytes that are not UTF-8 reach the handler as surrogates; PyJWT encoded the
    token and raised UnicodeEncodeError, a 500 on every bearer route."""
    for token in ("\u00ff\u00fe", "\u00e9" * 40, "a.b\u00e9.c"):
        status, _, reply = api(sqlite_server, "GET", path, token=token)
        assert status == 401, (token, status, reply)
    assert sqlite_server.running.server_log is not None
    assert sqlite_server.running.server_log.failed == 0


def _unknown_algorithm_pem() -> str:
    """A well-formed SubjectPublicKeyInfo whose algorithm is OID 1.2.3.4: `cryptography`
    raises UnsupportedAlgorithm for it, which is not a ValueError."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    der = der.replace(bytes.fromhex("06032b6570"), bytes.fromhex("06032a0304"))
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n"


def test_an_api_key_of_an_unknown_algorithm_is_a_400(sqlite_server: ServerThread) -> None:
    """A user's ``POST /api/v1/me/api-keys`` (and the operator's ``/admin/accounts``) with a
    PEM of an unknown key algorithm was a 500 (UnsupportedAlgorithm escaped the key store)."""
    s = signup_login(sqlite_server, "pem@example.com")
    pem = _unknown_algorithm_pem()
    status, _, reply = api(
        sqlite_server,
        "POST",
        "/api/v1/me/api-keys",
        {"permissions": ["read"], "ed25519_public_pem": pem},
        token=s["access_token"],
    )
    assert status == 400, (status, reply)
    sqlite_server.wait_idle()
    before = sqlite_server.state_hash()
    for body in ({"ed25519_public_pem": pem}, {"ed25519_public_pem": 5}, {"permissions": 7}):
        req = urllib.request.Request(
            sqlite_server.http + "/admin/accounts",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"X-Kootabase-Admin-Token": sqlite_server.gw.admin_token},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert refused.value.code == 400, body
    sqlite_server.wait_idle()
    assert sqlite_server.state_hash() == before, "no account journaled for a refused key"
    assert sqlite_server.running.server_log is not None
    assert sqlite_server.running.server_log.failed == 0
