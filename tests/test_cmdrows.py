"""Replay's fast path (journal payloads straight to command rows) equals the slow path.

`engine.core.cmdrows.payload_rows` must give, for every payload it accepts, exactly the row
that ``decode_command`` + ``CompiledEngine.encode`` give, and must leave to the slow path every
payload it is not sure of, so that the slow path accepts or refuses it as before. Old journals
(payloads written before PlaceOrder had its issue-3 fields: shorter arrays) still parse.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings

from engine.core.cmdrows import HOT_COMMANDS, payload_rows
from engine.core.compiled import CompiledEngine
from engine.journal import SegmentJournal
from engine.replay import journal_rows, replay_journal
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    PlaceOrder,
    decode_command,
    encode_command,
    state_hash,
)
from tests.streams import command_streams

_INT64 = range(-(1 << 63), 1 << 63)


def _slow_rows(records: list[tuple[int, int, bytes]]) -> np.ndarray:
    engine = CompiledEngine()
    return engine.encode([(s, t, decode_command(p)) for s, t, p in records])


def _in_int64(cmd: object) -> bool:
    return all(v in _INT64 for v in msgspec.structs.astuple(cmd) if isinstance(v, int))


@settings(max_examples=200)
@given(command_streams(max_commands=150, issue3=True))
def test_fast_rows_equal_slow_rows(stream: list[tuple[int, int, object]]) -> None:
    records = []
    for seq, ts, cmd in stream:
        try:
            records.append((seq, ts, encode_command(cmd)))  # type: ignore[arg-type]
        except OverflowError:  # beyond msgpack: no journal can hold it
            continue
    rows, fast = payload_rows(records)
    slow = CompiledEngine()
    for i, (seq, ts, payload) in enumerate(records):
        cmd = decode_command(payload)
        expected_fast = type(cmd) in HOT_COMMANDS and _in_int64(cmd)
        assert bool(fast[i]) == expected_fast, cmd
        if fast[i]:
            assert rows[i].tolist() == slow.encode([(seq, ts, cmd)]).tolist()[0], cmd
    # replay's rows for the whole batch (a CancelReplaceOrder takes two) equal the slow path's
    assert journal_rows(CompiledEngine(), records).tolist() == _slow_rows(records).tolist()


def _array_payload(tag: str, *fields: object) -> bytes:
    return msgspec.msgpack.encode([tag, *fields])


def test_old_journal_payloads_parse_with_defaults() -> None:
    """A PlaceOrder journaled before the issue-3 fields existed: 9 fields, defaults after."""
    old = _array_payload("PlaceOrder", 7, 1, 0, 0, 0, 100_000, 300, 0, 42)
    cancel_all = _array_payload("CancelAll", 7)  # market_id defaults to -1
    records = [(10, 1_000, old), (11, 2_000, cancel_all)]
    rows, fast = payload_rows(records)
    assert fast.all()
    assert rows.tolist() == _slow_rows(records).tolist()
    assert rows[1].tolist()[3] == -1


@pytest.mark.parametrize(
    "payload",
    [
        _array_payload("PlaceOrder", 7, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 99),  # too long
        _array_payload("PlaceOrder", 7),  # required fields missing
        _array_payload("CancelOrder", 7, "1"),  # a string
        _array_payload("CancelOrder", 7, 1.0),  # a float
        _array_payload("CancelOrder", 7, True),  # a bool
        _array_payload("CancelOrder", 7, 1 << 63),  # beyond int64
        _array_payload("CancelOrders", 7, 1),  # unknown tag
        _array_payload("Cancel", 7, 1),  # a prefix of a tag
        msgspec.msgpack.encode({"type": "CancelOrder"}),
        b"",
        _array_payload("CancelOrder", 7, 1)[:-1],  # truncated
        _array_payload("CancelOrder", 7, 1) + b"\x00",  # trailing byte
    ],
)
def test_anything_unsure_goes_to_the_slow_path(payload: bytes) -> None:
    _rows, fast = payload_rows([(1, 1, payload)])
    assert not fast[0]


def test_replay_fast_and_slow_give_the_same_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A journal with every hot kind and admin commands between them replays to the state the
    object path builds."""
    from bench.workloads import workload_b

    wl = workload_b(5, 3_000, accounts=200, resting=2_000)
    records = wl.setup + wl.prefill + wl.stream
    with SegmentJournal(tmp_path / "j") as journal:
        journal.append_batch([(s, t, encode_command(c)) for s, t, c in records])
    engine = CompiledEngine(wl.config)
    with SegmentJournal(tmp_path / "j", read_only=True) as journal:
        assert replay_journal(engine, journal) == len(records)
        batch = list(journal.read_from(1, 50))
        assert journal_rows(CompiledEngine(wl.config), batch).shape == (50, 18)
    objects = CompiledEngine(wl.config)
    objects.process(records)
    assert state_hash(engine.image()) == state_hash(objects.image())
    kinds = {type(c) for _, _, c in wl.stream}
    assert {PlaceOrder, CancelOrder, AmendOrder} <= kinds
    assert CancelAll in HOT_COMMANDS
