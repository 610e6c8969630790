"""The reference model against hand-computed scenarios: fee arithmetic, setup and limit orders
(docs/engine-semantics.md); the exchange: tests/reference_support.py.
"""

from __future__ import annotations

from engine.reference import fee, notional
from engine.schema import (
    MAX_AMOUNT_ATOMS,
    EngineConfig,
    OrderAccepted,
    OrderExpired,
    OrderRejected,
    Posting,
    Reject,
    Trade,
)
from tests.reference_support import (
    ALICE,
    BOB,
    BTC,
    BUY,
    DAVE,
    FOK,
    FUND_BASE,
    FUND_USD,
    IOC,
    M1,
    MAKER,
    SELL,
    USD,
    Exchange,
    R,
    X,
    accepted,
    expired,
    fill,
    hold,
    kinds,
    release,
    required,
    unchanged_but_seq,
)

# --------------------------------------------------------------------------------------------
# Arithmetic and setup


def test_fee_is_floor_without_overflow() -> None:
    for n in (0, 1, 499, 500, 999_999, 1_000_000, 10**18 + 999_999, MAX_AMOUNT_ATOMS):
        for ppm in (0, 1, 1_000, 2_000, 100_000):
            assert fee(n, ppm) == n * ppm // 1_000_000
    assert fee(499, 2_000) == 0 and fee(500, 2_000) == 1 and fee(999, 1_000) == 0
    assert notional(7, 3, 5) == 105


def test_setup_balances(ex: Exchange) -> None:
    assert ex.balance(ALICE, USD) == (FUND_USD, 0, 0)
    assert ex.balance(DAVE, USD) == (0, 0, 0)
    assert ex.custody(USD) == -3 * FUND_USD and ex.fees(USD) == 0
    assert ex.next_txn() == 10  # nine deposits, one transaction each


# --------------------------------------------------------------------------------------------
# Limit orders


def test_limit_cross_partial_fill_price_improvement(ex: Exchange) -> None:
    ask, _ = ex.place(ALICE, SELL, 100_000, 30)  # p = 10_000, q = 3
    t = ex.next_txn()
    bid, events = ex.place(BOB, BUY, 101_000, 50)  # p = 10_100, q = 5
    # Hold required(10_100, 5) = 50_500 + 101 = 50_601. One fill of 3 lots at the maker's
    # 10_000: notional 30_000, maker fee 30, taker fee 60. Bob's hold is then 50_601 - 30_060
    # = 20_541; resting 2 lots at 10_100 needs required(10_100, 2) = 20_240: 301 released.
    assert events == [
        accepted(bid, BOB, BUY, 101_000, 50, 50_601),
        hold(bid, t, BOB, USD, 50_601),
        *fill(bid, t + 1, 1, (ask, ALICE), (bid, BOB), BUY, 100_000, 30, fees=(30, 60)),
        release(bid, t + 2, BOB, USD, 301),
    ]
    assert ex.book() == [(bid, BUY, 101_000, 20, 20_240)]
    assert ex.balance(BOB, USD) == (FUND_USD - 30_060 - 20_240, 20_240, 0)
    assert ex.balance(BOB, BTC) == (FUND_BASE + 30, 0, 0)
    assert ex.balance(ALICE, USD) == (FUND_USD + 30_000 - 30, 0, 0)
    assert ex.balance(ALICE, BTC) == (FUND_BASE - 30, 0, 0)
    assert ex.fees(USD) == 90
    assert ex.eng.image().markets[0].last_trade_id == 1


def test_fees_round_down_at_tiny_notionals(ex: Exchange) -> None:
    # Notional 1: both fees 0, hold 1, no FEE postings at all.
    ask, _ = ex.place(ALICE, SELL, 10, 10)
    t = ex.next_txn()
    bid, events = ex.place(BOB, BUY, 10, 10)
    assert events == [
        accepted(bid, BOB, BUY, 10, 10, 1),
        hold(bid, t, BOB, USD, 1),
        *fill(bid, t + 1, 1, (ask, ALICE), (bid, BOB), BUY, 10, 10, fees=(0, 0)),
    ]
    assert kinds(events).count(Posting) == 3
    # Notional 499: 0.998 and 0.499 round to 0; notional 500: taker 1, maker still 0.
    for p, taker_fee in ((499, 0), (500, 1)):
        ex.place(ALICE, SELL, 10 * p, 10)
        _, events = ex.place(BOB, BUY, 10 * p, 10)
        fills = [e for e in events if isinstance(e, Trade)]
        assert [(f.quote_atoms, f.maker_fee_atoms, f.taker_fee_atoms) for f in fills] == [
            (p, 0, taker_fee)
        ]
    assert ex.fees(USD) == 1
    assert ex.book() == []


def test_maker_buy_excess_released_in_trade_transaction(ex: Exchange) -> None:
    bid, _ = ex.place(BOB, BUY, 100_000, 50)  # holds required(10_000, 5) = 50_100
    assert ex.balance(BOB, USD)[1] == 50_100
    t = ex.next_txn()
    ask, events = ex.place(ALICE, SELL, 90_000, 20)
    # At the maker's 10_000: notional 20_000, Bob (maker) pays 20, Alice (taker) 40.
    # Bob's hold: 50_100 - 20_020 = 30_080; required(10_000, 3) = 30_060: 20 released.
    assert events == [
        accepted(ask, ALICE, SELL, 90_000, 20, 20),
        hold(ask, t, ALICE, BTC, 20),
        *fill(ask, t + 1, 1, (bid, BOB), (ask, ALICE), SELL, 100_000, 20, (20, 40), excess=20),
    ]
    assert events[-1].reason == R.ORDER_RELEASE and events[-1].txn_id == t + 1
    assert ex.book() == [(bid, BUY, 100_000, 30, 30_060)]
    assert ex.balance(BOB, USD) == (FUND_USD - 20_020 - 30_060, 30_060, 0)
    assert ex.balance(ALICE, USD) == (FUND_USD + 20_000 - 40, 0, 0)


def test_ioc_remainder_expires(ex: Exchange) -> None:
    ask, _ = ex.place(ALICE, SELL, 100_000, 20)
    t = ex.next_txn()
    bid, events = ex.place(BOB, BUY, 100_000, 50, tif=IOC)
    assert events == [
        accepted(bid, BOB, BUY, 100_000, 50, 50_100, tif=IOC),
        hold(bid, t, BOB, USD, 50_100),
        *fill(bid, t + 1, 1, (ask, ALICE), (bid, BOB), BUY, 100_000, 20, fees=(20, 40)),
        expired(bid, bid, BOB, 30, X.IOC_REMAINDER),
        release(bid, t + 2, BOB, USD, 50_100 - 20_040),
    ]
    assert ex.book() == []
    assert ex.balance(BOB, USD) == (FUND_USD - 20_040, 0, 0)


def test_ioc_sell_stops_at_its_limit(ex: Exchange) -> None:
    ex.place(BOB, BUY, 99_000, 20)
    ask, events = ex.place(ALICE, SELL, 100_000, 20, tif=IOC)
    assert kinds(events) == [OrderAccepted, Posting, OrderExpired, Posting]
    assert events[2] == expired(ask, ask, ALICE, 20, X.IOC_REMAINDER)
    assert ex.balance(ALICE, BTC) == (FUND_BASE, 0, 0)


def test_fok_unfillable_then_fillable(ex: Exchange) -> None:
    a1, _ = ex.place(ALICE, SELL, 100_000, 20)
    a2, _ = ex.place(ALICE, SELL, 101_000, 20)
    book = ex.book()
    t = ex.next_txn()
    # 5 lots wanted up to 10_100, only 4 there: accepted, held, expired, released.
    fok, events = ex.place(BOB, BUY, 101_000, 50, tif=FOK)
    assert events == [
        accepted(fok, BOB, BUY, 101_000, 50, 50_601, tif=FOK),
        hold(fok, t, BOB, USD, 50_601),
        expired(fok, fok, BOB, 50, X.FOK_UNFILLABLE),
        release(fok, t + 1, BOB, USD, 50_601),
    ]
    assert ex.book() == book and ex.balance(BOB, USD) == (FUND_USD, 0, 0)
    # 3 lots: 2 at 10_000 (fees 20/40) and 1 at 10_100 (fees 10/20). Hold required(10_100, 3)
    # = 30_360, spent 20_040 + 10_120 = 30_160: 200 released, and no expiry.
    t = ex.next_txn()
    fok, events = ex.place(BOB, BUY, 101_000, 30, tif=FOK)
    assert events == [
        accepted(fok, BOB, BUY, 101_000, 30, 30_360, tif=FOK),
        hold(fok, t, BOB, USD, 30_360),
        *fill(fok, t + 1, 1, (a1, ALICE), (fok, BOB), BUY, 100_000, 20, fees=(20, 40)),
        *fill(fok, t + 2, 2, (a2, ALICE), (fok, BOB), BUY, 101_000, 10, fees=(10, 20)),
        release(fok, t + 3, BOB, USD, 200),
    ]
    assert ex.book() == [(a2, SELL, 101_000, 10, 10)]


def test_post_only(ex: Exchange) -> None:
    ex.place(ALICE, SELL, 100_000, 20)
    before = ex.eng.image()
    _, events = ex.place(BOB, BUY, 100_000, 10, kind=MAKER, coid=9)
    reject = OrderRejected(
        seq=ex.seq,
        account_id=BOB,
        market_id=M1,
        order_id=0,
        client_order_id=9,
        reason=Reject.TAKER_NOT_ALLOWED,
    )
    assert events == [reject]
    assert unchanged_but_seq(before, ex.eng.image())
    bid, events = ex.place(BOB, BUY, 99_990, 10, kind=MAKER)
    assert kinds(events) == [OrderAccepted, Posting]
    assert ex.book()[0] == (bid, BUY, 99_990, 10, required(9_999, 1))
    _, events = ex.place(ALICE, SELL, 99_990, 10, kind=MAKER)
    assert events[0].reason == Reject.TAKER_NOT_ALLOWED


def test_gtc_stops_after_max_fills_and_expires() -> None:
    ex = Exchange(EngineConfig(max_fills_per_order=2))
    for _ in range(3):
        ex.place(ALICE, SELL, 100_000, 10)
    bid, events = ex.place(BOB, BUY, 100_000, 50)
    assert kinds(events).count(Trade) == 2
    assert events[-2] == expired(bid, bid, BOB, 30, X.MAX_FILLS)  # does not rest
    assert events[-1].reason == R.ORDER_RELEASE
    assert events[-1].amount_atoms == required(10_000, 5) - 2 * 10_020
    assert len(ex.book()) == 1 and ex.balance(BOB, USD)[1] == 0
