"""The WS API at ``/ws-api/v3``: ``{id, method, params}`` -> ``{id, status, result|error,
rateLimits}``, one JSON request per text frame, answered in completion order (match by id).

Requests are handled concurrently (a task each) so one connection can pipeline orders into the
same group commit. Authentication: ``session.logon`` (HMAC or Ed25519 signature; the dialect has
Ed25519 only, HMAC is accepted here too) or a signature on each request (``apiKey``,
``timestamp``, ``signature`` in params). Extensions, marked as such in the README:

- ``session.logon`` with ``cancelOnDisconnect: true``: when the connection drops, the
  engine's CancelOnDisconnect is journaled and cancels every open order of the account.
- ``deadMansSwitch.set`` ``{timeoutMs}``: unless called again within ``timeoutMs``, the
  engine cancels every open order of the account on journal time (0 disarms).
Both live in `gateway.deadman`.

Connection hygiene: frames above ``max_message_bytes`` close the connection (1009); the server
pings every ``ws_heartbeat_s`` and drops a peer that does not pong; an idle connection (no
request for ``idle_timeout_s``) and any connection older than ``max_connection_s`` are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from engine.jsondepth import MAX_JSON_DEPTH, too_deep
from gateway import auth, errors, handlers
from gateway.app import GATEWAY_KEY
from gateway.keys import ApiKey

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class _Envelope(msgspec.Struct, gc=False):
    """A request's envelope, decoded straight into a Struct (no dict for it); a frame that
    is not an object falls back to `_decode` so its error stays the one below."""

    id: Any = None
    method: Any = None
    params: msgspec.Raw = msgspec.Raw()
    """Left undecoded here (its syntax is checked): decoded once the method is known, typed
    for a method that has a Struct for its params (`handlers.MethodSpec.typed`)."""


_decode_envelope = msgspec.json.Decoder(_Envelope).decode


def _invalid_json() -> errors.ApiError:
    return errors.ApiError(errors.MANDATORY_PARAM, "Malformed request: invalid JSON.")


MAX_BUFFER_BYTES: Final = 16 << 20
MAX_INFLIGHT: Final = 4_096
SESSIONS_KEY: Final = web.AppKey("ws_sessions", set)


_SHORT_HEADERS: Final = tuple(bytes((0x81, n)) for n in range(126))


def _frame_header(n: int) -> bytes:
    """The header of an unmasked, uncompressed text frame (server to client) of ``n`` bytes;
    the payload follows it in the same write, never copied into one object."""
    if n < 126:
        return _SHORT_HEADERS[n]
    if n < 65_536:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


class Session:
    """One WS API connection. Outgoing messages are queued and flushed once per loop pass as
    whole frames in a single transport write (one syscall for many acknowledgements); a client
    whose unsent data exceeds MAX_BUFFER_BYTES is disconnected rather than slowing others."""

    def __init__(
        self, gw: Gateway, ws: web.WebSocketResponse, ip: str, transport: asyncio.Transport | None
    ) -> None:
        self.gw = gw
        self.ws = ws
        self.ip = ip
        self.key: ApiKey | None = None
        self.origin = auth.new_origin()
        """This connection's number for the replay guard (`auth.ReplayGuard`)."""
        self.authorized_since = 0
        self.connected_since = time.time_ns() // 1_000_000
        self.cancel_on_disconnect = False
        self.subscriptions: set[int] = set()
        self._transport = transport
        self._outbox: list[bytes] = []
        self._closed = False
        self.inflight = 0
        self.last_recv = time.monotonic()
        self.deadline = float("inf")

    def push(self, data: bytes) -> None:
        if self._closed:
            return
        outbox = self._outbox
        if not outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        outbox.append(_frame_header(len(data)))
        outbox.append(data)

    def _flush(self) -> None:
        frames, self._outbox = self._outbox, []
        t = self._transport
        if self._closed or t is None or t.is_closing():
            self._closed = True
            return
        t.write(b"".join(frames))
        if t.get_write_buffer_size() > MAX_BUFFER_BYTES:  # slow consumer
            self._closed = True
            asyncio.get_running_loop().create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow consumer")
            )

    async def stop(self) -> None:
        if self._outbox:
            self._flush()
        self._closed = True


def _reply(
    session: Session,
    req_id: Any,
    status: int,
    result: Any = None,
    error: errors.ApiError | None = None,
    limits: list[bytes] | None = None,
) -> None:
    """One encoder call per answer; ``limits`` are the usages, pre-encoded
    (`ratelimit.Window.describe_json`)."""
    out: dict[str, Any] = {"id": req_id, "status": status}
    if error is not None:
        out["error"] = error.body()
        session.gw.metrics.rejects.labels(str(error.code)).inc()
    else:
        out["result"] = result
    if limits is not None:
        out["rateLimits"] = msgspec.Raw(b"[%b]" % b",".join(limits))
    session.push(_encode(out))


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(1 << 63) <= value < (1 << 63)
    return isinstance(value, str) and len(value) <= 64


def _dispatch(session: Session, raw: str) -> tuple[Any, Any, Any, Any, Any] | None:
    """Parse, rate-limit and authenticate one request synchronously. Fast-path methods are
    queued here and answered from a callback; others return what `_request` needs. None when
    the request is already handled (answered or queued)."""
    gw = session.gw
    req_id: Any = None
    limits: list[bytes] | None = None
    try:
        if too_deep(raw):
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                f"Malformed request: JSON nested deeper than {MAX_JSON_DEPTH} levels.",
            )
        try:
            msg = _decode_envelope(raw)
        except msgspec.ValidationError:  # not an object; maybe not JSON either (`[1,}`)
            msg = None
        except (msgspec.DecodeError, ValueError):
            raise _invalid_json() from None
        if msg is None:
            try:
                _decode(raw)
            except (msgspec.DecodeError, ValueError):
                raise _invalid_json() from None
            raise errors.ApiError(errors.MANDATORY_PARAM, "Malformed request: not an object.")
        method = msg.method
        spec = handlers.WS_METHODS.get(method) if isinstance(method, str) else None
        raw_params = msg.params
        typed = None if spec is None or spec.typed is None else spec.typed.decode(raw_params)
        params: Any = None
        if typed is None and raw_params:
            try:  # before the id's check, as when the whole frame was decoded at once
                params = _decode(raw_params)
            except (msgspec.DecodeError, ValueError):  # e.g. a number out of range
                raise _invalid_json() from None
        if not _valid_id(msg.id):
            raise errors.ApiError(errors.INVALID_PARAMETER, "Invalid request id.")
        req_id = msg.id
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise errors.ApiError(errors.MANDATORY_PARAM, "Malformed request: 'params'.")
        if spec is None:
            raise errors.ApiError(errors.MANDATORY_PARAM, "Unknown method.")
        now = auth.now_ms()
        key_id = session.key.api_key if session.key is not None else None
        limiter = gw.limiter
        window, weight = limiter.weigh(session.ip, key_id, spec.weight, now)
        limits = [window.describe_json(weight)]
        key = _authenticate(session, spec, params if typed is None else typed.timing(), now)
        if spec.orders and key is not None:
            n10, nday = limiter.count_order(session.ip, key.account_id, now)
            limits.append(limiter.orders_10s.describe_json(n10))
            limits.append(limiter.orders_day.describe_json(nday))
        if typed is not None:
            assert key is not None and spec.typed is not None
            spec.typed.submit(session, key, typed, raw_params, _Answer(session, req_id, limits))
            return None
        if spec.submit is None:
            return req_id, limits, spec, key, params
        assert key is not None
        spec.submit(session, key, params, _Answer(session, req_id, limits))
        return None
    except errors.ApiError as exc:
        _reply(session, req_id, exc.status, error=exc, limits=limits)
        return None


class _Answer:
    """Renders a fast-path request's outcome as its reply (called from the batch loop)."""

    __slots__ = ("limits", "req_id", "session")

    def __init__(self, session: Session, req_id: Any, limits: Any) -> None:
        self.session = session
        self.req_id = req_id
        self.limits = limits

    def __call__(self, result: Any, error: BaseException | None) -> None:
        if error is None:
            metrics = self.session.gw.metrics
            metrics.orders.value += 1
            metrics.ws_requests.inc()
            _reply(self.session, self.req_id, 200, result, limits=self.limits)
        else:
            _reply_failure(self.session, self.req_id, error, self.limits)


def _reply_failure(session: Session, req_id: Any, error: BaseException, limits: Any) -> None:
    """An ApiError is the answer itself; anything else is a bug: logged, answered 500."""
    if not isinstance(error, errors.ApiError):
        log.error("ws_request_failed", error=repr(error), exc_info=error)
        error = errors.ApiError(
            errors.UNKNOWN, "An unknown error occurred while processing the request.", 500
        )
    _reply(session, req_id, error.status, error=error, limits=limits)


async def _request(
    session: Session,
    req_id: Any,
    limits: Any,
    spec: handlers.MethodSpec,
    key: ApiKey | None,
    params: dict[str, Any],
) -> None:
    try:
        result = await spec.fn(session, key, params)
        metrics = session.gw.metrics
        metrics.ws_requests.inc()
        if spec.orders:
            metrics.orders.value += 1
        _reply(session, req_id, 200, result, limits=limits)
    except Exception as exc:
        _reply_failure(session, req_id, exc, limits)


def _authenticate(
    session: Session, spec: handlers.MethodSpec, params: Mapping[str, Any], now: int
) -> ApiKey | None:
    """``params``: the request's, or for typed params only their ``timestamp`` and
    ``recvWindow`` (typed params are never signed ones, `gateway.placeparams.decode`)."""
    if spec.permission is None:
        return None
    gw = session.gw
    if "signature" in params:
        key = auth.lookup_key(gw.keys, params.get("apiKey"), session.ip)
        expires = auth.check_timestamp(params, now)
        payload = auth.ws_payload(params)
        auth.verify(key, payload, params["signature"])
        if spec.single_use:
            gw.replays.check(key, payload, expires, now, origin=session.origin)
        else:
            gw.replays.note_read(key, payload, expires, now, origin=session.origin)
    elif session.key is not None:
        key = session.key
        if "timestamp" in params:
            auth.check_timestamp(params, now)
    else:
        raise errors.ApiError(
            errors.UNAUTHORIZED, "You are not authorized to execute this request.", 401
        )
    auth.require(key, spec.permission)
    return key


async def handle(request: web.Request) -> web.StreamResponse:
    gw: Gateway = request.app[GATEWAY_KEY]
    limits = gw.config.limits
    ip = request.remote or "?"
    try:
        gw.limiter.connect(ip, auth.now_ms())
    except errors.ApiError as exc:
        return web.json_response(exc.body(), status=exc.status)
    ws = web.WebSocketResponse(
        heartbeat=limits.ws_heartbeat_s, compress=False, max_msg_size=limits.max_message_bytes
    )
    try:
        await ws.prepare(request)
    except BaseException:
        gw.limiter.disconnect(ip)
        raise
    session = Session(gw, ws, ip, request.transport)  # type: ignore[arg-type]
    sessions: set[Session] = request.app[SESSIONS_KEY]
    sessions.add(session)
    gw.metrics.sessions.inc()
    session.deadline = time.monotonic() + limits.max_connection_s
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            msg = await ws.receive()  # idle and lifetime limits: see _sweep
            session.last_recv = time.monotonic()
            if msg.type == WSMsgType.TEXT:
                pending = _dispatch(session, msg.data)
                if pending is None:
                    continue
                while session.inflight >= MAX_INFLIGHT:
                    await asyncio.sleep(0.001)
                session.inflight += 1
                task = asyncio.get_running_loop().create_task(_request(session, *pending))
                tasks.add(task)
                task.add_done_callback(lambda t: (tasks.discard(t), _done(session)))
            elif msg.type == WSMsgType.BINARY:
                _reply(
                    session,
                    None,
                    400,
                    error=errors.ApiError(
                        errors.MANDATORY_PARAM, "Malformed request: binary frames are not accepted."
                    ),
                )
            else:  # CLOSE, CLOSING, CLOSED, ERROR (e.g. a frame over the size limit)
                break
    finally:
        sessions.discard(session)
        gw.metrics.sessions.dec()
        gw.limiter.disconnect(ip)
        gw.user_streams.drop(session)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await session.stop()
        if session.cancel_on_disconnect and session.key is not None:
            gw.dead_mans.cancel_on_disconnect(session.key.account_id)
    return ws


def _done(session: Session) -> None:
    session.inflight -= 1


async def close_all(gw: Gateway) -> None:
    for app_sessions in list(getattr(gw, "_sessions", ())):
        with contextlib.suppress(Exception):
            await app_sessions.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def _sweep(gw: Gateway, sessions: set[Session]) -> None:
    """Once a second: close idle connections and those past their maximum lifetime (one timer
    for all sessions, instead of a timeout on every receive)."""
    limits = gw.config.limits
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        for s in list(sessions):
            if now > s.deadline:
                await s.ws.close(code=WSCloseCode.GOING_AWAY, message=b"connection lifetime")
            elif now - s.last_recv > limits.idle_timeout_s:
                await s.ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle timeout")


def setup(app: web.Application, gw: Gateway) -> None:
    sessions: set[Session] = set()
    app[SESSIONS_KEY] = sessions
    gw._sessions = sessions  # type: ignore[attr-defined]
    app.router.add_get("/ws-api/v3", handle)

    async def start_sweeper(_: web.Application) -> None:
        task = asyncio.get_running_loop().create_task(_sweep(gw, sessions))
        gw._sweeper = task  # type: ignore[attr-defined]

    async def stop_sweeper(_: web.Application) -> None:
        task = getattr(gw, "_sweeper", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start_sweeper)
    app.on_shutdown.append(stop_sweeper)
