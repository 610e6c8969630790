"""Focused tests of the compiled core (engine/core): its hash indexes, its level book, exact
events of a handful of scenarios, the batch/fast-path API and the image round trip.

The big differential tests against the reference model live in tests/test_differential.py.
"""

from __future__ import annotations

import bisect
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core import book, hashindex, money
from engine.core.arrays import bytes_per_resting_order
from engine.core.compiled import CompiledEngine, SequenceError
from engine.core.layout import (
    C_LEVEL_FREE,
    C_LEVEL_HWM,
    C_W,
    CF_LEVEL_CAP,
    CF_MAX_LEVELS,
    K_ACCOUNT,
    K_W,
    O_COID,
    O_ID,
    O_W,
    V_PRICE,
    V_W,
)
from engine.schema import (
    AccountCreated,
    AmendOrder,
    AssetCreated,
    CancelAll,
    CancelOrder,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
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
    state_hash,
)

# --------------------------------------------------------------------------------------------
# Hash indexes against a dict

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "find"]), st.integers(-40, 40), st.integers(0, 2)
    ),
    max_size=120,
)


@given(_OPS)
def test_order_id_index_matches_a_dict(ops: list[tuple[str, int, int]]) -> None:
    """Keys that differ by multiples of 2**31 share a fingerprint: the order row decides."""
    capacity = 16  # 8 slots at load <= 0.5: lots of collisions and wrap-around clusters
    mask = 2 * capacity - 1
    idx = np.zeros(2 * capacity, dtype=np.int64)
    ords = np.zeros((capacity, O_W), dtype=np.int64)
    free = list(range(capacity))
    model: dict[int, int] = {}
    for op, low, high in ops:
        key = low + high * (1 << 31)
        if op == "insert" and key not in model and free:
            slot = free.pop()
            ords[slot, O_ID] = key
            hashindex.oid_insert(idx, ords, mask, slot)
            model[key] = slot
        elif op == "delete" and key in model:
            slot = model.pop(key)
            assert hashindex.oid_delete(idx, ords, mask, slot)
            ords[slot, O_ID] = 10_000 + slot  # stale key must not matter
            free.append(slot)
        assert hashindex.oid_find(idx, ords, mask, key) == model.get(key, -1)
        for k, slot in model.items():
            assert hashindex.oid_find(idx, ords, mask, k) == slot
        assert np.count_nonzero(idx) == len(model)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3), st.integers(1, 6)), max_size=120))
def test_client_order_id_index_matches_a_dict(ops: list[tuple[bool, int, int]]) -> None:
    capacity = 16
    mask = 2 * capacity - 1
    idx = np.zeros((1, 2 * capacity), dtype=np.int32)
    ords = np.zeros((capacity, O_W), dtype=np.int64)
    olnk = np.zeros((capacity, K_W), dtype=np.int32)
    free = list(range(capacity))
    model: dict[tuple[int, int], int] = {}
    for insert, account, coid in ops:
        key = (account, coid)
        if insert and key not in model and free:
            slot = free.pop()
            olnk[slot, K_ACCOUNT] = account
            ords[slot, O_COID] = coid
            hashindex.coid_insert(idx, ords, olnk, mask, slot)
            model[key] = slot
        elif not insert and key in model:
            slot = model.pop(key)
            assert hashindex.coid_delete(idx, ords, olnk, mask, slot)
            free.append(slot)
        for (a, c), slot in model.items():
            assert hashindex.coid_find(idx, ords, olnk, mask, a, c) == slot
        for a in range(1, 4):
            for c in range(1, 7):
                if (a, c) not in model:
                    assert hashindex.coid_find(idx, ords, olnk, mask, a, c) == -1


def test_hash_is_deterministic() -> None:
    # splitmix64 finalizer values are part of no contract, but must not depend on the run.
    assert [hashindex.mix64(k) for k in (0, 1, -1)] == [
        hashindex.mix64(0),
        hashindex.mix64(1),
        hashindex.mix64(-1),
    ]
    assert all(hashindex.mix64(k) >= 0 for k in range(-1000, 1000))


# --------------------------------------------------------------------------------------------
# Level book: sorted insert/remove


def _side_arrays(levels: int) -> tuple[np.ndarray, ...]:
    lvl = np.zeros((levels, V_W), dtype=np.int64)
    lfree = np.zeros(levels, dtype=np.int32)
    bkl = np.zeros((2, levels), dtype=np.int32)
    bkp = np.zeros((2, levels), dtype=np.int64)
    bkn = np.zeros(2, dtype=np.int64)
    ctr = np.zeros(C_W, dtype=np.int64)
    ctr[CF_LEVEL_CAP] = levels
    ctr[CF_MAX_LEVELS] = levels
    return lvl, lfree, bkl, bkp, bkn, ctr


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 30), st.booleans()), max_size=200))
def test_level_book_keeps_sorted_order(ops: list[tuple[int, int, bool]]) -> None:
    lvl, lfree, bkl, bkp, bkn, ctr = _side_arrays(64)
    model: list[set[int]] = [set(), set()]
    for side, price, add in ops:
        if add:
            lv = book.level_get_or_add(lvl, bkl, bkp, bkn, lfree, ctr, side, side, price)
            assert lv >= 0 and lvl[lv, V_PRICE] == price
            model[side].add(price)
        elif price in model[side]:
            lv = book.level_find(bkl, bkp, bkn, side, side, price)
            book.level_drop(lvl, bkl, bkp, bkn, lfree, ctr, side, side, lv)
            model[side].discard(price)
        for s in (0, 1):
            n = int(bkn[s])
            prices = [int(lvl[bkl[s, k], V_PRICE]) for k in range(n)]
            # bids ascending, asks descending: the best price is always last
            expected = sorted(model[s]) if s == 0 else sorted(model[s], reverse=True)
            assert prices == expected
            keys = sorted(p if s == 0 else -p for p in model[s])
            for probe in range(0, 32):
                key = probe if s == 0 else -probe
                assert book.level_pos(bkp, bkn, s, key) == bisect.bisect_left(keys, key)
                found = book.level_find(bkl, bkp, bkn, s, s, probe)
                assert (found >= 0) == (probe in model[s])
        live = len(model[0]) + len(model[1])
        assert ctr[C_LEVEL_HWM] - ctr[C_LEVEL_FREE] == live


# --------------------------------------------------------------------------------------------
# Engine scenarios with exact events

CONFIG = EngineConfig(
    max_accounts=8,
    max_assets=4,
    max_markets=4,
    max_orders=64,
    max_levels_per_side=8,
    max_open_orders_per_account=6,
    max_fills_per_order=3,
)
BTC, USDT, M = 0, 1, 0
TICK, LOT = 100, 1_000  # price in USDT atoms per whole BTC (10**8 atoms); qtl = 1
SETUP = [
    CreateAsset(asset_id=BTC, symbol="BTC", decimals=8),
    CreateAsset(asset_id=USDT, symbol="USDT", decimals=6),
    CreateMarket(market_id=M, symbol="BTC-USDT", base_asset_id=BTC, quote_asset_id=USDT,
                 tick_size_atoms=TICK * 1_000_000, lot_size_atoms=LOT * 100,
                 min_notional_atoms=0, maker_fee_ppm=1_000, taker_fee_ppm=2_000),
    CreateAccount(account_id=1),
    CreateAccount(account_id=2),
    Deposit(account_id=1, asset_id=USDT, amount_atoms=10**12, deposit_key="u1"),
    Deposit(account_id=2, asset_id=BTC, amount_atoms=10**10, deposit_key="b2"),
]  # fmt: skip
PX = TICK * 1_000_000  # one tick in price atoms
QX = LOT * 100  # one lot in base atoms
QTL = PX * QX // 10**8  # quote atoms per tick-lot


class Driver:
    def __init__(self, config: EngineConfig = CONFIG, **kwargs: int) -> None:
        self.eng = CompiledEngine(config, **kwargs)
        self.seq = 0
        self.run(*SETUP)

    def run(self, *commands: object) -> list[object]:
        records = []
        for c in commands:
            self.seq += 1
            records.append((self.seq, self.seq * 1000, c))
        return self.eng.process(records)


def buy(price: int, qty: int, **kw: int) -> PlaceOrder:
    return PlaceOrder(account_id=kw.pop("account_id", 1), market_id=M, side=0,
                      order_type=kw.pop("order_type", 0), price_atoms=price * PX,
                      qty_atoms=qty * QX, **kw)  # fmt: skip


def sell(price: int, qty: int, **kw: int) -> PlaceOrder:
    return PlaceOrder(account_id=kw.pop("account_id", 2), market_id=M, side=1,
                      order_type=kw.pop("order_type", 0), price_atoms=price * PX,
                      qty_atoms=qty * QX, **kw)  # fmt: skip


def required(p: int, q: int) -> int:
    n = p * q * QTL
    return n + n * 2_000 // 1_000_000


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


# --------------------------------------------------------------------------------------------
# API: batching, the fast path, the image


def _random_stream(seed: int, n: int) -> list[object]:
    rng = random.Random(seed)
    out: list[object] = []
    for _ in range(n):
        r = rng.random()
        account = rng.randint(1, 2)
        if r < 0.5:
            side = rng.randint(0, 1)
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=M,
                    side=side,
                    order_type=rng.choice([0, 0, 0, 1, 2]),
                    time_in_force=rng.choice([0, 0, 1, 2]),
                    price_atoms=rng.randint(5, 15) * PX,
                    qty_atoms=rng.randint(1, 4) * QX,
                    client_order_id=rng.choice([0, 0, rng.randint(1, 5)]),
                )
            )
        elif r < 0.8:
            out.append(
                AmendOrder(
                    account_id=account,
                    market_id=M,
                    order_id=rng.randint(8, 60),
                    new_price_atoms=rng.choice([0, rng.randint(5, 15) * PX]),
                    new_qty_atoms=rng.choice([0, rng.randint(1, 4) * QX]),
                )
            )
        elif r < 0.95:
            out.append(CancelOrder(account_id=account, market_id=M, order_id=rng.randint(8, 60)))
        else:
            out.append(CancelAll(account_id=account))
    return out  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_batches_capacity_spills_and_image_round_trip(seed: int) -> None:
    stream = _random_stream(seed, 300)
    one = Driver()
    events = []
    for c in stream:
        events.extend(one.run(c))
    # A tiny event buffer forces the kernel to stop and drain in the middle of the batch.
    small = Driver(event_capacity=1)
    assert small.run(*stream) == events
    image = one.eng.image()
    assert small.eng.image() == image
    restored = CompiledEngine.from_image(image)
    assert restored.image() == image
    assert state_hash(restored.image()) == state_hash(image)
    # ... and the restored engine behaves identically from there on.
    more = _random_stream(seed + 100, 100)
    records = [(one.seq + 1 + i, 0, c) for i, c in enumerate(more)]
    assert restored.process(records) == one.eng.process(records)
    assert restored.image() == one.eng.image()


def test_fast_path_counts_events_and_keeps_the_last_stretch() -> None:
    d = Driver()
    stream = _random_stream(7, 200)
    records = [(d.seq + 1 + i, 0, c) for i, c in enumerate(stream)]
    twin = Driver()
    expected = twin.eng.process(records)
    rows = d.eng.encode(records)
    assert rows.dtype == np.int64 and len(rows) == len(records)
    # Rows written, not events: a trade row also stands for its 2-5 postings, an accepted or
    # amended row for its hold posting (if any).
    kinds = [type(e).__name__ for e in expected]
    trades = kinds.count("Trade")
    holders = kinds.count("OrderAccepted") + kinds.count("OrderAmended")
    assert trades > 0
    produced = d.eng.process_encoded(rows)
    assert len(expected) - 5 * trades - holders <= produced <= len(expected) - 2 * trades
    assert d.eng.drain_events() == expected  # fits the buffer: nothing was overwritten
    assert d.eng.image() == twin.eng.image()


def test_sequence_must_increase() -> None:
    d = Driver()
    with pytest.raises(SequenceError):
        d.eng.process([(d.seq, 0, buy(10, 1))])
    with pytest.raises(AssertionError):
        d.eng.process([(d.seq, 0, CreateAccount(account_id=5))])


def test_memory_per_resting_order_is_bounded() -> None:
    report = bytes_per_resting_order(EngineConfig())
    # 116 bytes: 8 int64 columns (GTD expiry and iceberg slice included; conditional orders
    # reuse the resting-only columns), 8 int32 links (side, type, TIF, STP, pending and trailing
    # delta packed in K_FLAGS), the int32 free stack and the two int32 hash indexes
    assert report["total_per_order"] <= 128


_BIG = st.one_of(st.integers(1, 1 << 16), st.integers(1, 1 << 40), st.integers(1, (1 << 62) - 1))


@given(_BIG, _BIG, _BIG)
def test_notional_fits_matches_big_integers(p: int, q: int, qtl: int) -> None:
    assert money.notional_fits(p, q, qtl) == (p * q * qtl <= (1 << 62) - 1)


@given(st.integers(0, (1 << 62) - 1), st.sampled_from([0, 1, 999, 2_500, 100_000]))
def test_fee_matches_big_integers(n: int, ppm: int) -> None:
    assert money.fee(n, ppm) == n * ppm // 1_000_000


@given(st.integers(1, 1 << 40), st.sampled_from([0, 7, 2_000, 100_000]), st.integers(0, 1 << 50),
       st.integers(1, 1 << 30))  # fmt: skip
def test_lots_for_budget_is_the_largest_affordable(c: int, ppm: int, budget: int, cap: int) -> None:
    k = money.lots_for_budget(c, ppm, budget, cap)

    def cost(x: int) -> int:
        return x * c + x * c * ppm // 1_000_000

    assert 0 <= k <= cap and cost(k) <= budget
    assert k == cap or cost(k + 1) > budget
