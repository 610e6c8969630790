"""The reference model's state image: its order and units, the round trip through it, and
sequence numbers (docs/engine-semantics.md); the exchange: tests/reference_support.py.
"""

from __future__ import annotations

import pytest

from engine.reference import ReferenceEngine
from engine.schema import (
    IMAGE_DECODER,
    IMAGE_ENCODER,
    AmendOrder,
    CancelAll,
    CreateAccount,
    PlaceOrder,
    WithdrawResult,
    state_hash,
)
from tests.reference_support import (
    ALICE,
    BOB,
    BUY,
    CAROL,
    ETH,
    IOC,
    M1,
    M2,
    MAKER,
    MARKET,
    SELL,
    Exchange,
    order,
    withdraw,
)

# --------------------------------------------------------------------------------------------
# State image


def _busy_exchange() -> Exchange:
    ex = Exchange()
    ex.place(ALICE, SELL, 101_000, 30, coid=1)
    ex.place(CAROL, SELL, 101_000, 20)
    ex.place(ALICE, SELL, 102_000, 10)
    ex.place(BOB, BUY, 99_000, 20, coid=2)
    ex.place(CAROL, BUY, 100_000, 40, kind=MAKER)
    ex.place(BOB, BUY, 100_000, 10)
    ex.place(BOB, BUY, 0, 0, kind=MARKET, quote=15_000)  # 1 lot of Alice's first ask
    ex.place(ALICE, SELL, 100_000, 10, tif=IOC)  # 1 lot of Carol's bid
    ex.place(BOB, SELL, 300_000, 20, market=M2)
    ex.run(withdraw(withdrawal_id=3, account_id=CAROL, asset_id=ETH, amount_atoms=7))
    ex.run(withdraw(withdrawal_id=1, account_id=CAROL, asset_id=ETH, amount_atoms=5))
    ex.run(WithdrawResult(withdrawal_id=3, success=True))
    return ex


def test_image_order_and_units() -> None:
    ex = _busy_exchange()
    image = ex.eng.image()
    assert [(o.market_id, o.side, o.price_atoms, o.qty_atoms) for o in image.orders] == [
        (M1, BUY, 100_000, 30),  # Carol's maker bid after the IOC took 1 lot
        (M1, BUY, 100_000, 10),
        (M1, BUY, 99_000, 20),
        (M1, SELL, 101_000, 20),  # Alice's first ask after 1 lot bought by quote
        (M1, SELL, 101_000, 20),
        (M1, SELL, 102_000, 10),
        (M2, SELL, 300_000, 20),
    ]
    assert image.withdrawal_ids == [1, 3]
    assert [w.withdrawal_id for w in image.pending_withdrawals] == [1]
    assert image.last_seq == ex.seq and image.markets[0].last_trade_id == 2


def test_from_image_roundtrip() -> None:
    ex = _busy_exchange()
    image = ex.eng.image()
    restored = ReferenceEngine.from_image(image)
    assert restored.image() == image
    decoded = IMAGE_DECODER.decode(IMAGE_ENCODER.encode(image))
    assert ReferenceEngine.from_image(decoded).image() == image
    assert state_hash(restored.image()) == state_hash(image)
    # Both continue identically, time priority and client order ids included.
    more = [
        PlaceOrder(account_id=BOB, market_id=M1, side=BUY, order_type=MARKET, qty_atoms=50),
        AmendOrder(account_id=BOB, market_id=M1, client_order_id=2, new_qty_atoms=10),
        PlaceOrder(account_id=ALICE, market_id=M1, side=SELL, order_type=MARKET, qty_atoms=30),
        order(client_order_id=2),
        CancelAll(account_id=CAROL),
        WithdrawResult(withdrawal_id=1, success=False),
    ]
    records = [(ex.seq + 1 + i, 0, c) for i, c in enumerate(more)]
    assert ex.eng.process(records) == restored.process(records)
    assert ex.eng.image() == restored.image()


def test_seq_must_increase(ex: Exchange) -> None:
    with pytest.raises(AssertionError):
        ex.eng.process([(ex.seq, 0, CreateAccount(account_id=9))])
