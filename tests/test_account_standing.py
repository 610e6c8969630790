"""Frozen accounts and KYC tiers in both engines (SetAccountFrozen, SetAccountTier).

Each scenario runs through the compiled core and the reference model, which must emit the same
events; the rules: a frozen account's new orders, amends that add exposure and withdrawals are
refused with ACCOUNT_FROZEN, while cancels and pure decreases go through; unfreezing restores
trading; tiers are 0..3 and land in the state image, which round-trips through both engines;
an image without flags encodes exactly as before the field existed (old snapshots and hashes
stay valid). The differential streams (tests/streams.py) mix these commands in too.
"""

from __future__ import annotations

import msgspec
import pytest

from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import (
    IMAGE_DECODER,
    IMAGE_ENCODER,
    AccountFlagsImage,
    AccountFrozenChanged,
    AccountTierChanged,
    AmendOrder,
    CancelOrder,
    Command,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    Reject,
    SetAccountFrozen,
    SetAccountTier,
    WithdrawalHeld,
    WithdrawRequest,
    decode_command,
    encode_command,
    encode_image,
    state_hash,
)

CONFIG = EngineConfig(max_accounts=8, max_assets=4, max_markets=2, max_orders=64)
SETUP: list[Command] = [
    CreateAsset(asset_id=0, symbol="BTC", decimals=8),
    CreateAsset(asset_id=1, symbol="USDT", decimals=6),
    CreateMarket(
        market_id=0,
        symbol="BTCUSDT",
        base_asset_id=0,
        quote_asset_id=1,
        tick_size_atoms=10_000,
        lot_size_atoms=10_000,
        min_notional_atoms=0,
        maker_fee_ppm=0,
        taker_fee_ppm=0,
    ),
    CreateAccount(account_id=1),
    Deposit(account_id=1, asset_id=1, amount_atoms=10**12, deposit_key="d1"),
    Deposit(account_id=1, asset_id=0, amount_atoms=10**9, deposit_key="d2"),
]


def _buy(price_atoms: int = 100_000_000, qty_atoms: int = 100_000, coid: int = 0) -> PlaceOrder:
    return PlaceOrder(
        account_id=1,
        market_id=0,
        side=0,
        order_type=0,
        price_atoms=price_atoms,
        qty_atoms=qty_atoms,
        client_order_id=coid,
    )


class Both:
    """The two engines fed the same commands; every step's events must agree."""

    def __init__(self) -> None:
        self.compiled, self.reference = CompiledEngine(CONFIG), ReferenceEngine(CONFIG)
        self.seq = 0
        for c in SETUP:
            self.run(c)

    def run(self, command: Command) -> list[Event]:
        self.seq += 1
        command = decode_command(encode_command(command))  # as journaled
        record = (self.seq, 1_000 * self.seq, command)
        ours, theirs = self.compiled.process([record]), self.reference.process([record])
        assert ours == theirs
        return ours


def _rejected(events: list[Event]) -> int:
    (ev,) = [e for e in events if isinstance(e, OrderRejected | CommandRejected)]
    return ev.reason


def test_frozen_account_refuses_exposure_allows_cancels_and_unfreeze_restores() -> None:
    e = Both()
    assert any(isinstance(x, OrderAccepted) for x in e.run(_buy(coid=7)))
    resting = e.seq
    (ev,) = e.run(SetAccountFrozen(account_id=1, frozen=True, staff_id="staff-x"))
    assert ev == AccountFrozenChanged(seq=e.seq, account_id=1, frozen=True, staff_id="staff-x")
    assert _rejected(e.run(_buy())) == Reject.ACCOUNT_FROZEN
    more = AmendOrder(account_id=1, market_id=0, order_id=resting, new_qty_atoms=200_000)
    assert _rejected(e.run(more)) == Reject.ACCOUNT_FROZEN
    moved = AmendOrder(account_id=1, market_id=0, order_id=resting, new_price_atoms=90_000_000)
    assert _rejected(e.run(moved)) == Reject.ACCOUNT_FROZEN
    less = AmendOrder(account_id=1, market_id=0, order_id=resting, new_qty_atoms=50_000)
    assert any(isinstance(x, OrderAmended) for x in e.run(less))
    withdraw = WithdrawRequest(withdrawal_id=1, account_id=1, asset_id=1, amount_atoms=5)
    assert _rejected(e.run(withdraw)) == Reject.ACCOUNT_FROZEN
    image = e.compiled.image()
    assert image.account_flags == [AccountFlagsImage(1, True, -1)]
    assert image == e.reference.image()
    cancel = CancelOrder(account_id=1, market_id=0, order_id=resting)
    assert any(isinstance(x, OrderCancelled) for x in e.run(cancel))
    e.run(SetAccountFrozen(account_id=1, frozen=False, staff_id="staff-y"))
    assert any(isinstance(x, OrderAccepted) for x in e.run(_buy()))
    assert any(isinstance(x, WithdrawalHeld) for x in e.run(withdraw))
    assert e.compiled.image().account_flags == []


def test_tiers_are_checked_journaled_and_carried_by_the_image() -> None:
    e = Both()
    for bad in (-1, 4):
        assert _rejected(e.run(SetAccountTier(account_id=1, tier=bad, staff_id="s"))) == (
            Reject.INVALID_TIER
        )
    assert _rejected(e.run(SetAccountTier(account_id=5, tier=1, staff_id="s"))) == (
        Reject.UNKNOWN_ACCOUNT
    )
    assert _rejected(e.run(SetAccountFrozen(account_id=5, frozen=True, staff_id="s"))) == (
        Reject.UNKNOWN_ACCOUNT
    )
    (ev,) = e.run(SetAccountTier(account_id=1, tier=2, staff_id="staff-c"))
    assert ev == AccountTierChanged(seq=e.seq, account_id=1, tier=2, staff_id="staff-c")
    e.run(SetAccountTier(account_id=1, tier=0, staff_id="staff-c"))
    image = e.compiled.image()
    assert image.account_flags == [AccountFlagsImage(1, False, 0)]
    assert image == e.reference.image()
    for restored in (CompiledEngine.from_image(image), ReferenceEngine.from_image(image)):
        assert restored.image() == image
    assert IMAGE_DECODER.decode(IMAGE_ENCODER.encode(image)) == image


@pytest.mark.parametrize("flags", [False, True])
def test_image_without_flags_encodes_as_before(flags: bool) -> None:
    """The field is last and omitted when empty: a state with no frozen account and no tier
    has the 12-field encoding (and hash) of images written before it existed."""
    e = Both()
    if flags:
        e.run(SetAccountFrozen(account_id=1, frozen=True, staff_id="s"))
    image = e.compiled.image()
    raw = msgspec.msgpack.decode(encode_image(image))
    assert len(raw) == (13 if flags else 12)
    old = IMAGE_DECODER.decode(msgspec.msgpack.encode(raw[:12]))  # a pre-field snapshot
    assert old.account_flags == []
    if not flags:
        assert state_hash(old) == state_hash(image)
