"""Money invariants checked from the outside, on any engine's StateImage and event stream.

The checker knows only the schema and docs/engine-semantics.md, never an engine's internals, so
it judges the compiled core and the reference model by the same yardstick (DESIGN.md money rules
2, 3 and 7). It also keeps an independent ledger: balances re-derived from postings alone must
equal the balances the engine reports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from engine.schema import (
    Bucket,
    ConditionalOrderImage,
    Event,
    MarketImage,
    OrderImage,
    Side,
    StateImage,
)
from ledger.book import Book

PPM = 1_000_000


def fee_atoms(notional_atoms: int, rate_ppm: int) -> int:
    return notional_atoms * rate_ppm // PPM


def order_commitment_atoms(
    order: OrderImage | ConditionalOrderImage, market: MarketImage, base_unit_atoms: int
) -> int:
    """What an open order must hold: quote for a buy (notional plus worst-case fee), base for a
    sell. Computed with Python's unbounded ints, independently of the engines' overflow-safe
    formula.

    An iceberg commits its whole open quantity (visible and hidden). A waiting conditional
    order commits what it may spend once triggered: a sell its quantity; a market-kind buy
    (price 0) its quote budget; a limit-kind buy the commitment of a limit at its price (for a
    trailing stop limit: the bound, never exceeded by the limit it enters with)."""
    if order.side == Side.SELL:
        return order.qty_atoms
    if isinstance(order, ConditionalOrderImage) and order.price_atoms == 0:
        return order.quote_qty_atoms
    notional = order.price_atoms * order.qty_atoms // base_unit_atoms
    worst_ppm = max(market.maker_fee_ppm, market.taker_fee_ppm)
    return notional + fee_atoms(notional, worst_ppm)


class Ledger:
    """The real ledger (`ledger.book.Book`: chart of accounts, posting rules, floors, contiguous
    transaction ids) seen through the keys this checker compares: balances per
    (account, bucket, asset) re-derived from postings alone."""

    def __init__(self) -> None:
        self.book = Book()

    def apply(self, events: Iterable[Event]) -> None:
        self.book.apply_events(events)

    @property
    def balance_atoms(self) -> dict[tuple[int, int, int], int]:
        return {(a.owner, int(a.bucket), a.asset): v for a, v in self.book.balances.items()}

    @property
    def deposited_atoms(self) -> dict[int, int]:
        return self.book.deposited

    @property
    def withdrawn_atoms(self) -> dict[int, int]:
        return self.book.withdrawn


def check_invariants(image: StateImage, ledger: Ledger) -> None:
    """Raise AssertionError naming the first broken rule."""
    markets = {m.market_id: m for m in image.markets}
    _check_books(image, markets)
    _check_holds_and_balances(image, markets, ledger)
    ledger.book.check()
    ledger.book.verify_against(image)


def _check_books(image: StateImage, markets: dict[int, MarketImage]) -> None:
    best: dict[tuple[int, int], int] = {}
    last_price: dict[tuple[int, int], int] = {}
    seen_ids: set[int] = set()
    open_client_ids: set[tuple[int, int]] = set()
    open_per_account: dict[int, int] = defaultdict(int)
    for order in image.orders:
        market = markets[order.market_id]
        key = (order.market_id, order.side)
        assert order.order_id not in seen_ids, f"order {order.order_id} listed twice"
        seen_ids.add(order.order_id)
        assert order.qty_atoms > 0 and order.qty_atoms % market.lot_size_atoms == 0, order
        assert order.price_atoms > 0 and order.price_atoms % market.tick_size_atoms == 0, order
        if key in last_price:
            previous = last_price[key]
            if order.side == Side.BUY:
                assert order.price_atoms <= previous, f"bids out of order at {order}"
            else:
                assert order.price_atoms >= previous, f"asks out of order at {order}"
        else:
            best[key] = order.price_atoms
        last_price[key] = order.price_atoms
        if order.client_order_id:
            coid = (order.account_id, order.client_order_id)
            assert coid not in open_client_ids, f"duplicate open client order id {coid}"
            open_client_ids.add(coid)
        open_per_account[order.account_id] += 1
        visible = order.visible_qty_atoms
        assert 0 < visible <= order.qty_atoms, f"visible slice out of range: {order}"
        assert not order.display_qty_atoms or visible <= order.display_qty_atoms, order
    for order in image.conditional_orders:
        assert order.order_id not in seen_ids, f"order {order.order_id} listed twice"
        seen_ids.add(order.order_id)
        if order.client_order_id:
            coid = (order.account_id, order.client_order_id)
            assert coid not in open_client_ids, f"duplicate open client order id {coid}"
            open_client_ids.add(coid)
        open_per_account[order.account_id] += 1
    for market_id in markets:
        bid = best.get((market_id, Side.BUY))
        ask = best.get((market_id, Side.SELL))
        if bid is not None and ask is not None:
            assert bid < ask, f"market {market_id} crossed: bid {bid} >= ask {ask}"
    for account_id, count in open_per_account.items():
        assert count <= image.config.max_open_orders_per_account, account_id


def _check_holds_and_balances(
    image: StateImage, markets: dict[int, MarketImage], ledger: Ledger
) -> None:
    base_unit_atoms = {asset.asset_id: 10**asset.decimals for asset in image.assets}
    held_by_orders: dict[tuple[int, int], int] = defaultdict(int)
    for order in [*image.orders, *image.conditional_orders]:
        market = markets[order.market_id]
        commitment = order_commitment_atoms(order, market, base_unit_atoms[market.base_asset_id])
        assert order.hold_atoms == commitment, (
            f"order {order.order_id} holds {order.hold_atoms}, commitment {commitment}"
        )
        asset = market.quote_asset_id if order.side == Side.BUY else market.base_asset_id
        held_by_orders[(order.account_id, asset)] += order.hold_atoms

    engine_balances: dict[tuple[int, int, int], int] = {}
    totals: dict[int, int] = defaultdict(int)
    for account in image.accounts:
        for bal in account.balances:
            for bucket, amount in (
                (Bucket.AVAILABLE, bal.available_atoms),
                (Bucket.HELD_ORDERS, bal.held_orders_atoms),
                (Bucket.HELD_WITHDRAWALS, bal.held_withdrawals_atoms),
            ):
                assert amount >= 0, f"negative {bucket.name} {account.account_id}/{bal.asset_id}"
                if amount:
                    engine_balances[(account.account_id, bucket, bal.asset_id)] = amount
                totals[bal.asset_id] += amount
            expected_held = held_by_orders.pop((account.account_id, bal.asset_id), 0)
            assert bal.held_orders_atoms == expected_held, (
                f"account {account.account_id} asset {bal.asset_id}: held "
                f"{bal.held_orders_atoms} != open commitments {expected_held}"
            )
    assert not held_by_orders, f"open orders hold funds the balances do not show: {held_by_orders}"
    for asset in image.assets:
        assert asset.fees_atoms >= 0, asset
        if asset.fees_atoms:
            engine_balances[(0, Bucket.FEES, asset.asset_id)] = asset.fees_atoms
        if asset.custody_atoms:
            engine_balances[(0, Bucket.CUSTODY, asset.asset_id)] = asset.custody_atoms
        outstanding = totals[asset.asset_id] + asset.fees_atoms
        assert outstanding + asset.custody_atoms == 0, f"asset {asset.asset_id} not balanced"
        net_in = ledger.deposited_atoms[asset.asset_id] - ledger.withdrawn_atoms[asset.asset_id]
        assert outstanding == net_in, (
            f"asset {asset.asset_id}: {outstanding} outstanding, deposits - withdrawals {net_in}"
        )
    derived = {key: amount for key, amount in ledger.balance_atoms.items() if amount}
    assert derived == engine_balances, _diff(derived, engine_balances)


def _diff(derived: dict, engine: dict) -> str:
    keys = sorted(set(derived) | set(engine))
    rows = [
        f"{k}: postings {derived.get(k)} engine {engine.get(k)}"
        for k in keys
        if derived.get(k) != engine.get(k)
    ]
    return "ledger from postings disagrees with engine balances:\n" + "\n".join(rows[:20])
