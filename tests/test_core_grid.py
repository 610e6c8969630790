"""Price and quantity on and off the market's grid: the compiled core against the reference.

Why: the compiled checks divide once per field (``x // d``, the remainder ``x - q * d``) and
tell LLVM the divisors are >= 1 (`engine.core.kernelapi.nonneg`), where they used ``%`` and
``//`` separately. Every value near a grid line must still get the reference's answer: a
remainder of 0, 1 and tick - 1, tick and lot of 1 and of 10**16, values at and past the integer
bounds, zero and negative values, for PlaceOrder and for AmendOrder of a resting order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import (
    MAX_AMOUNT_ATOMS,
    AmendOrder,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    OrderType,
    PlaceOrder,
    TimeInForce,
)

CONFIG = EngineConfig(max_accounts=4, max_assets=4, max_markets=2, max_orders=64)
_STEPS = st.sampled_from([1, 2, 3, 7, 100, 10_000, 10**9, 10**16, MAX_AMOUNT_ATOMS])


@st.composite
def near_grid(draw: st.DrawFn, step: int) -> int:
    """A value k * step + r with r in {-1, 0, 1, step - 1}, or an edge value."""
    k = draw(st.sampled_from([0, 1, 2, 3, 10**3, 10**9, MAX_AMOUNT_ATOMS // step]))
    r = draw(st.sampled_from([0, 0, 1, -1, step - 1]))
    edge = st.sampled_from(
        [0, -1, -step, 1, step, MAX_AMOUNT_ATOMS, MAX_AMOUNT_ATOMS + 1, 2**63 - 1, -(2**63)]
    )
    return draw(st.one_of(st.just(k * step + r), edge).filter(lambda v: -(2**63) <= v < 2**63))


def _gtc_limit(side: int, price_atoms: int, qty_atoms: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=1,
        market_id=0,
        side=side,
        order_type=int(OrderType.LIMIT),
        time_in_force=int(TimeInForce.GTC),
        price_atoms=price_atoms,
        qty_atoms=qty_atoms,
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_grid_checks_equal_reference(data: st.DataObject) -> None:
    tick = data.draw(_STEPS, "tick")
    lot = data.draw(_STEPS, "lot")
    side = data.draw(st.sampled_from([0, 1]), "side")
    records = [
        CreateAsset(asset_id=0, symbol="B", decimals=0),
        CreateAsset(asset_id=1, symbol="Q", decimals=0),
        CreateMarket(
            market_id=0,
            symbol="B-Q",
            base_asset_id=0,
            quote_asset_id=1,
            tick_size_atoms=tick,
            lot_size_atoms=lot,
            min_notional_atoms=0,
            maker_fee_ppm=0,
            taker_fee_ppm=1_000,
        ),
        CreateAccount(account_id=1),
        Deposit(account_id=1, asset_id=0, amount_atoms=MAX_AMOUNT_ATOMS, deposit_key="b"),
        Deposit(account_id=1, asset_id=1, amount_atoms=MAX_AMOUNT_ATOMS, deposit_key="q"),
        # a resting order on the grid for the amends to aim at (order id = its sequence, 7)
        _gtc_limit(side, tick, lot),
    ]
    for _ in range(3):
        records.append(
            _gtc_limit(side, data.draw(near_grid(tick), "price"), data.draw(near_grid(lot), "qty"))
        )
        records.append(
            AmendOrder(
                account_id=1,
                market_id=0,
                order_id=7,
                new_price_atoms=data.draw(near_grid(tick), "new price"),
                new_qty_atoms=data.draw(near_grid(lot), "new qty"),
            )
        )
    compiled = CompiledEngine(CONFIG)
    reference = ReferenceEngine(CONFIG)
    for seq, command in enumerate(records, start=1):
        record = (seq, seq * 1_000, command)
        assert compiled.process([record]) == reference.process([record]), f"seq {seq} {command!r}"
    assert compiled.image() == reference.image()
