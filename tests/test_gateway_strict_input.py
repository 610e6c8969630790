"""No input crashes a handler or drops a connection (issue 11, item 3): the known cases, each
against a real server. The general search is tests/test_gateway_fuzz_*.py.

- JSON nested thousands deep on the WS API and the market-data WebSocket (``/ws``,
  ``/stream``) and in JSON-valued query parameters: an error answer, the connection stays open.
- ASCII only, fully matched: a timestamp with a Unicode digit (``²``), a client order id, a
  decimal or an integer with a trailing newline, a symbol that only upper-cases to a real one
  (``ſ``, the long s, upper-cases to ``S``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from websockets.sync.client import connect as ws_connect

from gateway.client.ws import _payload
from tests.gateway_support import ServerThread, http

DEEP = 5_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("strict"))
    yield s
    s.stop()


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _signed(server: ServerThread, params: dict[str, Any]) -> dict[str, Any]:
    creds = server.accounts.demo
    p = {"apiKey": creds.api_key, "timestamp": time.time_ns() // 1_000_000, **params}
    p["signature"] = creds.sign(_payload(p))
    return p


ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
    "price": "10000",
}


def _still_usable(ws: Any) -> None:
    ws.send(json.dumps({"id": "after", "method": "ping"}))
    assert json.loads(ws.recv(timeout=5))["status"] == 200


def test_ws_api_deep_json_is_an_error_and_the_connection_stays(server: ServerThread) -> None:
    before = server.state_hash()
    with ws_connect(server.ws_api) as ws:
        for frame in (
            _nested(DEEP),
            '{"id":1,"method":"ping","params":{"a":' + _nested(DEEP) + "}}",
            '{"id":1,"method":"exchangeInfo","params":{"symbols":' + _nested(DEEP) + "}}",
        ):
            ws.send(frame)
            reply = json.loads(ws.recv(timeout=5))
            assert reply["status"] == 400 and reply["error"]["code"] == -1102, reply
            _still_usable(ws)
    assert server.state_hash() == before


@pytest.mark.parametrize("path", ["/ws", "/stream?streams=btcusdt@trade"])
def test_market_data_ws_deep_json_is_an_error_and_the_connection_stays(
    server: ServerThread, path: str
) -> None:
    url = server.http.replace("http", "ws") + path
    with ws_connect(url) as ws:
        ws.send('{"method":"SUBSCRIBE","params":' + _nested(DEEP) + ',"id":1}')
        reply = json.loads(ws.recv(timeout=5))
        assert reply["error"]["code"] == 3, reply
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert json.loads(ws.recv(timeout=5))["id"] == 2


@pytest.mark.parametrize(
    "path",
    [
        "/api/v3/exchangeInfo",
        "/api/v3/ticker/price",
        "/api/v3/ticker/24hr",
        "/api/v3/ticker/bookTicker",
    ],
)
def test_deep_json_in_a_query_parameter_is_a_400(server: ServerThread, path: str) -> None:
    # 1,200 levels: past the decoders' recursion limit, within the 8 KiB request line
    status, _, data = http("GET", server.http + path, query="symbols=" + quote(_nested(1_200)))
    assert status == 400 and data["code"] == -1100, data


def test_timestamp_with_a_unicode_digit_is_refused_clearly(server: ServerThread) -> None:
    with ws_connect(server.ws_api) as ws:
        for ts in ("²", "1700000000000²", "١٧٠٠٠٠٠٠٠٠٠٠٠", "1700000000000\n"):
            p = {**_signed(server, ORDER), "timestamp": ts}
            ws.send(json.dumps({"id": 1, "method": "order.place", "params": p}))
            reply = json.loads(ws.recv(timeout=5))
            assert reply["status"] == 400 and reply["error"]["code"] == -1100, (ts, reply)
        _still_usable(ws)
    creds = server.accounts.demo
    query = urlencode({"timestamp": "²"})
    status, _, data = http(
        "GET",
        server.http + "/api/v3/account",
        query=f"{query}&signature={creds.sign(query.encode())}",
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 400 and data["code"] == -1100, data


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("newClientOrderId", "abc\n"),
        ("newClientOrderId", "x-" + "a" * 20 + "\n"),
        ("newClientOrderId", "ab\u00e9"),
        ("price", "10000\n"),
        ("quantity", "0.01\n"),
        ("price", "１0000"),
        ("recvWindow", "5000\n"),
        ("recvWindow", "5０00"),
        ("symbol", "BTCUſDT"),
        ("symbol", "BTCUSDT\n"),
    ],
)
def test_ws_parameters_are_ascii_and_fully_matched(
    server: ServerThread, name: str, value: str
) -> None:
    before = server.state_hash()
    with ws_connect(server.ws_api) as ws:
        ws.send(
            json.dumps(
                {
                    "id": 1,
                    "method": "order.place",
                    "params": _signed(server, {**ORDER, name: value}),
                }
            )
        )
        reply = json.loads(ws.recv(timeout=5))
        assert 400 <= reply["status"] < 500 and reply["error"]["code"] in (-1100, -1121, -1130), (
            reply
        )
        _still_usable(ws)
    server.wait_idle()
    assert server.state_hash() == before


def test_cancel_by_client_id_with_a_newline_is_refused(server: ServerThread) -> None:
    with ws_connect(server.ws_api) as ws:
        for cid in ("kb1\n", "abc\n"):
            ws.send(
                json.dumps(
                    {
                        "id": 1,
                        "method": "order.cancel",
                        "params": _signed(server, {"symbol": "BTCUSDT", "origClientOrderId": cid}),
                    }
                )
            )
            reply = json.loads(ws.recv(timeout=5))
            assert reply["status"] == 400 and reply["error"]["code"] == -1100, reply


@pytest.mark.parametrize(
    "query",
    [
        "symbol=BTCUSDT&limit=%C2%B2",
        "symbol=BTCUSDT&limit=5%0A",
        "symbol=BTCU%C5%BFDT",
        "symbol=BTCUSDT&limit=%D9%A3",
    ],
)
def test_market_data_rest_parameters_are_ascii(server: ServerThread, query: str) -> None:
    status, _, data = http("GET", server.http + "/api/v3/depth", query=query)
    assert status == 400 and data["code"] in (-1100, -1121), data


@pytest.mark.parametrize("name", ["btcuſdt@trade", "btcusdt@trade\n", "btcusdt@kline_1m\n"])
def test_stream_names_are_ascii(server: ServerThread, name: str) -> None:
    url = server.http.replace("http", "ws") + "/ws"
    with ws_connect(url) as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": [name], "id": 1}))
        reply = json.loads(ws.recv(timeout=5))
        assert reply["error"]["code"] == 2, reply


@pytest.mark.parametrize(
    "body",
    [
        _nested(DEEP),
        '{"account_id":' + _nested(DEEP) + "}",
        "[1]",
        '{"account_id": "²", "asset": "USDT", "amount": "1"}',
        "{",
        # a float account id was truncated (1.9 credited account 1); a non-string deposit key
        # or public key was an AttributeError (a 500)
        '{"account_id": 1.9, "asset": "USDT", "amount": "1"}',
        '{"account_id": true, "asset": "USDT", "amount": "1"}',
        '{"account_id": "\u0663", "asset": "USDT", "amount": "1"}',
        '{"account_id": 1, "asset": "USDT", "amount": "1", "deposit_key": 5}',
        '{"account_id": 1, "asset": "USDT", "amount": "1", "deposit_key": ["k"]}',
        '{"account_id": 1, "asset": ["USDT"], "amount": "1"}',
        '{"account_id": 1, "asset": "USDT", "amount": "1", "x": "\\ud800"}',
    ],
)
def test_admin_json_body_is_bounded_and_checked(server: ServerThread, body: str) -> None:
    """The operator endpoint is loopback + token only, but a bad body is still a 400."""
    before = server.state_hash()
    status, _, data = http(
        "POST",
        server.http + "/admin/deposit",
        body=body,
        headers={
            "X-Kootabase-Admin-Token": server.gw.admin_token,
            "Content-Type": "application/json",
        },
    )
    assert status == 400 and data["code"] == -1102, data
    server.wait_idle()
    assert server.state_hash() == before


def test_a_signature_that_is_not_ascii_is_refused_clearly(server: ServerThread) -> None:
    """With a valid key, a signature holding any non-ASCII character (``é``, ``²``, a
    full-width digit) is -1022; it was a 500 on REST and a dropped socket on the WS API
    (`hmac.compare_digest` raises TypeError on such a ``str``)."""
    for creds in (server.accounts.demo, server.accounts.ed):
        for bad in ("é" * 64, "０" * 64, "a" * 63 + "²"):
            query = urlencode({"timestamp": time.time_ns() // 1_000_000, "signature": bad})
            status, _, data = http(
                "GET",
                server.http + "/api/v3/account",
                query=query,
                headers={"X-MBX-APIKEY": creds.api_key},
            )
            assert status == 400 and data["code"] == -1022, (bad, status, data)
            with ws_connect(server.ws_api) as ws:
                for method in ("account.status", "session.logon"):
                    p = {
                        "apiKey": creds.api_key,
                        "timestamp": time.time_ns() // 1_000_000,
                        "signature": bad,
                    }
                    ws.send(json.dumps({"id": 1, "method": method, "params": p}))
                    reply = json.loads(ws.recv(timeout=5))
                    assert reply["error"]["code"] == -1022, (bad, reply)
                _still_usable(ws)


@pytest.mark.parametrize("order_id", ["%C2%B2", "%D9%A3", "1%0A", "%EF%BC%91"])
def test_convert_order_id_is_ascii_digits(server: ServerThread, order_id: str) -> None:
    """``GET /sapi/v1/convert/orderStatus?orderId=²`` was a 500 (``str.isdigit``) and ``٣``
    read conversion 3."""
    creds = server.accounts.demo
    query = f"orderId={order_id}&timestamp={time.time_ns() // 1_000_000}"
    status, _, data = http(
        "GET",
        server.http + "/sapi/v1/convert/orderStatus",
        query=f"{query}&signature={creds.sign(query.encode())}",
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 400 and data["code"] == -1100, data


@pytest.mark.parametrize("sent", ["\u00e9", "Bearer \u00e9\u00ff", "\u00ff" * 70])
def test_operator_secrets_in_headers_compare_any_bytes(tmp_path: Path, sent: str) -> None:
    """The admin token and the metrics bearer token are compared as bytes: a header holding
    bytes that are not ASCII (here Latin-1 on the wire, not even UTF-8) is refused, not a
    500."""
    srv = ServerThread(tmp_path, fixture_accounts=False, marketdata=False, metrics_token="t0k")
    try:
        status, _, data = http(
            "POST",
            srv.http + "/admin/deposit",
            body="{}",
            headers={"X-Kootabase-Admin-Token": sent, "Content-Type": "application/json"},
        )
        assert status == 403, (status, data)
        status, _, data = http("GET", srv.http + "/metrics", headers={"Authorization": sent})
        assert status == 401, (status, data)
        assert http("GET", srv.http + "/metrics", headers={"Authorization": "Bearer t0k"})[0] == 200
        assert srv.running.server_log is not None and srv.running.server_log.failed == 0
    finally:
        srv.stop()
