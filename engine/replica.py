"""A deterministic replica of the engine over the command stream (cluster mode, DESIGN.md).

In cluster mode the log is a JetStream stream of *batches* (one message, many commands). Every
process that needs state runs its own engine over the same stream, so everything a replica
derives from a message must be a pure function of (its state, the message): the command
sequences (and so ``order_id``), journal time, and what happens to a message that is not a
valid batch. Two replicas fed the same stream therefore hold the same state hash; the hash
cross-check turns that promise into a checked fact.

Derivation, per stream message (stream sequence ``s``, stream timestamp ``t``):

* journal time ``ts = max(t, last_ts)``: the stream's timestamp made monotonic (a new leader's
  clock may be behind the old one's). A batch imported from a local journal carries the time
  that journal recorded instead (``journal_ts_ns``), floored the same way, so an imported
  history replays to the same hash as the journal it came from.
* the batch's commands get the next engine sequences, contiguously, in message order.
* a message that is not a batch of this build's format (missing or unknown ``Kb-Format`` header,
  undecodable body, no or too many commands, a command the engine's encoder refuses, a command
  only replicas derive, outside an imported batch) is *rejected*, the same way by every replica
  (issue 18): the replica journals a `RejectStreamMessage` command in its place (next engine
  sequence, the message's journal time, its stream sequence and a stable `StreamReject` code),
  so the engine emits `StreamMessageRejected`, the state hash moves alike everywhere, exports
  and audits carry the rejection, and the owner raises the alert (log, metric). Nothing of the
  message itself runs. Streams written before this rule replay to other hashes only where they
  hold a rejected message (none but tests' did).
* a batch already seen (same ``(origin, batch_no)``, e.g. a publish retried after the stream's
  duplicate window) is a *duplicate* and executes nothing. Each origin keeps a 64-batch
  sliding window (the anti-replay window of IPsec); at most `MAX_ORIGINS` origins are tracked,
  the least recently seen evicted first: deterministic, and part of the snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec
import structlog

from engine.core.compiled import CompiledEngine
from engine.journal import Record
from engine.schema import (
    Command,
    Event,
    RejectStreamMessage,
    StateImage,
    StreamReject,
    encode_command,
)

if TYPE_CHECKING:
    from engine.core.digest import DigestInput

log = structlog.get_logger(__name__)

FORMAT_HEADER: Final = "Kb-Format"
BATCH_FORMAT: Final = "1"
"""The batch format this build writes and reads; any other value is rejected."""
MAX_COMMANDS_PER_BATCH: Final = 4_096
WINDOW_BATCHES: Final = 64
MAX_ORIGINS: Final = 4_096
SYSTEM_ORIGIN: Final = 0
"""Deterministic batches any process may publish (the demo bootstrap): same id everywhere."""
_MASK64: Final = (1 << 64) - 1
_MAX_I63: Final = (1 << 63) - 1


class CommandBatch(msgspec.Struct, frozen=True, array_like=True):
    """The body of one stream message: who published it, its number, its commands."""

    origin: int
    """Publisher instance: a random 63-bit id per process start; `SYSTEM_ORIGIN` for
    deterministic system batches."""
    batch_no: int
    """1, 2, ... per origin; with ``origin`` the batch's identity (``Nats-Msg-Id``)."""
    commands: list[Command]
    journal_ts_ns: int = 0
    """Only in batches imported from a local journal: the time that journal recorded."""


BATCH_ENCODER: Final = msgspec.msgpack.Encoder()
BATCH_DECODER: Final = msgspec.msgpack.Decoder(CommandBatch)


def encode_batch(batch: CommandBatch) -> bytes:
    return BATCH_ENCODER.encode(batch)


def msg_id(origin: int, batch_no: int) -> str:
    """The ``Nats-Msg-Id`` of a batch: the stream drops a second publish within its window."""
    return f"{origin:x}.{batch_no}"


class StreamMessage(msgspec.Struct, frozen=True):
    """One message as the log delivers it, before any interpretation. (A msgspec structure,
    like `Applied`: one of each per stream message, and a frozen dataclass's ``__init__`` cost
    ~5 us against ~0.8 us.)"""

    stream_seq: int
    timestamp_ns: int
    format: str | None
    data: bytes


class Applied(msgspec.Struct, frozen=True):
    """What one stream message did to the replica."""

    stream_seq: int
    first_seq: int
    """First engine sequence of the batch; ``last_seq + 1`` when it consumed none."""
    last_seq: int
    ts_ns: int
    origin: int
    batch_no: int
    events: list[Event]
    commands: list[Command]
    rejected: str | None = None
    duplicate: bool = False

    @property
    def records(self) -> list[Record]:
        """The batch as local-journal records (export, audit)."""
        return [
            (self.first_seq + i, self.ts_ns, encode_command(c)) for i, c in enumerate(self.commands)
        ]


class ReplicaState(msgspec.Struct, kw_only=True, array_like=True):
    """Everything beside the engine that the derivation depends on (snapshotted with it)."""

    stream_seq: int = 0
    last_ts_ns: int = 0
    rejected_messages: int = 0
    origins: dict[int, list[int]] = msgspec.field(default_factory=dict)
    """origin -> [highest batch_no, seen mask of the 64 up to it, stream_seq last seen]."""


class ReplicaImage(msgspec.Struct, kw_only=True, array_like=True):
    """A replica snapshot: derivation state plus the engine image, at one stream sequence."""

    state: ReplicaState
    engine: StateImage


REPLICA_IMAGE_ENCODER: Final = msgspec.msgpack.Encoder()
REPLICA_IMAGE_DECODER: Final = msgspec.msgpack.Decoder(ReplicaImage)


class StreamGap(Exception):
    """The log skipped a stream sequence: applying past it would diverge from other replicas."""


class Replica:
    """An engine plus the deterministic derivation of sequences and time from the stream.

    Single-threaded; `apply` is the only state change. ``engine`` is exposed for reads between
    messages (images, hashes)."""

    def __init__(self, engine: CompiledEngine, state: ReplicaState | None = None) -> None:
        self.engine = engine
        self.state = state if state is not None else ReplicaState()

    @classmethod
    def from_image(cls, image: ReplicaImage) -> Replica:
        return cls(CompiledEngine.from_image(image.engine), image.state)

    def image(self) -> ReplicaImage:
        return ReplicaImage(state=self._state_copy(), engine=self.engine.image())

    def _state_copy(self) -> ReplicaState:
        s = self.state
        return ReplicaState(
            stream_seq=s.stream_seq,
            last_ts_ns=s.last_ts_ns,
            rejected_messages=s.rejected_messages,
            origins={k: list(v) for k, v in s.origins.items()},
        )

    def snapshot_image(self) -> ReplicaImage:
        """`image` for storing only: the engine part's accounts and orders are spliced in as
        their canonical msgpack (`engine.core.imagebytes.spliced_image`), so a snapshot point
        builds no Python object per resting order on the replica's loop and the stored bytes
        and hash are the same (`engine.snapstore.encode_snapshot`)."""
        from engine.core.imagebytes import spliced_image

        return ReplicaImage(state=self._state_copy(), engine=spliced_image(self.engine))

    def snapshot_state(self) -> ReplicaState:
        """A copy of the stream-derivation state (small), for a snapshot image finished from
        a checkpoint capture on another thread (`engine.snapimage.replica_image`)."""
        return self._state_copy()

    @property
    def stream_seq(self) -> int:
        return self.state.stream_seq

    @property
    def last_seq(self) -> int:
        return self.engine.last_seq

    def state_hash(self) -> str:
        """``state_hash(engine.image())``, hashed from the image's canonical bytes spliced from
        the engine's arrays (`engine.core.imagebytes.image_state_hash`, as `EngineNode` does):
        no Python object per account or resting order on the replica's loop."""
        from engine.core.imagebytes import image_state_hash

        return image_state_hash(self.engine)

    def checkpoint_digest(self) -> str:
        """What replicas record at checkpoints: the canonical state hashed from the arrays,
        ~10 times cheaper than `state_hash` on a large book (`engine.core.digest`)."""
        from engine.core.digest import checkpoint_digest

        return checkpoint_digest(self.engine)

    def checkpoint_input(self) -> DigestInput:
        """The copies `checkpoint_digest` hashes (`engine.core.digest.capture`), for hashing
        on another thread: the cross-check's checkpoints."""
        from engine.core.digest import capture

        return capture(self.engine)

    def apply(self, msg: StreamMessage) -> Applied | None:
        """Apply the next stream message; None for a redelivery of one already applied."""
        state = self.state
        if msg.stream_seq <= state.stream_seq:
            return None
        if msg.stream_seq != state.stream_seq + 1:
            raise StreamGap(f"stream sequence {msg.stream_seq} after {state.stream_seq}")
        before = self.engine.last_seq
        batch, reason = _decode(msg)
        ts = max(msg.timestamp_ns, state.last_ts_ns)
        if batch is not None and batch.journal_ts_ns:
            ts = max(batch.journal_ts_ns, state.last_ts_ns)
        state.stream_seq = msg.stream_seq
        state.last_ts_ns = ts
        if batch is None:
            return self._reject(msg, reason, ts)
        if self._seen(batch.origin, batch.batch_no, msg.stream_seq):
            log.warning(
                "stream_batch_duplicate",
                stream_seq=msg.stream_seq,
                origin=f"{batch.origin:x}",
                batch_no=batch.batch_no,
            )
            return Applied(
                msg.stream_seq,
                before + 1,
                before,
                ts,
                batch.origin,
                batch.batch_no,
                [],
                [],
                duplicate=True,
            )
        records = [(before + 1 + i, ts, c) for i, c in enumerate(batch.commands)]
        try:
            events = self.engine.process(records)
        except (ValueError, OverflowError, TypeError) as exc:
            if self.engine.last_seq != before:  # partly applied: state is no longer trusted
                raise
            reason = (StreamReject.ENCODER_REFUSED, f"command refused by the encoder: {exc}")
            return self._reject(msg, reason, ts, batch)
        assert self.engine.last_seq == before + len(records), "engine skipped a command"
        return Applied(
            msg.stream_seq,
            before + 1,
            self.engine.last_seq,
            ts,
            batch.origin,
            batch.batch_no,
            events,
            batch.commands,
        )

    def _reject(
        self,
        msg: StreamMessage,
        reason: tuple[StreamReject, str],
        ts: int,
        batch: CommandBatch | None = None,
    ) -> Applied:
        """Journal the rejection in the message's place (see the module docstring). A batch
        that decoded keeps its identity, so its publisher answers its requests at once."""
        code, text = reason
        self.state.rejected_messages += 1
        log.critical(
            "stream_message_rejected",
            stream_seq=msg.stream_seq,
            reason=code.name,
            detail=text,
            bytes=len(msg.data),
        )
        seq = self.engine.last_seq + 1
        command = RejectStreamMessage(stream_seq=msg.stream_seq, reason=int(code))
        events = self.engine.process([(seq, ts, command)])
        assert self.engine.last_seq == seq, "the rejection was not journaled"
        origin, batch_no = (batch.origin, batch.batch_no) if batch is not None else (-1, 0)
        return Applied(
            msg.stream_seq, seq, seq, ts, origin, batch_no, events, [command], rejected=text
        )

    def _seen(self, origin: int, batch_no: int, stream_seq: int) -> bool:
        """Whether ``(origin, batch_no)`` was seen; records it when not (anti-replay window)."""
        origins = self.state.origins
        entry = origins.get(origin)
        if entry is None:
            if len(origins) >= MAX_ORIGINS:
                oldest = min(origins, key=lambda o: origins[o][2])
                del origins[oldest]
            origins[origin] = [batch_no, 1, stream_seq]
            return False
        highest, mask, _ = entry
        if batch_no > highest:
            shift = batch_no - highest
            mask = 1 if shift >= WINDOW_BATCHES else ((mask << shift) | 1) & _MASK64
            origins[origin] = [batch_no, mask, stream_seq]
            return False
        age = highest - batch_no
        if age >= WINDOW_BATCHES or mask >> age & 1:
            return True  # too old to tell apart from a replay: refused, never run twice
        origins[origin] = [highest, mask | (1 << age), stream_seq]
        return False


def _decode(msg: StreamMessage) -> tuple[CommandBatch | None, tuple[StreamReject, str]]:
    """The batch in ``msg``, or None and why it is rejected (the same on every replica)."""
    if msg.format != BATCH_FORMAT:
        text = f"unknown format version {msg.format!r} (this build reads {BATCH_FORMAT})"
        return None, (StreamReject.UNKNOWN_FORMAT, text)
    try:
        batch = BATCH_DECODER.decode(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return None, (StreamReject.UNDECODABLE, f"undecodable batch: {exc}")
    if not 1 <= len(batch.commands) <= MAX_COMMANDS_PER_BATCH:
        return None, (StreamReject.BATCH_SIZE, f"batch of {len(batch.commands)} commands")
    if not (
        0 <= batch.origin <= _MAX_I63
        and 1 <= batch.batch_no <= _MAX_I63
        and 0 <= batch.journal_ts_ns <= _MAX_I63
    ):
        return None, (StreamReject.OUT_OF_RANGE, "origin, batch_no or journal time out of range")
    if not batch.journal_ts_ns and any(type(c) is RejectStreamMessage for c in batch.commands):
        # derived by replicas; only an imported history (a batch carrying its journal's
        # time, `engine.streamjournal`) brings its own records of earlier rejections
        return None, (StreamReject.RESERVED_COMMAND, "RejectStreamMessage is derived, never sent")
    return batch, (StreamReject.UNDECODABLE, "")
