"""Encode-once fan-out of stream messages to WebSocket subscribers.

Each update is encoded to JSON once (by the publisher) and framed once here: a server-to-client
WebSocket text frame is unmasked (RFC 6455), so the *same frame bytes* can be written to every
subscriber's transport. Subscribers with the same set of streams (and the same wrapper: raw or
combined) form a group; a flush joins the group's frames once and writes that one bytes object to
each member, so the per-subscriber cost is a single non-blocking ``transport.write``.

Nothing here ever awaits a subscriber: `Hub.publish` appends to a log and `Hub.flush` (scheduled
with ``call_soon``) writes. Each subscriber's send buffer (the transport's write buffer, a queue
of bytes) is bounded: a write that would take it past ``max_buffer_bytes`` disconnects the
subscriber instead, with close code 1008 and the reason ``slow consumer: ...``, and the transport
is aborted after a short grace period if the close frame cannot be delivered.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import Final

import structlog

log = structlog.get_logger(__name__)

CLOSE_SLOW_CONSUMER: Final = 1008
"""Policy violation: the subscriber did not read fast enough."""
ABORT_GRACE_S: Final = 1.0


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (server to client) around ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def close_frame(code: int, reason: str) -> bytes:
    body = struct.pack("!H", code) + reason.encode("utf-8")[:123]
    return bytes((0x88, len(body))) + body


class Subscriber:
    """One WebSocket connection's subscriptions and transport."""

    __slots__ = ("close_reason", "combined", "group", "on_close", "streams", "transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        combined: bool,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.combined = combined
        self.streams: set[str] = set()
        self.group: _Group | None = None
        self.close_reason = ""
        self.on_close = on_close


class _Group:
    __slots__ = ("combined", "members", "streams")

    def __init__(self, streams: frozenset[str], combined: bool) -> None:
        self.streams = streams
        self.combined = combined
        self.members: set[Subscriber] = set()


class Hub:
    """Subscriptions, the per-flush message log and the bounded writes."""

    def __init__(self, max_buffer_bytes: int = 4 << 20, flush_interval_s: float = 0.0) -> None:
        self.max_buffer_bytes = max_buffer_bytes
        self.flush_interval_s = flush_interval_s
        """At most one flush per interval (0 = flush as soon as the publisher yields). Each
        flush costs one write per subscriber, so under a stream of small updates a short
        interval trades a few ms of latency for far fewer writes (system calls)."""
        self._last_flush = 0.0
        self._groups: dict[tuple[frozenset[str], bool], _Group] = {}
        self._subscribers_per_stream: dict[str, int] = {}
        self._log: list[tuple[str, bytes]] = []
        self._event_ns: list[int] = []
        """Per log entry: the engine's timestamp of the oldest event it carries (0: a timer's
        message, such as a kline or the ticker, which no single event caused)."""
        self.on_lag: Callable[[list[float]], None] | None = None
        """Called once per flush with, per message carrying an event time, the seconds from
        that engine timestamp to the frame's write (the gateway's market-data lag histogram)."""
        self._flush_scheduled = False
        self.messages_published = 0
        self.frames_written = 0
        self.bytes_written = 0
        self.slow_disconnects = 0

    # ---- subscriptions ------------------------------------------------------------------

    def wants(self, stream: str) -> bool:
        """True when someone is subscribed (publishers skip encoding otherwise)."""
        return stream in self._subscribers_per_stream

    @property
    def subscriber_count(self) -> int:
        return sum(len(g.members) for g in self._groups.values())

    def set_streams(self, sub: Subscriber, streams: set[str]) -> None:
        """Replace ``sub``'s subscriptions (moves it to the group of its new stream set)."""
        counts = self._subscribers_per_stream
        for name in sub.streams - streams:
            counts[name] -= 1
            if counts[name] == 0:
                del counts[name]
        for name in streams - sub.streams:
            counts[name] = counts.get(name, 0) + 1
        self._leave_group(sub)
        sub.streams = set(streams)
        if streams:
            key = (frozenset(streams), sub.combined)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(key[0], sub.combined)
            group.members.add(sub)
            sub.group = group

    def _leave_group(self, sub: Subscriber) -> None:
        group = sub.group
        if group is not None:
            group.members.discard(sub)
            if not group.members:
                del self._groups[(group.streams, group.combined)]
            sub.group = None

    def remove(self, sub: Subscriber) -> None:
        self.set_streams(sub, set())

    # ---- publishing ---------------------------------------------------------------------

    def publish(self, stream: str, payload: bytes, event_ns: int = 0) -> None:
        """Queue ``payload`` (encoded JSON) for every subscriber of ``stream``; never blocks.
        ``event_ns``: the engine timestamp of the oldest event in it, for the lag metric."""
        if stream not in self._subscribers_per_stream:
            return
        self._log.append((stream, payload))
        self._event_ns.append(event_ns)
        self.messages_published += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = asyncio.get_running_loop()
            wait = self._last_flush + self.flush_interval_s - loop.time()
            if wait > 0:
                loop.call_later(wait, self.flush)
            else:
                loop.call_soon(self.flush)

    def flush(self) -> None:
        """Frame each queued message once and write each group's bytes to its members."""
        self._flush_scheduled = False
        if self.flush_interval_s:
            self._last_flush = asyncio.get_running_loop().time()
        entries = self._log
        if not entries:
            return
        event_ns = self._event_ns
        self._log, self._event_ns = [], []
        raw: list[bytes | None] = [None] * len(entries)
        wrapped: list[bytes | None] = [None] * len(entries)
        touched = {stream for stream, _ in entries}
        for group in list(self._groups.values()):
            if touched.isdisjoint(group.streams):
                continue
            frames: list[bytes] = []
            for i, (stream, payload) in enumerate(entries):
                if stream not in group.streams:
                    continue
                cache = wrapped if group.combined else raw
                frame = cache[i]
                if frame is None:
                    body = (
                        b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"
                        if group.combined
                        else payload
                    )
                    frame = cache[i] = text_frame(body)
                frames.append(frame)
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            self._write_group(group, data, len(frames))
        if self.on_lag is not None:
            # Written (or refused as slow) just now: the clock is the engine's (epoch ns), and a
            # clock stepped back could make a lag negative, counted as 0.
            now_ns = time.time_ns()
            lags = [max(0, now_ns - ns) / 1e9 for ns in event_ns if ns]
            if lags:
                self.on_lag(lags)

    def _write_group(self, group: _Group, data: bytes, count: int) -> None:
        """Write ``data`` (``count`` frames) to every member of ``group``.

        The loop body is the per-subscriber cost of the whole fan-out, so it is kept to the
        transport calls (no method call or counter update per member): at 1,000 subscribers the
        ``send`` system call in ``transport.write`` is ~93 % of a flush (py-spy)."""
        limit = self.max_buffer_bytes - len(data)
        written = 0
        dropped: list[Subscriber] = []
        for sub in group.members:
            transport = sub.transport
            if transport.is_closing() or transport.get_write_buffer_size() > limit:
                dropped.append(sub)
                continue
            transport.write(data)
            written += 1
        self.frames_written += count * written
        self.bytes_written += len(data) * written
        for sub in dropped:  # after the loop: both change group.members
            if sub.transport.is_closing():
                self.remove(sub)
            else:
                self.disconnect(
                    sub,
                    CLOSE_SLOW_CONSUMER,
                    f"slow consumer: send buffer exceeded {self.max_buffer_bytes} bytes",
                )

    def write_control(self, sub: Subscriber, payload: bytes) -> bool:
        """Send one reply (e.g. to SUBSCRIBE) through the same bounded buffer."""
        if sub.transport.is_closing():
            return False
        if sub.transport.get_write_buffer_size() + len(payload) > self.max_buffer_bytes:
            self.disconnect(
                sub,
                CLOSE_SLOW_CONSUMER,
                f"slow consumer: send buffer exceeded {self.max_buffer_bytes} bytes",
            )
            return False
        sub.transport.write(text_frame(payload))
        return True

    def disconnect(self, sub: Subscriber, code: int, reason: str) -> None:
        """Drop ``sub`` now: unsubscribe, queue a close frame, abort if it cannot drain."""
        self.remove(sub)
        if sub.close_reason:
            return
        sub.close_reason = reason
        if code == CLOSE_SLOW_CONSUMER:
            self.slow_disconnects += 1
        log.warning("marketdata_disconnect", code=code, reason=reason)
        transport = sub.transport
        if not transport.is_closing():
            transport.write(close_frame(code, reason))
            transport.close()
            asyncio.get_running_loop().call_later(ABORT_GRACE_S, transport.abort)
        if sub.on_close is not None:
            sub.on_close()
