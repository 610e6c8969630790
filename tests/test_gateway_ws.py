"""Gateway over real sockets, in the Binance Spot dialect: client ids, and the WS API (HMAC and
Ed25519 auth, the user stream, errors that change nothing, replayed signatures, oversize frames,
cancel-on-disconnect, the dead-man's switch, cancel-replace and cancel-all).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from gateway import clientids
from gateway.client import ClientError, WsApiClient
from tests.gateway_support import ServerThread


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("gw"))
    yield s
    s.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- client ids ----------------------------------------------------------------------------


def test_client_ids_short_are_reversible_and_long_hash_high() -> None:
    for s in ("a", "-", "zzzzzzzzzz", "abc-_123", "0"):
        v = clientids.encode(s)
        assert 0 < v < clientids.HASHED_BASE
        assert clientids.decode_short(v) == s
    long = "x-TKT5PX2F" + "a" * 20
    v = clientids.encode(long)
    assert clientids.HASHED_BASE <= v < 1 << 63
    assert clientids.decode_short(v) is None
    assert len({clientids.encode(c * n) for c in "aZ9" for n in range(1, 11)}) == 30


# ---- WS API ---------------------------------------------------------------------------------


def test_ws_round_trip_hmac_with_user_stream(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:
            assert await c.request("ping") == {}
            logon = await c.logon()
            assert logon["apiKey"] == acc.demo.api_key
            await c.subscribe_user_data()
            placed = await c.place_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity="0.0100",
                price="20000.00",
                time_in_force="GTC",
                client_order_id="rt-1",
            )
            assert placed["status"] == "NEW" and placed["clientOrderId"] == "rt-1"
            assert placed["price"] == "20000.000000" and placed["origQty"] == "0.01000000"
            assert any(r["rateLimitType"] == "ORDERS" for r in c.rate_limits)
            oid = placed["orderId"]
            status = await c.order_status("BTCUSDT", client_order_id="rt-1")
            assert status["orderId"] == oid and status["status"] == "NEW"
            amended = await c.amend_keep_priority("BTCUSDT", "0.0050", order_id=oid)
            assert amended["amendedOrder"]["origQty"] == "0.00500000"
            cancelled = await c.cancel_order("BTCUSDT", client_order_id="rt-1")
            assert cancelled["status"] == "CANCELED" and cancelled["orderId"] == oid
            kinds: list[str] = []
            positions = 0
            while "CANCELED" not in kinds:
                ev = await c.next_event()
                if ev["e"] == "executionReport":
                    assert ev["i"] == oid and ev["c"] == "rt-1"
                    kinds.append(ev["x"])
                else:
                    positions += ev["e"] == "outboundAccountPosition"
            assert kinds == ["NEW", "REPLACED", "CANCELED"] and positions >= 2
            with pytest.raises(ClientError) as err:
                await c.cancel_order("BTCUSDT", order_id=oid)
            assert err.value.code == -2011

    run(body())


def test_ws_ed25519_per_request_and_logon_and_trade(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with (
            WsApiClient.connect(server.ws_api, acc.ed) as ed,
            WsApiClient.connect(server.ws_api, acc.maker) as mk,
        ):
            # per-request Ed25519 signatures (no logon)
            sell = await ed.place_order(
                "BTCUSDT", "SELL", "LIMIT", quantity="0.01", price="31000", time_in_force="GTC"
            )
            assert sell["status"] == "NEW"
            await mk.logon()
            buy = await mk.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="31000", time_in_force="IOC"
            )
            assert buy["status"] == "FILLED"
            assert buy["fills"][0]["price"] == "31000.000000"
            await ed.logon()
            st = await ed.order_status("BTCUSDT", order_id=sell["orderId"])
            assert st["status"] == "FILLED" and st["executedQty"] == "0.01000000"
            acct = await ed.account()
            btc = next(b for b in acct["balances"] if b["asset"] == "BTC")
            assert btc["free"] == "9.99000000"

    run(body())


def test_ws_errors_are_clear_and_change_nothing(server: ServerThread) -> None:
    acc = server.accounts
    server.wait_idle()
    before = server.state_hash()

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.demo) as c:

            async def code(method: str, params: dict[str, Any], signed: bool = True) -> int:
                with pytest.raises(ClientError) as err:
                    await c.request(method, params, signed=signed)
                return err.value.code

            base = {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "20000",
            }
            assert await code("order.place", base, signed=False) == -1002
            assert await code("order.place", {**base, "price": "20000.005"}) == -1013
            assert await code("order.place", {**base, "price": "20000.0000001"}) == -1111
            assert await code("order.place", {**base, "quantity": "0.00001"}) == -1013
            assert await code("order.place", {**base, "quantity": "0.0001", "price": "1"}) == -1013
            assert await code("order.place", {**base, "symbol": "NOPE"}) == -1121
            assert await code("order.place", {**base, "side": "UP"}) == -1117
            assert await code("order.place", {**base, "price": 1.5}) == -1100
            assert await code("order.place", {**base, "quantity": "-1"}) == -1100
            assert await code("order.place", {**base, "quantity": "1000000"}) == -2010
            assert await code("order.place", {**base, "type": "STOP_LOSS"}) == -1106
            assert await code("order.place", {**base, "icebergQty": "0.02"}) == -1013
            assert await code("order.cancel", {"symbol": "BTCUSDT", "orderId": 424242}) == -2011
            assert await code("order.status", {"symbol": "BTCUSDT", "orderId": 424242}) == -2013
            assert await code("no.such.method", {}) == -1102
            # bad signature, stale timestamp, replay
            params = c._sign(dict(base))
            params["signature"] = "0" * 64
            assert await code("order.place", params, signed=False) == -1022
            stale = {**base, "apiKey": acc.demo.api_key, "timestamp": 1_000}
            from gateway.client.ws import _payload

            stale["signature"] = acc.demo.sign(_payload(stale))
            assert await code("order.place", stale, signed=False) == -1021
            # read-only key cannot trade
            async with WsApiClient.connect(server.ws_api, acc.reader) as r:
                with pytest.raises(ClientError) as err:
                    await r.place_order(
                        "BTCUSDT",
                        "BUY",
                        "LIMIT",
                        quantity="0.01",
                        price="20000",
                        time_in_force="GTC",
                    )
                assert err.value.code == -2015
                assert (await r.account())["canTrade"] is False

    run(body())
    server.wait_idle()
    assert server.state_hash() == before


def test_ws_replayed_signature_refused(server: ServerThread) -> None:
    acc = server.accounts
    with ws_connect(server.ws_api) as ws:
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "10000",
            "apiKey": acc.demo.api_key,
            "timestamp": int(time.time() * 1000),
        }
        from gateway.client.ws import _payload

        params["signature"] = acc.demo.sign(_payload(params))
        frame = json.dumps({"id": 1, "method": "order.place", "params": params})
        ws.send(frame)
        first = json.loads(ws.recv())
        assert first["status"] == 200
        ws.send(frame)
        second = json.loads(ws.recv())
        assert second["status"] == 400 and second["error"]["code"] == -1022


def test_oversize_frame_closes_only_that_connection(server: ServerThread) -> None:
    with ws_connect(server.ws_api, max_size=None) as ws:
        ws.send("x" * (server.gw.config.limits.max_message_bytes + 10))
        with pytest.raises(Exception):  # noqa: B017 - closed by the server (1009)
            ws.recv(timeout=5)
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1009
    with ws_connect(server.ws_api) as ws:
        ws.send(json.dumps({"id": "a", "method": "time"}))
        assert json.loads(ws.recv())["status"] == 200


_BAD_JSON = '-1102,"msg":"Malformed request: invalid JSON."'
_NOT_OBJECT = '-1102,"msg":"Malformed request: not an object."'
_BAD_ID = '-1130,"msg":"Invalid request id."'
_MALFORMED: list[tuple[str, int, Any, str | None]] = [  # frame, status, id echoed, code + msg
    ("[1,}", 400, None, _BAD_JSON),
    ('{"id":1,"method":"time"', 400, None, _BAD_JSON),
    ('{"id":1} x', 400, None, _BAD_JSON),
    ('{"id":"\\ud800","method":"time"}', 400, None, _BAD_JSON),
    ("[1]", 400, None, _NOT_OBJECT),
    ('"time"', 400, None, _NOT_OBJECT),
    ('{"id":true,"method":"time"}', 400, None, _BAD_ID),
    ('{"id":1,"id":false,"method":"time"}', 400, None, _BAD_ID),
    (
        '{"id":7,"method":"time","params":[]}',
        400,
        7,
        '-1102,"msg":"Malformed request: \'params\'."',
    ),
    ('{"id":8,"method":5}', 400, 8, '-1102,"msg":"Unknown method."'),
    ('{"id":"q","method":"time","params":null,"x":[{}]}', 200, "q", None),
]


def test_malformed_envelopes_answer_stable_errors(server: ServerThread) -> None:
    """The envelope (``id``, ``method``, ``params``) is decoded into a Struct with a fallback
    for what is not an object: every malformed frame still gets the same answer, byte for
    byte up to the rate-limit usage (which counts)."""
    with ws_connect(server.ws_api) as ws:
        for frame, status, req_id, error in _MALFORMED:
            ws.send(frame)
            raw = ws.recv(timeout=5)
            assert isinstance(raw, str)
            reply = json.loads(raw)
            assert (reply["status"], reply["id"]) == (status, req_id), (frame, raw)
            if error is None:
                assert "error" not in reply, raw
                continue
            head = f'{{"id":{json.dumps(req_id, separators=(",", ":"))},"status":{status},'
            assert raw.startswith(head + '"error":{"code":' + error + "}"), (frame, raw)


def test_cancel_on_disconnect_and_dead_mans_switch(server: ServerThread) -> None:
    """Smoke test over the SDK; the journal-level checks (engine commands, reasons, idle Tick,
    replay) are in tests/test_gateway_deadman.py."""
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon(cancel_on_disconnect=True)
            o = await c.place_order(
                "ETHUSDT", "SELL", "LIMIT", quantity="1", price="5000", time_in_force="GTC"
            )
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            for _ in range(100):
                st = await c.order_status("ETHUSDT", order_id=o["orderId"])
                if st["status"] == "CANCELED":
                    break
                await asyncio.sleep(0.02)
            assert st["status"] == "CANCELED"
            o2 = await c.place_order(
                "ETHUSDT", "SELL", "LIMIT", quantity="1", price="5000", time_in_force="GTC"
            )
            armed = await c.dead_mans_switch(150)
            assert armed["armed"] is True
            await asyncio.sleep(0.5)
            st = await c.order_status("ETHUSDT", order_id=o2["orderId"])
            assert st["status"] == "CANCELED"

    run(body())


def test_cancel_replace_and_cancel_all(server: ServerThread) -> None:
    acc = server.accounts

    async def body() -> None:
        async with WsApiClient.connect(server.ws_api, acc.maker) as c:
            await c.logon()
            o = await c.place_order(
                "LTCUSDT", "BUY", "LIMIT", quantity="1", price="50", time_in_force="GTC"
            )
            res = await c.cancel_replace(
                "LTCUSDT", o["orderId"], "BUY", "LIMIT", quantity="2", price="51", timeInForce="GTC"
            )
            assert res["cancelResult"] == "SUCCESS" and res["newOrderResult"] == "SUCCESS"
            with pytest.raises(ClientError) as err:
                await c.cancel_replace(
                    "LTCUSDT",
                    o["orderId"],
                    "BUY",
                    "LIMIT",
                    quantity="2",
                    price="51",
                    timeInForce="GTC",
                )
            assert err.value.code == -2022 and err.value.status == 400
            await c.place_order(
                "LTCUSDT", "BUY", "LIMIT", quantity="1", price="49", time_in_force="GTC"
            )
            cancelled = await c.cancel_all("LTCUSDT")
            assert len(cancelled) == 2
            assert await c.open_orders("LTCUSDT") == []

    run(body())


_ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "IOC",  # at 1 USDT nothing fills and nothing rests
    "quantity": "10",
    "price": "1",
    "newOrderRespType": "ACK",
}
_TS = "Timestamp for this request is outside of the recvWindow."
_ORDER_PLACE_ANSWERS: list[tuple[dict[str, Any], int, str | None]] = [  # params, code, msg
    ({}, 0, None),
    ({"timestamp": "NOW", "recvWindow": 5000}, 0, None),
    ({"strategyId": 5, "newClientOrderId": "ws-typed-1"}, 0, None),
    ({"newOrderRespType": "", "selfTradePreventionMode": ""}, 0, None),
    ({"stopPrice": "0", "icebergQty": 0}, 0, None),
    ({"timestamp": 1_000}, -1021, _TS),
    ({"timestamp": "NOW", "recvWindow": 0}, -1131, "recvWindow must be less than 60000"),
    ({"timestamp": None}, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null"),
    ({"timestamp": "NOW", "recvWindow": "x"}, -1100, "Illegal characters found in parameter 'r"),
    ({"price": 1.5}, -1100, "Illegal characters found in parameter 'price'"),
    ({"side": "buy"}, -1117, "Invalid side."),
    ({"selfTradePreventionMode": "TRANSFER"}, -1013, "This symbol does not allow the specif"),
    ({"newClientOrderId": "bad id"}, -1100, "Illegal characters found in parameter 'newCl"),
    ({"symbol": ""}, -1102, "Mandatory parameter 'symbol' was not sent"),
    ({"timeInForce": None}, -1102, "Mandatory parameter 'timeInForce' was not sent"),
    ({"type": "LIMIT_MAKER"}, -1106, "Parameter 'timeInForce' sent when not required."),
]


def test_order_place_answers_on_a_logged_on_session(server: ServerThread) -> None:
    """order.place's params are decoded typed when well formed (`gateway.placeparams`) and as
    a dict otherwise: these answers, on a logged-on session with and without ``timestamp``,
    are the dict path's (pinned before the typed path existed). A number the JSON decoder
    refuses inside params is invalid JSON even in a parameter order.place ignores."""
    from gateway.client.ws import _payload

    acc = server.accounts
    with ws_connect(server.ws_api) as ws:
        logon: dict[str, Any] = {"apiKey": acc.demo.api_key, "timestamp": int(time.time() * 1e3)}
        logon["signature"] = acc.demo.sign(_payload(logon))
        ws.send(json.dumps({"id": 0, "method": "session.logon", "params": logon}))
        assert json.loads(ws.recv(timeout=5))["status"] == 200
        for i, (change, code, msg) in enumerate(_ORDER_PLACE_ANSWERS):
            params = {**_ORDER, **change}
            if params.get("timestamp") == "NOW":
                params["timestamp"] = int(time.time() * 1e3)
            params = {k: v for k, v in params.items() if v is not None or k == "timestamp"}
            ws.send(json.dumps({"id": i, "method": "order.place", "params": params}))
            reply = json.loads(ws.recv(timeout=5))
            assert reply["id"] == i, reply
            if code == 0:
                assert reply["status"] == 200 and reply["result"]["orderId"] > 0, (change, reply)
            else:
                assert reply["error"]["code"] == code, (change, reply)
                assert reply["error"]["msg"].startswith(msg or ""), (change, reply)
        good = json.dumps(_ORDER)[:-1]
        for frame in (
            '{"id":1,"method":"order.place","params":' + good + ',"x":1e999}}',
            '{"id":true,"method":"order.place","params":{"a":-1e999}}',
            '{"id":2,"method":"order.place","params":' + good + ',"price":1e400}}',
        ):
            ws.send(frame)
            raw = ws.recv(timeout=5)
            assert isinstance(raw, str) and raw.startswith('{"id":null,"status":400,'), raw
            assert json.loads(raw)["error"]["msg"] == "Malformed request: invalid JSON.", raw
