"""Market-data state built from engine events only: books, trades, candles and tickers.

The feed API takes ``(seq, timestamp_ns, events)`` batches: the events one command produced and
the journal time the sequencer stamped on that command (events carry no time themselves). Replay
of the journal therefore rebuilds exactly the same state, candles included.

Event handling is a table from event class to handler; an event kind without a handler is
ignored, so new engine events (iceberg, conditional, STP...) can never break market data, and
supporting one is one handler more.

Resting state is derived, never read from the engine:

- ``OrderAccepted`` of a resting type (GTC/GTD limit, LIMIT_MAKER) opens a *pending taker*;
  its trades (as taker) reduce it; an ``OrderExpired``/``OrderCancelled`` drops it; at the end of
  the command whatever is left rests at the back of its level. Market, IOC and FOK orders never
  rest, nor does a GTC stopped by MAX_FILLS (it expires).
- ``Trade`` reduces the maker (which leaves at zero).
- ``OrderCancelled``/``OrderExpired`` remove a resting order.
- ``OrderAmended`` with ``priority_kept`` sets the quantity in place; without it the order
  leaves its level and re-enters as a pending taker at its new price and quantity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from engine.schema import (
    AssetCreated,
    MarketCreated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderType,
    Trade,
)
from marketdata.book import BUY, SELL, Book
from marketdata.candles import INTERVALS_MS, Candle, CandleSeries, TradeRun
from marketdata.markets import MarketInfo
from marketdata.ticker import RollingTicker

TRADE_HISTORY: Final = 1_000
"""Recent trades kept per market (the REST /trades limit's maximum)."""

_RESTING_TIF: Final = frozenset({0, 3})
"""GTC and GTD (3, added with issue 3's schema): the limit times in force that rest."""

Batch = tuple[int, int, Sequence[Any]]
"""(seq, timestamp_ns, events of that command)."""


@dataclass(slots=True)
class TradeRecord:
    """A trade as market data keeps it: the engine's integers plus its journal time."""

    trade_id: int
    price: int
    qty: int
    quote: int
    time_ms: int
    buyer_is_maker: bool
    seq: int


@dataclass(slots=True)
class MarketState:
    """Everything market data keeps for one market."""

    info: MarketInfo
    book: Book
    trades: deque[TradeRecord] = field(default_factory=lambda: deque(maxlen=TRADE_HISTORY))
    candles: dict[str, CandleSeries] = field(
        default_factory=lambda: {name: CandleSeries(name) for name in INTERVALS_MS}
    )
    ticker: RollingTicker = field(default_factory=RollingTicker)
    # Per-feed outputs, drained by the publisher after each feed call.
    new_trades: list[TradeRecord] = field(default_factory=list)
    touched_candles: set[str] = field(default_factory=set)
    closed_candles: list[tuple[str, Candle]] = field(default_factory=list)
    run: TradeRun | None = None
    """Trades of the current journal time not yet added to the candles."""


class _Pending:
    """A taker that may rest at the end of its command."""

    __slots__ = ("market_id", "order_id", "price", "qty", "side")

    def __init__(self, order_id: int, market_id: int, side: int, price: int, qty: int) -> None:
        self.order_id = order_id
        self.market_id = market_id
        self.side = side
        self.price = price
        self.qty = qty


class MarketDataState:
    """Books, trades, candles and tickers for every market, fed with event batches."""

    def __init__(self) -> None:
        self.markets: dict[int, MarketState] = {}
        self.by_wire_symbol: dict[str, MarketState] = {}
        self.asset_decimals: dict[int, int] = {}
        self.last_seq = 0
        """Sequence of the last command applied (the books' update id)."""
        self.last_ts_ns = 0
        """Journal time of the last command applied."""
        self._pending: dict[int, _Pending] = {}
        self._runs: list[MarketState] = []
        """Markets with a `TradeRun` pending (all of one journal time)."""
        self._next_close_ms = 0
        self.on_market_created: list[Callable[[MarketState], None]] = []
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            AssetCreated: self._asset_created,
            MarketCreated: self._market_created,
            OrderAccepted: self._accepted,
            Trade: self._trade,
            OrderCancelled: self._gone,
            OrderExpired: self._gone,
            OrderAmended: self._amended,
        }

    # ---- feeding ------------------------------------------------------------------------

    def apply(self, batches: Iterable[Batch]) -> None:
        """Apply ``(seq, timestamp_ns, events)`` batches in sequence order."""
        handlers = self._handlers
        for seq, ts_ns, events in batches:
            if seq <= self.last_seq:
                raise ValueError(f"batch seq {seq} does not follow {self.last_seq}")
            if self._runs and ts_ns != self._runs[0].run.ts_ns:  # type: ignore[union-attr]
                self._flush_runs()
            if ts_ns > self.last_ts_ns:
                self.last_ts_ns = ts_ns
            now_ms = self.last_ts_ns // 1_000_000
            if now_ms > self._next_close_ms:
                self._advance_candles(now_ms)
            for event in events:
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(seq, event)
            if self._pending:
                self._rest_pending(seq)
            self.last_seq = seq
        if self._runs:
            self._flush_runs()

    def _flush_runs(self) -> None:
        """Add each market's run of same-time trades to every candle interval."""
        for market in self._runs:
            run = market.run
            assert run is not None and run.count > 0
            market.run = None
            time_ms = run.ts_ns // 1_000_000
            for name, series in market.candles.items():
                closed = series.add_run(time_ms, run)
                if closed is not None:
                    market.closed_candles.append((name, closed))
                market.touched_candles.add(name)
                close_ms = series.current.close_ms  # type: ignore[union-attr]
                if close_ms < self._next_close_ms or self._next_close_ms == 0:
                    self._next_close_ms = close_ms
        self._runs.clear()

    def apply_events(self, timestamp_ns: int, events: Sequence[Any], through_seq: int = 0) -> None:
        """Apply the events of one node batch (one journal time) grouped by their ``seq``;
        ``through_seq`` (e.g. the node's last seq) covers trailing commands without events."""
        batches: list[Batch] = []
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or events[i].seq != events[start].seq:
                batches.append((events[start].seq, timestamp_ns, events[start:i]))
                start = i
        self.apply(batches)
        if through_seq > self.last_seq:
            self.last_seq = through_seq
            self.last_ts_ns = max(self.last_ts_ns, timestamp_ns)

    def _advance_candles(self, now_ms: int) -> None:
        next_close = None
        for market in self.markets.values():
            market.ticker.advance(now_ms * 1_000_000)
            for name, series in market.candles.items():
                closed = series.advance(now_ms)
                if closed is not None:
                    market.closed_candles.append((name, closed))
                if series.current is not None:
                    c = series.current.close_ms
                    next_close = c if next_close is None else min(next_close, c)
        self._next_close_ms = next_close if next_close is not None else 1 << 62

    # ---- handlers -----------------------------------------------------------------------

    def _asset_created(self, seq: int, ev: AssetCreated) -> None:
        self.asset_decimals[ev.asset_id] = ev.decimals

    def _market_created(self, seq: int, ev: MarketCreated) -> None:
        info = MarketInfo(
            market_id=ev.market_id,
            symbol=ev.symbol,
            base_asset_id=ev.base_asset_id,
            quote_asset_id=ev.quote_asset_id,
            base_decimals=self.asset_decimals[ev.base_asset_id],
            quote_decimals=self.asset_decimals[ev.quote_asset_id],
            tick_size_atoms=ev.tick_size_atoms,
            lot_size_atoms=ev.lot_size_atoms,
        )
        market = MarketState(info=info, book=Book(ev.market_id))
        self.markets[ev.market_id] = market
        self.by_wire_symbol[info.wire_symbol] = market
        for callback in self.on_market_created:
            callback(market)

    def _accepted(self, seq: int, ev: OrderAccepted) -> None:
        rests = (
            ev.order_type == OrderType.LIMIT and ev.time_in_force in _RESTING_TIF
        ) or ev.order_type == OrderType.LIMIT_MAKER
        if rests:
            self._pending[ev.order_id] = _Pending(
                ev.order_id, ev.market_id, ev.side, ev.price_atoms, ev.qty_atoms
            )

    def _trade(self, seq: int, ev: Trade) -> None:
        market = self.markets[ev.market_id]
        market.book.fill(seq, ev.maker_order_id, ev.qty_atoms)
        pending = self._pending.get(ev.taker_order_id)
        if pending is not None:
            pending.qty -= ev.qty_atoms
        time_ms = self.last_ts_ns // 1_000_000
        record = TradeRecord(
            ev.trade_id, ev.price_atoms, ev.qty_atoms, ev.quote_atoms, time_ms,
            ev.taker_side == SELL, seq,
        )
        market.trades.append(record)
        market.new_trades.append(record)
        market.ticker.add(self.last_ts_ns, ev.trade_id, ev.price_atoms, ev.qty_atoms,
                          ev.quote_atoms)
        run = market.run
        if run is None:
            run = market.run = TradeRun(self.last_ts_ns, ev.trade_id, ev.price_atoms)
            self._runs.append(market)
        run.add(ev.trade_id, ev.price_atoms, ev.qty_atoms, ev.quote_atoms, ev.taker_side == BUY)

    def _gone(self, seq: int, ev: OrderCancelled | OrderExpired) -> None:
        if self._pending.pop(ev.order_id, None) is not None:
            return
        reason = "canceled" if isinstance(ev, OrderCancelled) else "expired"
        market = self.markets.get(ev.market_id)
        if market is not None:
            market.book.remove(seq, ev.order_id, reason)

    def _amended(self, seq: int, ev: OrderAmended) -> None:
        book = self.markets[ev.market_id].book
        if ev.priority_kept:
            book.reduce_in_place(seq, ev.order_id, ev.qty_atoms)
            return
        current = book.order(ev.order_id)
        if current is None:
            return
        book.remove(seq, ev.order_id, "amended")
        self._pending[ev.order_id] = _Pending(
            ev.order_id, ev.market_id, current[0], ev.price_atoms, ev.qty_atoms
        )

    def _rest_pending(self, seq: int) -> None:
        for p in self._pending.values():
            if p.qty > 0:
                self.markets[p.market_id].book.add(seq, p.order_id, p.side, p.price, p.qty)
        self._pending.clear()
