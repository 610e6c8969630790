"""Focused tests of the compiled core (engine/core): the exact events of a handful of scenarios
(tests/core_support.py holds the exchange).

The big differential tests against the reference model live in tests/test_differential.py.
"""

from __future__ import annotations

from engine.core.compiled import CompiledEngine
from engine.schema import (
    AccountCreated,
    AmendOrder,
    AssetCreated,
    CancelAll,
    CancelOrder,
    CreateAccount,
    Deposit,
    MarketCreated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    PlaceOrder,
    Posting,
    Reject,
    Trade,
)
from tests.core_support import BTC, CONFIG, PX, QTL, QX, SETUP, USDT, Driver, M, buy, required, sell


def test_setup_events() -> None:
    d = Driver.__new__(Driver)
    d.eng, d.seq = CompiledEngine(CONFIG), 0
    events = d.run(*SETUP)
    assert [type(e) for e in events] == [
        AssetCreated, AssetCreated, MarketCreated, AccountCreated, AccountCreated, Posting,
        Posting,
    ]  # fmt: skip
    assert events[5] == Posting(seq=6, txn_id=1, reason=0, asset_id=USDT, debit_account_id=0,
                                debit_bucket=4, credit_account_id=1, credit_bucket=0,
                                amount_atoms=10**12)  # fmt: skip


def test_resting_buy_then_crossing_sell_exact_events() -> None:
    d = Driver()
    hold = required(30, 5)
    events = d.run(buy(30, 5, client_order_id=9))
    assert events == [
        OrderAccepted(seq=8, order_id=8, account_id=1, market_id=M, client_order_id=9, side=0,
                      order_type=0, time_in_force=0, price_atoms=30 * PX, qty_atoms=5 * QX,
                      quote_qty_atoms=0, hold_atoms=hold),
        Posting(seq=8, txn_id=3, reason=1, asset_id=USDT, debit_account_id=1, debit_bucket=0,
                credit_account_id=1, credit_bucket=1, amount_atoms=hold),
    ]  # fmt: skip
    events = d.run(sell(29, 2))
    n = 30 * 2 * QTL
    maker_fee, taker_fee = n * 1_000 // 10**6, n * 2_000 // 10**6
    release = hold - n - maker_fee - required(30, 3)
    assert events == [
        OrderAccepted(seq=9, order_id=9, account_id=2, market_id=M, client_order_id=0, side=1,
                      order_type=0, time_in_force=0, price_atoms=29 * PX, qty_atoms=2 * QX,
                      quote_qty_atoms=0, hold_atoms=2 * QX),
        Posting(seq=9, txn_id=4, reason=1, asset_id=BTC, debit_account_id=2, debit_bucket=0,
                credit_account_id=2, credit_bucket=1, amount_atoms=2 * QX),
        Trade(seq=9, trade_id=1, market_id=M, price_atoms=30 * PX, qty_atoms=2 * QX,
              quote_atoms=n, maker_order_id=8, maker_account_id=1, taker_order_id=9,
              taker_account_id=2, taker_side=1, maker_fee_atoms=maker_fee,
              taker_fee_atoms=taker_fee),
        Posting(seq=9, txn_id=5, reason=3, asset_id=USDT, debit_account_id=1, debit_bucket=1,
                credit_account_id=2, credit_bucket=0, amount_atoms=n),
        Posting(seq=9, txn_id=5, reason=4, asset_id=BTC, debit_account_id=2, debit_bucket=1,
                credit_account_id=1, credit_bucket=0, amount_atoms=2 * QX),
        Posting(seq=9, txn_id=5, reason=5, asset_id=USDT, debit_account_id=1, debit_bucket=1,
                credit_account_id=0, credit_bucket=3, amount_atoms=maker_fee),
        Posting(seq=9, txn_id=5, reason=5, asset_id=USDT, debit_account_id=2, debit_bucket=0,
                credit_account_id=0, credit_bucket=3, amount_atoms=taker_fee),
        Posting(seq=9, txn_id=5, reason=2, asset_id=USDT, debit_account_id=1, debit_bucket=1,
                credit_account_id=1, credit_bucket=0, amount_atoms=release),
    ]  # fmt: skip
    (order,) = d.eng.image().orders
    assert (order.order_id, order.qty_atoms, order.hold_atoms) == (8, 3 * QX, required(30, 3))


def test_ioc_remainder_and_fok_unfillable() -> None:
    d = Driver()
    d.run(sell(31, 1), sell(32, 1))
    events = d.run(buy(31, 3, time_in_force=1))
    assert [type(e) for e in events] == [
        OrderAccepted, Posting, Trade, Posting, Posting, Posting, Posting, OrderExpired, Posting,
    ]  # fmt: skip
    assert events[7] == OrderExpired(seq=d.seq, order_id=d.seq, account_id=1, market_id=M,
                                     remaining_qty_atoms=2 * QX, reason=0)  # fmt: skip
    events = d.run(buy(32, 2, time_in_force=2))
    assert [type(e) for e in events] == [OrderAccepted, Posting, OrderExpired, Posting]
    assert events[2].reason == 1 and events[2].remaining_qty_atoms == 2 * QX
    assert events[3].amount_atoms == events[1].amount_atoms == required(32, 2)


def test_market_buy_by_quote_and_no_liquidity() -> None:
    d = Driver()
    d.run(sell(10, 5))
    budget = 10 * 2 * QTL + 10 * 2 * QTL * 2_000 // 10**6 + 1  # two lots and change
    events = d.run(PlaceOrder(account_id=1, market_id=M, side=0, order_type=1,
                              quote_qty_atoms=budget))  # fmt: skip
    trades = [e for e in events if isinstance(e, Trade)]
    assert [t.qty_atoms for t in trades] == [2 * QX]
    assert not any(isinstance(e, OrderExpired) for e in events)  # stopped by budget: filled
    assert events[-1].reason == 2 and events[-1].amount_atoms == 1  # release of the change
    events = d.run(PlaceOrder(account_id=2, market_id=M, side=1, order_type=1, qty_atoms=QX))
    assert isinstance(events[-2], OrderExpired) and events[-2].reason == 2  # NO_LIQUIDITY


def test_max_fills_expires_taker() -> None:
    d = Driver()
    d.run(*[sell(20, 1) for _ in range(4)])
    events = d.run(buy(20, 4))  # GTC, but max_fills_per_order = 3
    assert sum(isinstance(e, Trade) for e in events) == 3
    expired = [e for e in events if isinstance(e, OrderExpired)]
    assert expired[0].reason == 4 and expired[0].remaining_qty_atoms == QX
    assert len(d.eng.image().orders) == 1  # the fourth maker rests; the taker does not


def test_amend_priority_and_cancel_all_order() -> None:
    d = Driver()
    d.run(buy(10, 4), buy(10, 2), buy(11, 1, client_order_id=5))  # orders 8, 9, 10
    events = d.run(AmendOrder(account_id=1, market_id=M, order_id=8, new_qty_atoms=3 * QX))
    assert events[0] == OrderAmended(seq=11, order_id=8, account_id=1, market_id=M,
                                     price_atoms=10 * PX, qty_atoms=3 * QX, priority_kept=True,
                                     hold_atoms=required(10, 3))  # fmt: skip
    assert events[1].reason == 2 and events[1].amount_atoms == required(10, 4) - required(10, 3)
    assert [o.order_id for o in d.eng.image().orders] == [10, 8, 9]
    d.run(AmendOrder(account_id=1, market_id=M, order_id=8, new_qty_atoms=5 * QX))
    assert [o.order_id for o in d.eng.image().orders] == [10, 9, 8]  # lost priority
    events = d.run(AmendOrder(account_id=1, market_id=M, client_order_id=5,
                              new_price_atoms=9 * PX))  # fmt: skip
    assert events[0].priority_kept is False
    assert [o.order_id for o in d.eng.image().orders] == [9, 8, 10]
    events = d.run(CancelAll(account_id=1))
    cancelled = [e for e in events if isinstance(e, OrderCancelled)]
    assert [e.order_id for e in cancelled] == [8, 9, 10]
    assert all(e.reason == 1 for e in cancelled)
    assert d.eng.image().orders == [] and d.eng.open_orders == 0


def test_rejections_in_contract_order() -> None:
    d = Driver()

    def reason(command: object) -> int:
        (event,) = d.run(command)
        assert isinstance(event, OrderRejected)
        return event.reason

    assert reason(buy(10, 1, account_id=7)) == Reject.UNKNOWN_ACCOUNT
    assert reason(PlaceOrder(account_id=1, market_id=3, side=0, order_type=0)) == (
        Reject.UNKNOWN_MARKET
    )
    assert reason(PlaceOrder(account_id=1, market_id=M, side=2, order_type=0)) == (
        Reject.INVALID_SIDE
    )
    assert reason(buy(10, 1, order_type=2, time_in_force=1)) == Reject.INVALID_TIME_IN_FORCE
    assert (
        reason(
            PlaceOrder(
                account_id=1, market_id=M, side=0, order_type=0, price_atoms=PX + 1, qty_atoms=QX
            )
        )
        == Reject.PRICE_OFF_TICK
    )
    assert reason(buy(10, 1, client_order_id=-1)) == Reject.INVALID_CLIENT_ORDER_ID
    assert reason(buy(10**10, 10**4)) == Reject.NOTIONAL_OVERFLOW
    assert reason(buy(10**6, 10**6)) == Reject.INSUFFICIENT_FUNDS
    d.run(sell(12, 1))
    assert reason(buy(12, 1, order_type=2)) == Reject.TAKER_NOT_ALLOWED
    assert reason(CancelOrder(account_id=1, market_id=M, order_id=999)) == Reject.UNKNOWN_ORDER
    assert reason(CancelOrder(account_id=1, market_id=M, order_id=d.seq - 1)) == (
        Reject.UNKNOWN_ORDER  # another account's order
    )
    assert reason(CancelAll(account_id=1, market_id=2)) == Reject.UNKNOWN_MARKET
    d.run(buy(5, 1, client_order_id=3))
    assert reason(buy(6, 1, client_order_id=3)) == Reject.DUPLICATE_CLIENT_ORDER_ID
    assert reason(AmendOrder(account_id=1, market_id=M, client_order_id=3)) == (
        Reject.INVALID_AMEND
    )
    # ids beyond int64 cannot enter a row, but the rejection still echoes them
    (event,) = d.run(CancelOrder(account_id=1, market_id=M, order_id=1 << 70))
    assert event.reason == Reject.UNKNOWN_ORDER and event.order_id == 1 << 70
    (event,) = d.run(CancelAll(account_id=1, market_id=-(1 << 64)))
    assert event.reason == Reject.UNKNOWN_MARKET and event.market_id == -(1 << 64)


def test_book_full_and_too_many_open() -> None:
    d = Driver()
    events = d.run(*[buy(p, 1) for p in range(1, 9)])  # 6 open orders max per account
    rejected = [e for e in events if isinstance(e, OrderRejected)]
    assert [e.reason for e in rejected] == [Reject.TOO_MANY_OPEN_ORDERS] * 2
    d.run(
        CreateAccount(account_id=3),
        Deposit(account_id=3, asset_id=USDT, amount_atoms=10**12, deposit_key="u3"),
    )
    events = d.run(buy(7, 1, account_id=3), buy(8, 1, account_id=3), buy(9, 1, account_id=3))
    assert isinstance(events[-1], OrderRejected) and events[-1].reason == Reject.BOOK_FULL
    assert len(d.eng.image().orders) == 8  # 8 levels per side
