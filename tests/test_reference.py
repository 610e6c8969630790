"""The reference model against hand-computed scenarios (docs/engine-semantics.md).

Every scenario runs on one small exchange, built so the arithmetic is easy to follow:

- BTC and ETH have 2 decimals (100 atoms per whole unit); USD has 0.
- Markets BTC-USD (1) and ETH-USD (2): tick 10 and lot 10 atoms, so qtl = 10 * 10 // 100 = 1
  and notional(p, q) = p * q USD. In atoms: price_atoms = 10 * p, qty_atoms = 10 * q.
  Maker fee 1_000 ppm, taker fee 2_000 ppm (w = 2_000). BTC-USD has no minimum notional,
  ETH-USD a minimum of 1_000 USD.
- Alice, Bob and Carol each start with 10_000_000 USD and 10_000 atoms of BTC and of ETH;
  Dave starts with nothing.

So a buy of q lots at p ticks holds required(p, q) = p*q + floor(p*q * 2_000 / 10**6).
"""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.reference import ReferenceEngine, fee, notional
from engine.schema import (
    IMAGE_DECODER,
    IMAGE_ENCODER,
    MAX_AMOUNT_ATOMS,
    AccountCreated,
    AmendOrder,
    Bucket,
    CancelAll,
    CancelOnDisconnect,
    CancelOrder,
    CancelReason,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    ExpireReason,
    MarketState,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    PlaceOrder,
    Posting,
    PostingReason,
    Reject,
    SetAccountFrozen,
    SetAccountTier,
    SetDeadMansSwitch,
    SetMarketState,
    Side,
    StateImage,
    TimeInForce,
    Trade,
    WithdrawalHeld,
    WithdrawalSettled,
    WithdrawRequest,
    WithdrawResult,
    state_hash,
)

BTC, USD, ETH = 1, 2, 3
M1, M2 = 1, 2
BASE = {M1: BTC, M2: ETH}
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4
FUND_USD = 10_000_000
FUND_BASE = 10_000
BUY, SELL = Side.BUY, Side.SELL
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
LIMIT, MARKET, MAKER = OrderType.LIMIT, OrderType.MARKET, OrderType.LIMIT_MAKER
AVAIL, HELD, HELD_W = Bucket.AVAILABLE, Bucket.HELD_ORDERS, Bucket.HELD_WITHDRAWALS
FEES, CUSTODY = Bucket.FEES, Bucket.CUSTODY
R = PostingReason
X = ExpireReason


def required(p: int, q: int) -> int:
    return p * q + p * q * 2_000 // 1_000_000


# --------------------------------------------------------------------------------------------
# Harness


class Exchange:
    """The reference engine with the markets and accounts above; numbers commands itself."""

    def __init__(self, config: EngineConfig = EngineConfig()) -> None:  # noqa: B008
        self.eng = ReferenceEngine(config)
        self.seq = 0
        grid = dict(tick_size_atoms=10, lot_size_atoms=10, maker_fee_ppm=1_000)
        grid.update(taker_fee_ppm=2_000, quote_asset_id=USD)
        setup: list = [
            CreateAsset(asset_id=BTC, symbol="BTC", decimals=2),
            CreateAsset(asset_id=USD, symbol="USD", decimals=0),
            CreateAsset(asset_id=ETH, symbol="ETH", decimals=2),
            CreateMarket(market_id=M1, symbol="BTC-USD", base_asset_id=BTC, **grid, **minimum(0)),
            CreateMarket(
                market_id=M2, symbol="ETH-USD", base_asset_id=ETH, **grid, **minimum(1_000)
            ),
        ]
        setup += [CreateAccount(account_id=a) for a in (ALICE, BOB, CAROL, DAVE)]
        for a in (ALICE, BOB, CAROL):
            for asset, amount in ((USD, FUND_USD), (BTC, FUND_BASE), (ETH, FUND_BASE)):
                setup.append(deposit(a, asset, amount, f"seed:{a}:{asset}"))
        events = self.run(*setup)
        assert not [e for e in events if isinstance(e, CommandRejected)]

    def run(self, *commands: object) -> list[Event]:
        """Process commands with the next sequence numbers; check the image afterwards."""
        records = []
        for command in commands:
            self.seq += 1
            records.append((self.seq, 1_000 * self.seq, command))
        events = self.eng.process(records)
        assert all(e.seq in {r[0] for r in records} for e in events)
        check_image(self.eng.image())
        return events

    def place(
        self,
        account: int,
        side: int,
        price: int,
        qty: int,
        *,
        market: int = M1,
        tif: int = GTC,
        kind: int = LIMIT,
        coid: int = 0,
        quote: int = 0,
    ) -> tuple[int, list[Event]]:
        """Place an order (price and qty in atoms); returns (its order id = seq, events)."""
        command = PlaceOrder(
            account_id=account,
            market_id=market,
            side=side,
            order_type=kind,
            time_in_force=tif,
            price_atoms=price,
            qty_atoms=qty,
            quote_qty_atoms=quote,
            client_order_id=coid,
        )
        events = self.run(command)
        return self.seq, events

    def next_txn(self) -> int:
        return self.eng.image().next_txn_id

    def balance(self, account: int, asset: int) -> tuple[int, int, int]:
        """(available, held_orders, held_withdrawals)."""
        for a in self.eng.image().accounts:
            for b in a.balances:
                if (a.account_id, b.asset_id) == (account, asset):
                    return b.available_atoms, b.held_orders_atoms, b.held_withdrawals_atoms
        return 0, 0, 0

    def fees(self, asset: int) -> int:
        return next(a.fees_atoms for a in self.eng.image().assets if a.asset_id == asset)

    def custody(self, asset: int) -> int:
        return next(a.custody_atoms for a in self.eng.image().assets if a.asset_id == asset)

    def book(self, market: int = M1) -> list[tuple[int, int, int, int, int]]:
        """Open orders in book order: (order_id, side, price_atoms, qty_atoms, hold_atoms)."""
        return [
            (o.order_id, o.side, o.price_atoms, o.qty_atoms, o.hold_atoms)
            for o in self.eng.image().orders
            if o.market_id == market
        ]


def minimum(atoms: int) -> dict[str, int]:
    return {"min_notional_atoms": atoms}


def deposit(account: int, asset: int, amount: int, key: str) -> Deposit:
    return Deposit(account_id=account, asset_id=asset, amount_atoms=amount, deposit_key=key)


def check_image(image: StateImage) -> None:
    """Cheap whole-state checks after every command of every scenario: money is conserved per
    asset, no bucket is negative, each hold equals its commitment, and held_orders equals the
    sum of the open orders' holds."""
    totals = {a.asset_id: a.fees_atoms + a.custody_atoms for a in image.assets}
    assert all(a.fees_atoms >= 0 for a in image.assets)
    decimals = {a.asset_id: a.decimals for a in image.assets}
    markets = {m.market_id: m for m in image.markets}
    holds: dict[tuple[int, int], int] = {}
    for o in image.orders:
        m = markets[o.market_id]
        base, quote = m.base_asset_id, m.quote_asset_id
        if o.side == BUY:  # hold = required(p, q) at the worst-case fee rate
            qtl = m.tick_size_atoms * m.lot_size_atoms // 10 ** decimals[base]
            n = o.price_atoms // m.tick_size_atoms * (o.qty_atoms // m.lot_size_atoms) * qtl
            assert o.hold_atoms == n + fee(n, max(m.maker_fee_ppm, m.taker_fee_ppm))
        else:
            assert o.hold_atoms == o.qty_atoms
        key = (o.account_id, quote if o.side == BUY else base)
        holds[key] = holds.get(key, 0) + o.hold_atoms
    for account in image.accounts:
        for b in account.balances:
            assert min(b.available_atoms, b.held_orders_atoms, b.held_withdrawals_atoms) >= 0
            totals[b.asset_id] += b.available_atoms + b.held_orders_atoms
            totals[b.asset_id] += b.held_withdrawals_atoms
            assert holds.pop((account.account_id, b.asset_id), 0) == b.held_orders_atoms
    assert not any(holds.values()), holds
    assert all(total == 0 for total in totals.values()), totals


def unchanged_but_seq(before: StateImage, after: StateImage) -> bool:
    return msgspec.structs.replace(before, last_seq=after.last_seq) == after


# --------------------------------------------------------------------------------------------
# Expected events, compactly (posting shapes as in the contract's table)


def posting(seq: int, txn: int, reason: int, asset: int, dr: tuple, cr: tuple, amount: int):
    return Posting(
        seq=seq,
        txn_id=txn,
        reason=reason,
        asset_id=asset,
        debit_account_id=dr[0],
        debit_bucket=dr[1],
        credit_account_id=cr[0],
        credit_bucket=cr[1],
        amount_atoms=amount,
    )


def hold(seq: int, txn: int, account: int, asset: int, amount: int) -> Posting:
    return posting(seq, txn, R.ORDER_HOLD, asset, (account, AVAIL), (account, HELD), amount)


def release(seq: int, txn: int, account: int, asset: int, amount: int) -> Posting:
    return posting(seq, txn, R.ORDER_RELEASE, asset, (account, HELD), (account, AVAIL), amount)


def fill(
    seq: int,
    txn: int,
    trade_id: int,
    maker: tuple[int, int],
    taker: tuple[int, int],
    side: int,
    price: int,
    qty: int,
    fees: tuple[int, int],
    excess: int = 0,
    market: int = M1,
) -> list[Event]:
    """A Trade and its transaction. maker, taker: (order_id, account_id); side: the taker's;
    price, qty: atoms; fees: (maker fee, taker fee); excess: a maker buy's released excess."""
    n = price * qty // 100
    maker_fee, taker_fee = fees
    if side == BUY:
        buyer, seller, buyer_fee, seller_fee = taker[1], maker[1], taker_fee, maker_fee
    else:
        buyer, seller, buyer_fee, seller_fee = maker[1], taker[1], maker_fee, taker_fee
    base = BASE[market]
    events: list[Event] = [
        Trade(
            seq=seq,
            trade_id=trade_id,
            market_id=market,
            price_atoms=price,
            qty_atoms=qty,
            quote_atoms=n,
            maker_order_id=maker[0],
            maker_account_id=maker[1],
            taker_order_id=taker[0],
            taker_account_id=taker[1],
            taker_side=side,
            maker_fee_atoms=maker_fee,
            taker_fee_atoms=taker_fee,
        ),
        posting(seq, txn, R.TRADE_QUOTE, USD, (buyer, HELD), (seller, AVAIL), n),
        posting(seq, txn, R.TRADE_BASE, base, (seller, HELD), (buyer, AVAIL), qty),
    ]
    if buyer_fee:
        events.append(posting(seq, txn, R.FEE, USD, (buyer, HELD), (0, FEES), buyer_fee))
    if seller_fee:
        events.append(posting(seq, txn, R.FEE, USD, (seller, AVAIL), (0, FEES), seller_fee))
    if excess:
        events.append(release(seq, txn, buyer, USD, excess))
    return events


def accepted(
    seq: int,
    account: int,
    side: int,
    price: int,
    qty: int,
    hold: int,
    *,
    kind: int = LIMIT,
    tif: int = GTC,
    quote: int = 0,
    coid: int = 0,
    market: int = M1,
) -> OrderAccepted:
    return OrderAccepted(
        seq=seq,
        order_id=seq,
        account_id=account,
        market_id=market,
        client_order_id=coid,
        side=side,
        order_type=kind,
        time_in_force=tif,
        price_atoms=price,
        qty_atoms=qty,
        quote_qty_atoms=quote,
        hold_atoms=hold,
    )


def expired(seq: int, order_id: int, account: int, remaining: int, reason: int) -> OrderExpired:
    return OrderExpired(
        seq=seq,
        order_id=order_id,
        account_id=account,
        market_id=M1,
        remaining_qty_atoms=remaining,
        reason=reason,
    )


def cancelled(seq: int, order_id: int, account: int, remaining: int, reason: int, market: int = M1):
    return OrderCancelled(
        seq=seq,
        order_id=order_id,
        account_id=account,
        market_id=market,
        remaining_qty_atoms=remaining,
        reason=reason,
    )


def amended(seq: int, order_id: int, account: int, price: int, qty: int, kept: bool, hold: int):
    return OrderAmended(
        seq=seq,
        order_id=order_id,
        account_id=account,
        market_id=M1,
        price_atoms=price,
        qty_atoms=qty,
        priority_kept=kept,
        hold_atoms=hold,
    )


def kinds(events: list[Event]) -> list[type]:
    return [type(e) for e in events]


@pytest.fixture
def ex() -> Exchange:
    return Exchange()


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


# --------------------------------------------------------------------------------------------
# Every refusal changes nothing


def order(**fields: int) -> PlaceOrder:
    """A limit buy by Bob of 1 lot at 10_000 ticks on BTC-USD, with `fields` changed."""
    base = dict(account_id=BOB, market_id=M1, side=BUY, order_type=LIMIT)
    base.update(price_atoms=100_000, qty_atoms=10)
    return PlaceOrder(**{**base, **fields})


def market(**fields: object) -> CreateMarket:
    spec = dict(market_id=5, symbol="X-Y", base_asset_id=BTC, quote_asset_id=USD)
    spec.update(tick_size_atoms=10, lot_size_atoms=10, min_notional_atoms=0)
    spec.update(maker_fee_ppm=0, taker_fee_ppm=0)
    return CreateMarket(**{**spec, **fields})


def withdraw(**fields: int) -> WithdrawRequest:
    spec = dict(withdrawal_id=1, account_id=ALICE, asset_id=USD, amount_atoms=5)
    return WithdrawRequest(**{**spec, **fields})


def amend(**fields: int) -> AmendOrder:
    """Amend Alice's resting ask RESTING (client order id 1)."""
    return AmendOrder(**{"account_id": ALICE, "market_id": M1, "client_order_id": 1, **fields})


RESTING = order(account_id=ALICE, side=SELL, price_atoms=200_000, client_order_id=1)
MAKER_BID = order(order_type=MAKER, client_order_id=2)
MAX = MAX_AMOUNT_ATOMS
FREEZE_ALICE = SetAccountFrozen(account_id=ALICE, frozen=True, staff_id="staff-1")
FREEZE_BOB = SetAccountFrozen(account_id=BOB, frozen=True, staff_id="staff-1")


def case(reason: str, command: object, *setup: object, config: EngineConfig | None = None):
    """A refusal `reason` (a Reject name) for `command`, after the `setup` commands."""
    return pytest.param(config or EngineConfig(), list(setup), command, Reject[reason])


MARKET_BUY = dict(order_type=MARKET, price_atoms=0)

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


# --------------------------------------------------------------------------------------------
# Custody


def test_deposits_and_withdrawals(ex: Exchange) -> None:
    t = ex.next_txn()
    events = ex.run(deposit(DAVE, BTC, 500, "tx:0"))
    assert events == [posting(ex.seq, t, R.DEPOSIT, BTC, (0, CUSTODY), (DAVE, AVAIL), 500)]
    events = ex.run(deposit(DAVE, BTC, 500, "tx:0"))
    assert events == [
        CommandRejected(seq=ex.seq, command="Deposit", reason=Reject.DUPLICATE_DEPOSIT)
    ]
    events = ex.run(withdraw(withdrawal_id=11, account_id=DAVE, asset_id=BTC, amount_atoms=200))
    seq = ex.seq
    assert events == [
        WithdrawalHeld(seq=seq, withdrawal_id=11, account_id=DAVE, asset_id=BTC, amount_atoms=200),
        posting(seq, t + 1, R.WITHDRAW_HOLD, BTC, (DAVE, AVAIL), (DAVE, HELD_W), 200),
    ]
    ex.run(withdraw(withdrawal_id=12, account_id=DAVE, asset_id=BTC, amount_atoms=300))
    assert ex.balance(DAVE, BTC) == (0, 0, 500)
    events = ex.run(withdraw(withdrawal_id=13, account_id=DAVE, asset_id=BTC, amount_atoms=1))
    assert events[0].reason == Reject.INSUFFICIENT_FUNDS
    image = ex.eng.image()
    assert [w.withdrawal_id for w in image.pending_withdrawals] == [11, 12]
    assert image.withdrawal_ids == [11, 12]  # the refused 13 was not recorded
    events = ex.run(WithdrawResult(withdrawal_id=11, success=True))
    seq = ex.seq
    assert events == [
        WithdrawalSettled(
            seq=seq, withdrawal_id=11, account_id=DAVE, asset_id=BTC, amount_atoms=200, success=True
        ),
        posting(seq, t + 3, R.WITHDRAW_SETTLE, BTC, (DAVE, HELD_W), (0, CUSTODY), 200),
    ]
    events = ex.run(WithdrawResult(withdrawal_id=12, success=False))
    assert events[0].success is False
    assert events[1] == posting(
        ex.seq, t + 4, R.WITHDRAW_RELEASE, BTC, (DAVE, HELD_W), (DAVE, AVAIL), 300
    )
    assert ex.balance(DAVE, BTC) == (300, 0, 0)
    assert ex.custody(BTC) == -3 * FUND_BASE - 500 + 200
    for command, reason in (
        (WithdrawResult(withdrawal_id=11, success=True), Reject.UNKNOWN_WITHDRAWAL),
        (withdraw(withdrawal_id=11, account_id=DAVE, asset_id=BTC), Reject.DUPLICATE_WITHDRAWAL),
    ):
        assert ex.run(command) == [
            CommandRejected(seq=ex.seq, command=type(command).__name__, reason=reason)
        ]
    image = ex.eng.image()
    assert image.pending_withdrawals == [] and image.withdrawal_ids == [11, 12]
    assert "tx:0" in image.deposit_keys and image.deposit_keys == sorted(image.deposit_keys)


def test_admin_events(ex: Exchange) -> None:
    assert ex.run(CreateAccount(account_id=5)) == [AccountCreated(seq=ex.seq, account_id=5)]
    image = ex.eng.image()
    assert [a.account_id for a in image.accounts] == [1, 2, 3, 4, 5]
    assert image.accounts[3].balances == [] and image.accounts[4].balances == []


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


# --------------------------------------------------------------------------------------------
# A random walk: the engine's own assertions and check_image hold after every command, and
# the image survives a restore.

_accounts = st.sampled_from([ALICE, BOB, CAROL, ALICE, BOB, CAROL, DAVE])
_markets = st.sampled_from([M1, M1, M1, M2])
_prices = st.integers(min_value=98, max_value=102).map(lambda p: p * 1_000)
_qtys = st.integers(min_value=1, max_value=4).map(lambda q: q * 10)
_coids = st.integers(min_value=0, max_value=3)
_limit = st.builds(
    PlaceOrder,
    account_id=_accounts,
    market_id=_markets,
    side=st.sampled_from([BUY, SELL]),
    order_type=st.sampled_from([LIMIT, LIMIT, MAKER]),
    time_in_force=st.sampled_from([GTC, GTC, GTC, IOC, FOK]),
    price_atoms=_prices,
    qty_atoms=_qtys,
    client_order_id=_coids,
)
_market_by_qty = st.builds(
    PlaceOrder,
    account_id=_accounts,
    market_id=_markets,
    side=st.sampled_from([BUY, SELL]),
    order_type=st.just(MARKET),
    qty_atoms=_qtys,
)
_market_by_quote = st.builds(
    PlaceOrder,
    account_id=_accounts,
    market_id=_markets,
    side=st.just(BUY),
    order_type=st.just(MARKET),
    quote_qty_atoms=st.integers(min_value=1_000, max_value=60_000),
)
_amend = st.builds(
    AmendOrder,
    account_id=_accounts,
    market_id=_markets,
    client_order_id=st.integers(min_value=1, max_value=3),
    new_price_atoms=st.one_of(st.just(0), _prices),
    new_qty_atoms=st.one_of(st.just(0), _qtys),
)
_cancel = st.builds(
    CancelOrder,
    account_id=_accounts,
    market_id=_markets,
    client_order_id=st.integers(min_value=1, max_value=3),
)
_cancel_all = st.builds(CancelAll, account_id=_accounts, market_id=st.sampled_from([-1, M1, M2]))
_commands = st.sampled_from(  # weights by repetition
    [_limit] * 6 + [_market_by_qty, _market_by_quote, _amend, _amend, _cancel, _cancel_all]
).flatmap(lambda strategy: strategy)


@given(st.lists(_commands, min_size=5, max_size=60))
def test_random_commands_keep_invariants(commands: list) -> None:
    ex = Exchange(EngineConfig(max_fills_per_order=3, max_levels_per_side=4))
    for command in commands:
        ex.run(command)
    assert ReferenceEngine.from_image(ex.eng.image()).image() == ex.eng.image()


def _random_command(rng: random.Random) -> object:
    account = rng.choice([ALICE, BOB, CAROL, ALICE, BOB, CAROL, DAVE])
    market_id = rng.choice([M1, M1, M2])
    price = rng.randint(98, 102) * 1_000
    qty = rng.randint(1, 4) * 10
    coid = rng.randint(0, 4)
    roll = rng.random()
    if roll < 0.55:
        kind = rng.choice([LIMIT, LIMIT, LIMIT, MAKER])
        tif = GTC if kind == MAKER else rng.choice([GTC, GTC, IOC, FOK])
        return order(
            account_id=account,
            market_id=market_id,
            side=rng.choice([BUY, SELL]),
            order_type=kind,
            time_in_force=tif,
            price_atoms=price,
            qty_atoms=qty,
            client_order_id=coid,
        )
    if roll < 0.65:
        side = rng.choice([BUY, SELL])
        by_quote = side == BUY and rng.random() < 0.5
        return order(
            account_id=account,
            market_id=market_id,
            side=side,
            **MARKET_BUY,
            qty_atoms=0 if by_quote else qty,
            quote_qty_atoms=rng.randint(1_000, 60_000) if by_quote else 0,
        )
    if roll < 0.85:
        return AmendOrder(
            account_id=account,
            market_id=market_id,
            client_order_id=rng.randint(1, 4),
            new_price_atoms=rng.choice([0, price]),
            new_qty_atoms=rng.choice([0, qty]),
        )
    if roll < 0.97:
        return CancelOrder(account_id=account, market_id=market_id, client_order_id=coid)
    return CancelAll(account_id=account, market_id=rng.choice([-1, M1, M2]))


@pytest.mark.parametrize("seed", range(3))
def test_seeded_random_walk(seed: int) -> None:
    """Long walks: invariants after every command; a restored copy replays identically."""
    rng = random.Random(seed)
    config = EngineConfig(max_fills_per_order=3, max_levels_per_side=4, max_orders=60)
    ex = Exchange(config)
    seen: set[type] = set()
    for step in range(1_500):
        if step == 750:
            twin = ReferenceEngine.from_image(ex.eng.image())
            tail = []
        command = _random_command(rng)
        events = ex.run(command)
        seen.update(type(e) for e in events)
        if step >= 750:
            tail.append((ex.seq, events, command))
    assert twin.process([(seq, 0, c) for seq, _, c in tail]) == [e for _, ev, _ in tail for e in ev]
    assert twin.image() == ex.eng.image()
    assert {Trade, OrderAmended, OrderExpired, OrderCancelled, OrderRejected} <= seen
