"""The operator API (``/ops/v1``: bearer tokens, JSON bodies, ``{code, msg}`` with string codes)
matches its OpenAPI description, checked with schemathesis against a real server with a staff
member of every role: documented examples succeed, documented errors are given, generated
requests get documented answers.

``KOOTABASE_OPENAPI_EXAMPLES`` sets the examples per operation and mode (default 20).
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
import requests
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
)

from backoffice.passwords import Passwords
from backoffice.roles import Role
from backoffice.routes import BACKOFFICE_KEY
from gateway.errors import MALFORMED_REQUEST
from tests.gateway_support import ServerThread
from tests.openapi_support import (
    CHECKS,
    EXAMPLES,
    api_operations,
    documented_errors,
    openapi_schema,
    openapi_server,
    openapi_spec,
)

# ---- the operator API (/ops/v1): bearer tokens, JSON bodies, {code, msg} with string codes ----

OPS_PASSWORD = "correct horse battery staple"

server = pytest.fixture(scope="module")(openapi_server)
spec = pytest.fixture(scope="module")(openapi_spec)
schema = pytest.fixture(scope="module")(openapi_schema)


def _is_ops(op: Any) -> bool:
    return op.path.startswith("/ops/")


def _ops_operations(schema: Any) -> list[Any]:
    """The operator operations this module's server can answer: those that need custody or AML
    rules (``x-requires``, `backoffice.opsmoneydoc`) are held to their description by
    tests/test_foureyes.py, on a server that has both."""
    ops = [
        op
        for op in api_operations(schema, operator=True)
        if _is_ops(op) and "x-requires" not in op.definition.raw
    ]
    assert len(ops) >= 12, [op.label for op in ops]
    return ops


class Staff:
    """One staff member per role in the server's identity store, each logged in once."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.bo = server.running.runner.app[BACKOFFICE_KEY]
        self.bo.staff.passwords = Passwords(  # cheaper argon2id: the rules do not depend on it
            PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1)
        )
        self.tokens = {role.value: self.login(*self.make(role.value, role)) for role in Role}

    def make(self, name: str, role: Role) -> tuple[str, str]:
        email = f"{name}@openapi.example.com"
        _, secret, _ = self.server.call(self.bo.staff.create(email, OPS_PASSWORD, role))
        return email, secret

    def login(self, email: str, secret: str) -> str:
        body = {"email": email, "password": OPS_PASSWORD, "totp": pyotp.TOTP(secret).now()}
        resp = requests.post(f"{self.server.http}/ops/v1/auth/login", json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="module")
def staff(server: ServerThread) -> Staff:
    return Staff(server)


def _ops_send(
    server: ServerThread,
    op: Any,
    headers: dict[str, str] | None = None,
    body: Any = None,
    path: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
) -> requests.Response:
    url = server.http + op.path.format(**(path or {}))
    return requests.request(
        op.method.upper(), url, json=body, params=query, headers=headers or {}, timeout=30
    )


def _ops_path(op: Any, server: ServerThread, *, unknown: bool = False) -> dict[str, Any]:
    if "{account_id}" in op.path:
        return {"account_id": 999_999 if unknown else server.accounts.maker_id}
    if "{symbol}" in op.path:
        return {"symbol": "NOPE" if unknown else "ETHUSDT"}
    return {}


def _ops_example(op: Any) -> Any:
    raw = op.definition.raw
    if "requestBody" not in raw:
        return None
    content = raw["requestBody"]["content"]["application/json"]
    return content.get("example", {})


def test_operator_examples_succeed(server: ServerThread, schema: Any, staff: Staff) -> None:
    """Every operator operation answers 200 with the documented answer to an admin (login to
    valid credentials, logout for a session of its own)."""
    for op in _ops_operations(schema):
        if op.label == "POST /ops/v1/auth/login":
            email, secret = staff.make("examples", Role.SUPPORT)
            body = {"email": email, "password": OPS_PASSWORD, "totp": pyotp.TOTP(secret).now()}
            response = _ops_send(server, op, body=body)
        elif op.label == "POST /ops/v1/auth/logout":
            token = staff.login(*staff.make("logout", Role.AUDITOR))
            response = _ops_send(server, op, {"Authorization": f"Bearer {token}"})
        else:
            response = _ops_send(
                server, op, staff.header("admin"), _ops_example(op), _ops_path(op, server)
            )
        assert response.status_code == 200, (op.label, response.text)
        op.validate_response(response)
    unfreeze = f"{server.http}/ops/v1/accounts/{server.accounts.maker_id}/unfreeze"
    assert requests.post(unfreeze, json={}, headers=staff.header("admin")).status_code == 200


_OPS_BAD: dict[str, dict[str, Any]] = {
    "POST /ops/v1/auth/login": {"body": []},
    "GET /ops/v1/accounts": {"query": {"limit": 0}},
    "GET /ops/v1/accounts/{account_id}": {"path": {"account_id": "x1"}},
    "POST /ops/v1/accounts/{account_id}/freeze": {"body": {"reason": "no such field"}},
    "POST /ops/v1/accounts/{account_id}/unfreeze": {"body": {"reason": "no such field"}},
    "POST /ops/v1/accounts/{account_id}/tier": {"body": {"tier": 9}},
    "POST /ops/v1/markets/{symbol}/state": {"body": {"state": "SHUT"}},
    "GET /ops/v1/audit": {"query": {"limit": 0}},
    "POST /ops/v1/tier-limits": {"body": {"tier": 9, "asset": "USDT", "max_order_notional": "1"}},
}
"""A request each operator operation must refuse with 400 (for one that documents it)."""
_OPS_UNKNOWN_BODY: dict[str, Any] = {
    "POST /ops/v1/tier-limits": {"tier": 0, "asset": "NOPE", "max_order_notional": "1"},
}
"""The body naming an unknown thing (404) of an operation whose path names nothing."""


def test_operator_documented_errors_are_given(
    server: ServerThread, schema: Any, staff: Staff
) -> None:
    """Every error status an operator operation documents (503 excepted) is provoked, each
    answered with ``{code, msg}``: 400 a bad parameter, 401 no token (login: a wrong password),
    403 a role the action does not name (login: a staff member without a TOTP seed), 404 an
    unknown account or market, 429 (login) a staff member locked after failed logins. Every
    operation also documents the HTTP parser's 400 (an overlong request line), which is answered
    before routing with the venue-wide integer code."""
    admin = staff.header("admin")
    given: dict[str, set[int]] = {}
    for op in _ops_operations(schema):
        documented = documented_errors(op) - {503}
        login = op.label == "POST /ops/v1/auth/login"
        answers: list[requests.Response] = []
        if 400 in documented and op.label in _OPS_BAD:
            bad = _OPS_BAD[op.label]
            path = bad.get("path", _ops_path(op, server))
            answers.append(_ops_send(server, op, admin, bad.get("body"), path, bad.get("query")))
        overlong = {"pad": "x" * 9000}  # a request line the HTTP parser refuses before routing
        unparsed = _ops_send(server, op, admin, None, _ops_path(op, server), overlong)
        assert unparsed.status_code == 400, (op.label, unparsed.text)
        assert unparsed.json()["code"] == MALFORMED_REQUEST, unparsed.text
        op.validate_response(unparsed)
        given.setdefault(op.label, set()).add(400)
        if 401 in documented:
            if login:
                body = {"email": "admin@openapi.example.com", "password": "wrong password"}
                answers.append(_ops_send(server, op, body={**body, "totp": "123456"}))
            else:
                answers.append(_ops_send(server, op, path=_ops_path(op, server)))
        if 403 in documented:
            if login:
                email, _ = staff.make("noseed", Role.FINANCE)
                sql = "UPDATE bo_staff SET totp_secret = NULL WHERE email = $1"
                server.call(staff.bo.store.db.execute(sql, email))
                body = {"email": email, "password": OPS_PASSWORD, "totp": "123456"}
                answers.append(_ops_send(server, op, body=body))
            else:
                allowed = set(op.definition.raw["x-roles"])
                other = next(r.value for r in Role if r.value not in allowed)
                answers.append(
                    _ops_send(
                        server, op, staff.header(other), _ops_example(op), _ops_path(op, server)
                    )
                )
        if 404 in documented:
            path = _ops_path(op, server, unknown=True)
            body = _OPS_UNKNOWN_BODY.get(op.label, _ops_example(op))
            answers.append(_ops_send(server, op, admin, body, path))
        if 429 in documented:
            email, _ = staff.make("locked", Role.FINANCE)
            body = {"email": email, "password": "wrong password", "totp": "123456"}
            for _ in range(10):
                answer = _ops_send(server, op, body=body)
                if answer.status_code == 429:
                    break
            answers.append(answer)
        for response in answers:
            assert response.status_code in documented, (op.label, response.text)
            body = response.json()
            assert set(body) == {"code", "msg"} and isinstance(body["code"], str), body
            op.validate_response(response)
            given.setdefault(op.label, set()).add(response.status_code)
        assert given.get(op.label, set()) == documented, op.label


def _ops_fuzz(
    server: ServerThread,
    op: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    seen: dict[str, set[int]],
) -> None:
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @settings(
        max_examples=max(1, EXAMPLES // 2),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        meta = case.meta
        negative_header = meta is not None and any(
            loc.value == "header" and info.mode is GenerationMode.NEGATIVE
            for loc, info in meta.components.items()
        )  # a broken Authorization header is sent as generated, not repaired
        auth = {} if negative_header else headers
        response = case.call(base_url=server.http, headers=auth, timeout=30)
        seen.setdefault(op.label, set()).add(response.status_code)
        case.validate_response(response, checks=checks)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_operator_api_conforms(
    server: ServerThread, schema: Any, staff: Staff, mode: GenerationMode
) -> None:
    """Generated requests to every operator operation with an admin's token (last in this
    module: they freeze accounts and halt markets): every answer documented, never a 5xx,
    and in negative mode refused."""
    admin = staff.header("admin")
    seen: dict[str, set[int]] = {}
    for op in _ops_operations(schema):
        if mode is GenerationMode.NEGATIVE and not op.definition.raw.keys() & {
            "parameters",
            "requestBody",
        }:
            continue

        headers = admin
        if op.label == "POST /ops/v1/auth/logout":  # a session of its own to end
            token = staff.login(*staff.make(f"fuzz-logout-{mode.value}", Role.SUPPORT))
            headers = {"Authorization": f"Bearer {token}"}
        _ops_fuzz(server, op, mode, headers, seen)
    if mode is GenerationMode.POSITIVE:  # the admin's session lasted through it all
        assert seen.get("GET /ops/v1/staff") == {200}, seen
    assert all(code < 500 for codes in seen.values() for code in codes), seen
