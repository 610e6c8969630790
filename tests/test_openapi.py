"""The REST API matches its OpenAPI description (``GET /openapi.json``), checked with
schemathesis against a real server (real journal, real sockets).

For every operation in the description: its documented example must succeed (200, the documented
answer shape), then schemathesis generates positive and negative requests (signed with a funded
fixture account's key when the operation is signed) and every answer must be one the description
documents, with the documented body (errors: ``{code, msg}``), never a 5xx, and data that breaks
the description must be refused. Every error status an operation documents is provoked once (503
excepted). Every ``/api/``, ``/sapi/`` and ``/ops/`` route must be in the description.

``KOOTABASE_OPENAPI_EXAMPLES`` sets the examples per operation and mode (default 20).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
)

from gateway import openapi
from gateway.ratelimit import Limits
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

server = pytest.fixture(scope="module")(openapi_server)
spec = pytest.fixture(scope="module")(openapi_spec)
schema = pytest.fixture(scope="module")(openapi_schema)


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
    for op in api_operations(schema):
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
    ops = api_operations(schema)
    if mode is GenerationMode.NEGATIVE:  # nothing to make invalid in a request without input
        ops = [op for op in ops if op.definition.raw.keys() & {"parameters", "requestBody"}]
    for op in ops:
        _fuzz(op, mode, signer, statuses)
    assert set(statuses) == {op.label for op in ops}
    assert all(code < 500 for codes in statuses.values() for code in codes), statuses


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
    place = _example(next(op for op in api_operations(schema) if op.label == "POST /api/v3/order"))
    assert place is not None
    given_statuses: dict[str, set[int]] = {}
    for op in api_operations(schema):
        signed = "security" in op.definition.raw
        documented = documented_errors(op)
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
        for op in api_operations(schema):
            if {418, 429} <= documented_errors(op):
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
        for op in api_operations(schema):
            if {418, 429} <= documented_errors(op):
                response = requests.request(op.method.upper(), banned.http + op.path)
                assert response.status_code == 418 and response.json()["code"] == -1003
                given_statuses.setdefault(op.label, set()).add(418)
    finally:
        banned.stop()
    for op in api_operations(schema):
        assert given_statuses.get(op.label, set()) == documented_errors(op) - {503}, op.label
