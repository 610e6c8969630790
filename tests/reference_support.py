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

import msgspec

from engine.reference import ReferenceEngine, fee
from engine.schema import (
    AmendOrder,
    Bucket,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    ExpireReason,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderType,
    PlaceOrder,
    Posting,
    PostingReason,
    Side,
    StateImage,
    TimeInForce,
    Trade,
    WithdrawRequest,
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


MARKET_BUY = dict(order_type=MARKET, price_atoms=0)
