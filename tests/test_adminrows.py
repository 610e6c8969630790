"""Replay's parsed admin rows (CreateAccount, Deposit: `engine.core.adminrows`) build exactly
the state, and with ``keep_events`` the events, of the object path (`decode_command` and
`AdminCommands`), and leave every payload they are not sure of to that path."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings

from engine.core.adminrows import ADMIN_DEPOSIT, R_ADMIN_KIND, parse_admin
from engine.core.cmdrows import buffer_rows
from engine.core.compiled import CompiledEngine
from engine.core.layout import C_ACCOUNTS, CMD_ADMIN, R_KIND, R_SEQ
from engine.replay import _merge_slow
from engine.schema import (
    CreateAccount,
    CreateAsset,
    Deposit,
    EngineConfig,
    SetDeadMansSwitch,
    decode_command,
    encode_command,
    state_hash,
)
from tests.streams import command_streams


def _parsed(
    engine: CompiledEngine, records: list[tuple[int, int, bytes]]
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, fast) as `engine.replay.batch_rows` builds them for one batch of ``records``."""
    payloads = [p for _, _, p in records]
    starts = np.zeros(len(records) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=starts[1:])
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    seqs = np.array([s for s, _, _ in records], dtype=np.int64)
    stamps = np.array([t for _, t, _ in records], dtype=np.int64)
    rows, fast = buffer_rows(buf, starts[:-1], starts[1:], seqs, stamps)
    engine.park_deposit_keys(parse_admin(buf, starts[:-1], starts[1:], seqs, stamps, rows, fast))
    fast_copy = fast.copy()
    if not fast.all():
        rows = _merge_slow(
            engine, rows, fast, lambda i: (int(seqs[i]), int(stamps[i]), payloads[i])
        )
    return rows, fast_copy


def _journaled(stream: list) -> list[tuple[int, int, bytes]]:  # type: ignore[type-arg]
    out = []
    for seq, ts, cmd in stream:
        try:
            out.append((seq, ts, encode_command(cmd)))
        except OverflowError:  # beyond msgpack: no journal can hold it
            continue
    return out


@settings(max_examples=80, deadline=None)
@given(command_streams(max_commands=120, issue3=True))
def test_parsed_admin_rows_build_the_object_paths_state(stream: list) -> None:  # type: ignore[type-arg]
    """Accounts, deposits (duplicate keys, unknown accounts and assets, bad amounts) between
    hot commands, timers and other admin commands, run in slices: same state hash."""
    records = _journaled(stream)
    fast_engine = CompiledEngine()
    rows, fast = _parsed(fast_engine, records)
    # runs cut at slice ends as replay's batches cut them (a record's rows stay together)
    cuts = np.searchsorted(rows[:, R_SEQ], rows[::37, R_SEQ]).tolist()
    for start, stop in zip(cuts, [*cuts[1:], len(rows)], strict=True):
        fast_engine.process_encoded(rows[start:stop])
    objects = CompiledEngine()
    objects.process([(s, t, decode_command(p)) for s, t, p in records])
    assert state_hash(fast_engine.image()) == state_hash(objects.image())
    assert fast_engine._parsed_keys == {}  # every parked key was used
    # the account count (the prefetch gate's) agrees on both paths and after a restore
    image = objects.image()
    restored = CompiledEngine.from_image(image)
    for engine in (fast_engine, objects, restored):
        assert int(engine._a.ctr[C_ACCOUNTS]) == len(image.accounts)
    kinds = {type(decode_command(p)) for (_, _, p), f in zip(records, fast, strict=True) if f}
    assert CreateAccount in kinds  # the setup's accounts took the parsed path

    # keep_events: one parsed row at a time through AdminCommands, the same events
    keeping = CompiledEngine()
    rows, _ = _parsed(keeping, records)
    keeping.process_encoded(rows, keep_events=True)
    again = CompiledEngine()
    assert keeping.drain_events() == again.process(
        [(s, t, decode_command(p)) for s, t, p in records]
    )


def _setup() -> list[tuple[int, int, object]]:
    return [
        (1, 10, CreateAsset(asset_id=1, symbol="USDT", decimals=6)),
        (2, 20, CreateAccount(account_id=5)),
        (3, 30, CreateAccount(account_id=5)),  # exists: rejected
        (4, 40, CreateAccount(account_id=0)),  # invalid id: rejected
    ]


def test_deposit_checks_and_custody_overflow() -> None:
    """Each refusal leaves state alone, a key is credited at most once, custody stops at MAX;
    a dead-man's switch due between deposits fires at its time."""
    big = (1 << 62) - 1
    stream = [
        *_setup(),
        (5, 50, Deposit(account_id=5, asset_id=1, amount_atoms=7, deposit_key="k")),
        (6, 60, Deposit(account_id=5, asset_id=1, amount_atoms=9, deposit_key="k")),  # dup
        (7, 70, Deposit(account_id=6, asset_id=1, amount_atoms=9, deposit_key="x")),  # account
        (8, 80, Deposit(account_id=5, asset_id=2, amount_atoms=9, deposit_key="y")),  # asset
        (9, 90, Deposit(account_id=5, asset_id=1, amount_atoms=0, deposit_key="z")),  # amount
        (10, 95, SetDeadMansSwitch(account_id=5, fire_at_ns=105)),
        (11, 100, Deposit(account_id=5, asset_id=1, amount_atoms=big - 7, deposit_key="m")),
        (12, 110, Deposit(account_id=5, asset_id=1, amount_atoms=1, deposit_key="o")),  # MAX
        (13, 120, Deposit(account_id=5, asset_id=1, amount_atoms=1, deposit_key="z", demo=True)),
    ]
    records = _journaled(stream)
    engine = CompiledEngine()
    rows, fast = _parsed(engine, records)
    assert fast.tolist() == [False, *([True] * 8), False, True, True, True]
    engine.process_encoded(rows)
    objects = CompiledEngine()
    events = objects.process(stream)  # type: ignore[arg-type]
    assert state_hash(engine.image()) == state_hash(objects.image())
    assert sorted(engine._deposit_keys) == ["k", "m"]
    rejected = [e.seq for e in events if type(e).__name__ == "CommandRejected"]
    assert rejected == [3, 4, 6, 7, 8, 9, 12, 13]
    keeping = CompiledEngine()
    rows, _ = _parsed(keeping, records)
    keeping.process_encoded(rows, keep_events=True)
    assert keeping.drain_events() == events


def _deposit_payload(*fields: object) -> bytes:
    return msgspec.msgpack.encode(["Deposit", *fields])


@pytest.mark.parametrize(
    "payload",
    [
        _deposit_payload(5, 1, 7, "k", False, "staff-a", ""),  # recorded_by: slow path
        _deposit_payload(5, 1, 7, "k", False, "", "staff-b"),
        _deposit_payload(5, 1, 7, "k", 0),  # demo not a bool
        _deposit_payload(5, 1, 7, b"k"),  # bin, not str
        _deposit_payload(5, 1, 7, 12),
        _deposit_payload(5, 1, 7.0, "k"),
        _deposit_payload(5, 1, 1 << 63, "k"),
        _deposit_payload(5, 1, 7),  # key missing
        _deposit_payload(5, 1, 7, "k", False, "", "", "extra"),
        _deposit_payload(5, 1, 7, "k")[:-1],  # truncated
        _deposit_payload(5, 1, 7, "k") + b"\xc0",  # trailing byte
        _deposit_payload(5, 1, 7, "k").replace(b"\xa1k", b"\xa1\xff"),  # not UTF-8
        _deposit_payload(5, 1, 7, "k").replace(b"\xa1k", b"\xdb\x00\x00\x00\x01k"),  # str32
        msgspec.msgpack.encode(["CreateAccount", 5, 6]),
        msgspec.msgpack.encode(["CreateAccount", "5"]),
        msgspec.msgpack.encode(["CreateAccounts", 5]),
    ],
)
def test_anything_unsure_is_left_to_the_object_path(payload: bytes) -> None:
    rows, fast = buffer_rows(
        np.frombuffer(payload, dtype=np.uint8),
        np.array([0]),
        np.array([len(payload)]),
        np.array([1]),
        np.array([1]),
    )
    keys = parse_admin(
        np.frombuffer(payload, dtype=np.uint8),
        np.array([0]),
        np.array([len(payload)]),
        np.array([1]),
        np.array([1]),
        rows,
        fast,
    )
    assert not fast[0] and keys == []


def test_long_keys_parse() -> None:
    """str8 and str16 keys parse (custody's chain/tx/index keys are ~80 bytes); a str32 key
    (70,000 bytes) takes the object path, in the same replay."""
    stream = [*_setup()]
    for n, length in enumerate((31, 32, 255, 256, 70_000)):
        key = "é" * (length // 2) + "k" * (length % 2)
        stream.append(
            (5 + n, 50 + n, Deposit(account_id=5, asset_id=1, amount_atoms=3, deposit_key=key))
        )
    records = _journaled(stream)
    engine = CompiledEngine()
    rows, fast = _parsed(engine, records)
    assert fast[4:].tolist() == [True, True, True, True, False]
    engine.process_encoded(rows)
    objects = CompiledEngine()
    objects.process(stream)  # type: ignore[arg-type]
    assert state_hash(engine.image()) == state_hash(objects.image())
    assert len(engine._deposit_keys) == 5


def test_a_deposit_row_without_its_key_is_refused() -> None:
    """Parsed rows run only on the engine that was given their keys, as parked admin rows."""
    records = _journaled(
        [*_setup(), (5, 50, Deposit(account_id=5, asset_id=1, amount_atoms=3, deposit_key="k"))]
    )
    rows, _ = _parsed(CompiledEngine(), records)
    assert rows[4, R_KIND] == CMD_ADMIN and rows[4, R_ADMIN_KIND] == ADMIN_DEPOSIT
    other = CompiledEngine(EngineConfig())
    other.process([(s, t, decode_command(p)) for s, t, p in records[:4]])
    with pytest.raises(ValueError, match="without its key"):
        other.process_encoded(rows[4:])


def test_deposit_keys_come_back_exactly() -> None:
    """The keys of a batch are joined, decoded and split in one go (`deposit_keys`): empty,
    multi-byte and 0-holding keys come back as they were; a key that is not UTF-8 leaves
    only its own record to the object path."""
    keys = ["a", "", "é€", "x\x00y", "k" * 300, "z"]
    payloads = [_deposit_payload(5, 1, 7, key) for key in keys]
    payloads.insert(3, _deposit_payload(5, 1, 7, "k").replace(b"\xa1k", b"\xa1\xff"))
    for chosen in (payloads, [p for p in payloads if b"\x00" not in p], payloads[:3]):
        buf = np.frombuffer(b"".join(chosen), dtype=np.uint8)
        starts = np.zeros(len(chosen) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in chosen], out=starts[1:])
        seqs = np.arange(1, len(chosen) + 1, dtype=np.int64)
        rows, fast = buffer_rows(buf, starts[:-1], starts[1:], seqs, seqs)
        got = parse_admin(buf, starts[:-1], starts[1:], seqs, seqs, rows, fast)
        good = [b"\xa1\xff" not in p for p in chosen]
        want = [(i + 1, msgspec.msgpack.decode(p)[4]) for i, p in enumerate(chosen) if good[i]]
        assert got == want
        assert fast.tolist() == good
