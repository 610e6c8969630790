"""The workload generator: emits records and follows fills through a scratch engine.

See `bench.workloads` for why a scratch engine is used and which mixes are generated.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.book_model import BookModel, OpenOrder
from bench.specs import DEEP_SKEW, TS_STEP_NS, MarketSpec, Record, Workload
from engine.schema import (
    AmendOrder,
    CancelOrder,
    Command,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
    Trade,
)

_FLUSH_EVERY = 4_096
"""Pending records are also flushed at this size: bounds memory, changes no record."""


class Simulator(Protocol):
    """What the generator needs from an engine: ``process`` returning events."""

    def process(self, records: Sequence[Record]) -> list[Event]: ...


SimulatorFactory = Callable[[EngineConfig], Simulator]


def default_simulator(config: EngineConfig) -> Simulator:
    """The compiled engine when it imports (fast), else the reference model (same events)."""
    try:
        from engine.core.compiled import CompiledEngine
    except ImportError:
        from engine.reference import ReferenceEngine

        return ReferenceEngine(config)
    return CompiledEngine(config)


@dataclass
class _Stats:
    mix: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    min_resting: int = 1 << 62
    max_resting: int = 0


class Generator:
    """Emits records, keeps the book model in step, and syncs fills from the scratch engine."""

    def __init__(
        self,
        name: str,
        seed: int,
        config: EngineConfig,
        markets: Sequence[MarketSpec],
        accounts: int,
        simulator: SimulatorFactory,
    ) -> None:
        self.rng = random.Random(f"kootabase-bench/{name}/{seed}")
        self.config = config
        self.markets = list(markets)
        self.weights = [m.weight for m in self.markets]
        self.by_id = {m.market_id: m for m in self.markets}
        self.accounts = accounts
        self.sim = simulator(config)
        self.sim_name = type(self.sim).__name__
        self.book = BookModel()
        self.seq = 0
        self.out: list[Record] = []
        self.pending: list[Record] = []
        self.counting = False  # rejections count only in the stream
        self.stats = _Stats()
        self.target = 0
        self.last_price: dict[int, int] = {}
        """Ticks of each market's last trade, as the scratch engine reported it."""

    # -- records ---------------------------------------------------------------------------

    def emit(self, command: Command, kind: str | None = None) -> int:
        """Append one record; the caller then applies its expected effect to the model.

        The size-bounded flush happens *before* appending, never between a command and its
        model update, so the events read back always find the model in step.
        """
        if len(self.pending) >= _FLUSH_EVERY:
            self.flush()
        self.seq += 1
        record = (self.seq, self.seq * TS_STEP_NS, command)
        self.out.append(record)
        self.pending.append(record)
        if kind is not None:
            self.stats.mix[kind] += 1
        return self.seq

    def flush(self) -> None:
        """Run pending records through the scratch engine and apply what only it knows."""
        if not self.pending:
            return
        events = self.sim.process(self.pending)
        self.pending = []
        book = self.book
        for event in events:
            if isinstance(event, Trade):
                spec = self.by_id[event.market_id]
                self.last_price[event.market_id] = event.price_atoms // spec.tick_atoms
                lots = event.qty_atoms // spec.lot_atoms
                for order_id in (event.maker_order_id, event.taker_order_id):
                    if order_id in book:
                        book.reduce(order_id, lots)
            elif isinstance(event, OrderRejected | CommandRejected):
                if not self.counting:
                    raise RuntimeError(f"workload setup command rejected: {event!r}")
                self.stats.rejected += 1
                if event.seq in book:  # an optimistic placement that did not happen
                    book.remove(event.seq)
            elif isinstance(event, OrderCancelled | OrderExpired) and event.order_id in book:
                book.remove(event.order_id)

    def take_records(self) -> list[Record]:
        self.flush()
        out, self.out = self.out, []
        return out

    # -- setup -----------------------------------------------------------------------------

    def setup(self) -> list[Record]:
        assets = {m.base.asset_id: m.base for m in self.markets}
        assets |= {m.quote.asset_id: m.quote for m in self.markets}
        for asset in sorted(assets.values(), key=lambda a: a.asset_id):
            self.emit(CreateAsset(asset_id=asset.asset_id, symbol=asset.symbol,
                                  decimals=asset.decimals))  # fmt: skip
        for m in self.markets:
            self.emit(
                CreateMarket(
                    market_id=m.market_id, symbol=m.symbol, base_asset_id=m.base.asset_id,
                    quote_asset_id=m.quote.asset_id, tick_size_atoms=m.tick_atoms,
                    lot_size_atoms=m.lot_atoms, min_notional_atoms=m.min_notional_atoms,
                    maker_fee_ppm=m.maker_fee_ppm, taker_fee_ppm=m.taker_fee_ppm,
                )
            )  # fmt: skip
        for account in range(1, self.accounts + 1):
            self.emit(CreateAccount(account_id=account))
            for asset in sorted(assets.values(), key=lambda a: a.asset_id):
                self.emit(
                    Deposit(
                        account_id=account, asset_id=asset.asset_id,
                        amount_atoms=asset.deposit_whole * 10**asset.decimals,
                        deposit_key=f"bench:{account}:{asset.asset_id}",
                    )
                )  # fmt: skip
        return self.take_records()

    def prefill(self, per_market: Sequence[int]) -> list[Record]:
        for m, count in zip(self.markets, per_market, strict=True):
            for i in range(count):
                self.place_passive(m, i & 1, None)
        records = self.take_records()
        self.target = len(self.book)
        return records

    # -- choices ---------------------------------------------------------------------------

    def market(self) -> MarketSpec:
        if len(self.markets) == 1:
            return self.markets[0]
        return self.rng.choices(self.markets, self.weights)[0]

    def account(self) -> int:
        return self.rng.randrange(1, self.accounts + 1)

    def passive_price(self, m: MarketSpec, side: int, skew: float) -> int:
        """A price on ``side``'s half of the range that does not cross the other side.

        ``skew`` > 1 concentrates prices near the mid (deep books are densest at the touch).
        """
        offset = 1 + int(m.half_range * self.rng.random() ** skew)
        if side == Side.BUY:
            best_ask = self.book.best_ask(m.market_id)
            price = m.mid - offset
            if best_ask is not None and price >= best_ask:
                price = best_ask - 1
        else:
            best_bid = self.book.best_bid(m.market_id)
            price = m.mid + offset
            if best_bid is not None and price <= best_bid:
                price = best_bid + 1
        return max(price, 1)

    def taker_lots(self, m: MarketSpec, consume: float) -> int:
        """Size of a taker, aiming at ``consume`` maker orders, steered to the target depth."""
        mean = consume * (m.max_lots + 1) / 2
        # proportional steering: 5 % too deep -> 1.4x the size; 5 % too shallow -> 0.6x
        error = (len(self.book) - self.target) / self.target
        scale = min(4.0, max(0.25, 1.0 + 8.0 * error))
        return max(1, round(self.rng.random() * 2 * mean * scale))

    def note_depth(self) -> None:
        depth = len(self.book)
        self.stats.min_resting = min(self.stats.min_resting, depth)
        self.stats.max_resting = max(self.stats.max_resting, depth)

    # -- commands --------------------------------------------------------------------------

    def place_passive(
        self, m: MarketSpec, side: int, kind: str | None, skew: float = 1.0, iceberg: bool = False
    ) -> None:
        price = self.passive_price(m, side, skew)
        lots = self.rng.randint(1, m.max_lots)
        account = self.account()
        display = max(1, lots // 3) * m.lot_atoms if iceberg and lots >= 2 else 0
        order_id = self.emit(
            PlaceOrder(account_id=account, market_id=m.market_id, side=side,
                       order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                       price_atoms=price * m.tick_atoms, qty_atoms=lots * m.lot_atoms,
                       display_qty_atoms=display),
            kind,
        )  # fmt: skip
        self.book.add(order_id, OpenOrder(account, m.market_id, side, price, lots))

    def place_taker(self, m: MarketSpec, kind: str, consume: float) -> bool:
        """A limit or market order that crosses the touch; False if the other side is empty.

        Kinds: ``ioc``, ``fok``, ``gtc_marketable``, ``market_sell``, ``market_buy``,
        ``market_buy_quote``.
        """
        rng = self.rng
        side = Side.SELL if kind == "market_sell" else Side.BUY
        if kind in ("ioc", "fok", "gtc_marketable"):
            side = rng.randrange(2)
        touch = self.book.best_ask(m.market_id) if side == Side.BUY else (
            self.book.best_bid(m.market_id))  # fmt: skip
        if touch is None:
            return False
        lots = self.taker_lots(m, consume)
        account = self.account()
        if kind.startswith("market"):
            quote = touch * lots * m.qtl if kind == "market_buy_quote" else 0
            command = PlaceOrder(
                account_id=account, market_id=m.market_id, side=side,
                order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                qty_atoms=0 if quote else lots * m.lot_atoms, quote_qty_atoms=quote,
            )  # fmt: skip
        else:
            # a limit a little through the touch, so that on a sparse book the size (which
            # is steered) rather than the price decides how much is taken
            slack = rng.randrange(m.half_range // 40 + 1)
            price = touch + slack if side == Side.BUY else max(1, touch - slack)
            tif = {"ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}.get(kind, TimeInForce.GTC)
            if kind == "gtc_marketable":
                lots = rng.randint(1, m.max_lots)  # a normal order that happens to cross
            command = PlaceOrder(
                account_id=account, market_id=m.market_id, side=side,
                order_type=OrderType.LIMIT, time_in_force=tif,
                price_atoms=price * m.tick_atoms, qty_atoms=lots * m.lot_atoms,
            )  # fmt: skip
        order_id = self.emit(command, kind)
        if kind == "gtc_marketable":  # rests with what the fills leave (synced below)
            self.book.add(order_id, OpenOrder(account, m.market_id, side, price, lots))
        self.flush()
        return True

    def place_conditional(self, m: MarketSpec) -> bool:
        """A stop or take-profit a few ticks from the last trade price (not yet reached), so
        that it fires as the price wanders. Triggered limit orders that rest are not in the
        model (the model only follows what it can cancel); they are consumed like any maker."""
        last = self.last_price.get(m.market_id)
        if last is None:
            return False
        rng = self.rng
        side = rng.randrange(2)
        away = 1 + rng.randrange(max(2, m.half_range // 50))
        kind = rng.choice([OrderType.STOP_MARKET, OrderType.STOP_LIMIT,
                           OrderType.TAKE_PROFIT_LIMIT])  # fmt: skip
        rises = (kind == OrderType.STOP_MARKET or kind == OrderType.STOP_LIMIT) == (side == 0)
        stop = last + away if rises else max(1, last - away)
        lots = rng.randint(1, m.max_lots)
        price = qty = quote = 0
        if kind == OrderType.STOP_MARKET:
            if side == Side.BUY:
                quote = stop * lots * m.qtl
            else:
                qty = lots * m.lot_atoms
        else:
            qty = lots * m.lot_atoms
            price = stop + 2 if side == Side.BUY else max(1, stop - 2)
        tif = TimeInForce.GTC if kind != OrderType.STOP_MARKET else TimeInForce.IOC
        self.emit(
            PlaceOrder(account_id=self.account(), market_id=m.market_id, side=side,
                       order_type=kind, time_in_force=tif, price_atoms=price * m.tick_atoms,
                       qty_atoms=qty, quote_qty_atoms=quote,
                       stop_price_atoms=stop * m.tick_atoms),
            "conditional",
        )  # fmt: skip
        return True

    def cancel(self) -> bool:
        order_id = self.book.sample(self.rng)
        if order_id is None:
            return False
        order = self.book.orders[order_id]
        self.emit(CancelOrder(account_id=order.account_id, market_id=order.market_id,
                              order_id=order_id), "cancel")  # fmt: skip
        self.book.remove(order_id)
        return True

    def move(self, kind: str = "move", skew: float = 1.0) -> bool:
        """Amend an open order to a new price on its own side; it never crosses."""
        order_id = self.book.sample(self.rng)
        if order_id is None:
            return False
        order = self.book.orders[order_id]
        m = self.by_id[order.market_id]
        price = self.passive_price(m, order.side, skew)
        if price == order.price:  # an amend that changes nothing is INVALID_AMEND
            price = order.price - 1 if order.side == Side.BUY else order.price + 1
            if price < 1:
                return False
        self.emit(AmendOrder(account_id=order.account_id, market_id=order.market_id,
                             order_id=order_id, new_price_atoms=price * m.tick_atoms),
                  kind)  # fmt: skip
        self.book.reprice(order_id, price)
        return True

    def reduce(self) -> bool:
        """Amend an open order to a smaller quantity (keeps priority)."""
        for _ in range(4):  # look for an order of 2+ lots a few times, then move one instead
            order_id = self.book.sample(self.rng)
            if order_id is None:
                return False
            order = self.book.orders[order_id]
            if order.qty >= 2:
                break
        else:
            return self.move("amend_price", DEEP_SKEW)
        m = self.by_id[order.market_id]
        new_lots = self.rng.randint(1, order.qty - 1)
        self.emit(AmendOrder(account_id=order.account_id, market_id=order.market_id,
                             order_id=order_id, new_qty_atoms=new_lots * m.lot_atoms),
                  "amend_qty")  # fmt: skip
        self.book.reduce(order_id, order.qty - new_lots)
        return True

    def finish(
        self, name: str, seed: int, setup: list[Record], prefill: list[Record], levels: int
    ) -> Workload:
        resting_after_prefill = self.target
        stream = self.take_records()
        return Workload(
            name=name, seed=seed, config=self.config, setup=setup, prefill=prefill,
            stream=stream, mix=dict(sorted(self.stats.mix.items())),
            rejected=self.stats.rejected, resting_after_prefill=resting_after_prefill,
            levels_after_prefill=levels, resting_at_end=len(self.book),
            levels_at_end=self.total_levels(),
            min_resting=self.stats.min_resting, max_resting=self.stats.max_resting,
            simulator=self.sim_name,
        )  # fmt: skip

    def total_levels(self) -> int:
        return sum(self.book.levels(m.market_id, s) for m in self.markets for s in (0, 1))


def pick(rng: random.Random, mix: dict[str, float]) -> str:
    r = rng.random()
    for kind, share in mix.items():
        r -= share
        if r < 0:
            return kind
    return next(reversed(mix))
