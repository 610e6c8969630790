"""Cluster mode, phase 1: a gateway is a deterministic replica of the command log. Here the
replica alone, on hand-made stream messages: the same derivation and refusals on every replica,
a published rejection record refused, the dedup window sliding.
"""

from __future__ import annotations

import random

import msgspec
import pytest

from engine.core.compiled import CompiledEngine
from engine.replica import (
    BATCH_FORMAT,
    WINDOW_BATCHES,
    CommandBatch,
    Replica,
    StreamGap,
    StreamMessage,
    encode_batch,
)
from engine.schema import (
    CreateAccount,
    Deposit,
    EngineConfig,
    OrderType,
    PlaceOrder,
    RejectStreamMessage,
    Side,
    StreamMessageRejected,
    StreamReject,
    Tick,
    state_hash,
)
from engine.service import DEMO_COMMANDS
from tests.marketdata_support import funding, random_commands


def _msg(
    seq: int,
    ts: int,
    batch: CommandBatch | bytes,
    fmt: str | None = BATCH_FORMAT,
) -> StreamMessage:
    data = batch if isinstance(batch, bytes) else encode_batch(batch)
    return StreamMessage(seq, ts, fmt, data)


def _stream() -> list[StreamMessage]:
    """A stream with every kind of message a replica must treat alike everywhere."""
    order = PlaceOrder(
        account_id=1,
        market_id=0,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price_atoms=30_000_000_000,
        qty_atoms=10_000,
    )
    msgs = [
        _msg(1, 1_000, CommandBatch(0, 1, list(DEMO_COMMANDS))),
        _msg(
            2,
            2_000,
            CommandBatch(
                7,
                1,
                [
                    CreateAccount(account_id=1),
                    Deposit(account_id=1, asset_id=0, amount_atoms=10**12, deposit_key="d1"),
                ],
            ),
        ),
        _msg(3, 1_500, CommandBatch(7, 2, [order])),  # stream clock went back: floored
        _msg(4, 3_000, b"\xc1 not msgpack"),  # garbage
        _msg(5, 3_100, CommandBatch(7, 3, [Tick()]), fmt="2"),  # a future format version
        _msg(6, 3_200, CommandBatch(7, 3, [Tick()]), fmt=None),  # no header at all
        _msg(7, 3_300, CommandBatch(7, 2, [order])),  # a retry after the dedup window
        _msg(8, 3_400, CommandBatch(7, 3, [order, Tick()])),
        _msg(9, 3_500, msgspec.msgpack.encode([7, 4, []])),  # empty batch
        _msg(
            10,
            3_600,
            CommandBatch(
                9,
                1,
                [
                    PlaceOrder(
                        account_id=1,
                        market_id=0,
                        side=Side.BUY,
                        order_type=OrderType.LIMIT,
                        price_atoms=(1 << 63) + 5,
                        qty_atoms=1,
                    )
                ],
            ),
        ),
    ]
    return msgs


def test_replica_derivation_is_deterministic_and_rejects_alike() -> None:
    runs = []
    for _ in range(2):
        rep = Replica(CompiledEngine(EngineConfig()))
        applied = [rep.apply(m) for m in _stream()]
        runs.append(
            (
                rep.state_hash(),
                rep.last_seq,
                rep.state.rejected_messages,
                [
                    (a.first_seq, a.last_seq, a.ts_ns, a.rejected is not None, a.duplicate)
                    for a in applied
                    if a is not None
                ],
                [
                    (a.stream_seq, a.events, a.commands)
                    for a in applied
                    if a is not None and a.rejected is not None
                ],
            )
        )
    assert runs[0] == runs[1]
    _, last_seq, rejected, shape, rejections = runs[0]
    # demo 7 + account/deposit 2 + order 1 + order/tick 2 + the out-of-range order 1 (the
    # engine refuses it with an event) + one journaled rejection per rejected message (4)
    assert last_seq == 17
    # each rejected message is journaled in its place: the next engine sequence, a
    # RejectStreamMessage naming its stream sequence and a stable reason, and the event
    want = [
        (4, StreamReject.UNDECODABLE),
        (5, StreamReject.UNKNOWN_FORMAT),
        (6, StreamReject.UNKNOWN_FORMAT),
        (9, StreamReject.BATCH_SIZE),
    ]
    assert [(s, e[-1].reason) for s, e, _ in rejections] == want
    for stream_seq, events, commands in rejections:
        (event,) = events
        assert commands == [RejectStreamMessage(stream_seq=stream_seq, reason=event.reason)]
        assert event == StreamMessageRejected(
            seq=event.seq, stream_seq=stream_seq, reason=event.reason
        )
    assert shape[0][:3] == (1, 7, 1_000)
    assert shape[2][:3] == (10, 10, 2_000), "a stream timestamp going back is floored"
    assert shape[3][:3] == (11, 11, 3_000), "a rejection takes the next sequence"
    assert [s[3] for s in shape] == [
        False,
        False,
        False,
        True,
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert shape[6][4] is True, "the retried batch 7.2 executes once"
    assert rejected == 4
    # the same stream restored from a snapshot image mid-way ends in the same state
    rep = Replica(CompiledEngine(EngineConfig()))
    msgs = _stream()
    for m in msgs[:5]:
        rep.apply(m)
    again = Replica.from_image(rep.image())
    for m in msgs[5:]:
        again.apply(m)
    assert again.state_hash() == runs[0][0]
    assert again.apply(msgs[-1]) is None, "a redelivered message is ignored"
    with pytest.raises(StreamGap):
        again.apply(_msg(12, 9_999, CommandBatch(7, 9, [Tick()])))


def test_replica_refuses_a_published_rejection_record() -> None:
    """`RejectStreamMessage` is derived by replicas, never sent: a batch carrying one is itself
    rejected (and journaled as such), so nobody can forge the record of a rejection."""
    rep = Replica(CompiledEngine(EngineConfig()))
    rep.apply(_msg(1, 1, CommandBatch(0, 1, list(DEMO_COMMANDS))))
    forged = RejectStreamMessage(stream_seq=1, reason=StreamReject.UNDECODABLE)
    a = rep.apply(_msg(2, 2, CommandBatch(5, 1, [Tick(), forged])))
    assert a is not None and a.rejected is not None
    assert a.commands == [RejectStreamMessage(stream_seq=2, reason=StreamReject.RESERVED_COMMAND)]
    assert a.first_seq == a.last_seq == len(DEMO_COMMANDS) + 1


def test_replica_dedup_window_slides() -> None:
    rep = Replica(CompiledEngine(EngineConfig()))
    rep.apply(_msg(1, 1, CommandBatch(0, 1, list(DEMO_COMMANDS))))
    seq = 1
    outcome = {}
    for n in (5, 3, 4, 3, 5 + WINDOW_BATCHES, 6, 5):
        seq += 1
        a = rep.apply(_msg(seq, seq, CommandBatch(3, n, [Tick()])))
        assert a is not None
        outcome.setdefault(n, []).append(a.duplicate)
    assert outcome[3] == [False, True] and outcome[4] == [False]
    assert outcome[6] == [False], "inside the window: new"
    assert outcome[5] == [False, True], "at the window's edge: refused, never run twice"


def test_replica_state_hash_is_the_hash_of_its_image_on_generated_streams() -> None:
    """`Replica.state_hash` hashes bytes spliced from the engine's arrays; it must equal the
    hash of the engine's Python image at every point of streams with every order kind."""
    for seed in (1, 2):
        rng = random.Random(seed)
        rep = Replica(CompiledEngine(EngineConfig()))
        batches = [list(DEMO_COMMANDS), funding()]
        for n in range(120):
            seq = n + 1
            rep.apply(_msg(seq, seq * 1_000_000, CommandBatch(3, seq, batches[n])))
            if n % 10 == 0:
                assert rep.state_hash() == state_hash(rep.engine.image()), (seed, n)
            image = rep.engine.image()
            batches.append(random_commands(rng, image, rng.randint(1, 40), issue3=True))
        assert rep.engine.image().orders, "the stream should leave a book"
        assert rep.state_hash() == state_hash(rep.engine.image())
