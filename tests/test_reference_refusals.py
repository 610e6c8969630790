"""The reference model: every refusal has a stable reason and changes nothing
(docs/engine-semantics.md); the exchange: tests/reference_support.py.
"""

from __future__ import annotations

import pytest

from engine.schema import (
    MAX_AMOUNT_ATOMS,
    CancelOnDisconnect,
    CancelOrder,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    EngineConfig,
    MarketState,
    OrderRejected,
    OrderType,
    Reject,
    SetAccountFrozen,
    SetAccountTier,
    SetDeadMansSwitch,
    SetMarketState,
    SetTierTradeLimit,
    TimeInForce,
    WithdrawResult,
)
from tests.reference_support import (
    ALICE,
    BOB,
    BTC,
    DAVE,
    FUND_BASE,
    FUND_USD,
    IOC,
    M1,
    M2,
    MAKER,
    MARKET,
    MARKET_BUY,
    SELL,
    USD,
    Exchange,
    amend,
    deposit,
    market,
    order,
    unchanged_but_seq,
    withdraw,
)

RESTING = order(account_id=ALICE, side=SELL, price_atoms=200_000, client_order_id=1)
MAKER_BID = order(order_type=MAKER, client_order_id=2)
MAX = MAX_AMOUNT_ATOMS
FREEZE_ALICE = SetAccountFrozen(account_id=ALICE, frozen=True, staff_id="staff-1")
FREEZE_BOB = SetAccountFrozen(account_id=BOB, frozen=True, staff_id="staff-1")


TIER0_ALICE = SetAccountTier(account_id=ALICE, tier=0, staff_id="staff-1")
TIER0_BOB = SetAccountTier(account_id=BOB, tier=0, staff_id="staff-1")


def limit_usd(**fields: int) -> SetTierTradeLimit:
    """Tier 0 may place orders of at most 1 USD atom (with `fields` changed)."""
    spec = {"tier": 0, "asset_id": USD, "max_order_notional_atoms": 1, **fields}
    return SetTierTradeLimit(**spec, staff_id="staff-1")


LIMIT_USD_1 = limit_usd()
BUDGET_2 = dict(order_type=MARKET, price_atoms=0, qty_atoms=0, quote_qty_atoms=2)


def case(reason: str, command: object, *setup: object, config: EngineConfig | None = None):
    """A refusal `reason` (a Reject name) for `command`, after the `setup` commands."""
    return pytest.param(config or EngineConfig(), list(setup), command, Reject[reason])


# One line per case: reason, command, setup.
REJECT_CASES = [
    case("UNKNOWN_MARKET", order(market_id=9)),
    case("UNKNOWN_MARKET", CancelOrder(account_id=BOB, market_id=9)),
    case("UNKNOWN_ACCOUNT", order(account_id=99)),
    case("UNKNOWN_ACCOUNT", deposit(0, USD, 1, "k")),  # the system account is no user account
    case("UNKNOWN_ACCOUNT", withdraw(account_id=99)),
    case("UNKNOWN_ASSET", deposit(ALICE, 9, 1, "k")),
    case("UNKNOWN_ASSET", market(quote_asset_id=9)),
    case("UNKNOWN_ORDER", CancelOrder(account_id=BOB, market_id=M1, order_id=1)),
    case("UNKNOWN_ORDER", amend(account_id=BOB, new_qty_atoms=20), RESTING),  # Alice's order
    case("INVALID_SIDE", order(side=2)),
    case("INVALID_ORDER_TYPE", order(order_type=9)),
    case("INVALID_TIME_IN_FORCE", order(time_in_force=4)),
    case("INVALID_TIME_IN_FORCE", order(order_type=MAKER, time_in_force=IOC)),
    case("INVALID_QTY", order(qty_atoms=0)),
    case("INVALID_QTY", order(qty_atoms=MAX + 1)),
    case("INVALID_QTY", order(quote_qty_atoms=10)),
    case("INVALID_QTY", order(**MARKET_BUY, qty_atoms=0)),
    case("INVALID_QTY", order(**MARKET_BUY, quote_qty_atoms=10)),
    case("INVALID_QTY", order(**MARKET_BUY, quote_qty_atoms=9, side=SELL)),
    case("INVALID_QTY", amend(new_qty_atoms=-10), RESTING),
    case("INVALID_PRICE", order(price_atoms=0)),
    case("INVALID_PRICE", order(order_type=MARKET)),
    case("INVALID_PRICE", amend(new_price_atoms=-10), RESTING),
    case("QTY_OFF_LOT", order(qty_atoms=15)),
    case("QTY_OFF_LOT", amend(new_qty_atoms=15), RESTING),
    case("PRICE_OFF_TICK", order(price_atoms=100_005)),
    case("PRICE_OFF_TICK", amend(new_price_atoms=15), RESTING),
    case("NOTIONAL_OVERFLOW", order(price_atoms=10 << 58, qty_atoms=320)),
    case("NOTIONAL_OVERFLOW", amend(new_qty_atoms=(MAX // 20_000 + 1) * 10), RESTING),
    case("MIN_NOTIONAL", order(market_id=M2, price_atoms=9_990)),
    case("MIN_NOTIONAL", order(**MARKET_BUY, market_id=M2, qty_atoms=0, quote_qty_atoms=999)),
    case("INSUFFICIENT_FUNDS", order(account_id=DAVE)),
    case("INSUFFICIENT_FUNDS", withdraw(amount_atoms=FUND_USD + 1)),
    case("INSUFFICIENT_FUNDS", amend(new_qty_atoms=FUND_BASE + 10), RESTING),
    case("DUPLICATE_CLIENT_ORDER_ID", order(client_order_id=2), MAKER_BID),
    case("TAKER_NOT_ALLOWED", order(order_type=MAKER, price_atoms=200_000), RESTING),
    case("TAKER_NOT_ALLOWED", amend(account_id=BOB, client_order_id=2, new_price_atoms=200_000),
         MAKER_BID, RESTING),
    case("BOOK_FULL", order(), RESTING, config=EngineConfig(max_orders=1)),
    case("TOO_MANY_OPEN_ORDERS", order(), MAKER_BID,
         config=EngineConfig(max_open_orders_per_account=1)),
    case("ACCOUNT_EXISTS", CreateAccount(account_id=ALICE)),
    case("MARKET_EXISTS", market(market_id=M1)),
    case("ASSET_EXISTS", CreateAsset(asset_id=BTC, symbol="B", decimals=0)),
    case("INVALID_MARKET_SPEC", market(tick_size_atoms=3, lot_size_atoms=3)),  # off the grid
    case("INVALID_MARKET_SPEC", market(quote_asset_id=BTC)),
    case("INVALID_MARKET_SPEC", market(market_id=64)),
    case("INVALID_MARKET_SPEC", market(symbol="")),
    case("INVALID_MARKET_SPEC", market(lot_size_atoms=0)),
    case("INVALID_AMOUNT", deposit(ALICE, USD, 0, "k")),
    case("INVALID_AMOUNT", withdraw(amount_atoms=0)),
    case("DUPLICATE_DEPOSIT", deposit(BOB, BTC, 1, "seed:1:2")),
    case("DUPLICATE_WITHDRAWAL", withdraw(withdrawal_id=0)),
    case("DUPLICATE_WITHDRAWAL", withdraw(), withdraw()),
    case("UNKNOWN_WITHDRAWAL", WithdrawResult(withdrawal_id=8, success=True)),
    case("BALANCE_OVERFLOW", deposit(ALICE, USD, MAX - 3 * FUND_USD + 1, "k")),
    case("INVALID_AMEND", amend(), RESTING),
    case("INVALID_AMEND", amend(new_price_atoms=200_000, new_qty_atoms=10), RESTING),
    case("INVALID_ACCOUNT_ID", CreateAccount(account_id=0)),
    case("INVALID_ACCOUNT_ID", CreateAccount(account_id=1 << 14)),
    case("INVALID_FEE", market(taker_fee_ppm=100_001)),
    case("INVALID_CLIENT_ORDER_ID", order(client_order_id=-1)),
    case("INVALID_ASSET_SPEC", CreateAsset(asset_id=9, symbol="X", decimals=19)),
    case("INVALID_ASSET_SPEC", CreateAsset(asset_id=64, symbol="X", decimals=2)),
    case("INVALID_ASSET_SPEC", CreateAsset(asset_id=9, symbol="X" * 17, decimals=2)),
    case("MARKET_HALTED", order(), SetMarketState(market_id=M1, state=MarketState.HALTED)),
    case("MARKET_HALTED", amend(new_qty_atoms=20), RESTING,
         SetMarketState(market_id=M1, state=MarketState.HALTED)),
    case("MARKET_CANCEL_ONLY", order(),
         SetMarketState(market_id=M1, state=MarketState.CANCEL_ONLY)),
    case("MARKET_POST_ONLY", order(time_in_force=IOC),
         SetMarketState(market_id=M1, state=MarketState.POST_ONLY)),
    case("MARKET_POST_ONLY", order(price_atoms=200_000), RESTING,
         SetMarketState(market_id=M1, state=MarketState.POST_ONLY)),
    case("PRICE_OUTSIDE_BAND", order(market_id=5), market(price_band_bps=1_000),
         order(market_id=5, account_id=ALICE, side=SELL, price_atoms=200_000),
         order(market_id=5)),
    case("ORDER_TOO_LARGE", order(market_id=5, qty_atoms=30), market(max_order_qty_atoms=20)),
    case("INVALID_STP_MODE", order(stp_mode=5)),
    case("INVALID_EXPIRY", order(time_in_force=TimeInForce.GTD)),
    case("INVALID_EXPIRY", order(expire_at_ns=10**12)),
    case("INVALID_EXPIRY", SetDeadMansSwitch(account_id=ALICE, fire_at_ns=-1)),
    case("INVALID_STOP_PRICE", order(order_type=OrderType.STOP_LIMIT)),
    case("INVALID_STOP_PRICE", order(stop_price_atoms=10)),
    case("INVALID_TRAILING_DELTA", order(order_type=OrderType.TRAILING_STOP_LIMIT)),
    case("INVALID_DISPLAY_QTY", order(display_qty_atoms=10)),
    case("INVALID_MARKET_STATE", SetMarketState(market_id=M1, state=4)),
    case("NO_REFERENCE_PRICE",
         order(order_type=OrderType.TRAILING_STOP_LIMIT, trailing_delta_bps=100)),
    case("INVALID_MARKET_SPEC", market(price_band_bps=10_001)),
    case("UNKNOWN_ACCOUNT", CancelOnDisconnect(account_id=99)),
    case("ACCOUNT_FROZEN", order(), FREEZE_BOB),
    case("ACCOUNT_FROZEN", amend(new_qty_atoms=20), RESTING, FREEZE_ALICE),
    case("ACCOUNT_FROZEN", amend(new_price_atoms=190_000), RESTING, FREEZE_ALICE),
    case("ACCOUNT_FROZEN", withdraw(), FREEZE_ALICE),
    case("UNKNOWN_ACCOUNT", SetAccountFrozen(account_id=99, frozen=True, staff_id="s")),
    case("INVALID_TIER", SetAccountTier(account_id=ALICE, tier=4, staff_id="s")),
    case("INVALID_TIER", SetAccountTier(account_id=ALICE, tier=-1, staff_id="s")),
    case("TIER_TRADE_LIMIT", order(), TIER0_BOB, LIMIT_USD_1),
    case("TIER_TRADE_LIMIT", order(**BUDGET_2), TIER0_BOB, LIMIT_USD_1),
    case("TIER_TRADE_LIMIT", amend(new_qty_atoms=20), RESTING, TIER0_ALICE, LIMIT_USD_1),
    case("INVALID_TIER", limit_usd(tier=4)),
    case("UNKNOWN_ASSET", limit_usd(asset_id=9)),
    case("INVALID_AMOUNT", limit_usd(max_order_notional_atoms=-1)),
]  # fmt: skip


def test_every_reject_reason_is_covered() -> None:
    assert {p.values[3] for p in REJECT_CASES} == set(Reject)


@pytest.mark.parametrize(
    ("config", "setup", "command", "reason"),
    REJECT_CASES,
    ids=[f"{p.values[3].name}-{i}" for i, p in enumerate(REJECT_CASES)],
)
def test_refusal_changes_nothing(
    config: EngineConfig, setup: list, command: object, reason: Reject
) -> None:
    ex = Exchange(config)
    events = ex.run(*setup)
    assert not [e for e in events if isinstance(e, CommandRejected | OrderRejected)]
    before = ex.eng.image()
    events = ex.run(command)
    assert len(events) == 1 and events[0].reason == reason and events[0].seq == ex.seq
    if isinstance(events[0], CommandRejected):
        assert events[0].command == type(command).__name__
    else:
        assert isinstance(events[0], OrderRejected)
        assert events[0].account_id == command.account_id
        assert events[0].market_id == getattr(command, "market_id", -1)
        assert events[0].client_order_id == getattr(command, "client_order_id", 0)
        assert events[0].order_id == getattr(command, "order_id", 0)
    after = ex.eng.image()
    assert after.last_seq == ex.seq and unchanged_but_seq(before, after)
