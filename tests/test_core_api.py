"""Focused tests of the compiled core (engine/core): the batch and fast-path API, the image
round trip, memory per resting order, and the overflow-free integer helpers.

The big differential tests against the reference model live in tests/test_differential.py.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core import money
from engine.core.arrays import CoreArrays, bytes_per_resting_order
from engine.core.compiled import CompiledEngine, SequenceError
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CreateAccount,
    EngineConfig,
    PlaceOrder,
    state_hash,
)
from tests.core_support import PX, QX, Driver, M, buy

# --------------------------------------------------------------------------------------------
# API: batching, the fast path, the image


def _random_stream(seed: int, n: int) -> list[object]:
    rng = random.Random(seed)
    out: list[object] = []
    for _ in range(n):
        r = rng.random()
        account = rng.randint(1, 2)
        if r < 0.5:
            side = rng.randint(0, 1)
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=M,
                    side=side,
                    order_type=rng.choice([0, 0, 0, 1, 2]),
                    time_in_force=rng.choice([0, 0, 1, 2]),
                    price_atoms=rng.randint(5, 15) * PX,
                    qty_atoms=rng.randint(1, 4) * QX,
                    client_order_id=rng.choice([0, 0, rng.randint(1, 5)]),
                )
            )
        elif r < 0.8:
            out.append(
                AmendOrder(
                    account_id=account,
                    market_id=M,
                    order_id=rng.randint(8, 60),
                    new_price_atoms=rng.choice([0, rng.randint(5, 15) * PX]),
                    new_qty_atoms=rng.choice([0, rng.randint(1, 4) * QX]),
                )
            )
        elif r < 0.95:
            out.append(CancelOrder(account_id=account, market_id=M, order_id=rng.randint(8, 60)))
        else:
            out.append(CancelAll(account_id=account))
    return out  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_batches_capacity_spills_and_image_round_trip(seed: int) -> None:
    stream = _random_stream(seed, 300)
    one = Driver()
    events = []
    for c in stream:
        events.extend(one.run(c))
    # A tiny event buffer forces the kernel to stop and drain in the middle of the batch.
    small = Driver(event_capacity=1)
    assert small.run(*stream) == events
    image = one.eng.image()
    assert small.eng.image() == image
    restored = CompiledEngine.from_image(image)
    assert restored.image() == image
    assert state_hash(restored.image()) == state_hash(image)
    # ... and the restored engine behaves identically from there on.
    more = _random_stream(seed + 100, 100)
    records = [(one.seq + 1 + i, 0, c) for i, c in enumerate(more)]
    assert restored.process(records) == one.eng.process(records)
    assert restored.image() == one.eng.image()


def test_fast_path_counts_events_and_keeps_the_last_stretch() -> None:
    d = Driver()
    stream = _random_stream(7, 200)
    records = [(d.seq + 1 + i, 0, c) for i, c in enumerate(stream)]
    twin = Driver()
    expected = twin.eng.process(records)
    rows = d.eng.encode(records)
    assert rows.dtype == np.int64 and len(rows) == len(records)
    # Rows written, not events: a trade row also stands for its 2-5 postings, an accepted or
    # amended row for its hold posting (if any).
    kinds = [type(e).__name__ for e in expected]
    trades = kinds.count("Trade")
    holders = kinds.count("OrderAccepted") + kinds.count("OrderAmended")
    assert trades > 0
    produced = d.eng.process_encoded(rows)
    assert len(expected) - 5 * trades - holders <= produced <= len(expected) - 2 * trades
    assert d.eng.drain_events() == expected  # fits the buffer: nothing was overwritten
    assert d.eng.image() == twin.eng.image()


@pytest.mark.parametrize("seed", range(5))
def test_state_only_reaches_the_same_state_and_keeps_no_event(seed: int) -> None:
    """Replay's mode: every command's event rows overwrite the previous command's."""
    stream = _random_stream(seed, 400)
    twin = Driver()
    records = [(twin.seq + 1 + i, 0, c) for i, c in enumerate(stream)]
    assert twin.eng.process(records)  # events kept: the reference for the state
    d = Driver()
    rows = d.eng.encode(records)
    for start in range(0, len(rows), 64):  # several calls, as replay makes
        d.eng.process_encoded(rows[start : start + 64], state_only=True)
    assert d.eng.image() == twin.eng.image()
    assert len(d.eng.event_rows()) == 0
    assert d.eng.drain_events() == []
    with pytest.raises(ValueError, match="exclude each other"):
        d.eng.process_encoded(rows[:0], keep_events=True, state_only=True)


def test_sequence_must_increase() -> None:
    d = Driver()
    with pytest.raises(SequenceError):
        d.eng.process([(d.seq, 0, buy(10, 1))])
    with pytest.raises(AssertionError):
        d.eng.process([(d.seq, 0, CreateAccount(account_id=5))])


def test_memory_per_resting_order_is_bounded() -> None:
    report = bytes_per_resting_order(EngineConfig())
    # 116 bytes: 8 int64 columns (GTD expiry and iceberg slice included; conditional orders
    # reuse the resting-only columns), 8 int32 links (side, type, TIF, STP, pending and trailing
    # delta packed in K_FLAGS), the int32 free stack and the two int32 hash indexes
    assert report["total_per_order"] <= 128


_BIG = st.one_of(st.integers(1, 1 << 16), st.integers(1, 1 << 40), st.integers(1, (1 << 62) - 1))


@given(_BIG, _BIG, _BIG)
def test_notional_fits_matches_big_integers(p: int, q: int, qtl: int) -> None:
    assert money.notional_fits(p, q, qtl) == (p * q * qtl <= (1 << 62) - 1)


_EDGE = money._FEE_ONE_DIVISION  # the one-division path's last notional


@given(
    st.one_of(
        st.integers(0, (1 << 62) - 1),
        st.integers(0, 1 << 47),
        st.integers(_EDGE - 2_000, _EDGE + 2_000),
    ),
    st.one_of(st.sampled_from([0, 1, 999, 2_500, 100_000]), st.integers(0, 100_000)),
)
def test_fee_matches_big_integers(n: int, ppm: int) -> None:
    assert money.fee(n, ppm) == n * ppm // 1_000_000


def test_fee_paths_meet_at_the_edge() -> None:
    """Both sides of the one-division bound, at the largest fee rate (where overflow would be)."""
    for n in (_EDGE - 1, _EDGE, _EDGE + 1, (1 << 62) - 1):
        assert money.fee(n, 100_000) == n * 100_000 // 1_000_000
    assert _EDGE * 100_000 < 1 << 63 <= (_EDGE + 1) * 100_000


@given(st.integers(1, 1 << 40), st.sampled_from([0, 7, 2_000, 100_000]), st.integers(0, 1 << 50),
       st.integers(1, 1 << 30))  # fmt: skip
def test_lots_for_budget_is_the_largest_affordable(c: int, ppm: int, budget: int, cap: int) -> None:
    k = money.lots_for_budget(c, ppm, budget, cap)

    def cost(x: int) -> int:
        return x * c + x * c * ppm // 1_000_000

    assert 0 <= k <= cap and cost(k) <= budget
    assert k == cap or cost(k + 1) > budget


def test_state_refuses_tables_of_another_row_width() -> None:
    """The kernels address rows with the widths compiled in (layout.ROW_WIDTHS): a table of
    another width, or a strided view, must be refused before any kernel reads it."""
    tables = CoreArrays(EngineConfig())
    tables.state()  # as allocated: accepted
    tables.ords = np.zeros((tables.ords.shape[0], tables.ords.shape[1] + 1), dtype=np.int64)
    with pytest.raises(ValueError, match="ords"):
        tables.state()
    tables = CoreArrays(EngineConfig())
    tables.mkt = np.zeros((tables.mkt.shape[0], 2 * tables.mkt.shape[1]), dtype=np.int64)[:, ::2]
    with pytest.raises(ValueError, match="mkt"):
        tables.state()


@given(
    st.one_of(st.integers(1, 1_000), st.integers(1, 1 << 40), st.integers(1, (1 << 62) - 1)),
    st.one_of(st.integers(0, 1 << 20), st.integers(0, (1 << 62) - 1)),
    st.booleans(),
)
def test_exact_div_by_matches_division(d: int, k: int, multiple: bool) -> None:
    """The multiply-and-rotate division the place and amend checks use agrees with ``//`` and
    ``%`` on multiples of d and on every other number below 2**62."""
    x = min(k * d, (1 << 62) - 1) if multiple else k
    want = x // d if x % d == 0 else -1
    assert money.exact_div_by(x, _market_row(d), 0, 0) == want
    assert money.exact_div(x, d) == want


def _market_row(d: int) -> np.ndarray:
    """A one-row table holding `divisor_constants(d)` at column 0, as a market row does."""
    return np.array([money.divisor_constants(d)], dtype=np.int64)


def test_exact_div_by_edges() -> None:
    for d in (1, 2, 3, 10, 1 << 20, 10**8, (1 << 62) - 1, 1 << 61):
        row = _market_row(d)
        for x in (0, d, 2 * d, d - 1, d + 1, (1 << 62) - 1, (((1 << 62) - 1) // d) * d):
            if 0 <= x < 1 << 63:
                want = x // d if x % d == 0 else -1
                assert money.exact_div_by(x, row, 0, 0) == want, (x, d)
