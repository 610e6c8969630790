"""The two hot NATS paths of cluster mode without nats-py's per-message machinery.

Every replica receives every stream message, and every gateway waits for a PubAck per batch
it publishes. Through nats-py each of those costs: a header dict, a `Msg` object, a put on
the subscription's queue, a wake-up of the subscription's task, the JetStream bookkeeping of
`_process_msg`, and for a PubAck also the request multiplexer's task, `asyncio.wait_for`,
`json.loads` and a `PubAck` dataclass. Profiled, that was ~25-30 % of a gateway's samples at
moderate load (docs/scaling.md, "What a gateway pays per replicated stream message").

`DirectClient` is nats-py's client with one hook: messages for a subscription registered
with `direct_subscribe` go straight from the protocol parser to a plain function (subject,
reply, payload, raw headers), on the read loop, with no queue and no task. Everything else
(connection, reconnection and re-subscription, TLS, credentials, the JetStream API, the
stream's audit reads) stays nats-py's. On it:

* `DirectAcks` publishes with a reply inbox of its own and resolves the publisher's future
  from the PubAck right in the read loop (one msgspec decode);
* `engine.streamlog.StreamLog.follow` binds the replica's push consumer (no acks, no flow
  control) to a direct subscription and turns each message into a `StreamMessage` there.

The promises do not change: a publish returns only on the stream's PubAck (stored, and
replicated at R3), errors and "no responders" raise the same nats-py exceptions as
``js.publish``, and the replica still sees every message in stream order.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, Final

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.subscription import Subscription

DirectHandler = Callable[[bytes, bytes, bytes, bytes | None], None]
"""(subject, reply, payload, raw headers or None), called on the read loop."""

_STATUS_PREFIX: Final = b"NATS/1.0 "
"""A status message (heartbeat, flow control, no responders): the version, a space, a code."""
_NO_RESPONDERS: Final = b"NATS/1.0 503"
_HDR_LINE_LEN: Final = len(b"NATS/1.0\r\n")


class DirectClient(Client):
    """nats-py's client; subscriptions made by `direct_subscribe` bypass its dispatch."""

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, DirectHandler] = {}

    async def direct_subscribe(self, subject: str, handler: DirectHandler) -> Subscription:
        """Subscribe ``subject`` so that its messages go to ``handler`` unparsed. A normal
        nats-py subscription underneath (so a reconnect subscribes it again), without a
        callback task: its queue is never used."""
        sub = await self.subscribe(subject)
        self._direct[sub._id] = handler
        return sub

    async def direct_unsubscribe(self, sub: Subscription) -> None:
        self._direct.pop(sub._id, None)
        await sub.unsubscribe()

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        handler = self._direct.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        try:
            handler(subject, reply, data, headers)
        except Exception as exc:  # as nats-py does for a callback: reported, never the reader's
            await self._error_cb(exc)


def is_status(headers: bytes | None) -> bool:
    """A server status message (idle heartbeat, flow control, 503), not a stored message."""
    return headers is not None and headers.startswith(_STATUS_PREFIX)


def header_value(headers: bytes | None, name: str) -> str | None:
    """``name``'s value in a raw NATS header block, parsed exactly as nats-py parses headers
    for a `Msg` (`Client._parse_header_lines`: ``Name: Value`` lines, the name and the value
    stripped, a name with inner whitespace or non-ASCII bytes skipped, the last line wins),
    so a replica fed through this path and an audit read through nats-py's derive the same
    value from the same message. Only the one name is looked for: a line whose stripped name
    equals it is exactly a line nats-py would key by it."""
    if headers is None or len(headers) <= _HDR_LINE_LEN + 2:
        return None
    key = name.encode("ascii")
    if key not in headers:
        return None
    value: bytes | None = None
    for line in headers[_HDR_LINE_LEN:].split(b"\r\n"):
        head, sep, tail = line.partition(b":")
        if sep and head.strip() == key:
            value = tail
    return None if value is None else value.strip().decode("utf-8", "replace")


class _PubAck(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_PUBACK_DECODER: Final = msgspec.json.Decoder(_PubAck)


class DirectAcks:
    """JetStream publishes whose PubAcks come back through one direct subscription.

    Same contract as ``JetStreamContext.publish``: returns ``(stream seq, duplicate)`` once
    the stream stored the message; raises `nats.errors.TimeoutError` when no ack came in
    ``timeout_s``, `nats.js.errors.NoStreamResponseError` when no stream listens (503), and
    `nats.js.errors.APIError` for a JetStream error (e.g. wrong expected stream)."""

    def __init__(self, nc: DirectClient) -> None:
        self._nc = nc
        self._prefix = ""
        self._next = itertools.count(1)
        self._waiting: dict[bytes, asyncio.Future[tuple[int, bool]]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.direct_subscribe(self._prefix + "*", self._on_reply)

    async def publish(
        self, subject: str, data: bytes, headers: dict[str, str], timeout_s: float
    ) -> tuple[int, bool]:
        assert self._sub is not None, "DirectAcks.start() first"
        token = str(next(self._next))
        key = token.encode()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, bool]] = loop.create_future()
        self._waiting[key] = fut
        timer = loop.call_later(timeout_s, _expire, fut)
        try:
            await self._nc.publish(subject, data, reply=self._prefix + token, headers=headers)
            return await fut
        finally:
            timer.cancel()
            self._waiting.pop(key, None)

    def _on_reply(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        fut = self._waiting.get(subject[subject.rfind(b".") + 1 :])
        if fut is None or fut.done():
            return  # late (timed out) or a second reply: the caller has moved on
        if headers is not None and headers.startswith(_NO_RESPONDERS):
            fut.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            ack = _PUBACK_DECODER.decode(data)
        except msgspec.DecodeError as exc:
            fut.set_exception(nats.errors.Error(f"undecodable PubAck: {exc}"))
            return
        if ack.error is not None:
            try:
                nats.js.errors.APIError.from_error(ack.error)  # raises the matching APIError
            except Exception as exc:
                fut.set_exception(exc)
            else:
                fut.set_exception(nats.js.errors.APIError(description=str(ack.error)))
            return
        fut.set_result((ack.seq, ack.duplicate))

    async def close(self) -> None:
        for fut in self._waiting.values():
            if not fut.done():
                fut.cancel()
        self._waiting.clear()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await self._nc.direct_unsubscribe(sub)


def _expire(fut: asyncio.Future[tuple[int, bool]]) -> None:
    if not fut.done():
        fut.set_exception(nats.errors.TimeoutError())
