"""The REST API matches its OpenAPI description (``GET /openapi.json``), checked with schemathesis
against a real server (real journal, real sockets).

For every operation in the description: its
documented example must succeed (200, the documented answer shape), then schemathesis generates
positive and negative requests (signed with a funded fixture account's key when the operation
is signed) and every answer must be one the description documents, with the documented body
(errors: ``{code, msg}``), never a 5xx, and data that breaks the description must be refused.
Every error status an operation documents is provoked once (503 excepted). Every ``/api/``,
``/sapi/`` and ``/ops/`` route must be in the description; the operator API (``/ops/v1``) is
checked the same way with staff tokens. ``KOOTABASE_OPENAPI_EXAMPLES`` sets the examples per
operation and mode (default 20: the whole file runs in about a minute here).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
import requests
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from backoffice.passwords import Passwords
from backoffice.roles import Role
from backoffice.routes import BACKOFFICE_KEY
from gateway import openapi
from gateway.ratelimit import Limits
from tests.gateway_support import ServerThread

EXAMPLES = int(os.environ.get("KOOTABASE_OPENAPI_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
UNLIMITED = Limits(
    weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**9, ban_after=10**9
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("openapi"), UNLIMITED)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def spec(server: ServerThread) -> dict[str, Any]:
    resp = requests.get(f"{server.http}/openapi.json", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


@pytest.fixture(scope="module")
def schema(spec: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(spec)


class Signer:
    """Signs a generated case as a client would: every parameter in the query string (GET,
    DELETE) or the form body (POST, PUT), a fresh timestamp, the signature last."""

    def __init__(self, server: ServerThread) -> None:
        creds = server.accounts.demo  # funded, with read, trade and withdraw permissions
        assert creds.secret is not None
        self.api_key, self.secret = creds.api_key, creds.secret
        self.base = server.http

    def send(self, case: Any, *, signed: bool) -> requests.Response:
        in_body = case.method in ("POST", "PUT")
        params = case.body if in_body else case.query
        if not signed or not isinstance(params, dict) or _breaks_auth(case):
            return case.call(base_url=self.base, timeout=30)  # as generated
        params = {k: v for k, v in params.items() if k not in ("timestamp", "signature")}
        params["timestamp"] = time.time_ns() // 1_000_000
        payload = urlencode(params, doseq=True)
        sig = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        text = f"{payload}&signature={sig}"
        url = f"{self.base}{case.formatted_path}"
        headers = {"X-MBX-APIKEY": self.api_key}
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return requests.request(case.method, url, data=text, headers=headers, timeout=30)
        return requests.request(case.method, f"{url}?{text}", headers=headers, timeout=30)


def _breaks_auth(case: Any) -> bool:
    """A negative case whose invalid part is the key header or a signing parameter: sent as
    generated (signing it would repair what is meant to be broken)."""
    meta = case.meta
    if meta is None:
        return False
    negative = {
        loc.value for loc, info in meta.components.items() if info.mode is GenerationMode.NEGATIVE
    }
    if not negative:
        return False
    params = case.body if case.method in ("POST", "PUT") else case.query
    parameter = getattr(meta.phase.data, "parameter", None)
    return (
        "header" in negative
        or parameter in ("timestamp", "recvWindow", "signature")
        or not {"timestamp", "signature"} <= set(params)
    )


def _operations(schema: Any, *, operator: bool = False) -> list[Any]:
    """The dialect's operations (``operator``: the operator API's too, `backoffice.opsdoc`,
    tested at the end of this module with staff tokens)."""
    ops = [result.ok() for result in schema.get_all_operations()]
    assert ops, "the description has no operations"
    return [op for op in ops if operator or not op.path.startswith("/ops/")]


def test_every_api_route_is_described(server: ServerThread, spec: dict[str, Any]) -> None:
    app = server.running.runner.app
    assert openapi.undocumented(app, server.gw) == []
    described = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    routed = {
        (m, p) for m, p, _ in openapi.routes(app) if p.startswith(("/api/", "/sapi/", "/ops/"))
    }
    assert described == routed
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert path.startswith("/ops/") or op["x-weight"] >= 1, (method, path)
            assert "200" in op["responses"], (method, path)


def _example(op: Any) -> dict[str, Any] | None:
    """The operation's documented example; an empty request when nothing is required."""
    raw = op.definition.raw
    if "requestBody" in raw:
        content = raw["requestBody"]["content"]["application/x-www-form-urlencoded"]
        if "example" in content:
            return dict(content["example"])
        required = set(content["schema"].get("required", ()))
    else:
        params = raw.get("parameters", [])
        example = {p["name"]: p["example"] for p in params if "example" in p}
        if example:
            return example
        required = {p["name"] for p in params if p.get("required")}
    return {} if required <= {"timestamp", "signature"} else None


def test_documented_examples_succeed(server: ServerThread, schema: Any) -> None:
    """Each operation's example (or, when it requires nothing, an empty request) is answered
    200 with the documented answer; custody's operations, on a server without custody, with
    the documented -4008."""
    signer = Signer(server)
    answered = []
    for op in _operations(schema):
        example = _example(op)
        if example is None:
            continue
        if op.method.upper() in ("POST", "PUT"):
            case = op.Case(body=example, media_type="application/x-www-form-urlencoded")
        else:
            case = op.Case(query=example)
        response = signer.send(case, signed="security" in op.definition.raw)
        case.validate_response(response, checks=CHECKS)
        custody_op = op.path.startswith("/sapi/v1/capital/") and "config" not in op.path
        if custody_op and server.gw.custody is None:  # refused
            assert (response.status_code, response.json()["code"]) == (400, -4008), op.label
            continue
        assert response.status_code == 200, (op.label, response.text)
        answered.append(op.label)
    assert len(answered) >= 16, answered


def _fuzz(op: Any, mode: GenerationMode, signer: Signer, statuses: dict[str, set[int]]) -> None:
    """EXAMPLES generated requests for one operation, each answer checked."""
    signed = "security" in op.definition.raw
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = signer.send(case, signed=signed)
        statuses.setdefault(op.label, set()).add(response.status_code)
        case.validate_response(response, checks=checks)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_server_conforms(server: ServerThread, schema: Any, mode: GenerationMode) -> None:
    signer = Signer(server)
    statuses: dict[str, set[int]] = {}
    ops = _operations(schema)
    if mode is GenerationMode.NEGATIVE:  # nothing to make invalid in a request without input
        ops = [op for op in ops if op.definition.raw.keys() & {"parameters", "requestBody"}]
    for op in ops:
        _fuzz(op, mode, signer, statuses)
    assert set(statuses) == {op.label for op in ops}
    assert all(code < 500 for codes in statuses.values() for code in codes), statuses


def _documented_errors(op: Any) -> set[int]:
    return {int(s) for s in op.definition.raw["responses"] if int(s) >= 400}


def _send(signer: Signer, op: Any, params: dict[str, Any], *, signed: bool) -> requests.Response:
    if op.method.upper() in ("POST", "PUT"):
        case = op.Case(body=params, media_type="application/x-www-form-urlencoded")
    else:
        case = op.Case(query=params)
    return signer.send(case, signed=signed)


def _refused(op: Any) -> dict[str, Any]:
    """Parameters the operation must refuse with 400: a required one left out, else an
    optional one given an impossible value."""
    raw = op.definition.raw
    if "requestBody" in raw:
        schema = raw["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        names, required = list(schema["properties"]), set(schema["required"])
    else:
        names = [p["name"] for p in raw["parameters"]]
        required = {p["name"] for p in raw["parameters"] if p["required"]}
    own = [n for n in names if n not in ("timestamp", "recvWindow", "signature")]
    if required - {"timestamp", "signature"}:
        return {}
    return {(own or ["recvWindow"])[0]: "!"}  # a signed operation without its own parameters


def test_every_documented_error_status_is_given(server: ServerThread, schema: Any) -> None:
    """Each error status an operation documents (503, an acknowledgement that did not come in
    time, excepted) is provoked, and its body is the documented one. 429 and 418 come from a
    second server whose request weight limit is 0."""
    signer = Signer(server)
    place = _example(next(op for op in _operations(schema) if op.label == "POST /api/v3/order"))
    assert place is not None
    given_statuses: dict[str, set[int]] = {}
    for op in _operations(schema):
        signed = "security" in op.definition.raw
        documented = _documented_errors(op)
        responses = []
        if 400 in documented:
            responses.append(_send(signer, op, _refused(op), signed=signed))
        if 401 in documented:  # no API key at all
            responses.append(requests.request(op.method.upper(), signer.base + op.path))
        if 413 in documented:
            responses.append(
                requests.request(
                    op.method.upper(),
                    signer.base + op.path,
                    data="a=" + "x" * 70_000,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            )
        if 409 in documented:  # cancel of an unknown order fails, the new order is placed
            params = {**place, "cancelReplaceMode": "ALLOW_FAILURE", "cancelOrderId": 999_999_999}
            responses.append(_send(signer, op, params, signed=True))
        for response in responses:
            assert response.status_code in documented, (op.label, response.text)
            body = response.json()
            assert isinstance(body["code"], int) and body["code"] < 0 and body["msg"], body
            given_statuses.setdefault(op.label, set()).add(response.status_code)
    limited = ServerThread(
        server.gw.config.data_dir.parent / "limited",
        Limits(weight_per_minute=0, ban_after=10**6),
        fixture_accounts=False,
    )
    try:
        for op in _operations(schema):
            if {418, 429} <= _documented_errors(op):
                response = requests.request(op.method.upper(), limited.http + op.path)
                assert response.status_code == 429 and response.json()["code"] == -1003
                given_statuses.setdefault(op.label, set()).add(429)
    finally:
        limited.stop()
    banned = ServerThread(
        server.gw.config.data_dir.parent / "banned",
        Limits(weight_per_minute=0, ban_after=1),
        fixture_accounts=False,
    )
    try:
        requests.get(banned.http + "/api/v3/ping")  # the refusal that bans
        for op in _operations(schema):
            if {418, 429} <= _documented_errors(op):
                response = requests.request(op.method.upper(), banned.http + op.path)
                assert response.status_code == 418 and response.json()["code"] == -1003
                given_statuses.setdefault(op.label, set()).add(418)
    finally:
        banned.stop()
    for op in _operations(schema):
        assert given_statuses.get(op.label, set()) == _documented_errors(op) - {503}, op.label


# ---- the operator API (/ops/v1): bearer tokens, JSON bodies, {code, msg} with string codes ----

OPS_PASSWORD = "correct horse battery staple"


def _is_ops(op: Any) -> bool:
    return op.path.startswith("/ops/")


def _ops_operations(schema: Any) -> list[Any]:
    """The operator operations this module's server can answer: those that need custody or AML
    rules (``x-requires``, `backoffice.opsmoneydoc`) are held to their description by
    tests/test_foureyes.py, on a server that has both."""
    ops = [
        op
        for op in _operations(schema, operator=True)
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
    unknown account or market, 429 (login) a staff member locked after failed logins."""
    admin = staff.header("admin")
    given: dict[str, set[int]] = {}
    for op in _ops_operations(schema):
        documented = _documented_errors(op) - {503}
        login = op.label == "POST /ops/v1/auth/login"
        answers: list[requests.Response] = []
        if 400 in documented:
            bad = _OPS_BAD[op.label]
            path = bad.get("path", _ops_path(op, server))
            answers.append(_ops_send(server, op, admin, bad.get("body"), path, bad.get("query")))
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
