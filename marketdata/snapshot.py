"""Market-data images: `MarketDataState` at one sequence as a plain msgspec structure.

A gateway that starts from a read-model snapshot must not replay the whole journal just for
market data, so the books (in time priority), recent trades, candles, the 24 h ticker windows and
the waiting conditional orders and icebergs are imaged with the read model, and `restore` loads
them into a fresh state, which then folds the journal tail like any other.

Everything here is bounded by live state (resting orders, waiting stops) and by the fixed
windows (1,000 trades and candles per market and interval, a day of one-minute ticker
buckets), never by history length or trade rate. The image is taken between batches: no
pending taker, no trade run.
"""

from __future__ import annotations

from typing import cast

import msgspec

from engine.schema import MarketCreated
from marketdata.book import BUY, SELL
from marketdata.candles import Candle
from marketdata.state import MarketDataState, TradeRecord, _Iceberg, _Waiting
from marketdata.ticker import RollingTicker

CANDLE_FIELDS = (
    "open_ms", "close_ms", "open", "high", "low", "close", "volume", "quote_volume",
    "taker_buy_volume", "taker_buy_quote", "count", "first_id", "last_id", "closed",
)  # fmt: skip


class BookOrder(msgspec.Struct, array_like=True, frozen=True):
    order_id: int
    side: int
    price: int
    qty: int


class SeriesImage(msgspec.Struct, array_like=True, frozen=True):
    interval: str
    history: list[tuple[int, ...]]
    """Closed candles, oldest first, as `CANDLE_FIELDS` tuples (bools as 0/1)."""
    current: tuple[int, ...] | None


class TickerImage(msgspec.Struct, array_like=True, frozen=True):
    trades: list[tuple[int, int, int, int, int]]
    """Read-model format 1 only: (ts_ns, trade_id, price, qty, quote) of the window, in trade
    order. Written empty since the window is bucketed (format 2 writes ``buckets``)."""
    prev_close: int
    now_ns: int
    buckets: list[tuple[int, ...]] = []
    """The window's `marketdata.ticker.Bucket` rows, oldest minute first (absent in format 1)."""


class MarketImage(msgspec.Struct, frozen=True):
    market_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick_size_atoms: int
    lot_size_atoms: int
    book: list[BookOrder]
    """Bids then asks, best first, time priority within a level."""
    trades: list[TradeRecord]
    candles: list[SeriesImage]
    ticker: TickerImage


class MarketDataImage(msgspec.Struct, frozen=True):
    last_seq: int
    last_ts_ns: int
    next_close_ms: int
    asset_decimals: dict[int, int]
    markets: list[MarketImage]
    waiting: list[tuple[int, int, int, bool, bool]]
    """(order_id, side, qty, rests, quote) of conditional orders waiting for their trigger."""
    icebergs: list[tuple[int, int, int, int]]
    """(order_id, side, display, open qty) of open icebergs."""


def _candle(c: Candle) -> tuple[int, ...]:
    return tuple(int(getattr(c, name)) for name in CANDLE_FIELDS)


def _uncandle(row: tuple[int, ...]) -> Candle:
    c = Candle.__new__(Candle)
    for name, value in zip(CANDLE_FIELDS, row, strict=True):
        setattr(c, name, bool(value) if name == "closed" else value)
    return c


def image(state: MarketDataState) -> MarketDataImage:
    assert not state._pending and not state._runs, "image between batches only"
    markets = []
    for m in state.markets.values():
        info = m.info
        book = [
            BookOrder(oid, side, price, qty)
            for side in (BUY, SELL)
            for oid, price, qty in m.book.orders(side)
        ]
        candles = [
            SeriesImage(
                name,
                [_candle(c) for c in s.history],
                None if s.current is None else _candle(s.current),
            )
            for name, s in m.candles.items()
        ]
        t = m.ticker
        # `Bucket` is an array-like Struct: it encodes to the same bytes as its row, without
        # a tuple built per minute
        ticker = TickerImage([], t.prev_close, t.now_ns, cast(list[tuple[int, ...]], t.buckets()))
        markets.append(
            MarketImage(
                info.market_id,
                info.symbol,
                info.base_asset_id,
                info.quote_asset_id,
                info.tick_size_atoms,
                info.lot_size_atoms,
                book,
                list(m.trades),
                candles,
                ticker,
            )
        )
    return MarketDataImage(
        last_seq=state.last_seq,
        last_ts_ns=state.last_ts_ns,
        next_close_ms=state._next_close_ms,
        asset_decimals=dict(state.asset_decimals),
        markets=markets,
        waiting=[(oid, w.side, w.qty, w.rests, w.quote) for oid, w in state._waiting.items()],
        icebergs=[(oid, i.side, i.display, i.open) for oid, i in state._icebergs.items()],
    )


def restore(state: MarketDataState, img: MarketDataImage) -> None:
    """Load ``img`` into a fresh ``state`` (its market-created callbacks fire, as on replay)."""
    assert not state.markets and state.last_seq == 0, "restore into a fresh state only"
    state.last_seq, state.last_ts_ns = img.last_seq, img.last_ts_ns
    state.asset_decimals.update(img.asset_decimals)
    for mi in img.markets:
        state._market_created(
            img.last_seq,
            MarketCreated(
                seq=img.last_seq,
                market_id=mi.market_id,
                symbol=mi.symbol,
                base_asset_id=mi.base_asset_id,
                quote_asset_id=mi.quote_asset_id,
                tick_size_atoms=mi.tick_size_atoms,
                lot_size_atoms=mi.lot_size_atoms,
                min_notional_atoms=0,
                maker_fee_ppm=0,
                taker_fee_ppm=0,
            ),
        )
        m = state.markets[mi.market_id]
        l3 = m.book.l3_enabled
        m.book.l3_enabled = False  # a restore is not a stream of opens
        for o in mi.book:
            m.book.add(img.last_seq, o.order_id, o.side, o.price, o.qty)
        m.book.l3_enabled = l3
        m.trades.extend(mi.trades)
        for s in mi.candles:
            series = m.candles[s.interval]
            series.history.extend(_uncandle(c) for c in s.history)
            series.current = None if s.current is None else _uncandle(s.current)
        _restore_ticker(m.ticker, mi.ticker)
    for oid, side, qty, rests, quote in img.waiting:
        state._waiting[oid] = _Waiting(side, qty, rests, quote)
    for oid, side, display, open_qty in img.icebergs:
        state._icebergs[oid] = _Iceberg(side, display, open_qty)
    state._next_close_ms = img.next_close_ms


def _restore_ticker(t: RollingTicker, img: TickerImage) -> None:
    """Buckets as they were; a format-1 image's trades are bucketed as they are fed. Such an
    image kept only the trades after ``now - 24h`` exactly, so for the first minute after that
    restore the window lacks the trades of its opening minute that fell before that instant
    (the ticker of a gateway that ran bucketed throughout has them)."""
    assert not (img.trades and img.buckets), "one format or the other"
    t.load(img.buckets, img.prev_close, 0 if img.trades else img.now_ns)
    for ts_ns, trade_id, price, qty, quote in img.trades:
        t.add(ts_ns, trade_id, price, qty, quote)  # all after now - 24h: none leaves
    t.advance(img.now_ns)
