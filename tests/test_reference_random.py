"""The reference model on random commands: its own assertions and check_image hold after every
command, and the image survives a restore; the exchange: tests/reference_support.py.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.reference import ReferenceEngine
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    EngineConfig,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PlaceOrder,
    Trade,
)
from tests.reference_support import (
    ALICE,
    BOB,
    BUY,
    CAROL,
    DAVE,
    FOK,
    GTC,
    IOC,
    LIMIT,
    M1,
    M2,
    MAKER,
    MARKET,
    MARKET_BUY,
    SELL,
    Exchange,
    order,
)

# --------------------------------------------------------------------------------------------
# A random walk: the engine's own assertions and check_image hold after every command, and
# the image survives a restore.

_accounts = st.sampled_from([ALICE, BOB, CAROL, ALICE, BOB, CAROL, DAVE])
_markets = st.sampled_from([M1, M1, M1, M2])
_prices = st.integers(min_value=98, max_value=102).map(lambda p: p * 1_000)
_qtys = st.integers(min_value=1, max_value=4).map(lambda q: q * 10)
_coids = st.integers(min_value=0, max_value=3)
_limit = st.builds(
    PlaceOrder,
    account_id=_accounts,
    market_id=_markets,
    side=st.sampled_from([BUY, SELL]),
    order_type=st.sampled_from([LIMIT, LIMIT, MAKER]),
    time_in_force=st.sampled_from([GTC, GTC, GTC, IOC, FOK]),
    price_atoms=_prices,
    qty_atoms=_qtys,
    client_order_id=_coids,
)
_market_by_qty = st.builds(
    PlaceOrder,
    account_id=_accounts,
    market_id=_markets,
    side=st.sampled_from([BUY, SELL]),
    order_type=st.just(MARKET),
    qty_atoms=_qtys,
)
_market_by_quote = st.builds(
    PlaceOrder,
    account_id=_accounts,
    market_id=_markets,
    side=st.just(BUY),
    order_type=st.just(MARKET),
    quote_qty_atoms=st.integers(min_value=1_000, max_value=60_000),
)
_amend = st.builds(
    AmendOrder,
    account_id=_accounts,
    market_id=_markets,
    client_order_id=st.integers(min_value=1, max_value=3),
    new_price_atoms=st.one_of(st.just(0), _prices),
    new_qty_atoms=st.one_of(st.just(0), _qtys),
)
_cancel = st.builds(
    CancelOrder,
    account_id=_accounts,
    market_id=_markets,
    client_order_id=st.integers(min_value=1, max_value=3),
)
_cancel_all = st.builds(CancelAll, account_id=_accounts, market_id=st.sampled_from([-1, M1, M2]))
_commands = st.sampled_from(  # weights by repetition
    [_limit] * 6 + [_market_by_qty, _market_by_quote, _amend, _amend, _cancel, _cancel_all]
).flatmap(lambda strategy: strategy)


@given(st.lists(_commands, min_size=5, max_size=60))
def test_random_commands_keep_invariants(commands: list) -> None:
    ex = Exchange(EngineConfig(max_fills_per_order=3, max_levels_per_side=4))
    for command in commands:
        ex.run(command)
    assert ReferenceEngine.from_image(ex.eng.image()).image() == ex.eng.image()


def _random_command(rng: random.Random) -> object:
    account = rng.choice([ALICE, BOB, CAROL, ALICE, BOB, CAROL, DAVE])
    market_id = rng.choice([M1, M1, M2])
    price = rng.randint(98, 102) * 1_000
    qty = rng.randint(1, 4) * 10
    coid = rng.randint(0, 4)
    roll = rng.random()
    if roll < 0.55:
        kind = rng.choice([LIMIT, LIMIT, LIMIT, MAKER])
        tif = GTC if kind == MAKER else rng.choice([GTC, GTC, IOC, FOK])
        return order(
            account_id=account,
            market_id=market_id,
            side=rng.choice([BUY, SELL]),
            order_type=kind,
            time_in_force=tif,
            price_atoms=price,
            qty_atoms=qty,
            client_order_id=coid,
        )
    if roll < 0.65:
        side = rng.choice([BUY, SELL])
        by_quote = side == BUY and rng.random() < 0.5
        return order(
            account_id=account,
            market_id=market_id,
            side=side,
            **MARKET_BUY,
            qty_atoms=0 if by_quote else qty,
            quote_qty_atoms=rng.randint(1_000, 60_000) if by_quote else 0,
        )
    if roll < 0.85:
        return AmendOrder(
            account_id=account,
            market_id=market_id,
            client_order_id=rng.randint(1, 4),
            new_price_atoms=rng.choice([0, price]),
            new_qty_atoms=rng.choice([0, qty]),
        )
    if roll < 0.97:
        return CancelOrder(account_id=account, market_id=market_id, client_order_id=coid)
    return CancelAll(account_id=account, market_id=rng.choice([-1, M1, M2]))


@pytest.mark.parametrize("seed", range(3))
def test_seeded_random_walk(seed: int) -> None:
    """Long walks: invariants after every command; a restored copy replays identically."""
    rng = random.Random(seed)
    config = EngineConfig(max_fills_per_order=3, max_levels_per_side=4, max_orders=60)
    ex = Exchange(config)
    seen: set[type] = set()
    for step in range(1_500):
        if step == 750:
            twin = ReferenceEngine.from_image(ex.eng.image())
            tail = []
        command = _random_command(rng)
        events = ex.run(command)
        seen.update(type(e) for e in events)
        if step >= 750:
            tail.append((ex.seq, events, command))
    assert twin.process([(seq, 0, c) for seq, _, c in tail]) == [e for _, ev, _ in tail for e in ev]
    assert twin.image() == ex.eng.image()
    assert {Trade, OrderAmended, OrderExpired, OrderCancelled, OrderRejected} <= seen
