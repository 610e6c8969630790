"""The reference model against hand-computed scenarios: cancel, client order ids, amend and
cancel-all (docs/engine-semantics.md); the exchange: tests/reference_support.py.
"""

from __future__ import annotations

from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CancelReason,
    EngineConfig,
    OrderAccepted,
    OrderAmended,
    OrderRejected,
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
    FUND_USD,
    IOC,
    M1,
    M2,
    MARKET,
    SELL,
    USD,
    Exchange,
    amended,
    cancelled,
    deposit,
    fill,
    hold,
    release,
    unchanged_but_seq,
)

# --------------------------------------------------------------------------------------------
# Cancel, client order ids, amend, cancel-all


def test_cancel_by_order_id_and_client_order_id(ex: Exchange) -> None:
    o1, _ = ex.place(BOB, BUY, 100_000, 20, coid=77)
    t = ex.next_txn()
    events = ex.run(CancelOrder(account_id=BOB, market_id=M1, order_id=o1, client_order_id=123))
    assert events == [
        cancelled(ex.seq, o1, BOB, 20, CancelReason.USER),
        release(ex.seq, t, BOB, USD, 20_040),
    ]
    o2, _ = ex.place(ALICE, SELL, 100_000, 20, coid=78)
    events = ex.run(CancelOrder(account_id=ALICE, market_id=M1, client_order_id=78))
    assert events[0] == cancelled(ex.seq, o2, ALICE, 20, CancelReason.USER)
    assert events[1].amount_atoms == 20
    assert ex.book() == [] and ex.balance(BOB, USD) == (FUND_USD, 0, 0)
    # Gone already; another account's order; the wrong market; no id at all.
    o3, _ = ex.place(ALICE, SELL, 100_000, 20, coid=79)
    before = ex.eng.image()
    for command in (
        CancelOrder(account_id=ALICE, market_id=M1, order_id=o1),
        CancelOrder(account_id=ALICE, market_id=M1, client_order_id=78),
        CancelOrder(account_id=BOB, market_id=M1, order_id=o3),
        CancelOrder(account_id=BOB, market_id=M1, client_order_id=79),
        CancelOrder(account_id=ALICE, market_id=M2, order_id=o3),
        CancelOrder(account_id=ALICE, market_id=M1),
    ):
        assert ex.run(command) == [
            OrderRejected(
                seq=ex.seq,
                account_id=command.account_id,
                market_id=command.market_id,
                order_id=command.order_id,
                client_order_id=command.client_order_id,
                reason=Reject.UNKNOWN_ORDER,
            )
        ]
    assert unchanged_but_seq(before, ex.eng.image())


def test_duplicate_client_order_id(ex: Exchange) -> None:
    o1, _ = ex.place(BOB, BUY, 100_000, 10, coid=5)
    for market in (M1, M2):  # any market of the same account
        _, events = ex.place(BOB, BUY, 100_000, 10, coid=5, market=market)
        assert events[0].reason == Reject.DUPLICATE_CLIENT_ORDER_ID
    _, events = ex.place(ALICE, SELL, 200_000, 10, coid=5)  # another account: fine
    assert isinstance(events[0], OrderAccepted)
    ex.run(CancelOrder(account_id=BOB, market_id=M1, order_id=o1))
    _, events = ex.place(BOB, BUY, 100_000, 10, coid=5)  # free again after the cancel
    assert isinstance(events[0], OrderAccepted)
    # A filled order frees its client order id too; an IOC never keeps one.
    ex.place(CAROL, SELL, 100_000, 10)
    _, events = ex.place(BOB, BUY, 100_000, 10, coid=5)
    assert isinstance(events[0], OrderAccepted)
    for _ in range(2):
        _, events = ex.place(CAROL, BUY, 100_000, 10, coid=6, tif=IOC)
        assert isinstance(events[0], OrderAccepted)


def test_amend_qty_decrease_keeps_priority(ex: Exchange) -> None:
    x, _ = ex.place(ALICE, SELL, 100_000, 50)
    y, _ = ex.place(CAROL, SELL, 100_000, 50)
    t = ex.next_txn()
    events = ex.run(AmendOrder(account_id=ALICE, market_id=M1, order_id=x, new_qty_atoms=30))
    assert events == [
        amended(ex.seq, x, ALICE, 100_000, 30, True, 30),
        release(ex.seq, t, ALICE, BTC, 20),
    ]
    assert ex.book() == [(x, SELL, 100_000, 30, 30), (y, SELL, 100_000, 50, 50)]
    _, events = ex.place(BOB, BUY, 100_000, 30)  # x is still first in the queue
    assert [(e.maker_order_id, e.qty_atoms) for e in events if isinstance(e, Trade)] == [(x, 30)]
    assert ex.book() == [(y, SELL, 100_000, 50, 50)]
    # A buy: required(9_000, 5) = 45_090 down to required(9_000, 2) = 18_036.
    bid, _ = ex.place(BOB, BUY, 90_000, 50, coid=3)
    events = ex.run(AmendOrder(account_id=BOB, market_id=M1, client_order_id=3, new_qty_atoms=20))
    assert events == [
        amended(ex.seq, bid, BOB, 90_000, 20, True, 18_036),
        release(ex.seq, ex.next_txn() - 1, BOB, USD, 45_090 - 18_036),
    ]


def test_amend_qty_increase_loses_priority(ex: Exchange) -> None:
    x, _ = ex.place(ALICE, SELL, 100_000, 20)
    y, _ = ex.place(CAROL, SELL, 100_000, 20)
    t = ex.next_txn()
    events = ex.run(AmendOrder(account_id=ALICE, market_id=M1, order_id=x, new_qty_atoms=30))
    assert events == [
        amended(ex.seq, x, ALICE, 100_000, 30, False, 30),
        hold(ex.seq, t, ALICE, BTC, 10),
    ]
    assert ex.book() == [(y, SELL, 100_000, 20, 20), (x, SELL, 100_000, 30, 30)]
    _, events = ex.place(BOB, BUY, 100_000, 20)
    assert [e.maker_order_id for e in events if isinstance(e, Trade)] == [y]


def test_amend_price_loses_priority_and_trades_on_reentry(ex: Exchange) -> None:
    ask, _ = ex.place(ALICE, SELL, 100_000, 20)
    bid, _ = ex.place(BOB, BUY, 99_000, 20, coid=4)  # holds required(9_900, 2) = 19_839
    t = ex.next_txn()
    amend = AmendOrder(account_id=BOB, market_id=M1, order_id=bid, new_price_atoms=100_000)
    events = ex.run(amend)
    seq = ex.seq
    # New hold required(10_000, 2) = 20_040 (+201); it takes Alice's ask as a taker (fee 40)
    # and spends exactly its hold: no final release.
    assert events == [
        amended(seq, bid, BOB, 100_000, 20, False, 20_040),
        hold(seq, t, BOB, USD, 201),
        *fill(seq, t + 1, 1, (ask, ALICE), (bid, BOB), BUY, 100_000, 20, fees=(20, 40)),
    ]
    assert ex.book() == [] and ex.balance(BOB, USD) == (FUND_USD - 20_040, 0, 0)
    _, events = ex.place(BOB, BUY, 90_000, 10, coid=4)  # its client order id was freed
    assert isinstance(events[0], OrderAccepted)


def test_amend_price_partial_reentry_rests_with_new_hold(ex: Exchange) -> None:
    ask, _ = ex.place(ALICE, SELL, 100_000, 10)
    other, _ = ex.place(CAROL, BUY, 99_000, 10)
    bid, _ = ex.place(BOB, BUY, 99_000, 30)  # required(9_900, 3) = 29_759
    t = ex.next_txn()
    events = ex.run(AmendOrder(account_id=BOB, market_id=M1, order_id=bid, new_price_atoms=101_000))
    seq = ex.seq
    # New hold required(10_100, 3) = 30_360 (+601); one lot at 10_000 costs 10_020; resting
    # 2 lots at 10_100 needs 20_240: 30_360 - 10_020 - 20_240 = 100 released.
    assert events == [
        amended(seq, bid, BOB, 101_000, 30, False, 30_360),
        hold(seq, t, BOB, USD, 601),
        *fill(seq, t + 1, 1, (ask, ALICE), (bid, BOB), BUY, 100_000, 10, fees=(10, 20)),
        release(seq, t + 2, BOB, USD, 100),
    ]
    assert ex.book() == [(bid, BUY, 101_000, 20, 20_240), (other, BUY, 99_000, 10, 9_919)]


def test_cancel_all_per_market_and_everywhere(ex: Exchange) -> None:
    b1, _ = ex.place(BOB, BUY, 100_000, 10)
    e1, _ = ex.place(BOB, BUY, 100_000, 10, market=M2)
    b2, _ = ex.place(BOB, SELL, 200_000, 10)
    c1, _ = ex.place(CAROL, BUY, 100_000, 10)
    t = ex.next_txn()
    events = ex.run(CancelAll(account_id=BOB, market_id=M1))
    seq = ex.seq
    assert events == [
        cancelled(seq, b1, BOB, 10, CancelReason.CANCEL_ALL),
        release(seq, t, BOB, USD, 10_020),
        cancelled(seq, b2, BOB, 10, CancelReason.CANCEL_ALL),
        release(seq, t + 1, BOB, BTC, 10),
    ]
    assert [o[0] for o in ex.book(M1)] == [c1]
    events = ex.run(CancelAll(account_id=BOB))
    assert events == [
        cancelled(ex.seq, e1, BOB, 10, CancelReason.CANCEL_ALL, market=M2),
        release(ex.seq, t + 2, BOB, USD, 10_020),
    ]
    assert ex.book(M2) == [] and ex.balance(BOB, USD) == (FUND_USD, 0, 0)
    assert ex.run(CancelAll(account_id=BOB)) == []  # nothing open: no events
    for command, reason in (
        (CancelAll(account_id=BOB, market_id=9), Reject.UNKNOWN_MARKET),
        (CancelAll(account_id=99, market_id=9), Reject.UNKNOWN_ACCOUNT),  # account first
    ):
        assert ex.run(command) == [
            OrderRejected(
                seq=ex.seq,
                account_id=command.account_id,
                market_id=command.market_id,
                order_id=0,
                client_order_id=0,
                reason=reason,
            )
        ]


def test_insufficient_funds_boundaries(ex: Exchange) -> None:
    ex.run(deposit(DAVE, USD, 10_019, "d1"), deposit(DAVE, BTC, 10, "d2"))
    before = ex.eng.image()
    for side, qty in ((BUY, 10), (SELL, 20)):  # 10_020 USD and 20 BTC atoms needed
        _, events = ex.place(DAVE, side, 100_000, qty)
        assert events[0].reason == Reject.INSUFFICIENT_FUNDS
    assert unchanged_but_seq(before, ex.eng.image())
    _, events = ex.place(DAVE, SELL, 200_000, 10)  # exactly the 10 atoms
    assert isinstance(events[0], OrderAccepted)
    ex.run(deposit(DAVE, USD, 1, "d3"))
    bid, events = ex.place(DAVE, BUY, 90_000, 10)  # required(9_000, 1) = 9_018 of 10_020
    assert isinstance(events[0], OrderAccepted)
    # An amend's extra hold is checked against what is still available (1_002): at 10_010 ticks
    # required is 10_030 (+1_012, too much); at 10_000 it is 10_020 (+1_002, fits exactly).
    events = ex.run(
        AmendOrder(account_id=DAVE, market_id=M1, order_id=bid, new_price_atoms=100_100)
    )
    assert events[0].reason == Reject.INSUFFICIENT_FUNDS
    events = ex.run(
        AmendOrder(account_id=DAVE, market_id=M1, order_id=bid, new_price_atoms=100_000)
    )
    assert isinstance(events[0], OrderAmended) and ex.balance(DAVE, USD) == (0, 10_020, 0)


def test_book_full_levels_and_orders() -> None:
    ex = Exchange(EngineConfig(max_levels_per_side=1, max_orders=3))
    ex.place(BOB, BUY, 100_000, 10)
    _, events = ex.place(BOB, BUY, 99_000, 10)
    assert events[0].reason == Reject.BOOK_FULL  # a second bid level
    _, events = ex.place(BOB, BUY, 100_000, 10)  # the existing level: fine
    assert isinstance(events[0], OrderAccepted)
    _, events = ex.place(BOB, BUY, 99_000, 10, tif=IOC)  # never rests: no level check
    assert isinstance(events[0], OrderAccepted)
    ask, _ = ex.place(ALICE, SELL, 110_000, 10)
    _, events = ex.place(ALICE, SELL, 0, 10, kind=MARKET)  # 3 open orders: engine full
    assert events[0].reason == Reject.BOOK_FULL
    amend = AmendOrder(account_id=ALICE, market_id=M1, order_id=ask, new_price_atoms=120_000)
    events = ex.run(amend)
    assert events[0].reason == Reject.BOOK_FULL  # levels counted before the order leaves its own
