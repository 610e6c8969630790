"""State of the reference model: arithmetic of docs/engine-semantics.md, entities and books.

Units inside: prices in ticks (`p`), quantities in lots (`q`), amounts in atoms. Integers only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from sortedcontainers import SortedDict

from engine.schema import MAX_AMOUNT_ATOMS, Side

PPM = 1_000_000


def fee(n: int, ppm: int) -> int:
    """floor(n * ppm / 10**6) without an intermediate product wider than int64."""
    return (n // PPM) * ppm + (n % PPM) * ppm // PPM


def notional(p: int, q: int, qtl: int) -> int:
    """Quote atoms of q lots at p ticks."""
    return p * q * qtl


def bps_of(x: int, bps: int) -> int:
    """floor(x * bps / 10**4) without a product wider than int64 (0 <= bps <= 10**4)."""
    return (x // 10_000) * bps + (x % 10_000) * bps // 10_000


def notional_overflows(p: int, q: int, qtl: int) -> bool:
    """The contract's NOTIONAL_OVERFLOW test: p * q * qtl > MAX, evaluated without a product."""
    return p > MAX_AMOUNT_ATOMS // qtl or q > MAX_AMOUNT_ATOMS // (p * qtl)


@dataclass(slots=True)
class Asset:
    asset_id: int
    symbol: str
    decimals: int
    fees: int = 0
    """System FEES bucket."""
    custody: int = 0
    """System CUSTODY bucket (<= 0: minus the outstanding supply)."""


@dataclass(slots=True, eq=False)
class Order:
    """An open order (resting, or a taker in flight). Compared by identity."""

    order_id: int
    account_id: int
    market_id: int
    side: int
    order_type: int
    p: int
    """Limit price in ticks (0 for a market order)."""
    q: int
    """Open quantity in lots (0 for a market buy by quote amount)."""
    hold: int
    """Atoms in HELD_ORDERS for this order: quote for buys, base for sells."""
    client_order_id: int
    time_in_force: int = 0
    expire_at: int = 0
    """GTD: journal time (ns) at which it expires; 0 otherwise."""
    stp: int = 0
    display: int = 0
    """Iceberg slice in lots, 0 = not an iceberg."""
    visible: int = 0
    """Lots of the current slice (= q for a plain order)."""
    # Conditional orders (pending until triggered):
    pending: bool = False
    trigger: int = 0
    """Trigger price in ticks (trailing: the current one)."""
    delta_bps: int = 0
    offset: int = 0
    """TRAILING_STOP_LIMIT: limit offset in ticks."""
    extreme: int = 0
    """Trailing: peak (sell) or trough (buy) since placement, ticks."""
    quote_qty: int = 0
    """Conditional market buy: the budget (atoms)."""

    @property
    def falls(self) -> bool:
        """A conditional order that fires on a falling price (last <= trigger)."""
        from engine.schema import OrderType

        stop_like = self.order_type in (
            OrderType.STOP_MARKET,
            OrderType.STOP_LIMIT,
            OrderType.TRAILING_STOP_MARKET,
            OrderType.TRAILING_STOP_LIMIT,
        )
        return stop_like == (self.side == Side.SELL)


@dataclass(slots=True)
class Account:
    account_id: int
    balances: dict[int, list[int]] = field(default_factory=dict)
    """asset_id -> [available, held_orders, held_withdrawals] (Bucket values 0, 1, 2)."""
    orders: dict[int, Order] = field(default_factory=dict)
    """Open orders by order_id."""
    by_client_id: dict[int, Order] = field(default_factory=dict)
    """Open orders with a non-zero client_order_id, by that id (unique across markets)."""
    dms: int = 0
    """Dead-man's switch time (journal ns), 0 = disarmed."""
    frozen: bool = False
    """Set by staff (SetAccountFrozen): no new orders, no amend adding exposure, no withdrawal."""
    tier: int = -1
    """KYC tier (SetAccountTier), -1 = never set."""

    def available(self, asset_id: int) -> int:
        buckets = self.balances.get(asset_id)
        return buckets[0] if buckets else 0


@dataclass(slots=True)
class Market:
    market_id: int
    symbol: str
    base: int
    quote: int
    tick: int
    lot: int
    min_notional: int
    maker_ppm: int
    taker_ppm: int
    qtl: int
    """Quote atoms per tick-lot: tick * lot // 10**base_decimals."""
    last_trade_id: int = 0
    state: int = 0
    band_bps: int = 0
    protection_bps: int = 0
    max_qty: int = 0
    """Largest order in lots, 0 = no limit."""
    last_price: int = 0
    """Ticks of the last trade, 0 before the first."""
    burst: tuple[int, int] | None = None
    """(first, last) trade price of the current taker's fills: what triggers are evaluated on."""
    conditional: dict[int, Order] = field(default_factory=dict)
    """Pending conditional orders by order id."""
    trailing: dict[int, Order] = field(default_factory=dict)
    """Pending trailing stops, in ascending order id (insertion order)."""
    trigger_books: tuple[SortedDict, SortedDict] = field(
        default_factory=lambda: (SortedDict(), SortedDict())
    )
    """Pending stops and take-profits: (falling, rising), trigger ticks -> {order_id: Order}
    in ascending order id."""

    def wait(self, order: Order) -> None:
        """Add a pending conditional order (ascending order id: always the newest)."""
        from engine.schema import OrderType

        self.conditional[order.order_id] = order
        if order.order_type >= OrderType.TRAILING_STOP_MARKET:
            self.trailing[order.order_id] = order
        else:
            book = self.trigger_books[0 if order.falls else 1]
            book.setdefault(order.trigger, {})[order.order_id] = order

    def unwait(self, order: Order) -> None:
        from engine.schema import OrderType

        del self.conditional[order.order_id]
        if order.order_type >= OrderType.TRAILING_STOP_MARKET:
            del self.trailing[order.order_id]
        else:
            book = self.trigger_books[0 if order.falls else 1]
            level = book[order.trigger]
            del level[order.order_id]
            if not level:
                del book[order.trigger]

    bids: SortedDict = field(default_factory=SortedDict)
    """ticks -> deque[Order] in time priority; best bid = highest key."""
    asks: SortedDict = field(default_factory=SortedDict)
    """ticks -> deque[Order] in time priority; best ask = lowest key."""

    @property
    def w(self) -> int:
        """The worst-case fee rate a resting order pays."""
        return max(self.maker_ppm, self.taker_ppm)

    def required(self, p: int, q: int) -> int:
        """Hold of a buy limit order of q lots at p ticks: notional plus worst-case fee."""
        n = notional(p, q, self.qtl)
        return n + fee(n, self.w)

    def commitment(self, side: int, p: int, q: int) -> int:
        """Hold of a limit order (either side) with q open lots at p ticks."""
        return self.required(p, q) if side == Side.BUY else q * self.lot

    def levels(self, side: int) -> SortedDict:
        return self.bids if side == Side.BUY else self.asks

    def best(self, side: int) -> int | None:
        """Best price (ticks) on `side`, or None when that side is empty."""
        levels = self.levels(side)
        if not levels:
            return None
        return levels.peekitem(-1 if side == Side.BUY else 0)[0]

    def crosses(self, side: int, p: int) -> bool:
        """Would a limit order of `side` at p ticks meet the opposite best price?"""
        best = self.best(1 - side)
        if best is None:
            return False
        return p >= best if side == Side.BUY else p <= best

    def walk(self, taker_side: int) -> Iterator[Order]:
        """Resting makers a taker of `taker_side` meets, best price first, time priority."""
        if taker_side == Side.BUY:
            prices = iter(self.asks)
            levels = self.asks
        else:
            prices = reversed(self.bids)
            levels = self.bids
        for price in prices:
            yield from levels[price]

    def book_order(self) -> Iterator[Order]:
        """Bids best to worst, then asks best to worst; within a level, time priority."""
        for price in reversed(self.bids):
            yield from self.bids[price]
        for price in self.asks:
            yield from self.asks[price]

    def reference_price(self) -> int | None:
        """Price bands: the last trade price, else the mid (floor) when both sides exist."""
        if self.last_price:
            return self.last_price
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        if bid is None or ask is None:
            return None
        return (bid + ask) // 2

    def add(self, order: Order) -> None:
        """Rest `order` at the back of its price level."""
        levels = self.levels(order.side)
        level = levels.get(order.p)
        if level is None:
            level = levels[order.p] = deque()
        level.append(order)

    def remove(self, order: Order) -> None:
        levels = self.levels(order.side)
        level = levels[order.p]
        level.remove(order)
        if not level:
            del levels[order.p]

    def assert_not_crossed(self) -> None:
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        assert bid is None or ask is None or bid < ask, (self.market_id, bid, ask)


@dataclass(slots=True)
class Withdrawal:
    withdrawal_id: int
    account_id: int
    asset_id: int
    amount: int
