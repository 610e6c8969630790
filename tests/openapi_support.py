"""What the OpenAPI conformance tests (test_openapi.py, test_openapi_ops.py) share: the
schemathesis checks and example count, the server (no rate limits) and its description as module
fixtures (each file: ``server = pytest.fixture(scope="module")(openapi_server)``, likewise
``spec`` and ``schema``), the description's operations and each one's documented error statuses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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


def openapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("openapi"), UNLIMITED)
    try:
        yield s
    finally:
        s.stop()


def openapi_spec(server: ServerThread) -> dict[str, Any]:
    resp = requests.get(f"{server.http}/openapi.json", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def openapi_schema(spec: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(spec)


def api_operations(schema: Any, *, operator: bool = False) -> list[Any]:
    """The dialect's operations (``operator``: the operator API's too, `backoffice.opsdoc`,
    tested by test_openapi_ops.py with staff tokens)."""
    ops = [result.ok() for result in schema.get_all_operations()]
    assert ops, "the description has no operations"
    return [op for op in ops if operator or not op.path.startswith("/ops/")]


def documented_errors(op: Any) -> set[int]:
    return {int(s) for s in op.definition.raw["responses"] if int(s) >= 400}
