"""The benchmark workloads are deterministic, have the documented shape, and both engines agree
on them.

A benchmark is only comparable across runs and machines if its input is the same byte for
byte, and only meaningful if it measures the hot path (almost no rejections) on the book it
claims (depth, levels, mix). These tests check that on small sizes, with the reference model
following fills, so they run in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bench.specs import MIX_A, MIX_B_ISSUE3, Record
from bench.workloads import Workload, workload_a, workload_b
from engine.reference import ReferenceEngine
from engine.schema import EngineConfig, Event


def _small_a(seed: int, simulator: type = ReferenceEngine) -> Workload:
    return workload_a(seed, 6_000, simulator=simulator)


def _small_b(seed: int, simulator: type = ReferenceEngine) -> Workload:
    return workload_b(seed, 6_000, accounts=500, resting=5_000, simulator=simulator)


@pytest.fixture(scope="module")
def wl_a() -> Workload:
    return _small_a(11)


@pytest.fixture(scope="module")
def wl_b() -> Workload:
    return _small_b(11)


def test_same_seed_same_records(wl_a: Workload, wl_b: Workload) -> None:
    assert _small_a(11).digest() == wl_a.digest()
    assert _small_b(11).digest() == wl_b.digest()


def test_other_seed_other_records(wl_a: Workload, wl_b: Workload) -> None:
    assert _small_a(12).digest() != wl_a.digest()
    assert _small_b(12).digest() != wl_b.digest()


def test_sequences_and_times_are_dense(wl_a: Workload) -> None:
    records = wl_a.setup + wl_a.prefill + wl_a.stream
    assert [seq for seq, _, _ in records] == list(range(1, len(records) + 1))
    assert all(ts == seq * 1_000 for seq, ts, _ in records)


def _assert_mix(workload: Workload, mix: dict[str, float], tolerance: float) -> None:
    total = len(workload.stream)
    assert sum(workload.mix.values()) == total
    for kind, share in mix.items():
        got = workload.mix.get(kind, 0) / total
        assert abs(got - share) <= tolerance, (kind, got, share)


def test_workload_a_shape(wl_a: Workload) -> None:
    """exchange-core mix, 1,000 resting orders on ~750 levels, depth stable, no rejections."""
    assert len(wl_a.stream) == 6_000
    _assert_mix(wl_a, MIX_A, tolerance=0.015)
    assert wl_a.rejected == 0
    assert wl_a.resting_after_prefill == 1_000
    assert 700 <= wl_a.levels_after_prefill <= 800
    assert wl_a.min_resting >= 850 and wl_a.max_resting <= 1_150


def test_workload_b_shape(wl_b: Workload) -> None:
    assert len(wl_b.stream) == 6_000
    _assert_mix(wl_b, MIX_B_ISSUE3, tolerance=0.015)
    assert wl_b.rejected == 0
    assert wl_b.resting_after_prefill == 5_000
    assert wl_b.min_resting >= 4_500 and wl_b.max_resting <= 5_500


def test_workload_b_default_book_is_deep() -> None:
    """The documented deep book: >= 100,000 resting orders before the stream starts."""
    simulator = _fast_simulator()
    wl = workload_b(3, 200, simulator=simulator)
    assert wl.resting_after_prefill >= 100_000
    assert wl.levels_after_prefill >= 5_000
    assert wl.rejected == 0


def _fast_simulator() -> type:
    from engine.core.compiled import CompiledEngine

    return CompiledEngine


def _first_difference(a: Sequence[Event], b: Sequence[Event]) -> str | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"event {i}: compiled {x!r} != reference {y!r}"
    if len(a) != len(b):
        return f"event counts differ: compiled {len(a)}, reference {len(b)}"
    return None


def _run(engine_cls: type, config: EngineConfig, records: list[Record]) -> list[Event]:
    engine = engine_cls(config)
    return engine.process(records)


@pytest.mark.parametrize("name", ["a", "b"])
def test_engines_agree_on_workloads(name: str, wl_a: Workload, wl_b: Workload) -> None:
    """Differential check: the same workload gives the same events and state in both engines."""
    from engine.core.compiled import CompiledEngine
    from engine.schema import state_hash

    wl = wl_a if name == "a" else wl_b
    records = wl.setup + wl.prefill + wl.stream
    compiled = CompiledEngine(wl.config)
    reference = ReferenceEngine(wl.config)
    difference = _first_difference(compiled.process(records), reference.process(records))
    assert difference is None, difference
    assert state_hash(compiled.image()) == state_hash(reference.image())


def test_stream_does_not_depend_on_the_simulator(wl_a: Workload, wl_b: Workload) -> None:
    """Fills followed through either engine give the same records (they agree on fills)."""
    from engine.core.compiled import CompiledEngine

    assert _small_a(11, CompiledEngine).digest() == wl_a.digest()
    assert _small_b(11, CompiledEngine).digest() == wl_b.digest()
