"""Market-data state from engine events: the L3 book against the engine's state image after
every batch, replay from the journal, candles and tickers against the trade list, parsing."""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.compiled import CompiledEngine
from engine.schema import (
    EngineConfig,
    IcebergRefreshed,
    OrderTriggered,
    SelfTradePrevented,
    Trade,
    decode_command,
)
from marketdata import wire
from marketdata.book import BUY, SELL
from marketdata.candles import INTERVALS
from marketdata.service import MarketDataService
from marketdata.state import MarketDataState
from marketdata.streams import StreamError, parse_stream
from tests.marketdata_support import (
    l2_of_image,
    l3_of_image,
    l3_of_state,
    make_node,
    random_commands,
    start,
)
from tests.streams import ISSUE3_CONFIGS, Record, command_streams


def test_l3_and_l2_equal_engine_image_after_every_batch(tmp_path: Path) -> None:
    rng = random.Random(7)
    service = MarketDataService()
    with make_node(tmp_path) as node:
        start(node, service)
        image = node.engine.image()
        rested = 0
        for _ in range(400):
            service.feed_from_node(node, random_commands(rng, image, rng.randint(1, 40)))
            image = node.engine.image()
            assert l3_of_state(service.state) == l3_of_image(image)
            rested = max(rested, len(image.orders))
            for market_id, market in service.state.markets.items():
                bids, asks = l2_of_image(image, market_id)
                assert market.book.depth(BUY, 10_000) == sorted(bids.items(), reverse=True)
                assert market.book.depth(SELL, 10_000) == sorted(asks.items())
        assert service.state.last_seq == node.last_seq
        assert rested > 50, "the stream should build a real book"
        assert sum(len(m.trades) for m in service.state.markets.values()) > 100


def test_replay_of_the_journal_rebuilds_the_same_state(tmp_path: Path) -> None:
    rng = random.Random(3)
    live = MarketDataService()
    with make_node(tmp_path) as node:
        start(node, live)
        for _ in range(100):
            live.feed_from_node(node, random_commands(rng, node.engine.image(), 20))
        records = list(node.journal.read_from(1, node.last_seq))
    engine = CompiledEngine()
    rebuilt = MarketDataState()
    for i in range(0, len(records), 97):
        chunk = records[i : i + 97]
        events = engine.process([(s, t, decode_command(p)) for s, t, p in chunk])
        by_seq: dict[int, list[object]] = {s: [] for s, _, _ in chunk}
        for ev in events:
            by_seq[ev.seq].append(ev)
        rebuilt.apply((s, t, by_seq[s]) for s, t, _ in chunk)
    assert l3_of_state(rebuilt) == l3_of_state(live.state)
    for market_id, market in live.state.markets.items():
        other = rebuilt.markets[market_id]
        assert list(other.trades) == list(market.trades)
        for name in INTERVALS:
            a = [
                wire.kline_row(market.info, c)
                for c in market.candles[name].candles(None, None, 1000)
            ]
            b = [
                wire.kline_row(other.info, c) for c in other.candles[name].candles(None, None, 1000)
            ]
            assert a == b


class _Clock:
    """Journal time that jumps by random steps (seconds to hours), for candle boundaries."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        self.now += self.rng.choice([1, 7, 45, 130, 700, 3_000, 20_000]) * 1_000_000_000
        return self.now


_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _calendar_bounds(name: str, ms: int) -> tuple[int, int]:
    """The test's own (open, close) of a candle, from calendar arithmetic: months from the
    first of the month, weeks from Monday, the rest on multiples of their length."""
    day = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).replace(hour=0, minute=0, second=0)
    if name == "1M":
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    elif name == "1w":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=7)
    else:
        length = int(name[:-1]) * _UNIT_MS[name[-1]]
        return ms - ms % length, ms - ms % length + length - 1
    return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000 - 1


def _dec(atoms: int, decimals: int) -> Decimal:
    return Decimal(atoms).scaleb(-decimals)


def _s(value: Decimal, decimals: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-decimals)):f}"


def test_candles_and_ticker_equal_values_recomputed_from_trades(tmp_path: Path) -> None:
    rng = random.Random(11)
    service = MarketDataService()
    trades: list[tuple[int, Trade]] = []  # (journal ns, trade)
    with make_node(tmp_path, clock=_Clock(rng)) as node:
        start(node, service)
        for _ in range(300):
            events = service.feed_from_node(
                node, random_commands(rng, node.engine.image(), rng.randint(1, 15))
            )
            ts = node.sequencer.last_timestamp_ns
            trades += [(ts, e) for e in events if isinstance(e, Trade) and e.market_id == 0]
    market = service.state.markets[0]
    info = market.info
    qd, bd = info.quote_decimals, info.base_decimals
    assert len(trades) > 200
    assert [t.trade_id for _, t in trades] == list(range(1, len(trades) + 1))

    for name in INTERVALS:
        expected: dict[int, list[object]] = {}
        closes: dict[int, int] = {}
        for ts, t in trades:
            ms = ts // 1_000_000
            open_ms, close_ms = _calendar_bounds(name, ms)
            closes[open_ms] = close_ms
            c = expected.setdefault(
                open_ms,
                [
                    open_ms,
                    t.price_atoms,
                    t.price_atoms,
                    t.price_atoms,
                    t.price_atoms,
                    0,
                    0,
                    0,
                    0,
                    0,
                ],
            )
            c[2] = max(c[2], t.price_atoms)  # type: ignore[call-overload]
            c[3] = min(c[3], t.price_atoms)  # type: ignore[call-overload]
            c[4] = t.price_atoms
            c[5] += t.qty_atoms  # type: ignore[operator]
            c[6] += t.quote_atoms  # type: ignore[operator]
            c[7] += 1  # type: ignore[operator]
            if t.taker_side == BUY:
                c[8] += t.qty_atoms  # type: ignore[operator]
                c[9] += t.quote_atoms  # type: ignore[operator]
        rows = [
            [
                o,
                _s(_dec(op, qd), qd),
                _s(_dec(h, qd), qd),
                _s(_dec(lo, qd), qd),
                _s(_dec(cl, qd), qd),
                _s(_dec(v, bd), bd),
                closes[o],
                _s(_dec(q, qd), qd),
                n,
                _s(_dec(tb, bd), bd),
                _s(_dec(tq, qd), qd),
                "0",
            ]
            for o, op, h, lo, cl, v, q, n, tb, tq in expected.values()  # type: ignore[misc]
        ][-1000:]
        got = [wire.kline_row(info, c) for c in market.candles[name].candles(None, None, 1000)]
        assert got == rows, name
        closed = [c.closed for c in market.candles[name].candles(None, None, 1000)]
        now_ms = service.state.last_ts_ns // 1_000_000
        assert closed == [closes[o] < now_ms for o in list(expected)[-1000:]]

    # rolling 24 h ticker
    now = service.state.last_ts_ns
    open_ns = (now - 24 * 3600 * 10**9) // (60 * 10**9) * (60 * 10**9)  # its minute
    window = [(ts, t) for ts, t in trades if ts >= open_ns]
    before = [t for ts, t in trades if ts < open_ns]
    assert window and before, "the clock should push trades out of the window"
    market.ticker.advance(now)
    got = wire.ticker_24hr(info, market.ticker.stats(), market.book)
    prices = [_dec(t.price_atoms, qd) for _, t in window]
    volume = sum(_dec(t.qty_atoms, bd) for _, t in window)
    quote_volume = sum(_dec(t.quote_atoms, qd) for _, t in window)
    change = prices[-1] - prices[0]
    assert got["openPrice"] == _s(prices[0], qd)
    assert got["lastPrice"] == _s(prices[-1], qd)
    assert got["highPrice"] == _s(max(prices), qd)
    assert got["lowPrice"] == _s(min(prices), qd)
    assert got["priceChange"] == _s(change, qd)
    percent = (change * 100 / prices[0]).quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    assert got["priceChangePercent"] == f"{percent:f}"
    average = (quote_volume / volume).quantize(Decimal(1).scaleb(-qd), rounding=ROUND_DOWN)
    assert got["weightedAvgPrice"] == f"{average:f}"
    assert got["volume"] == _s(volume, bd)
    assert got["quoteVolume"] == _s(quote_volume, qd)
    assert got["lastQty"] == _s(_dec(window[-1][1].qty_atoms, bd), bd)
    assert got["prevClosePrice"] == _s(_dec(before[-1].price_atoms, qd), qd)
    assert (got["firstId"], got["lastId"], got["count"]) == (
        window[0][1].trade_id,
        window[-1][1].trade_id,
        len(window),
    )
    assert got["closeTime"] == now // 1_000_000
    assert got["openTime"] == open_ns // 1_000_000


class FutureEvent(msgspec.Struct, tag=True, frozen=True, kw_only=True, array_like=True):
    """An event kind market data has never heard of (e.g. one a later issue adds)."""

    seq: int
    order_id: int


def test_unknown_event_kinds_are_ignored() -> None:
    state = MarketDataState()
    state.apply([(1, 10, [FutureEvent(seq=1, order_id=5)])])
    assert state.last_seq == 1 and not state.markets


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("btcusdt@trade", "btcusdt@trade"),
        ("BTCUSDT@depth@1000ms", "btcusdt@depth"),
        ("btcusdt@depth@100ms", "btcusdt@depth@100ms"),
        ("btcusdt@depth20@100ms", "btcusdt@depth20@100ms"),
        ("btcusdt@bookticker", "btcusdt@bookTicker"),
        ("btcusdt@kline_15m", "btcusdt@kline_15m"),
        ("btcusdt@l3", "btcusdt@l3"),
        ("heartbeat", "heartbeat"),
    ],
)
def test_stream_names_are_canonical(text: str, canonical: str) -> None:
    assert parse_stream(text, {"BTCUSDT"}).name == canonical


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("dogeusdt@trade", "unknown symbol"),
        ("btcusdt@kline_2m", "unknown kline interval"),
        ("btcusdt@depth7", "unknown stream type"),
        ("btcusdt@depth@250ms", "unknown stream type"),
        ("btcusdt", "expected <symbol>@<stream>"),
        ("@trade", "expected <symbol>@<stream>"),
        ("", "Invalid stream name"),
    ],
)
def test_bad_stream_names_say_why(text: str, fragment: str) -> None:
    with pytest.raises(StreamError, match=fragment):
        parse_stream(text, {"BTCUSDT"})


def test_checksum_string_is_built_as_documented() -> None:
    import zlib

    asks = [["30000.010000", "0.01000000"], ["30000.020000", "1.50000000"]]
    bids = [["29999.990000", "0.00010000"]]
    text = "300000100001000000300000200001500000002999999000010000"
    assert wire.checksum_of_levels(asks, bids) == zlib.crc32(text.encode())


# ---- issue-3 order types: icebergs, conditional orders, self-trade prevention ---------------


def test_book_equals_engine_with_icebergs_stops_and_stp(tmp_path: Path) -> None:
    """Icebergs show only their slice and refresh at the back, waiting stops are off the book and
    triggered ones join it, DECREMENT shrinks the resting order: after every batch the L3 and L2
    books equal the engine image's visible quantities, and replay rebuilds the same book."""
    rng = random.Random(21)
    service = MarketDataService()
    seen: dict[type, int] = {}
    decrements = 0
    with make_node(tmp_path) as node:
        start(node, service)
        image = node.engine.image()
        for _ in range(400):
            events = service.feed_from_node(
                node, random_commands(rng, image, rng.randint(1, 40), issue3=True)
            )
            for ev in events:
                seen[type(ev)] = seen.get(type(ev), 0) + 1
                decrements += isinstance(ev, SelfTradePrevented) and ev.stp_mode == 4
            image = node.engine.image()
            assert l3_of_state(service.state) == l3_of_image(image)
            for market_id, market in service.state.markets.items():
                bids, asks = l2_of_image(image, market_id)
                assert market.book.depth(BUY, 10_000) == sorted(bids.items(), reverse=True)
                assert market.book.depth(SELL, 10_000) == sorted(asks.items())
        records = list(node.journal.read_from(1, node.last_seq))
    assert seen.get(IcebergRefreshed, 0) > 20 and seen.get(OrderTriggered, 0) > 20
    assert decrements > 5 and any(o.visible_qty_atoms < o.qty_atoms for o in image.orders)
    assert image.conditional_orders, "some stops should still be waiting"
    rebuilt = MarketDataState()
    engine = CompiledEngine()
    for s, t, p in records:
        rebuilt.apply([(s, t, engine.process([(s, t, decode_command(p))]))])
    assert l3_of_state(rebuilt) == l3_of_state(service.state)


@settings(max_examples=150)
@given(
    records=command_streams(max_commands=80, issue3=True), config=st.sampled_from(ISSUE3_CONFIGS)
)
def test_book_equals_engine_on_issue3_streams(records: list[Record], config: EngineConfig) -> None:
    """The differential tests' streams (every order type, market states, GTD, dead-man's
    switches, small bounds): the market-data book equals the engine's after every command."""
    engine = CompiledEngine(config)
    state = MarketDataState()
    for record in records:
        state.apply([(record[0], record[1], engine.process([record]))])
        assert l3_of_state(state) == l3_of_image(engine.image()), record
