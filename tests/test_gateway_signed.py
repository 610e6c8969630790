"""Signed requests cannot be replayed or re-cut (issue 11, item 2), against a real server.

- The replay guard is keyed on the API key and the exact signed payload, so the same request
  sent again with its signature spelled differently (HMAC hex in upper case, an Ed25519
  base64 signature whose last data character has an equivalent encoding) is refused.
- ``session.logon`` is guarded the same way: a captured logon replayed on another connection
  gives no session.
- REST verifies the bytes as sent: a client that percent-encodes a value and signs what it
  sends verifies; parameters in both the query string and the body are refused, so the split
  between them cannot be moved under one signature; duplicates are refused.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.sync.client import connect as ws_connect

from gateway.client import Credentials
from gateway.client.ws import _payload
from tests.gateway_support import ServerThread, http

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("signed"))
    yield s
    s.stop()


def _now() -> int:
    return time.time_ns() // 1_000_000


def _order(price: str) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": price,
    }


def _ws_signed(creds: Credentials, params: dict[str, Any]) -> dict[str, Any]:
    p = {**params, "apiKey": creds.api_key, "timestamp": _now()}
    p["signature"] = creds.sign(_payload(p))
    return p


def _open_count(server: ServerThread, account_id: int) -> int:
    server.wait_idle()
    return sum(
        1 for o in server.gw.store.orders.values() if o.account_id == account_id and o.is_open
    )


def _equivalent_b64(signature: str) -> str:
    """The same bytes, another spelling: a 64-byte Ed25519 signature is 88 base64 characters
    ending in ``==``; the character before the padding carries 2 data bits and 4 bits a lenient
    decoder ignores."""
    assert len(signature) == 88 and signature.endswith("==")
    i = B64.index(signature[85])
    other = B64[i ^ 0b0001]
    alt = signature[:85] + other + "=="
    assert alt != signature and base64.b64decode(alt) == base64.b64decode(signature)
    return alt


def test_ws_hmac_signature_in_upper_case_is_a_replay(server: ServerThread) -> None:
    acc = server.accounts
    before = _open_count(server, acc.demo_id)
    p = _ws_signed(acc.demo, _order("10001"))
    with ws_connect(server.ws_api) as ws:
        ws.send(json.dumps({"id": 1, "method": "order.place", "params": p}))
        assert json.loads(ws.recv(timeout=5))["status"] == 200
        for variant in (p["signature"].upper(), p["signature"][:32].upper() + p["signature"][32:]):
            ws.send(
                json.dumps(
                    {"id": 2, "method": "order.place", "params": {**p, "signature": variant}}
                )
            )
            reply = json.loads(ws.recv(timeout=5))
            assert reply["status"] == 400 and reply["error"]["code"] == -1022, reply
    assert _open_count(server, acc.demo_id) == before + 1


def test_ws_ed25519_equivalent_base64_is_a_replay(server: ServerThread) -> None:
    acc = server.accounts
    before = _open_count(server, acc.ed_id)
    p = _ws_signed(acc.ed, _order("10002"))
    with ws_connect(server.ws_api) as ws:
        ws.send(json.dumps({"id": 1, "method": "order.place", "params": p}))
        assert json.loads(ws.recv(timeout=5))["status"] == 200
        ws.send(
            json.dumps(
                {
                    "id": 2,
                    "method": "order.place",
                    "params": {**p, "signature": _equivalent_b64(p["signature"])},
                }
            )
        )
        reply = json.loads(ws.recv(timeout=5))
        assert reply["status"] == 400 and reply["error"]["code"] == -1022, reply
    assert _open_count(server, acc.ed_id) == before + 1


def test_ws_same_request_with_a_json_number_instead_of_a_string_is_a_replay(
    server: ServerThread,
) -> None:
    """``"price": "10003"`` and ``"price": 10003`` sign the same payload: one order only."""
    acc = server.accounts
    before = _open_count(server, acc.demo_id)
    p = _ws_signed(acc.demo, {**_order("10003"), "quantity": "0.01"})
    with ws_connect(server.ws_api) as ws:
        ws.send(json.dumps({"id": 1, "method": "order.place", "params": p}))
        assert json.loads(ws.recv(timeout=5))["status"] == 200
        ws.send(json.dumps({"id": 2, "method": "order.place", "params": {**p, "price": 10003}}))
        reply = json.loads(ws.recv(timeout=5))
        assert reply["error"]["code"] == -1022, reply
    assert _open_count(server, acc.demo_id) == before + 1


@pytest.mark.parametrize("who", ["demo", "ed"])
def test_logon_replayed_on_another_connection_gives_no_session(
    server: ServerThread, who: str
) -> None:
    creds: Credentials = getattr(server.accounts, who)
    frame = json.dumps({"id": "l", "method": "session.logon", "params": _ws_signed(creds, {})})
    with ws_connect(server.ws_api) as first:
        first.send(frame)
        assert json.loads(first.recv(timeout=5))["status"] == 200
    with ws_connect(server.ws_api) as second:
        second.send(frame)
        reply = json.loads(second.recv(timeout=5))
        assert reply["status"] == 400 and reply["error"]["code"] == -1022, reply
        second.send(json.dumps({"id": "s", "method": "session.status"}))
        assert json.loads(second.recv(timeout=5))["result"]["apiKey"] is None
        second.send(json.dumps({"id": "a", "method": "account.status"}))
        assert json.loads(second.recv(timeout=5))["status"] == 401


def _rest_order(
    server: ServerThread,
    *,
    query: str = "",
    body: str | None = None,
    creds: Credentials | None = None,
) -> tuple[int, Any]:
    creds = creds or server.accounts.demo
    status, _, data = http(
        "POST",
        server.http + "/api/v3/order",
        query=query,
        body=body,
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status, data


def test_rest_hmac_signature_in_upper_case_is_a_replay(server: ServerThread) -> None:
    acc = server.accounts
    before = _open_count(server, acc.demo_id)
    text = urlencode({**_order("10004"), "timestamp": _now()})
    sig = acc.demo.sign(text.encode())
    assert _rest_order(server, body=f"{text}&signature={sig}")[0] == 200
    status, data = _rest_order(server, body=f"{text}&signature={sig.upper()}")
    assert (status, data["code"]) == (400, -1022), data
    # the same bytes moved from the body to the query string: still the same signed request
    status, data = _rest_order(server, query=f"{text}&signature={sig}")
    assert (status, data["code"]) == (400, -1022), data
    assert _open_count(server, acc.demo_id) == before + 1


def test_rest_percent_encoded_values_verify_as_sent(server: ServerThread) -> None:
    """The client encodes more than it must (``%42`` is ``B``, ``%2D`` is ``-``) and signs
    exactly what it sends; the server verifies those bytes and decodes the values after."""
    acc = server.accounts
    for where in ("query", "body"):
        text = (
            f"symbol=%42TCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01"
            f"&price=1000{5 if where == 'query' else 6}&newClientOrderId=pct%2D{where}"
            f"&timestamp={_now()}"
        )
        signed = f"{text}&signature={acc.demo.sign(text.encode())}"
        status, data = (
            _rest_order(server, query=signed)
            if where == "query"
            else _rest_order(server, body=signed)
        )
        assert status == 200, data
        assert data["symbol"] == "BTCUSDT" and data["clientOrderId"] == f"pct-{where}"


def test_rest_parameters_in_both_query_and_body_are_refused(server: ServerThread) -> None:
    """Binance signs query + body with no separator, so ``a=1&b=2`` could be cut as query
    ``a=1&b=2`` or query ``a=1&`` + body ``b=2`` (or re-cut with the query winning a
    duplicate). Here a signed request carries its parameters in one place only."""
    acc = server.accounts
    before = _open_count(server, acc.demo_id)
    query = urlencode({**_order("10007"), "timestamp": _now()})
    body = f"price=10008&signature={acc.demo.sign(query.encode())}"
    status, data = _rest_order(server, query=query, body=body)
    assert status == 400 and data["code"] == -1128, data
    # the Binance "mixed" example: part in the query, the rest (and the signature) in the body
    params = urlencode({**_order("10009"), "timestamp": _now()})
    head, tail = params[:40], params[40:]
    status, data = _rest_order(
        server, query=head, body=f"{tail}&signature={acc.demo.sign(params.encode())}"
    )
    assert status == 400 and data["code"] == -1128, data
    assert _open_count(server, acc.demo_id) == before


def test_rest_duplicate_parameters_and_misplaced_signature_are_refused(
    server: ServerThread,
) -> None:
    acc = server.accounts
    before = _open_count(server, acc.demo_id)
    text = urlencode({**_order("10010"), "timestamp": _now()}) + "&price=10011"
    status, data = _rest_order(server, body=f"{text}&signature={acc.demo.sign(text.encode())}")
    assert status == 400 and data["code"] == -1101, data
    # the signature must come last: what follows it would not be signed
    text = urlencode({**_order("10012"), "timestamp": _now()})
    sig = acc.demo.sign(text.encode())
    status, data = _rest_order(server, body=f"{text}&signature={sig}&newClientOrderId=late")
    assert status == 400 and data["code"] == -1022, data
    assert _open_count(server, acc.demo_id) == before


def test_every_trade_and_withdraw_request_is_single_use(server: ServerThread) -> None:
    """The rule in one place (`auth.SINGLE_USE_PERMISSIONS`), checked over every operation the
    server describes: each REST route and WS API method needing ``trade`` or ``withdraw``,
    sent twice with the same signed payload, is refused the second time (-1022, "already
    used") whatever the first answer was. ``POST /api/v3/order/test`` and ``POST
    /sapi/v1/convert/getQuote`` were not guarded on REST (their WS twins were)."""
    from gateway import handlers, openapi, restdoc

    gw = server.gw
    ops = restdoc.operations(openapi._symbols(gw), openapi._coins(gw))
    guarded = {k: op for k, op in ops.items() if op.permission in ("trade", "withdraw")}
    assert ("POST", "/api/v3/order/test") in guarded and len(guarded) >= 8
    creds = server.accounts.demo  # read, trade and withdraw
    for (method, path), op in sorted(guarded.items()):
        text = urlencode({**(op.example or {}), "timestamp": _now()})
        signed = f"{text}&signature={creds.sign(text.encode())}"
        kw: dict[str, Any] = {"body": signed} if method in ("POST", "PUT") else {"query": signed}
        headers = {"X-MBX-APIKEY": creds.api_key}
        first = http(method, server.http + path, headers=headers, **kw)
        assert first[0] < 500, (path, first)
        status, _, data = http(method, server.http + path, headers=headers, **kw)
        assert (status, data["code"]) == (400, -1022), (method, path, data)
        assert "already used" in data["msg"], (path, data)
    methods = [m for m, spec in handlers.WS_METHODS.items() if spec.single_use]
    assert "order.test" in methods and "session.logon" in methods
    with ws_connect(server.ws_api) as ws:
        for i, method in enumerate(methods):
            if method == "deadMansSwitch.set":
                continue  # arms a timer; its guard is the same flag, checked above
            params = _ws_signed(creds, {"symbol": "BTCUSDT", "recvWindow": 5_000 + i})
            for attempt in (1, 2):
                ws.send(json.dumps({"id": attempt, "method": method, "params": params}))
                reply = json.loads(ws.recv(timeout=5))
                while "status" not in reply:
                    reply = json.loads(ws.recv(timeout=5))
            assert reply["error"]["code"] == -1022, (method, reply)
            assert "already used" in reply["error"]["msg"], (method, reply)


def test_every_operation_needs_its_permission(server: ServerThread) -> None:
    """Over every operation the server describes and every WS method: a read-only key is
    refused whatever needs ``trade`` or ``withdraw``, a read+trade key whatever needs
    ``withdraw`` (-2015), and nothing moves."""
    from gateway import handlers, openapi, restdoc

    gw = server.gw
    acc = server.accounts
    server.wait_idle()
    before = server.state_hash()
    ops = restdoc.operations(openapi._symbols(gw), openapi._coins(gw))
    cases = [(acc.reader, ("trade", "withdraw")), (acc.maker, ("withdraw",))]
    checked = 0
    for creds, refused in cases:
        for (method, path), op in sorted(ops.items()):
            if op.permission not in refused:
                continue
            # one payload per request: operations with equal examples signed within the
            # millisecond would otherwise be one payload, the second a replay (-1022)
            params = {**(op.example or {}), "recvWindow": 5_000 + checked, "timestamp": _now()}
            text = urlencode(params)
            signed = f"{text}&signature={creds.sign(text.encode())}"
            kw: dict[str, Any] = (
                {"body": signed} if method in ("POST", "PUT") else {"query": signed}
            )
            status, _, data = http(
                method, server.http + path, headers={"X-MBX-APIKEY": creds.api_key}, **kw
            )
            assert (status, data["code"]) == (401, -2015), (method, path, data)
            checked += 1
        with ws_connect(server.ws_api) as ws:
            for i, (name, spec) in enumerate(handlers.WS_METHODS.items()):
                if spec.permission not in refused:
                    continue  # one payload per request (methods are not signed)
                params = _ws_signed(creds, {"symbol": "BTCUSDT", "recvWindow": 5_000 + i})
                ws.send(json.dumps({"id": name, "method": name, "params": params}))
                reply = json.loads(ws.recv(timeout=5))
                assert reply["error"]["code"] == -2015, (name, reply)
                checked += 1
    assert checked >= 20
    server.wait_idle()
    assert server.state_hash() == before


def test_a_signed_read_cannot_be_replayed_as_an_action(server: ServerThread) -> None:
    """Neither signature covers the method or the path, so the payload of a read was a valid
    signed action with the same parameters: a captured ``GET /api/v3/openOrders?symbol=``
    re-sent as ``DELETE`` (another connection) cancelled every open order, a captured
    ``order.status`` re-sent as ``order.cancel`` cancelled the order. Reads still repeat, and
    one connection may read then act with the same parameters in the same millisecond."""
    creds = server.new_account(USDT="10000")
    placed = []
    for price in ("9001", "9002"):
        text = urlencode({**_order(price), "timestamp": _now()})
        status, order = _rest_order_as(
            server, creds, body=f"{text}&signature={creds.sign(text.encode())}"
        )
        assert status == 200, order
        placed.append(order["orderId"])
    read = urlencode({"symbol": "BTCUSDT", "timestamp": _now()})
    query = f"{read}&signature={creds.sign(read.encode())}"
    headers = {"X-MBX-APIKEY": creds.api_key}
    url = server.http + "/api/v3/openOrders"
    for _ in range(2):  # a read may repeat
        status, _, orders = http("GET", url, query=query, headers=headers)
        assert status == 200 and len(orders) == 2, orders
    status, _, data = http("DELETE", url, query=query, headers=headers)
    assert (status, data["code"]) == (400, -1022), data

    def ws_params(order_id: int) -> dict[str, Any]:
        p = {"symbol": "BTCUSDT", "orderId": order_id, "apiKey": creds.api_key}
        p["timestamp"] = _now()
        p["signature"] = creds.sign(_payload(p))
        return p

    def call(ws: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ws.send(json.dumps({"id": method, "method": method, "params": params}))
        return dict(json.loads(ws.recv(timeout=5)))

    captured = ws_params(placed[0])
    with ws_connect(server.ws_api) as victim, ws_connect(server.ws_api) as thief:
        assert call(victim, "order.status", captured)["status"] == 200
        reply = call(thief, "order.cancel", captured)
        assert reply["status"] == 400 and reply["error"]["code"] == -1022, reply
        own = ws_params(placed[1])  # the same connection reads, then cancels: served
        assert call(victim, "order.status", own)["status"] == 200
        assert call(victim, "order.cancel", own)["status"] == 200
    status, _, orders = http("GET", url, query=query, headers=headers)
    assert status == 200 and [o["orderId"] for o in orders] == [placed[0]], orders


def _rest_order_as(server: ServerThread, creds: Credentials, *, body: str) -> tuple[int, Any]:
    status, _, data = http(
        "POST", server.http + "/api/v3/order", body=body, headers={"X-MBX-APIKEY": creds.api_key}
    )
    return status, data
