"""The command log on NATS JetStream (cluster mode): publish batches, read the stream in order.

The stream is the log (DESIGN.md, Cluster mode): its order is the one total order of commands,
its storage (file, R1 or R3 over Raft) is the durability. This module only moves bytes; what a
message means is `engine.replica`'s business. A message is appended once the stream has
acknowledged it (PubAck); retries of a publish carry the same ``Nats-Msg-Id`` so the stream
keeps one copy within its duplicate window.

Connections are never made open by accident: `NatsOptions` carries credentials (a ``.creds``
file, an nkey seed, or user/password) and TLS (CA, client certificate) and `connect` passes
them on every connection; ``servers`` may list several URLs of one cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError as JsNotFound

from engine.natsconnect import first_connect
from engine.natsdirect import DirectAcks, DirectClient, header_value, is_status
from engine.replica import FORMAT_HEADER, StreamMessage
from engine.usererror import UserError

log = structlog.get_logger(__name__)

T = TypeVar("T")

NO_SUITABLE_PEERS: Final = 10005
"""JetStream's error code for "no suitable peers for placement"."""
PLACEMENT_WAIT_S: Final = 10.0
"""How long a creation waits for enough current peers (`StreamLog.create_placed`)."""


class StreamNotFound(UserError):
    """``connect(create=False)`` on a stream that does not exist (a mistyped ``--stream``, or
    a cluster's first start)."""


DEFAULT_STREAM: Final = "KOOTABASE"
DUPLICATE_WINDOW_S: Final = 120.0
MAX_MSG_BYTES: Final = 1 << 20
_V1_TOKENS: Final = 9
HEARTBEAT_S: Final = 0.5
"""Idle heartbeat of the ordered consumers: a consumer lost with its stream leader is
noticed after two missed heartbeats and re-created on the new leader."""


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """Where NATS is and how this process proves who it is."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    name: str = "kootabase"
    creds_file: Path | None = None
    nkey_seed_file: Path | None = None
    user: str | None = None
    password: str | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    connect_timeout_s: float = 2.0
    reconnect_wait_s: float = 0.25
    first_connect_s: float = 15.0
    """How long the first connection may take (every server tried in turn, again and again)
    before the command gives up with one line; once connected, reconnection never gives up."""

    @classmethod
    def parse(cls, urls: str, **kwargs: Any) -> NatsOptions:
        """``URL[,URL...]`` as given on the command line."""
        servers = tuple(u.strip() for u in urls.split(",") if u.strip())
        if not servers:
            raise ValueError("--nats needs at least one URL")
        for url in servers:
            if not url.startswith(("nats://", "tls://")):
                raise ValueError(f"NATS URL {url!r} must start with nats:// or tls://")
        return cls(servers=servers, **{k: v for k, v in kwargs.items() if v is not None})

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_ca_file is None and self.tls_cert_file is None:
            return None
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.tls_ca_file) if self.tls_ca_file else None
        )
        if self.tls_cert_file is not None:
            ctx.load_cert_chain(
                str(self.tls_cert_file), str(self.tls_key_file) if self.tls_key_file else None
            )
        return ctx

    def connect_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "servers": list(self.servers),
            "name": self.name,
            "connect_timeout": self.connect_timeout_s,
            "reconnect_time_wait": self.reconnect_wait_s,
            "max_reconnect_attempts": -1,
            "allow_reconnect": True,
        }
        if self.creds_file is not None:
            kw["user_credentials"] = str(self.creds_file)
        if self.nkey_seed_file is not None:
            kw["nkeys_seed"] = str(self.nkey_seed_file)
        if self.user is not None:
            kw["user"] = self.user
            kw["password"] = self.password or ""
        tls = self.ssl_context()
        if tls is not None:
            kw["tls"] = tls
        return kw


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str = DEFAULT_STREAM
    replicas: int = 1
    duplicate_window_s: float = DUPLICATE_WINDOW_S

    def __post_init__(self) -> None:
        if self.replicas not in (1, 3, 5):
            raise ValueError(f"stream replicas must be 1, 3 or 5, got {self.replicas}")
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"stream name {self.name!r}: letters, digits, - and _ only")

    @property
    def subject(self) -> str:
        return f"kb.{self.name}.commands"


@dataclass(frozen=True, slots=True)
class PubResult:
    stream_seq: int
    duplicate: bool


@dataclass
class StreamLog:
    """One NATS connection and the command stream on it."""

    nc: Client
    js: JetStreamContext
    spec: StreamSpec
    _subs: list[Any] = field(default_factory=list)
    _acks: DirectAcks | None = None
    """PubAcks straight from the read loop (`engine.natsdirect`), set up by `connect`."""

    @classmethod
    async def connect(
        cls,
        options: NatsOptions,
        spec: StreamSpec,
        *,
        create: bool = True,
        on_state: Callable[[str], None] | None = None,
    ) -> StreamLog:
        """Connect (credentials and TLS from ``options``) and make sure the stream exists."""

        async def disconnected() -> None:
            if not connected or nc.is_closed:
                return  # our own close (nats-py marks it closed before this callback)
            log.warning("nats_disconnected", stream=spec.name)
            if on_state is not None:
                on_state("disconnected")

        async def reconnected() -> None:
            log.info("nats_reconnected", stream=spec.name, server=str(nc.connected_url))
            if on_state is not None:
                on_state("reconnected")

        async def error(exc: Exception) -> None:
            log.warning("nats_error", error=repr(exc))

        connected = False
        nc = await first_connect(
            options,
            after_error=error,
            client=DirectClient(),
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
        )
        connected = True
        self = cls(nc, nc.jetstream(timeout=5.0), spec)
        try:
            self._acks = DirectAcks(nc)
            await self._acks.start()
            if create:
                await self.ensure_stream()
                await self.ensure_buckets()
            else:
                try:
                    await self.js.stream_info(spec.name)
                except JsNotFound:
                    raise StreamNotFound(
                        f"stream {spec.name} does not exist on NATS at {','.join(options.servers)}",
                        hint="check --stream and --nats (a gateway started with --nats creates it)",
                    ) from None
        except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError):
            await nc.close()  # the server answers but has no JetStream: one line, no traceback
            raise UserError(
                f"NATS at {','.join(options.servers)} has no JetStream",
                hint="start nats-server with JetStream (-js, or a jetstream block in its "
                "configuration)",
            ) from None
        except BaseException:
            await nc.close()
            raise
        return self

    async def ensure_stream(self) -> None:
        spec = self.spec
        config = api.StreamConfig(
            name=spec.name,
            subjects=[spec.subject],
            storage=api.StorageType.FILE,
            num_replicas=spec.replicas,
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.NEW,
            duplicate_window=spec.duplicate_window_s,
            max_msg_size=MAX_MSG_BYTES,
            allow_direct=True,
        )
        try:
            info = await self.js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            await self.create_placed(lambda: self.js.add_stream(config))
            log.info("stream_created", stream=spec.name, replicas=spec.replicas)
            return
        if info.config.num_replicas != spec.replicas:
            log.warning(
                "stream_replicas_differ",
                stream=spec.name,
                configured=info.config.num_replicas,
                asked=spec.replicas,
            )

    async def create_placed(self, create: Callable[[], Awaitable[T]]) -> T:
        """``await create()`` (a stream, key-value or object store creation), waiting out "no
        suitable peers for placement" for up to `PLACEMENT_WAIT_S`: a cluster that has just
        started, or whose peer has just restarted, answers so until its meta leader sees
        enough current peers for the replicas asked (seen in the 3-node test cluster on a
        loaded host). Any other refusal, or this one past the wait, is raised as it came."""
        deadline = asyncio.get_running_loop().time() + PLACEMENT_WAIT_S
        while True:
            try:
                return await create()
            except nats.js.errors.BadRequestError as exc:
                if (
                    exc.err_code != NO_SUITABLE_PEERS
                    or asyncio.get_running_loop().time() > deadline
                ):
                    raise
                log.info("stream_placement_wait", stream=self.spec.name)
            await asyncio.sleep(0.25)

    async def ensure_buckets(self) -> None:
        """The cross-check KV bucket and the snapshot Object Store, created with the stream by
        a process allowed to create streams (a gateway), so read-only replicas find them."""
        from engine.crosscheck import hash_bucket
        from engine.snapstore import snapshot_bucket

        await hash_bucket(self)
        await snapshot_bucket(self)

    async def last_sequence(self) -> int:
        info = await self.js.stream_info(self.spec.name)
        return int(info.state.last_seq)

    async def publish(
        self, data: bytes, msg_id: str, *, fmt: str, timeout_s: float = 2.0
    ) -> PubResult:
        """Append one message; returns once the stream stored it (replicated at R3). The
        same request as ``js.publish`` (expected stream, ``Nats-Msg-Id``), its PubAck read
        in the read loop (`engine.natsdirect.DirectAcks`)."""
        assert self._acks is not None
        seq, duplicate = await self._acks.publish(
            self.spec.subject,
            data,
            {"Nats-Msg-Id": msg_id, FORMAT_HEADER: fmt, "Nats-Expected-Stream": self.spec.name},
            timeout_s,
        )
        return PubResult(seq, duplicate)

    async def follow(
        self,
        start_seq: int,
        on_message: Callable[[StreamMessage], None],
        *,
        api_timeout_s: float | None = None,
        on_heartbeat: Callable[[], None] | None = None,
    ) -> Any:
        """Deliver every message from ``start_seq`` on, in stream order, to ``on_message``
        (called on the read loop). Returns the subscription (for `unfollow`).

        A plain ephemeral push consumer (no acks, no flow control, in memory, on the stream
        leader) delivering to a direct subscription (`engine.natsdirect`): each message goes
        from nats-py's protocol parser to ``on_message`` without a `Msg`, a queue or a task.
        Not nats-py's ordered consumer: that one forces flow control, and its replies to the
        server's flow-control messages waited for a 0.25 s poller whenever the callback was a
        message behind, which stalled delivery (p99 ack latency ~180 ms at 5,000 orders/s).
        What the ordered consumer adds is done by the caller (`engine.follower`): a gap or
        silence while the stream grew (the consumer died with its leader) re-subscribes from
        the next sequence the replica needs; redeliveries are ignored by the replica.
        ``on_heartbeat`` is told of the consumer's idle heartbeats (every `HEARTBEAT_S`
        without messages): a consumer that sends neither is gone."""
        nc = self.nc
        assert isinstance(nc, DirectClient)
        inbox = nc.new_inbox()

        def deliver(subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
            if reply and not is_status(headers):  # heartbeats carry no reply subject
                on_message(stream_message(reply, data, headers))
            elif on_heartbeat is not None:
                on_heartbeat()

        sub = await nc.direct_subscribe(inbox, deliver)
        try:
            await self.js.add_consumer(
                self.spec.name,
                api.ConsumerConfig(
                    deliver_subject=inbox,
                    filter_subject=self.spec.subject,
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=max(start_seq, 1),
                    ack_policy=api.AckPolicy.NONE,
                    max_deliver=1,
                    flow_control=False,
                    idle_heartbeat=HEARTBEAT_S,
                    mem_storage=True,
                    num_replicas=1,
                    inactive_threshold=30.0,
                ),
                timeout=api_timeout_s,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await nc.direct_unsubscribe(sub)
            raise
        self._subs.append(sub)
        return sub

    async def unfollow(self, sub: Any) -> None:
        """Drop the subscription; the server removes the ephemeral consumer once it has had
        no interest for its inactivity threshold (as nats-py's own unsubscribe leaves it)."""
        if sub in self._subs:
            self._subs.remove(sub)
        with contextlib.suppress(Exception):
            await self._unsubscribe(sub)

    async def _unsubscribe(self, sub: Any) -> None:
        if isinstance(self.nc, DirectClient) and isinstance(sub, Subscription):
            await self.nc.direct_unsubscribe(sub)
        else:
            await sub.unsubscribe()

    async def read(
        self, start_seq: int, end_seq: int, idle_timeout_s: float = 10.0
    ) -> AsyncIterator[StreamMessage]:
        """Messages ``start_seq..end_seq`` in order (audit, export, catch-up)."""
        if end_seq < start_seq:
            return
        sub = await self.js.subscribe(
            self.spec.subject,
            stream=self.spec.name,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_S,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(start_seq, 1)
            ),
            pending_msgs_limit=1 << 20,
            pending_bytes_limit=1 << 30,
        )
        try:
            while True:
                msg = to_stream_message(await sub.next_msg(timeout=idle_timeout_s))
                if msg.stream_seq > end_seq:
                    return
                yield msg
                if msg.stream_seq == end_seq:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await self._unsubscribe(sub)
        self._subs.clear()
        if self._acks is not None:
            with contextlib.suppress(Exception):
                await self._acks.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.drain(), 2.0)
        with contextlib.suppress(Exception):
            await self.nc.close()


def options_from_args(args: Any, name: str) -> tuple[NatsOptions, StreamSpec]:
    """The options every process of cluster mode takes (``--nats``, ``--stream``,
    ``--replicas``, ``--nats-creds|nkey|user|ca|cert|key``; the user's password comes from
    ``$KOOTABASE_NATS_PASSWORD``, never from the command line). ValueError on a bad value."""
    options = NatsOptions.parse(
        args.nats,
        name=name,
        creds_file=args.nats_creds,
        nkey_seed_file=args.nats_nkey,
        user=args.nats_user,
        password=os.environ.get("KOOTABASE_NATS_PASSWORD") if args.nats_user else None,
        tls_ca_file=args.nats_ca,
        tls_cert_file=args.nats_cert,
        tls_key_file=args.nats_key,
    )
    return options, StreamSpec(name=args.stream, replicas=args.replicas)


def stream_message(reply: bytes, data: bytes, headers: bytes | None) -> StreamMessage:
    """`to_stream_message` from the raw parts of a direct delivery (`StreamLog.follow`):
    the same reply-subject tokens and the same header parsing, so both paths derive the same
    `StreamMessage` from the same stored message."""
    tokens = reply.split(b".")
    if len(tokens) < _V1_TOKENS or tokens[0] != b"$JS" or tokens[1] != b"ACK":
        raise ValueError(f"not a JetStream message: reply subject {reply!r}")
    if len(tokens) == _V1_TOKENS:
        seq, ts = int(tokens[5]), int(tokens[7])
    else:
        seq, ts = int(tokens[Msg.Ack.StreamSeq]), int(tokens[Msg.Ack.Timestamp])
    return StreamMessage(seq, ts, header_value(headers, FORMAT_HEADER), data)


def to_stream_message(msg: Msg) -> StreamMessage:
    """Stream sequence and stored timestamp (integer nanoseconds, as the server sent them:
    nats-py's metadata rounds them through a float) from the JetStream reply subject."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) < _V1_TOKENS or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream message: reply subject {msg.reply!r}")
    if len(tokens) == _V1_TOKENS:
        seq, ts = int(tokens[5]), int(tokens[7])
    else:
        seq, ts = int(tokens[Msg.Ack.StreamSeq]), int(tokens[Msg.Ack.Timestamp])
    headers = msg.headers or {}
    return StreamMessage(seq, ts, headers.get(FORMAT_HEADER), msg.data)
