"""The loopback ``/admin`` endpoints (the admin-token console and `kootabase accounts` against a
running server) with the real token and generated bodies: every action, any method, JSON of
any shape and type, non-JSON and over-deep bodies. The whole-surface fuzz
(`tests/test_gateway_fuzz_surface.py`) reaches /admin only without the token, so it never
got past the 403. Every answer must be < 500, a refusal the ``{code, msg}`` body, and the
server still answering; a body that is not a JSON object journals nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzz_inputs
from tests.gateway_fuzz_support import clear_error
from tests.gateway_support import ServerThread, http

ACTIONS = (
    "accounts",
    "deposit",
    "health/overview",
    "keys",
    "keys/revoke",
    "keys/rotate",
    "markets",
    "markets/state",
)
FIELDS = (
    "account_id",
    "asset",
    "amount",
    "deposit_key",
    "symbol",
    "state",
    "api_key",
    "permissions",
    "ed25519_public_pem",
)
bodies = (
    st.dictionaries(st.sampled_from(FIELDS), fuzz_inputs.param_values, max_size=5).map(
        fuzz_inputs.dumps
    )
    | fuzz_inputs.json_values.map(fuzz_inputs.dumps)
    | fuzz_inputs.deep_json()
    | st.text(max_size=60)
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("admin-fuzz"), fixture_accounts=False)
    yield s
    s.stop()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    action=st.sampled_from(ACTIONS),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    body=bodies,
)
def test_admin_endpoints_refuse_bad_bodies_clearly(
    server: ServerThread, action: str, method: str, body: str
) -> None:
    before = server.gw.last_seq
    token = {"X-Kootabase-Admin-Token": server.gw.admin_token}
    url = f"{server.http}/admin/{action}"
    status, _, reply = http(method, url, body=body or None, headers=token)
    assert status < 500, (method, action, body, status, reply)
    if status == 400:
        clear_error(status, reply)
    try:
        is_object = isinstance(json.loads(body), dict) if body else True
    except (ValueError, RecursionError):
        is_object = False
    if not is_object:
        assert status >= 400 and server.gw.last_seq == before, (body, status, reply)
    assert http("GET", f"{server.http}/api/v3/ping")[0] == 200
