"""What the gateway fuzz tests (test_gateway_fuzz_*.py) share: their server (weight limits out
of the way, so every request is judged on its content), the checks of a clear error (the
exchange's and the back office's envelopes), and the witness that another client is still
served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from gateway.ratelimit import Limits
from tests.gateway_support import ServerThread, http


def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The module's server (each file: ``server = pytest.fixture(scope="module")(fuzz_server)``);
    weight limits out of the way: here every request must be judged on its content."""
    s = ServerThread(
        tmp_path_factory.mktemp("fuzz"),
        Limits(weight_per_minute=10**9, orders_per_10s=10**9, ban_after=10**9),
    )
    yield s
    s.stop()


def clear_error(status: int, error: Any) -> None:
    assert 400 <= status < 500, (status, error)
    assert isinstance(error, dict), error
    assert isinstance(error.get("code"), int) and error["code"] < 0, error
    assert isinstance(error.get("msg"), str) and error["msg"], error


def clear_backoffice_error(status: int, reply: Any) -> None:
    """The back office's envelope: ``{"error": {"code": KNOWN_CODE, "message": text}}``."""
    from backoffice import errors as bo_errors

    assert 400 <= status < 500, (status, reply)
    error = reply["error"]
    assert isinstance(error, dict) and isinstance(error.get("message"), str), reply
    known = {v for k, v in vars(bo_errors).items() if k.isupper() and isinstance(v, str)}
    assert error.get("code") in known, reply


def witness(server: ServerThread) -> None:
    """Another client is still served."""
    with ws_connect(server.ws_api) as ws:
        ws.send(json.dumps({"id": "w", "method": "time"}))
        assert json.loads(ws.recv(timeout=5))["status"] == 200
    status, _, _ = http("GET", server.http + "/api/v3/ping")
    assert status == 200
