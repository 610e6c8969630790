"""The reference model against hand-computed scenarios: market orders (docs/engine-semantics.md);
the exchange: tests/reference_support.py.
"""

from __future__ import annotations

from engine.schema import (
    OrderAccepted,
    OrderExpired,
    Posting,
    Reject,
    Trade,
)
from tests.reference_support import (
    ALICE,
    BOB,
    BTC,
    BUY,
    CAROL,
    DAVE,
    FUND_BASE,
    FUND_USD,
    IOC,
    MARKET,
    SELL,
    USD,
    Exchange,
    R,
    X,
    accepted,
    deposit,
    expired,
    fill,
    hold,
    kinds,
    release,
    unchanged_but_seq,
)

# --------------------------------------------------------------------------------------------
# Market orders


def test_market_sell_sweeps_levels_then_no_liquidity(ex: Exchange) -> None:
    b1, _ = ex.place(BOB, BUY, 100_000, 20)  # holds required(10_000, 2) = 20_040
    b2, _ = ex.place(CAROL, BUY, 99_000, 10)  # holds required(9_900, 1) = 9_919
    t = ex.next_txn()
    sell, events = ex.place(ALICE, SELL, 0, 50, kind=MARKET, tif=IOC)
    # Fill 1: 2 lots at 10_000, notional 20_000; Bob pays 20 and gets 20_040 - 20_020 back.
    # Fill 2: 1 lot at 9_900; Carol pays floor(9.9) = 9 and gets 9_919 - 9_909 back; Alice pays
    # floor(19.8) = 19. Then the book is empty: 2 lots expire, 20 BTC atoms are released.
    assert events == [
        accepted(sell, ALICE, SELL, 0, 50, 50, kind=MARKET, tif=IOC),
        hold(sell, t, ALICE, BTC, 50),
        *fill(sell, t + 1, 1, (b1, BOB), (sell, ALICE), SELL, 100_000, 20, (20, 40), excess=20),
        *fill(sell, t + 2, 2, (b2, CAROL), (sell, ALICE), SELL, 99_000, 10, (9, 19), excess=10),
        expired(sell, sell, ALICE, 20, X.NO_LIQUIDITY),
        release(sell, t + 3, ALICE, BTC, 20),
    ]
    assert ex.book() == []
    assert ex.balance(ALICE, USD) == (FUND_USD + 20_000 - 40 + 9_900 - 19, 0, 0)
    assert ex.balance(ALICE, BTC) == (FUND_BASE - 30, 0, 0)
    assert ex.balance(CAROL, USD) == (FUND_USD - 9_909, 0, 0)


def test_market_buy_by_quote_stops_on_budget(ex: Exchange) -> None:
    a1, _ = ex.place(ALICE, SELL, 100_000, 20)
    a2, _ = ex.place(ALICE, SELL, 101_000, 50)
    t = ex.next_txn()
    buy, events = ex.place(BOB, BUY, 0, 0, kind=MARKET, quote=45_000)
    # Level 10_000: k = 2 (cost 20_040), 24_960 left. Level 10_100: 24_960 // 10_100 = 2 and
    # cost(2) = 20_240 fits; 4_720 left cannot buy a lot at 10_100: filled, 4_720 released.
    assert events == [
        accepted(buy, BOB, BUY, 0, 0, 45_000, kind=MARKET, quote=45_000),
        hold(buy, t, BOB, USD, 45_000),
        *fill(buy, t + 1, 1, (a1, ALICE), (buy, BOB), BUY, 100_000, 20, fees=(20, 40)),
        *fill(buy, t + 2, 2, (a2, ALICE), (buy, BOB), BUY, 101_000, 20, fees=(20, 40)),
        release(buy, t + 3, BOB, USD, 4_720),
    ]
    assert ex.book() == [(a2, SELL, 101_000, 30, 30)]


def test_market_buy_by_quote_counts_the_fee_in_k(ex: Exchange) -> None:
    ex.place(ALICE, SELL, 100_000, 20)
    # 20_039 covers 2 lots' notional (20_000) but not with the fee (20_040): one lot (10_020);
    # the 10_019 left cannot buy the next (10_020): filled, 10_019 released.
    _, events = ex.place(BOB, BUY, 0, 0, kind=MARKET, quote=20_039)
    fills = [e for e in events if isinstance(e, Trade)]
    assert [(f.qty_atoms, f.quote_atoms, f.taker_fee_atoms) for f in fills] == [(10, 10_000, 20)]
    assert OrderExpired not in kinds(events)
    assert events[-1].reason == R.ORDER_RELEASE and events[-1].amount_atoms == 10_019
    # 10_019 cannot buy a single lot: BUDGET_EXHAUSTED, remaining 0, all released.
    buy, events = ex.place(BOB, BUY, 0, 0, kind=MARKET, quote=10_019)
    assert kinds(events) == [OrderAccepted, Posting, OrderExpired, Posting]
    assert events[2] == expired(buy, buy, BOB, 0, X.BUDGET_EXHAUSTED)
    # A budget larger than the book: one fill, then NO_LIQUIDITY, remaining 0.
    buy, events = ex.place(BOB, BUY, 0, 0, kind=MARKET, quote=100_000)
    assert kinds(events).count(Trade) == 1
    assert events[-2] == expired(buy, buy, BOB, 0, X.NO_LIQUIDITY)
    assert events[-1].amount_atoms == 100_000 - 10_020
    assert ex.book() == []


def test_market_buy_by_quote_exact_budget_is_filled(ex: Exchange) -> None:
    ex.place(ALICE, SELL, 100_000, 20)
    ex.place(ALICE, SELL, 101_000, 20)
    _, events = ex.place(BOB, BUY, 0, 0, kind=MARKET, quote=20_040)  # exactly 2 lots + fee
    assert kinds(events) == [OrderAccepted, Posting, Trade, Posting, Posting, Posting, Posting]


def test_market_buy_by_qty_holds_exactly_its_spend(ex: Exchange) -> None:
    a1, _ = ex.place(ALICE, SELL, 100_000, 20)
    a2, _ = ex.place(CAROL, SELL, 101_000, 20)
    t = ex.next_txn()
    buy, events = ex.place(BOB, BUY, 0, 30, kind=MARKET)
    # Dry run: 2 lots at 10_000 -> 20_040, 1 lot at 10_100 -> 10_120: hold 30_160, all spent.
    assert events == [
        accepted(buy, BOB, BUY, 0, 30, 30_160, kind=MARKET),
        hold(buy, t, BOB, USD, 30_160),
        *fill(buy, t + 1, 1, (a1, ALICE), (buy, BOB), BUY, 100_000, 20, fees=(20, 40)),
        *fill(buy, t + 2, 2, (a2, CAROL), (buy, BOB), BUY, 101_000, 10, fees=(10, 20)),
    ]
    assert ex.balance(BOB, USD) == (FUND_USD - 30_160, 0, 0)
    # More than the book: the hold covers the 1 lot there, then NO_LIQUIDITY with 2 lots left.
    buy, events = ex.place(BOB, BUY, 0, 30, kind=MARKET)
    assert events[0].hold_atoms == 10_120
    assert events[-1] == expired(buy, buy, BOB, 20, X.NO_LIQUIDITY)
    # Empty book: accepted with hold 0 (so no posting), expires at once.
    buy, events = ex.place(BOB, BUY, 0, 30, kind=MARKET)
    assert events == [
        accepted(buy, BOB, BUY, 0, 30, 0, kind=MARKET),
        expired(buy, buy, BOB, 30, X.NO_LIQUIDITY),
    ]


def test_market_buy_by_qty_insufficient_funds(ex: Exchange) -> None:
    ex.place(ALICE, SELL, 100_000, 20)
    ex.run(deposit(DAVE, USD, 20_039, "dave"))
    before = ex.eng.image()
    _, events = ex.place(DAVE, BUY, 0, 20, kind=MARKET)
    assert events[0].reason == Reject.INSUFFICIENT_FUNDS
    assert unchanged_but_seq(before, ex.eng.image())
    ex.run(deposit(DAVE, USD, 1, "dave2"))
    _, events = ex.place(DAVE, BUY, 0, 20, kind=MARKET)
    assert events[0].hold_atoms == 20_040 and ex.balance(DAVE, USD) == (0, 0, 0)
