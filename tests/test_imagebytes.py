"""`engine.core.imagebytes` writes the image's canonical bytes without building its objects.

``replay --verify`` compares a snapshot's recorded state hash with `image_state_hash`, so the
bytes must be exactly `encode_image(eng.image())`'s on every state: msgspec's integer forms
at every boundary, array headers of every size, and states reached by any command stream.
"""

from __future__ import annotations

import random

import msgspec
import numpy as np
from hypothesis import given, settings

from engine.core.compiled import CompiledEngine
from engine.core.imagebytes import (
    image_bytes,
    image_state_hash,
    put_array_header,
    put_int,
    table_raw,
)
from engine.schema import EngineConfig, encode_image, state_hash
from tests.streams import Record, command_streams

CONFIG = EngineConfig(
    max_accounts=16, max_assets=4, max_markets=4, max_orders=4096, max_levels_per_side=1024
)


def _edges() -> list[int]:
    """Every integer form's bounds, both sides of each, and random int64s."""
    out = [0, -(2**63), 2**63 - 1]
    for bound in (32, 128, 256, 2**15, 2**16, 2**31, 2**32, 2**62):
        out += [bound - 1, bound, bound + 1, -bound - 1, -bound, -bound + 1]
    rng = random.Random(14)
    out += [rng.randrange(-(2**63), 2**63) >> rng.randrange(64) for _ in range(2_000)]
    return [v for v in out if -(2**63) <= v < 2**63]


def test_integers_are_written_as_msgspec_writes_them() -> None:
    out = np.empty(9, dtype=np.uint8)
    for v in _edges():
        assert out[: put_int(out, 0, v)].tobytes() == msgspec.msgpack.encode(v), v


def test_array_headers_of_every_size_class() -> None:
    out = np.empty(5, dtype=np.uint8)
    for n in (0, 1, 15, 16, 17, 65_535, 65_536, 70_000):
        expected = msgspec.msgpack.encode([0] * n)[: len(msgspec.msgpack.encode([0] * n)) - n]
        assert out[: put_array_header(out, 0, n)].tobytes() == expected, n


def test_a_long_table_is_one_array_of_rows() -> None:
    rng = np.random.default_rng(14)
    rows = rng.integers(-(2**40), 2**40, size=(70_000, 14), dtype=np.int64)
    rows[::3] >>= 30
    assert bytes(table_raw(rows)) == msgspec.msgpack.encode(rows.tolist())
    assert bytes(table_raw(rows[:0])) == msgspec.msgpack.encode([])


def test_an_empty_engine() -> None:
    eng = CompiledEngine(CONFIG)
    assert image_bytes(eng) == encode_image(eng.image())


@settings(max_examples=60, deadline=None)
@given(command_streams(max_commands=80, issue3=True))
def test_equal_to_the_image_encoding_after_every_command(records: list[Record]) -> None:
    eng = CompiledEngine(CONFIG)
    for record in records:
        eng.process([record])
        assert image_bytes(eng) == encode_image(eng.image())
    assert image_state_hash(eng) == state_hash(eng.image())
