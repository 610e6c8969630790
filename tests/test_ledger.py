"""The in-memory ledger (ledger/book.py, chart.py, orders.py, reports.py) against the compiled
engine: balances re-derived from postings equal the engine's after every command, the trial
balance is zero, the chart's rules and floors catch bad postings, and rounding holds at the
edges (smallest units, amounts near 2**62)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from engine.core.compiled import CompiledEngine
from engine.schema import (
    MAX_AMOUNT_ATOMS,
    Bucket,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    OrderType,
    PlaceOrder,
    Posting,
    PostingReason,
    Side,
    TimeInForce,
    Trade,
)
from ledger.book import Book, FloorViolation, LedgerError, image_balances
from ledger.chart import ChartError, LedgerAccount, LedgerBucket, account
from ledger.reports import Window, book_balances, book_statement, book_trial_balance
from tests.streams import Record, command_streams

CONFIG = EngineConfig(
    max_accounts=16, max_assets=4, max_markets=4, max_orders=4096, max_levels_per_side=1024
)


def _run(records: list[Record], config: EngineConfig = CONFIG) -> tuple[CompiledEngine, Book]:
    engine = CompiledEngine(config)
    book = Book()
    for seq, ts, command in records:
        events = engine.process([(seq, ts, command)])
        book.apply_events(events, {seq: ts})
        book.advance_to(seq, ts)
        image = engine.image()
        book.check()
        book.verify_against(image)
        waiting = {o.order_id for o in image.conditional_orders}  # stops not yet triggered
        assert set(book.orders.open) == {o.order_id for o in image.orders} | waiting
        for order in image.orders:
            tracked = book.orders.open[order.order_id]
            assert (tracked.open_qty_atoms, tracked.price_atoms) == (
                order.qty_atoms,
                order.price_atoms,
            )
    return engine, book


@settings(max_examples=1000)
@given(command_streams(issue3=True))
def test_ledger_equals_engine_and_trial_balance_zero_over_streams(records: list[Record]) -> None:
    engine, book = _run(records)
    tb = book_trial_balance(book)
    assert tb.balanced, tb.totals()
    # replaying the same events again is a no-op (idempotent by sequence)
    before = (len(book.postings), dict(book.balances))
    replayed = CompiledEngine(CONFIG).process(records)
    book.apply_events(replayed)
    assert (len(book.postings), dict(book.balances)) == before
    assert book.next_txn_id == engine.next_txn_id


@settings(max_examples=100)
@given(command_streams(issue3=True))
def test_reports_as_of_every_sequence_match_the_engine(records: list[Record]) -> None:
    engine = CompiledEngine(CONFIG)
    images = {}
    for record in records:
        engine.process([record])
        images[record[0]] = engine.image()
    _, book = _run(records)
    for seq in range(1, book.last_seq + 1, max(1, book.last_seq // 7)):
        expected = image_balances(images[seq])
        got = {
            LedgerAccount(r.owner, r.asset, LedgerBucket(r.bucket)): r.amount
            for r in book_balances(book, seq)
        }
        assert got == expected
        assert book_trial_balance(book, seq).balanced
    for owner in (1, 2):
        stmt = book_statement(book, owner, Window("seq", 1, book.last_seq))
        closing = {(r.asset, r.bucket): r.amount for r in stmt.closing}
        mine = {(r.asset, r.bucket): r.amount for r in book_balances(book) if r.owner == owner}
        assert closing == mine
        # a statement split in two: the second's opening is the first's closing
        mid = book.last_seq // 2
        first = book_statement(book, owner, Window("seq", 1, mid))
        second = book_statement(book, owner, Window("seq", mid + 1, book.last_seq))
        assert first.closing == second.opening
        assert first.lines + second.lines == stmt.lines


# --------------------------------------------------------------------------------------------
# Chart of accounts and posting rules


def _posting(
    txn: int,
    reason: int,
    debit: tuple[int, int],
    credit: tuple[int, int],
    amount: int,
    seq: int = 1,
    asset: int = 0,
) -> Posting:
    return Posting(
        seq=seq,
        txn_id=txn,
        reason=reason,
        asset_id=asset,
        debit_account_id=debit[0],
        debit_bucket=debit[1],
        credit_account_id=credit[0],
        credit_bucket=credit[1],
        amount_atoms=amount,
    )


def test_chart_rejects_accounts_outside_the_chart() -> None:
    assert account(0, 1, Bucket.CUSTODY).may_go_negative
    assert not account(0, 1, Bucket.FEES).may_go_negative
    assert not account(3, 1, Bucket.AVAILABLE).may_go_negative
    with pytest.raises(ChartError, match="system account"):
        account(3, 1, Bucket.FEES)
    with pytest.raises(ChartError, match="user account"):
        account(0, 1, Bucket.AVAILABLE)
    with pytest.raises(ChartError, match="unknown bucket"):
        account(1, 1, 9)
    assert account(0, 2, LedgerBucket.WITHDRAWALS_IN_FLIGHT).bucket == 6


def test_floor_violation_names_the_account() -> None:
    book = Book()
    book.apply_command(
        1, 0, [_posting(1, PostingReason.DEPOSIT, (0, Bucket.CUSTODY), (7, Bucket.AVAILABLE), 100)]
    )
    assert book.balances[LedgerAccount(0, 0, LedgerBucket.CUSTODY)] == -100
    with pytest.raises(FloorViolation, match=r"7/0/AVAILABLE would be -1 after transaction 2"):
        book.apply_command(
            2,
            0,
            [
                _posting(
                    2,
                    PostingReason.ORDER_HOLD,
                    (7, Bucket.AVAILABLE),
                    (7, Bucket.HELD_ORDERS),
                    101,
                    seq=2,
                )
            ],
        )


def test_posting_rules_and_transaction_ids_are_enforced() -> None:
    book = Book()
    with pytest.raises(ChartError, match="DEPOSIT may not move"):
        book.apply_command(
            1, 0, [_posting(1, PostingReason.DEPOSIT, (0, Bucket.FEES), (7, Bucket.AVAILABLE), 5)]
        )
    book = Book()
    with pytest.raises(ChartError, match="within one owner"):
        book.apply_command(
            1,
            0,
            [
                _posting(
                    1, PostingReason.ORDER_HOLD, (7, Bucket.AVAILABLE), (8, Bucket.HELD_ORDERS), 5
                )
            ],
        )
    book = Book()
    with pytest.raises(LedgerError, match="transaction 2 where 1 was due"):
        book.apply_command(
            1,
            0,
            [_posting(2, PostingReason.DEPOSIT, (0, Bucket.CUSTODY), (7, Bucket.AVAILABLE), 5)],
        )
    book = Book()
    with pytest.raises(LedgerError, match="outside"):
        book.apply_command(
            1,
            0,
            [_posting(1, PostingReason.DEPOSIT, (0, Bucket.CUSTODY), (7, Bucket.AVAILABLE), 0)],
        )


def test_reapplying_a_sequence_is_a_no_op() -> None:
    book = Book()
    events = [_posting(1, PostingReason.DEPOSIT, (0, Bucket.CUSTODY), (7, Bucket.AVAILABLE), 9)]
    assert book.apply_command(1, 5, events)
    assert not book.apply_command(1, 5, events)
    assert len(book.transactions) == 1 and book.transactions[0].event_index == 0


# --------------------------------------------------------------------------------------------
# Rounding at the edges


def _market_records(
    maker_ppm: int, taker_ppm: int, quote_deposit: int, base_deposit: int, orders: list[PlaceOrder]
) -> list[Record]:
    commands = [
        CreateAsset(asset_id=0, symbol="B", decimals=0),
        CreateAsset(asset_id=1, symbol="Q", decimals=0),
        CreateMarket(
            market_id=0,
            symbol="B-Q",
            base_asset_id=0,
            quote_asset_id=1,
            tick_size_atoms=1,
            lot_size_atoms=1,
            min_notional_atoms=0,
            maker_fee_ppm=maker_ppm,
            taker_fee_ppm=taker_ppm,
        ),
        CreateAccount(account_id=1),
        CreateAccount(account_id=2),
        Deposit(account_id=1, asset_id=1, amount_atoms=quote_deposit, deposit_key="q"),
        Deposit(account_id=2, asset_id=0, amount_atoms=base_deposit, deposit_key="b"),
        *orders,
    ]
    return [(i + 1, 1_000 * (i + 1), c) for i, c in enumerate(commands)]


def _limit(account_id: int, side: int, price: int, qty: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account_id,
        market_id=0,
        side=side,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price_atoms=price,
        qty_atoms=qty,
    )


def _fee(n: int, ppm: int) -> int:
    return n * ppm // 1_000_000


def _trade_postings(book: Book) -> list[tuple[int, int, int, int]]:
    return [
        (p.reason, p.debit.owner, p.credit.owner, p.amount)
        for p in book.postings
        if p.reason in (PostingReason.TRADE_QUOTE, PostingReason.TRADE_BASE, PostingReason.FEE)
    ]


def test_smallest_units_fees_round_down_to_nothing() -> None:
    # one atom of quote for one atom of base at 0.7 % / 0.25 %: both fees floor to 0, so no
    # FEE posting exists (postings of 0 are never emitted) and the seller gets the whole atom
    records = _market_records(
        2_500, 7_000, 10, 10, [_limit(2, Side.SELL, 1, 1), _limit(1, Side.BUY, 1, 1)]
    )
    _, book = _run(records)
    trade = next(e for e in CompiledEngine(CONFIG).process(records) if isinstance(e, Trade))
    assert (trade.quote_atoms, trade.maker_fee_atoms, trade.taker_fee_atoms) == (1, 0, 0)
    assert _trade_postings(book) == [
        (PostingReason.TRADE_QUOTE, 1, 2, 1),
        (PostingReason.TRADE_BASE, 2, 1, 1),
    ]
    assert book.balances[LedgerAccount(2, 1, LedgerBucket.AVAILABLE)] == 1
    assert book_trial_balance(book).balanced


def test_fee_rounds_down_each_fill_at_the_boundary() -> None:
    # notional 142_857 at 7_000 ppm = 999.999 -> 999; 142_858 -> 1_000.006 -> 1_000
    for price, expected in ((142_857, 999), (142_858, 1_000)):
        records = _market_records(
            7_000, 7_000, 10**9, 10, [_limit(2, Side.SELL, price, 1), _limit(1, Side.BUY, price, 1)]
        )
        _, book = _run(records)
        fees = [p.amount for p in book.postings if p.reason == PostingReason.FEE]
        assert fees == [expected, expected]
        assert book.balances[LedgerAccount(0, 1, LedgerBucket.FEES)] == 2 * expected


def test_amounts_near_two_to_the_62() -> None:
    # the largest notional whose buy hold (notional + worst fee) still fits MAX_AMOUNT_ATOMS,
    # bought in two fills: fees round down on each fill separately, quote amounts are exact
    ppm = 1_000
    qty = 2
    price = (MAX_AMOUNT_ATOMS * 1_000_000 // (1_000_000 + ppm)) // qty
    while qty * price + _fee(qty * price, ppm) > MAX_AMOUNT_ATOMS:
        price -= 1
    records = _market_records(
        ppm,
        ppm,
        MAX_AMOUNT_ATOMS,
        qty,
        [
            _limit(2, Side.SELL, price, 1),
            _limit(2, Side.SELL, price, 1),
            _limit(1, Side.BUY, price, qty),
        ],
    )
    engine, book = _run(records)
    trades = [e for e in CompiledEngine(CONFIG).process(records) if isinstance(e, Trade)]
    assert [t.quote_atoms for t in trades] == [price, price]
    assert all(t.taker_fee_atoms == _fee(price, ppm) for t in trades)
    fees = book.balances[LedgerAccount(0, 1, LedgerBucket.FEES)]
    assert fees == 4 * _fee(price, ppm)
    assert fees <= 2 * _fee(2 * price, ppm)  # per-fill rounding never charges more
    assert book.balances[LedgerAccount(2, 1, LedgerBucket.AVAILABLE)] == 2 * (
        price - _fee(price, ppm)
    )
    assert book.balances[LedgerAccount(0, 1, LedgerBucket.CUSTODY)] == -MAX_AMOUNT_ATOMS
    assert book_trial_balance(book).balanced
    assert engine.image().last_seq == book.last_seq
