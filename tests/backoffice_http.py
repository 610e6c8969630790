"""Calling the back-office user API (/api/v1/auth, /api/v1/me) of a test server over HTTP: a
request and its decoded answer, the error code of an answer, sign-up and login in one step.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from backoffice.routes import BACKOFFICE_KEY, Backoffice
from tests.gateway_support import ServerThread

PASSWORD = "correct horse battery"


def api(
    srv: ServerThread,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(srv.http + path, method=method, data=data)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def code(answer: tuple[int, dict[str, str], Any]) -> tuple[int, str]:
    status, _, body = answer
    return status, body["error"]["code"]


def signup_login(srv: ServerThread, email: str) -> dict[str, Any]:
    status, _, user = api(
        srv, "POST", "/api/v1/auth/signup", {"email": email, "password": PASSWORD}
    )
    assert status == 201, user
    status, _, tokens = api(
        srv, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD}
    )
    assert status == 200, tokens
    return {**user, **tokens}


def bo(srv: ServerThread) -> Backoffice:
    return srv.running.runner.app[BACKOFFICE_KEY]
