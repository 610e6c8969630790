"""Workload (c), the C++ order book's insert-only benchmark stream, is reproduced exactly.

The comparison with the C++ book only means something if both run the same stream: the
generator must be glibc's ``rand()`` bit for bit (checked against the C library itself through
ctypes, not against numbers copied from somewhere), the draws must be taken in the C++ loop's
order, and the engine must then produce the C++ book's published outcome at 2M orders: 917,708
trades and 987,103 resting orders.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from bench.crand import glibc_rand
from bench.workloads import insert_only_draws, workload_c
from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import PlaceOrder, Side, state_hash


@pytest.fixture(scope="module")
def libc() -> ctypes.CDLL:
    name = ctypes.util.find_library("c")
    assert name is not None, "the C library is needed to check rand() against"
    lib = ctypes.CDLL(name)
    lib.srand.argtypes = [ctypes.c_uint]
    lib.rand.restype = ctypes.c_int
    return lib


def _c_rand(libc: ctypes.CDLL, seed: int, count: int) -> list[int]:
    libc.srand(seed & 0xFFFFFFFF)
    return [libc.rand() for _ in range(count)]


@pytest.mark.parametrize("seed", [3, 0, 1, 12_345, -7, 2**31 - 1, 2**32 - 1])
def test_rand_is_glibc_rand(libc: ctypes.CDLL, seed: int) -> None:
    assert glibc_rand(seed, 20_000).tolist() == _c_rand(libc, seed, 20_000)


def test_seed_3_first_values(libc: ctypes.CDLL) -> None:
    """srand(3): the stream of workload (c) starts with these C library values."""
    first = glibc_rand(3, 6).tolist()
    assert first == _c_rand(libc, 3, 6)
    assert first[:3] == [1_205_554_746, 483_147_985, 844_158_168]


def test_draws_follow_the_cpp_loop(libc: ctypes.CDLL) -> None:
    """Order i: a buy when i is even; price draw first (buys 1880 + r % 10, sells
    1884 + r % 10), then quantity (r % 10 + 1 lots of 100 units)."""
    orders = 5_000
    values = iter(_c_rand(libc, 3, 2 * orders))
    side, price, qty = insert_only_draws(3, orders)
    for i in range(orders):
        buy = i % 2 == 0
        expected_price = (1880 if buy else 1884) + next(values) % 10
        expected_qty = next(values) % 10 + 1
        assert (int(side[i]), int(price[i]), int(qty[i])) == (
            Side.BUY if buy else Side.SELL,
            expected_price,
            expected_qty,
        ), i


def test_records_carry_the_draws() -> None:
    wl = workload_c(3, 1_000)
    side, price, qty = insert_only_draws(3, 1_000)
    for (_, _, cmd), s, p, q in zip(wl.stream, side, price, qty, strict=True):
        assert isinstance(cmd, PlaceOrder)
        assert (cmd.side, cmd.price_atoms // 100, cmd.qty_atoms // 100) == (s, p, q)
        buyer = cmd.account_id <= 16
        assert buyer == (cmd.side == Side.BUY) and 1 <= cmd.account_id <= 32


def test_engines_agree_on_a_prefix() -> None:
    """Differential: the compiled engine and the reference model, events and state."""
    wl = workload_c(3, 20_000)
    records = wl.setup + wl.stream
    compiled = CompiledEngine(wl.config)
    reference = ReferenceEngine(wl.config)
    assert compiled.process(records) == reference.process(records)
    assert state_hash(compiled.image()) == state_hash(reference.image())


def test_two_million_orders_give_the_cpp_books_outcome() -> None:
    """917,708 trades and 987,103 resting orders at 2M orders, seed 3, as the C++ book."""
    from bench.compiled_api import book_totals

    wl = workload_c(3, 2_000_000)
    engine = CompiledEngine(wl.config)
    engine.process(wl.setup)
    rows = engine.encode(wl.stream)
    for i in range(0, len(rows), 4_096):
        engine.process_encoded(rows[i : i + 4_096])
    trades, resting, levels = book_totals(engine)
    assert (trades, resting) == (917_708, 987_103)
    assert levels == 13
    # money after 9M events: holds equal open commitments, nothing created or lost
    image = engine.image()
    assert len(image.orders) == 987_103
    held: dict[tuple[int, int], int] = {}
    for order in image.orders:
        asset = 1 if order.side == Side.BUY else 2
        key = (order.account_id, asset)
        held[key] = held.get(key, 0) + order.hold_atoms
    totals = {a.asset_id: a.fees_atoms for a in image.assets}
    for account in image.accounts:
        for b in account.balances:
            assert b.held_orders_atoms == held.get((account.account_id, b.asset_id), 0)
            totals[b.asset_id] += b.available_atoms + b.held_orders_atoms
    assert totals == {1: 16 * 10**12, 2: 16 * 10**10}
