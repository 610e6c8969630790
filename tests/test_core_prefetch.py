"""The batch loop's prefetches (engine/core/prefetch.py) read rows ahead of the one it runs:
ids there that are out of range, unknown or hostile must not change any outcome.

Why: a prefetch computes an address from a row's account, market and order id before that
row's own checks have run; it must bound them itself. Whole streams go through one batch
(so every row is looked at ahead of its turn) and must equal the reference's events and image.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import (
    AmendOrder,
    CancelOrder,
    EngineConfig,
    OrderType,
    PlaceOrder,
    TimeInForce,
)
from tests.core_support import UNIT_SETUP

CONFIG = EngineConfig(max_accounts=4, max_assets=4, max_markets=2, max_orders=64)
_HOSTILE = [-(2**63), -1, 0, 1, 2, 3, 4, 5, 2**31 - 1, 2**31, 2**63 - 1]
_IDS = st.one_of(st.integers(0, 3), st.sampled_from(_HOSTILE))
_ORDER_IDS = st.one_of(st.integers(1, 40), st.sampled_from(_HOSTILE))


@st.composite
def command(draw: st.DrawFn) -> object:
    account = draw(_IDS)
    market = draw(st.one_of(st.just(0), st.sampled_from(_HOSTILE)))
    kind = draw(st.sampled_from(["place", "place", "cancel", "amend"]))
    if kind == "place":
        return PlaceOrder(
            account_id=account,
            market_id=market,
            side=draw(st.sampled_from([0, 1])),
            order_type=int(OrderType.LIMIT),
            time_in_force=int(TimeInForce.GTC),
            price_atoms=draw(st.integers(95, 105)),
            qty_atoms=draw(st.integers(1, 5)),
        )
    if kind == "cancel":
        return CancelOrder(account_id=account, market_id=market, order_id=draw(_ORDER_IDS))
    return AmendOrder(
        account_id=account,
        market_id=market,
        order_id=draw(_ORDER_IDS),
        new_price_atoms=draw(st.integers(95, 105)),
        new_qty_atoms=draw(st.integers(1, 5)),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(command(), min_size=1, max_size=40))
def test_hostile_ids_ahead_change_nothing(commands: list[object]) -> None:
    records = [(seq, seq * 1_000, c) for seq, c in enumerate([*UNIT_SETUP, *commands], start=1)]
    compiled = CompiledEngine(CONFIG)
    reference = ReferenceEngine(CONFIG)
    assert compiled.process(records) == reference.process(records)
    assert compiled.image() == reference.image()
