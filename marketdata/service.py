"""The market-data service: feeds the state, publishes the streams, runs the timers.

Write path: whoever runs the engine calls `MarketDataService.feed` (or `feed_events`, or
`feed_from_node`) on the event loop's thread right after the engine returns; `feed` is
synchronous and only appends to buffers, so the engine never waits on market data or on any
subscriber. From another thread use `feed_threadsafe`.

Update ids are journal sequences. A diff stream (depth, L3) for one market tiles the sequence
space: each message covers ``U..u`` with ``U = pu + 1`` (``pu`` = the previous message's ``u``),
and a message is sent only when something in it changed, so an idle market sends nothing but
stays contiguous. The REST snapshot's ``lastUpdateId`` is the last sequence applied.

Timers (wall clock, not journal time: they pace delivery, they do not change content):
every 100 ms the ``@100ms`` depth diffs, partial books and kline updates; every 1000 ms the
1000 ms depth streams, ``@ticker`` and ``heartbeat``. Trades, L3 and ``@bookTicker`` go out at
once, after each feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from marketdata import wire
from marketdata.book import BUY, SELL
from marketdata.fanout import Hub
from marketdata.state import Batch, MarketDataState, MarketState
from marketdata.streams import HEARTBEAT, SPEEDS_MS

_encode = msgspec.json.Encoder().encode
PARTIAL_LEVELS = (5, 10, 20)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _MarketStreams:
    """Per-market publishing state: dirty sets and last ``u`` of each diff stream."""

    __slots__ = (
        "book_ticker_stream",
        "dirty",
        "dirty_since_ns",
        "l3_stream",
        "last_l3_u",
        "last_top",
        "last_u",
        "market",
        "partial_dirty",
        "trade_stream",
    )

    def __init__(self, market: MarketState, last_seq: int) -> None:
        self.market = market
        self.dirty: dict[int, set[tuple[int, int]]] = {s: set() for s in SPEEDS_MS}
        self.last_u: dict[int, int] = dict.fromkeys(SPEEDS_MS, last_seq)
        self.dirty_since_ns: dict[int, int] = dict.fromkeys(SPEEDS_MS, 0)
        """Per speed: engine time of the first change the next depth diff carries (lag)."""
        self.last_l3_u = last_seq
        self.last_top: tuple[Any, ...] | None = None
        sym = market.info.stream_symbol  # built per call: named once, not per batch
        self.trade_stream = f"{sym}@trade"
        self.l3_stream = f"{sym}@l3"
        self.book_ticker_stream = f"{sym}@bookTicker"
        for speed in SPEEDS_MS:
            market.book.dirty_sets.append(self.dirty[speed])


class MarketDataService:
    def __init__(
        self,
        *,
        max_buffer_bytes: int = 4 << 20,
        flush_interval_s: float = 0.0,
        ws_heartbeat_s: float = 20.0,
        max_connection_s: float = 86_400.0,
    ) -> None:
        self.state = MarketDataState()
        self.hub = Hub(max_buffer_bytes, flush_interval_s)
        self.ws_heartbeat_s = ws_heartbeat_s
        """WebSocket ping interval; a peer that does not answer is closed."""
        self.max_connection_s = max_connection_s
        """Any stream connection is closed after this long (the dialect's 24 h)."""
        self._streams: dict[int, _MarketStreams] = {}
        self.state.on_market_created.append(self._market_created)
        self._timer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _market_created(self, market: MarketState) -> None:
        self._streams[market.info.market_id] = _MarketStreams(market, self.state.last_seq)

    def depth_update_id(self, market_id: int, speed_ms: int = 100) -> int:
        """``u`` of the last diff of a market's depth stream at ``speed_ms`` (sent or not)."""
        return self._streams[market_id].last_u[speed_ms]

    def l3_update_id(self, market_id: int) -> int:
        """``u`` of the last message of a market's L3 stream (sent or not)."""
        return self._streams[market_id].last_l3_u

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.state.by_wire_symbol)

    # ---- feeding ------------------------------------------------------------------------

    def feed(self, batches: Iterable[Batch]) -> None:
        """Apply ``(seq, timestamp_ns, events)`` batches and publish the real-time streams."""
        self.state.apply(batches)
        self._publish_realtime()

    def feed_events(self, timestamp_ns: int, events: Sequence[Any], through_seq: int = 0) -> None:
        """Feed one engine batch (one journal time; events grouped by their seq)."""
        self.state.apply_events(timestamp_ns, events, through_seq)
        self._publish_realtime()

    def feed_from_node(self, node: Any, commands: Sequence[Any]) -> list[Any]:
        """Submit ``commands`` to an `engine.node.EngineNode` and feed what it returns.

        The node stamps a whole batch with one journal time, which its sequencer exposes as
        ``last_timestamp_ns`` right after the submit."""
        events = node.submit(commands)
        self.feed_events(node.sequencer.last_timestamp_ns, events, node.last_seq)
        return events

    def feed_threadsafe(self, batches: list[Batch]) -> None:
        """For an engine running on another thread: hand the batches to the loop's thread."""
        assert self._loop is not None, "start() the service first"
        self._loop.call_soon_threadsafe(self.feed, batches)

    def _publish_realtime(self) -> None:
        """After every batch (in cluster mode: every stream message): trades, L3 and the
        book ticker of the markets someone follows; cheap when nobody does."""
        hub = self.hub
        now = 0
        last_seq = self.state.last_seq
        event_ns = self.state.last_ts_ns
        for ms in self._streams.values():
            market = ms.market
            info, book = market.info, market.book
            for speed, since in ms.dirty_since_ns.items():
                if not since and ms.dirty[speed]:
                    ms.dirty_since_ns[speed] = event_ns
            if market.new_trades:
                stream = ms.trade_stream
                if hub.wants(stream):
                    now = now or _now_ms()
                    for t in market.new_trades:
                        hub.publish(stream, _encode(wire.trade_event(info, t, now)), event_ns)
                market.new_trades.clear()
            if book.ops:
                ops = book.drain_ops()
                stream = ms.l3_stream
                if hub.wants(stream):
                    now = now or _now_ms()
                    hub.publish(
                        stream,
                        _encode(wire.l3_event(info, ops, ms.last_l3_u + 1, last_seq, now)),
                        event_ns,
                    )
                ms.last_l3_u = last_seq
            stream = ms.book_ticker_stream
            if hub.wants(stream):
                top = (book.best(BUY), book.best(SELL))
                if top != ms.last_top:
                    ms.last_top = top
                    hub.publish(
                        stream, _encode(wire.book_ticker_event(info, book, last_seq)), event_ns
                    )

    # ---- timers -------------------------------------------------------------------------

    def tick(self, speed_ms: int) -> None:
        """Publish the timed streams of one speed (called by the timer; public for tests)."""
        hub = self.hub
        now = _now_ms()
        last_seq = self.state.last_seq
        suffix = "" if speed_ms == 1000 else f"@{speed_ms}ms"
        for ms in self._streams.values():
            market = ms.market
            info, book = market.info, market.book
            sym = info.stream_symbol
            dirty = ms.dirty[speed_ms]
            if dirty:
                since_ns, ms.dirty_since_ns[speed_ms] = ms.dirty_since_ns[speed_ms], 0
                stream = f"{sym}@depth{suffix}"
                if hub.wants(stream):
                    hub.publish(
                        stream,
                        _encode(
                            wire.depth_update(
                                info, book, dirty, ms.last_u[speed_ms] + 1, last_seq, now
                            )
                        ),
                        since_ns,
                    )
                ms.last_u[speed_ms] = last_seq
                dirty.clear()
                for levels in PARTIAL_LEVELS:
                    stream = f"{sym}@depth{levels}{suffix}"
                    if hub.wants(stream):
                        hub.publish(
                            stream,
                            _encode(wire.partial_depth(info, book, last_seq, levels)),
                            since_ns,
                        )
            if speed_ms == 100:
                self._publish_klines(market, now)
            else:
                stream = f"{sym}@ticker"
                if hub.wants(stream):
                    market.ticker.advance(self.state.last_ts_ns)
                    hub.publish(
                        stream, _encode(wire.ticker_event(info, market.ticker.stats(), book, now))
                    )
        if speed_ms == 1000:
            hub.publish(HEARTBEAT, _encode(wire.heartbeat_event(last_seq, now)))

    def _publish_klines(self, market: MarketState, now: int) -> None:
        info = market.info
        sym = info.stream_symbol
        for interval, candle in market.closed_candles:
            stream = f"{sym}@kline_{interval}"
            if self.hub.wants(stream):
                self.hub.publish(stream, _encode(wire.kline_event(info, interval, candle, now)))
        market.closed_candles.clear()
        for interval in market.touched_candles:
            current = market.candles[interval].current
            stream = f"{sym}@kline_{interval}"
            if current is not None and self.hub.wants(stream):
                self.hub.publish(stream, _encode(wire.kline_event(info, interval, current, now)))
        market.touched_candles.clear()

    async def _run_timers(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.1 - loop.time()))
            self.tick(100)
            if n % 10 == 0:
                self.tick(1000)

    def start(self) -> None:
        """Start the timers on the running loop (idempotent)."""
        if self._timer is None:
            self._loop = asyncio.get_running_loop()
            self._timer = asyncio.create_task(self._run_timers(), name="marketdata-timers")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
