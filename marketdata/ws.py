"""WebSocket market-data streams in the Binance dialect (aiohttp handlers).

- ``/ws/<stream>`` (or ``/ws`` alone): raw messages, subscribe more with messages.
- ``/stream?streams=a/b/c``: combined messages ``{"stream": name, "data": payload}``.

Messages from the client: ``{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [names], "id": n}``,
``{"method": "LIST_SUBSCRIPTIONS", "id": n}``, ``{"method": "SET_PROPERTY", "params":
["combined", true], "id": n}``, ``{"method": "GET_PROPERTY", "params": ["combined"], "id": n}``.
Replies: ``{"result": null|[...], "id": n}``; errors ``{"error": {"code", "msg"}, "id": n}`` with
the dialect's codes: 0 unknown property, 1 invalid value type, 2 invalid request (unknown
method, bad params, unknown or malformed stream: nothing is subscribed then), 3 invalid JSON.
A bad stream in the URL is refused before the upgrade with HTTP 400 ``{"code": -1100, ...}``.

Limits: at most 1,024 streams per connection and 10 incoming messages per second (past that the
connection is closed with 1008); frames up to 64 KiB. The server pings every
``ws_heartbeat_s`` (20 s by default) and closes a connection that does not answer, and closes
any connection after ``max_connection_s`` (24 h by default, as the dialect) with 1001. Open
connections per IP are capped where the gateway accepts them (`gateway.connlimit`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from engine.jsondepth import MAX_JSON_DEPTH, too_deep
from marketdata.fanout import CLOSE_SLOW_CONSUMER, Subscriber
from marketdata.rest import SERVICE_KEY, json_response
from marketdata.service import MarketDataService
from marketdata.streams import StreamError, parse_stream

MAX_STREAMS: Final = 1_024
MAX_MESSAGES_PER_S: Final = 10
MAX_FRAME_BYTES: Final = 64 << 10
CLOSE_GOING_AWAY: Final = 1001
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class _RequestError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _parse_all(names: Any, symbols: frozenset[str]) -> list[str]:
    if not isinstance(names, list) or not names:
        raise _RequestError(
            2, "Invalid request: 'params' must be a non-empty array of stream names"
        )
    out = []
    for name in names:
        if not isinstance(name, str):
            raise _RequestError(2, "Invalid request: stream names must be strings")
        try:
            out.append(parse_stream(name, symbols).name)
        except StreamError as exc:
            raise _RequestError(2, f"Invalid request: {exc}") from None
    return out


class _Connection:
    """One client connection: its subscriber entry and the request handling."""

    def __init__(self, service: MarketDataService, sub: Subscriber) -> None:
        self.service = service
        self.sub = sub
        self._window_start = time.monotonic()
        self._window_count = 0

    def reply(self, body: dict[str, Any]) -> None:
        self.service.hub.write_control(self.sub, _encode(body))

    def over_rate(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        return self._window_count > MAX_MESSAGES_PER_S

    def handle(self, text: str) -> None:
        request_id: Any = None
        try:
            if too_deep(text):
                raise _RequestError(3, f"Invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
            try:
                msg = _decode(text)
            except msgspec.DecodeError as exc:
                raise _RequestError(3, f"Invalid JSON: {exc}") from None
            if not isinstance(msg, dict):
                raise _RequestError(2, "Invalid request: expected a JSON object")
            request_id = msg.get("id")
            if not (
                (
                    isinstance(request_id, int)
                    and not isinstance(request_id, bool)
                    and 0 <= request_id < 1 << 63
                )
                or (isinstance(request_id, str) and 0 < len(request_id) <= 36)
            ):
                request_id = None
                raise _RequestError(
                    2,
                    "Invalid request: request ID must be an unsigned "
                    "integer (or a string of at most 36 characters)",
                )
            unknown = set(msg) - {"method", "params", "id"}
            if unknown:
                raise _RequestError(2, f"Invalid request: unknown property {sorted(unknown)[0]!r}")
            self.reply(
                {"result": self._dispatch(msg.get("method"), msg.get("params")), "id": request_id}
            )
        except _RequestError as err:
            self.reply({"error": {"code": err.code, "msg": err.msg}, "id": request_id})

    def _dispatch(self, method: Any, params: Any) -> Any:
        hub, sub = self.service.hub, self.sub
        if method == "SUBSCRIBE":
            names = _parse_all(params, self.service.symbols)
            streams = sub.streams | set(names)
            if len(streams) > MAX_STREAMS:
                raise _RequestError(
                    2, f"Invalid request: too many streams (at most {MAX_STREAMS} per connection)"
                )
            hub.set_streams(sub, streams)
            return None
        if method == "UNSUBSCRIBE":
            names = _parse_all(params, self.service.symbols)
            hub.set_streams(sub, sub.streams - set(names))
            return None
        if method == "LIST_SUBSCRIPTIONS":
            if params not in (None, []):
                raise _RequestError(2, "Invalid request: LIST_SUBSCRIPTIONS takes no params")
            return sorted(sub.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                raise _RequestError(0, "Unknown property")
            if method == "GET_PROPERTY":
                return sub.combined
            if len(params) != 2 or not isinstance(params[1], bool):
                raise _RequestError(1, "Invalid value type: expected Boolean")
            streams = set(sub.streams)
            hub.set_streams(sub, set())
            sub.combined = params[1]
            hub.set_streams(sub, streams)
            return None
        if not isinstance(method, str):
            raise _RequestError(2, "Invalid request: 'method' must be a string")
        raise _RequestError(
            2,
            f"Invalid request: unknown method {method[:40]!r} (expected "
            "SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, "
            "GET_PROPERTY)",
        )


async def _serve(request: web.Request, names: list[str], combined: bool) -> web.StreamResponse:
    service: MarketDataService = request.config_dict[SERVICE_KEY]
    try:
        streams = [parse_stream(n, service.symbols).name for n in names]
    except StreamError as exc:
        return json_response({"code": -1100, "msg": str(exc)}, 400)
    if len(streams) > MAX_STREAMS:
        return json_response(
            {"code": -1100, "msg": f"too many streams (at most {MAX_STREAMS})"}, 400
        )
    ws = web.WebSocketResponse(
        heartbeat=service.ws_heartbeat_s,
        compress=False,
        max_msg_size=MAX_FRAME_BYTES,
        autoping=True,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        return ws
    sub = Subscriber(transport, combined)  # type: ignore[arg-type]
    conn = _Connection(service, sub)
    service.hub.set_streams(sub, set(streams))
    lifetime = asyncio.get_running_loop().call_later(
        service.max_connection_s,
        service.hub.disconnect,
        sub,
        CLOSE_GOING_AWAY,
        "connection lifetime",
    )
    try:
        async for msg in ws:
            if sub.close_reason:
                break
            if conn.over_rate():
                service.hub.disconnect(
                    sub, CLOSE_SLOW_CONSUMER, f"too many messages (at most {MAX_MESSAGES_PER_S}/s)"
                )
                break
            if msg.type == WSMsgType.TEXT:
                conn.handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.reply(
                    {
                        "error": {"code": 3, "msg": "Invalid JSON: binary frames are not accepted"},
                        "id": None,
                    }
                )
    finally:
        lifetime.cancel()
        service.hub.remove(sub)
    return ws


async def raw_stream(request: web.Request) -> web.StreamResponse:
    """GET /ws/<stream> (several may be joined with ``/``) or /ws."""
    path = request.match_info.get("streams", "")
    names = [n for n in path.split("/") if n]
    return await _serve(request, names, combined=False)


async def combined_stream(request: web.Request) -> web.StreamResponse:
    """GET /stream?streams=a/b/c."""
    names = [n for n in request.query.get("streams", "").split("/") if n]
    return await _serve(request, names, combined=True)
