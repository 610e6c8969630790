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

Issue-3 order types (docs/engine-semantics.md):

- Icebergs show only their visible slice: a resting iceberg joins with ``min(display, open)``;
  a fill that empties the slice takes the order off its level and ``IcebergRefreshed`` puts it
  back at the end of the level with the new slice. Their open (hidden included) quantity is
  tracked to cap the slice when an amend keeps priority.
- Conditional orders are not on the book while they wait. ``OrderTriggered`` makes one a taker
  (the taker before it in the same command rests first: the cascade runs after it); a GTC/GTD
  limit kind rests with what it did not fill.
- ``SelfTradePrevented`` with DECREMENT shrinks the maker in place (and the taker) without a
  trade; the EXPIRE modes are followed by the expiries they cause. A quote-budget taker has no
  quantity to decrement: the engine treats DECREMENT as EXPIRE_TAKER for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from engine.schema import (
    CONDITIONAL_TYPES,
    LIMIT_CONDITIONAL_TYPES,
    AssetCreated,
    IcebergRefreshed,
    MarketCreated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderTriggered,
    OrderType,
    SelfTradePrevented,
    StpMode,
    Trade,
)
from marketdata.book import BUY, SELL, Book
from marketdata.candles import INTERVALS, Candle, CandleSeries, TradeRun
from marketdata.markets import MarketInfo
from marketdata.ticker import RollingTicker

TRADE_HISTORY: Final = 1_000
"""Recent trades kept per market (the REST /trades limit's maximum)."""

_RESTING_TIF: Final = frozenset({0, 3})
"""GTC and GTD (3, added with issue 3's schema): the limit times in force that rest."""

Batch = tuple[int, int, Sequence[Any]]
"""(seq, timestamp_ns, events of that command)."""


class TradeRecord(msgspec.Struct, gc=False):
    """A trade as market data keeps it: the engine's integers plus its journal time (plain
    data, never in a cycle: untracked by the cyclic collector, see gateway.records)."""

    trade_id: int
    price: int
    qty: int
    quote: int
    time_ms: int
    buyer_is_maker: bool
    seq: int
    agg_id: int
    """The dialect's aggregate trade id: the id of the first trade of the run of fills of one
    taker order at one price this trade belongs to (fixed once assigned, so it is stable while
    older trades leave the history)."""


@dataclass(slots=True)
class MarketState:
    """Everything market data keeps for one market."""

    info: MarketInfo
    book: Book
    trades: deque[TradeRecord] = field(default_factory=lambda: deque(maxlen=TRADE_HISTORY))
    candles: dict[str, CandleSeries] = field(
        default_factory=lambda: {name: CandleSeries(name) for name in INTERVALS}
    )
    ticker: RollingTicker = field(default_factory=RollingTicker)
    # Per-feed outputs, drained by the publisher after each feed call.
    new_trades: list[TradeRecord] = field(default_factory=list)
    touched_candles: set[str] = field(default_factory=set)
    closed_candles: list[tuple[str, Candle]] = field(default_factory=list)
    run: TradeRun | None = None
    """Trades of the current journal time not yet added to the candles."""
    last_taker: int = 0
    """Taker order id of the market's last trade (aggregate trades)."""


class _Pending:
    """A taker that may rest at the end of its command."""

    __slots__ = ("market_id", "order_id", "price", "qty", "side")

    def __init__(self, order_id: int, market_id: int, side: int, price: int, qty: int) -> None:
        self.order_id = order_id
        self.market_id = market_id
        self.side = side
        self.price = price
        self.qty = qty


class _Waiting:
    """A conditional order waiting for its trigger (not on the book)."""

    __slots__ = ("qty", "quote", "rests", "side")

    def __init__(self, side: int, qty: int, rests: bool, quote: bool) -> None:
        self.side = side
        self.qty = qty
        self.rests = rests
        """A GTC/GTD limit kind: once triggered, what it does not fill rests."""
        self.quote = quote
        """A quote-budget buy (market kind): no base quantity."""


class _Iceberg:
    """An open iceberg: the slice size and the open quantity, hidden part included."""

    __slots__ = ("display", "open", "side")

    def __init__(self, side: int, display: int, open_qty: int) -> None:
        self.side = side
        self.display = display
        self.open = open_qty


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
        self._waiting: dict[int, _Waiting] = {}
        self._icebergs: dict[int, _Iceberg] = {}
        self._quote_takers: set[int] = set()
        """Quote-budget takers of the command being applied."""
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
            OrderTriggered: self._triggered,
            IcebergRefreshed: self._refreshed,
            SelfTradePrevented: self._prevented,
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
            if self._quote_takers:
                self._quote_takers.clear()
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
            if ev.display_qty_atoms:
                self._icebergs[ev.order_id] = _Iceberg(ev.side, ev.display_qty_atoms, ev.qty_atoms)
        elif ev.order_type in CONDITIONAL_TYPES:
            self._waiting[ev.order_id] = _Waiting(
                ev.side,
                ev.qty_atoms,
                ev.order_type in LIMIT_CONDITIONAL_TYPES and ev.time_in_force in _RESTING_TIF,
                ev.quote_qty_atoms > 0,
            )
        elif ev.quote_qty_atoms:
            self._quote_takers.add(ev.order_id)

    def _triggered(self, seq: int, ev: OrderTriggered) -> None:
        # The taker before it in this command (if any) has finished and rests first.
        if self._pending:
            self._rest_pending(seq)
        waiting = self._waiting.pop(ev.order_id, None)
        if waiting is None:
            return
        if waiting.quote:
            self._quote_takers.add(ev.order_id)
        if waiting.rests:
            self._pending[ev.order_id] = _Pending(
                ev.order_id, ev.market_id, waiting.side, ev.price_atoms, waiting.qty
            )

    def _refreshed(self, seq: int, ev: IcebergRefreshed) -> None:
        iceberg = self._icebergs.get(ev.order_id)
        if iceberg is None:
            return
        book = self.markets[ev.market_id].book
        if ev.order_id in book:
            book.remove(seq, ev.order_id, "refreshed")
        book.add(seq, ev.order_id, iceberg.side, ev.price_atoms, ev.visible_qty_atoms)

    def _prevented(self, seq: int, ev: SelfTradePrevented) -> None:
        if ev.stp_mode != StpMode.DECREMENT or ev.taker_order_id in self._quote_takers:
            return  # the EXPIRE modes: the expiries that follow say what left
        qty = ev.qty_atoms
        pending = self._pending.get(ev.taker_order_id)
        if pending is not None:
            pending.qty -= qty
        self._shrink_iceberg(ev.taker_order_id, qty)
        self._shrink_iceberg(ev.maker_order_id, qty)
        book = self.markets[ev.market_id].book
        current = book.order(ev.maker_order_id)
        if current is None:
            return
        left = current[2] - qty
        if left > 0:
            book.reduce_in_place(seq, ev.maker_order_id, left)
        else:  # an emptied slice: IcebergRefreshed or its expiry follows
            book.remove(seq, ev.maker_order_id, "prevented")

    def _shrink_iceberg(self, order_id: int, qty: int) -> None:
        iceberg = self._icebergs.get(order_id)
        if iceberg is not None:
            iceberg.open -= qty
            if iceberg.open <= 0:
                del self._icebergs[order_id]

    def _trade(self, seq: int, ev: Trade) -> None:
        market = self.markets[ev.market_id]
        market.book.fill(seq, ev.maker_order_id, ev.qty_atoms)
        pending = self._pending.get(ev.taker_order_id)
        if pending is not None:
            pending.qty -= ev.qty_atoms
        if self._icebergs:
            self._shrink_iceberg(ev.maker_order_id, ev.qty_atoms)
            self._shrink_iceberg(ev.taker_order_id, ev.qty_atoms)
        time_ms = self.last_ts_ns // 1_000_000
        agg_id = ev.trade_id
        if market.trades and market.last_taker == ev.taker_order_id:
            prev = market.trades[-1]
            if prev.seq == seq and prev.price == ev.price_atoms:
                agg_id = prev.agg_id
        market.last_taker = ev.taker_order_id
        record = TradeRecord(
            ev.trade_id,
            ev.price_atoms,
            ev.qty_atoms,
            ev.quote_atoms,
            time_ms,
            ev.taker_side == SELL,
            seq,
            agg_id,
        )
        market.trades.append(record)
        market.new_trades.append(record)
        market.ticker.add(
            self.last_ts_ns, ev.trade_id, ev.price_atoms, ev.qty_atoms, ev.quote_atoms
        )
        run = market.run
        if run is None:
            run = market.run = TradeRun(self.last_ts_ns, ev.trade_id, ev.price_atoms)
            self._runs.append(market)
        run.add(ev.trade_id, ev.price_atoms, ev.qty_atoms, ev.quote_atoms, ev.taker_side == BUY)

    def _gone(self, seq: int, ev: OrderCancelled | OrderExpired) -> None:
        if self._icebergs:
            self._icebergs.pop(ev.order_id, None)
        if self._pending.pop(ev.order_id, None) is not None:
            return
        if self._waiting and self._waiting.pop(ev.order_id, None) is not None:
            return
        reason = "canceled" if isinstance(ev, OrderCancelled) else "expired"
        market = self.markets.get(ev.market_id)
        if market is not None:
            market.book.remove(seq, ev.order_id, reason)

    def _amended(self, seq: int, ev: OrderAmended) -> None:
        book = self.markets[ev.market_id].book
        iceberg = self._icebergs.get(ev.order_id)
        if iceberg is not None:
            iceberg.open = ev.qty_atoms
        if ev.priority_kept:
            shown = ev.qty_atoms
            if iceberg is not None:  # the slice is capped at the new quantity
                current = book.order(ev.order_id)
                shown = min(shown, current[2]) if current is not None else shown
            book.reduce_in_place(seq, ev.order_id, shown)
            return
        current = book.order(ev.order_id)
        if current is None:
            return
        book.remove(seq, ev.order_id, "amended")
        self._pending[ev.order_id] = _Pending(
            ev.order_id, ev.market_id, current[0], ev.price_atoms, ev.qty_atoms
        )

    def _rest_pending(self, seq: int) -> None:
        icebergs = self._icebergs
        for p in self._pending.values():
            if p.qty > 0:
                iceberg = icebergs.get(p.order_id) if icebergs else None
                shown = p.qty if iceberg is None else min(iceberg.display, p.qty)
                self.markets[p.market_id].book.add(seq, p.order_id, p.side, p.price, shown)
        self._pending.clear()
