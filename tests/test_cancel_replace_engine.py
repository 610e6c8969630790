"""CancelReplaceOrder in both engines: the new order is funded by the hold the cancel frees,
the cancel's refusal stops the placement unless ``allow_failure``, and refusals name their half.

Each scenario runs through the compiled core and the reference model, which must emit the same
events and end in the same state (the random streams of tests/test_differential.py cover the
command too; these pin the exact outcomes).
"""

from __future__ import annotations

from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import (
    CancelReplaceOrder,
    Command,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    Posting,
    PostingReason,
    Reject,
    decode_command,
    encode_command,
)

BTC, USDT, M = 0, 1, 0
CONFIG = EngineConfig(max_accounts=8, max_assets=4, max_markets=4, max_orders=64,
                      max_levels_per_side=8)  # fmt: skip
FUNDS = 1_000_000_000  # 1,000 USDT
SETUP: list[Command] = [
    CreateAsset(asset_id=BTC, symbol="BTC", decimals=8),
    CreateAsset(asset_id=USDT, symbol="USDT", decimals=6),
    # tick 0.01 USDT, lot 0.0001 BTC, no fees: a hold is exactly price x qty
    CreateMarket(market_id=M, symbol="BTC-USDT", base_asset_id=BTC, quote_asset_id=USDT,
                 tick_size_atoms=10_000, lot_size_atoms=10_000, min_notional_atoms=0,
                 maker_fee_ppm=0, taker_fee_ppm=0),
    CreateAccount(account_id=1),
    Deposit(account_id=1, asset_id=USDT, amount_atoms=FUNDS, deposit_key="u1"),
]  # fmt: skip


def bid(price_usdt: int, qty_lots: int, client_order_id: int = 0) -> PlaceOrder:
    return PlaceOrder(account_id=1, market_id=M, side=0, order_type=0,
                      price_atoms=price_usdt * 1_000_000, qty_atoms=qty_lots * 10_000,
                      client_order_id=client_order_id)  # fmt: skip


class Both:
    """The two engines fed the same records; every call asserts they agree."""

    def __init__(self) -> None:
        self.compiled = CompiledEngine(CONFIG)
        self.reference = ReferenceEngine(CONFIG)
        self.seq = 0
        self.run(*SETUP)

    def run(self, *commands: Command) -> list[Event]:
        records = []
        for c in commands:
            self.seq += 1
            records.append((self.seq, self.seq * 1_000, c))
        ours = self.compiled.process(records)
        assert ours == self.reference.process(records)
        assert self.compiled.image() == self.reference.image()
        return ours

    def available_usdt(self) -> int:
        (account,) = self.compiled.image().accounts
        return next(b.available_atoms for b in account.balances if b.asset_id == USDT)


def test_freed_hold_funds_the_new_order() -> None:
    both = Both()
    # 90,000 USDT x 0.0100 BTC = 900 of the 1,000 USDT: the bid holds 90 % of the balance.
    (accepted, _hold) = both.run(bid(90_000, 100, client_order_id=5))
    assert isinstance(accepted, OrderAccepted)
    assert both.available_usdt() == FUNDS - 900_000_000
    # A plain new order of the same size cannot be funded...
    (refused,) = both.run(bid(89_000, 100))
    assert isinstance(refused, OrderRejected) and refused.reason == Reject.INSUFFICIENT_FUNDS
    # ...but replacing the bid can: the cancel's release comes first, in the same command.
    replace = CancelReplaceOrder(place=bid(89_000, 100, client_order_id=5),
                                 cancel_order_id=accepted.order_id)  # fmt: skip
    events = both.run(replace)
    assert [type(e) for e in events] == [OrderCancelled, Posting, OrderAccepted, Posting]
    cancelled, release, new, hold = events
    assert cancelled.order_id == accepted.order_id
    assert release.reason == PostingReason.ORDER_RELEASE and release.amount_atoms == 900_000_000
    assert new.order_id == both.seq and new.client_order_id == 5  # the freed client id reused
    assert hold.reason == PostingReason.ORDER_HOLD and hold.amount_atoms == 890_000_000
    assert both.available_usdt() == FUNDS - 890_000_000
    (order,) = both.compiled.image().orders
    assert order.order_id == both.seq and order.price_atoms == 89_000 * 1_000_000


def test_cancel_refused_stops_the_placement_unless_allow_failure() -> None:
    both = Both()
    events = both.run(CancelReplaceOrder(place=bid(100, 1), cancel_order_id=12_345))
    assert events == [OrderRejected(seq=both.seq, account_id=1, market_id=M, order_id=12_345,
                                    client_order_id=0, reason=Reject.UNKNOWN_ORDER)]  # fmt: skip
    assert both.compiled.image().orders == []
    events = both.run(CancelReplaceOrder(place=bid(100, 1), cancel_client_order_id=77,
                                         allow_failure=True))  # fmt: skip
    assert [type(e) for e in events] == [OrderRejected, OrderAccepted, Posting]
    assert events[0].client_order_id == 77 and events[0].reason == Reject.UNKNOWN_ORDER
    assert events[1].order_id == both.seq


def test_placement_refused_after_the_cancel_keeps_the_cancel() -> None:
    both = Both()
    (accepted, _hold) = both.run(bid(90_000, 100))
    too_big = bid(90_000, 200, client_order_id=3)  # 1,800 USDT: more than the account has
    events = both.run(CancelReplaceOrder(place=too_big, cancel_order_id=accepted.order_id))
    assert [type(e) for e in events] == [OrderCancelled, Posting, OrderRejected]
    assert events[2] == OrderRejected(
        seq=both.seq,
        account_id=1,
        market_id=M,
        order_id=0,
        client_order_id=3,
        reason=Reject.INSUFFICIENT_FUNDS,
    )
    assert both.compiled.image().orders == []
    assert both.available_usdt() == FUNDS


def test_ids_beyond_int64_are_echoed_by_the_half_that_refused() -> None:
    """The compiled core clamps ids outside int64 in its rows; its refusals must still echo the
    command's own values, the cancel's ids for the cancel half and the place's for the other."""
    both = Both()
    huge = 1 << 64
    events = both.run(
        CancelReplaceOrder(
            place=bid(100, 1, client_order_id=huge), cancel_order_id=huge, allow_failure=True
        )
    )
    assert events == [
        OrderRejected(seq=both.seq, account_id=1, market_id=M, order_id=huge, client_order_id=0,
                      reason=Reject.UNKNOWN_ORDER),
        OrderRejected(seq=both.seq, account_id=1, market_id=M, order_id=0,
                      client_order_id=huge, reason=Reject.INVALID_CLIENT_ORDER_ID),
    ]  # fmt: skip


def test_journal_round_trip() -> None:
    command = CancelReplaceOrder(place=bid(100, 1, client_order_id=9), cancel_order_id=4,
                                 allow_failure=True)  # fmt: skip
    assert decode_command(encode_command(command)) == command
    assert command.account_id == 1 and command.market_id == M
