"""Binance Spot dialect payloads: integers in, JSON-ready values with decimal strings out.

Every function here renders one message shape; nothing here keeps state. Extensions beyond the
dialect are marked as such in the docstrings (and in the README's "Market data" section).

Depth checksum (extension, Kraken-style), carried as ``cs`` on every depth diff: CRC32
(zlib/IEEE 802.3, unsigned 32-bit) of the ASCII string built from the book *after* the diff:

1. the best 10 asks, lowest price first, then the best 10 bids, highest price first (fewer
   when a side has fewer levels);
2. for each level, its price string then its quantity string as sent on the wire (asset
   decimals, e.g. ``"30000.010000"``, ``"0.01000000"``), each with the ``.`` removed and then
   its leading zeros removed (``"30000010000"``, ``"1000000"``);
3. all of them concatenated with no separator.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, Final

from marketdata.book import BUY, SELL, Book, L3Op
from marketdata.candles import Candle
from marketdata.markets import MarketInfo
from marketdata.state import TradeRecord
from marketdata.ticker import TickerStats

CHECKSUM_LEVELS: Final = 10


def levels(info: MarketInfo, rows: Sequence[tuple[int, int]]) -> list[list[str]]:
    return [[info.price(p), info.qty(q)] for p, q in rows]


def _checksum_token(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum(info: MarketInfo, book: Book) -> int:
    """CRC32 of the top levels as described in the module docstring."""
    parts: list[str] = []
    for side in (SELL, BUY):
        for price, qty in book.depth(side, CHECKSUM_LEVELS):
            parts.append(_checksum_token(info.price(price)))
            parts.append(_checksum_token(info.qty(qty)))
    return zlib.crc32("".join(parts).encode("ascii"))


def checksum_of_levels(asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]]) -> int:
    """The same checksum from wire levels (what a client computes on its local book):
    ``asks`` ascending and ``bids`` descending, decimal strings as received."""
    parts: list[str] = []
    for rows in (asks[:CHECKSUM_LEVELS], bids[:CHECKSUM_LEVELS]):
        for price, qty in rows:
            parts.append(_checksum_token(price))
            parts.append(_checksum_token(qty))
    return zlib.crc32("".join(parts).encode("ascii"))


# ---- REST --------------------------------------------------------------------------------


def depth_snapshot(info: MarketInfo, book: Book, last_seq: int, limit: int) -> dict[str, Any]:
    """GET /api/v3/depth: ``lastUpdateId`` is the journal sequence the book reflects."""
    return {
        "lastUpdateId": last_seq,
        "bids": levels(info, book.depth(BUY, limit)),
        "asks": levels(info, book.depth(SELL, limit)),
    }


def rest_trade(info: MarketInfo, t: TradeRecord) -> dict[str, Any]:
    return {
        "id": t.trade_id,
        "price": info.price(t.price),
        "qty": info.qty(t.qty),
        "quoteQty": info.quote(t.quote),
        "time": t.time_ms,
        "isBuyerMaker": t.buyer_is_maker,
        "isBestMatch": True,
    }


def agg_trade(info: MarketInfo, group: Sequence[TradeRecord]) -> dict[str, Any]:
    """One aggregate trade of GET /api/v3/aggTrades: ``group`` shares one taker order, price
    and time; ``a`` is its first trade's id."""
    first, last = group[0], group[-1]
    return {
        "a": first.agg_id,
        "p": info.price(first.price),
        "q": info.qty(sum(t.qty for t in group)),
        "f": first.trade_id,
        "l": last.trade_id,
        "T": first.time_ms,
        "m": first.buyer_is_maker,
        "M": True,
    }


def kline_row(info: MarketInfo, c: Candle) -> list[Any]:
    """One row of GET /api/v3/klines (the dialect's 12-element array)."""
    return [
        c.open_ms,
        info.price(c.open),
        info.price(c.high),
        info.price(c.low),
        info.price(c.close),
        info.qty(c.volume),
        c.close_ms,
        info.quote(c.quote_volume),
        c.count,
        info.qty(c.taker_buy_volume),
        info.quote(c.taker_buy_quote),
        "0",
    ]


def percent_change(change: int, base: int) -> str:
    """``100 * change / base`` with 3 decimals, truncated toward zero; "0.000" if base is 0."""
    if base == 0:
        return "0.000"
    scaled = abs(change) * 100_000 // base
    sign = "-" if change < 0 and scaled else ""
    return f"{sign}{scaled // 1000}.{scaled % 1000:03d}"


def weighted_avg_price(info: MarketInfo, volume: int, quote_volume: int) -> int:
    """Quote atoms per whole base unit, floored: quoteVolume / volume."""
    return quote_volume * 10**info.base_decimals // volume if volume else 0


def _top(info: MarketInfo, book: Book) -> tuple[str, str, str, str]:
    bid = book.best(BUY) or (0, 0)
    ask = book.best(SELL) or (0, 0)
    return info.price(bid[0]), info.qty(bid[1]), info.price(ask[0]), info.qty(ask[1])


def ticker_24hr(info: MarketInfo, s: TickerStats, book: Book) -> dict[str, Any]:
    bid_p, bid_q, ask_p, ask_q = _top(info, book)
    change = s.last_price - s.open_price if s.count else 0
    return {
        "symbol": info.wire_symbol,
        "priceChange": info.price(change),
        "priceChangePercent": percent_change(change, s.open_price),
        "weightedAvgPrice": info.price(weighted_avg_price(info, s.volume, s.quote_volume)),
        "prevClosePrice": info.price(s.prev_close_price),
        "lastPrice": info.price(s.last_price),
        "lastQty": info.qty(s.last_qty),
        "bidPrice": bid_p,
        "bidQty": bid_q,
        "askPrice": ask_p,
        "askQty": ask_q,
        "openPrice": info.price(s.open_price),
        "highPrice": info.price(s.high_price),
        "lowPrice": info.price(s.low_price),
        "volume": info.qty(s.volume),
        "quoteVolume": info.quote(s.quote_volume),
        "openTime": s.open_ms,
        "closeTime": s.close_ms,
        "firstId": s.first_id,
        "lastId": s.last_id,
        "count": s.count,
    }


def book_ticker(info: MarketInfo, book: Book) -> dict[str, Any]:
    bid_p, bid_q, ask_p, ask_q = _top(info, book)
    return {
        "symbol": info.wire_symbol,
        "bidPrice": bid_p,
        "bidQty": bid_q,
        "askPrice": ask_p,
        "askQty": ask_q,
    }


def price_ticker(info: MarketInfo, last_price: int) -> dict[str, Any]:
    return {"symbol": info.wire_symbol, "price": info.price(last_price)}


def l3_snapshot(info: MarketInfo, book: Book, last_seq: int) -> dict[str, Any]:
    """Extension, GET /api/v3/depthL3: every resting order in book order."""
    return {
        "lastUpdateId": last_seq,
        "bids": [[str(o), info.price(p), info.qty(q)] for o, p, q in book.orders(BUY)],
        "asks": [[str(o), info.price(p), info.qty(q)] for o, p, q in book.orders(SELL)],
    }


# ---- streams -----------------------------------------------------------------------------


def trade_event(info: MarketInfo, t: TradeRecord, event_ms: int) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": event_ms,
        "s": info.wire_symbol,
        "t": t.trade_id,
        "p": info.price(t.price),
        "q": info.qty(t.qty),
        "T": t.time_ms,
        "m": t.buyer_is_maker,
        "M": True,
    }


def depth_update(
    info: MarketInfo,
    book: Book,
    changed: set[tuple[int, int]],
    first: int,
    last: int,
    event_ms: int,
) -> dict[str, Any]:
    """A diff: absolute quantities (0 = level gone) of every level changed in sequences
    ``first..last``; ``pu`` = ``first - 1`` is the previous diff's ``u`` (extension fields:
    ``pu`` from the futures dialect, ``cs`` the checksum, ``T`` journal time of ``last``)."""
    bids = sorted((p for s, p in changed if s == BUY), reverse=True)
    asks = sorted(p for s, p in changed if s == SELL)
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "s": info.wire_symbol,
        "U": first,
        "u": last,
        "pu": first - 1,
        "b": [[info.price(p), info.qty(book.level_qty(BUY, p))] for p in bids],
        "a": [[info.price(p), info.qty(book.level_qty(SELL, p))] for p in asks],
        "cs": checksum(info, book),
    }


def partial_depth(info: MarketInfo, book: Book, last_seq: int, limit: int) -> dict[str, Any]:
    return depth_snapshot(info, book, last_seq, limit)


def kline_event(info: MarketInfo, interval: str, c: Candle, event_ms: int) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": event_ms,
        "s": info.wire_symbol,
        "k": {
            "t": c.open_ms,
            "T": c.close_ms,
            "s": info.wire_symbol,
            "i": interval,
            "f": c.first_id,
            "L": c.last_id,
            "o": info.price(c.open),
            "c": info.price(c.close),
            "h": info.price(c.high),
            "l": info.price(c.low),
            "v": info.qty(c.volume),
            "n": c.count,
            "x": c.closed,
            "q": info.quote(c.quote_volume),
            "V": info.qty(c.taker_buy_volume),
            "Q": info.quote(c.taker_buy_quote),
            "B": "0",
        },
    }


def book_ticker_event(info: MarketInfo, book: Book, last_seq: int) -> dict[str, Any]:
    bid_p, bid_q, ask_p, ask_q = _top(info, book)
    return {"u": last_seq, "s": info.wire_symbol, "b": bid_p, "B": bid_q, "a": ask_p, "A": ask_q}


def ticker_event(info: MarketInfo, s: TickerStats, book: Book, event_ms: int) -> dict[str, Any]:
    t = ticker_24hr(info, s, book)
    return {
        "e": "24hrTicker",
        "E": event_ms,
        "s": t["symbol"],
        "p": t["priceChange"],
        "P": t["priceChangePercent"],
        "w": t["weightedAvgPrice"],
        "x": t["prevClosePrice"],
        "c": t["lastPrice"],
        "Q": t["lastQty"],
        "b": t["bidPrice"],
        "B": t["bidQty"],
        "a": t["askPrice"],
        "A": t["askQty"],
        "o": t["openPrice"],
        "h": t["highPrice"],
        "l": t["lowPrice"],
        "v": t["volume"],
        "q": t["quoteVolume"],
        "O": t["openTime"],
        "C": t["closeTime"],
        "F": t["firstId"],
        "L": t["lastId"],
        "n": t["count"],
    }


_SIDE = ("buy", "sell")


def l3_event(
    info: MarketInfo, ops: Sequence[L3Op], first: int, last: int, event_ms: int
) -> dict[str, Any]:
    """Extension: one message of the L3 stream, covering sequences ``first..last``. Each op
    carries its own seq so a client skips the ops its snapshot already holds."""
    out: list[list[Any]] = []
    for op in ops:
        kind, seq, oid = op[0], op[1], op[2]
        if kind == "open":
            out.append(
                [
                    kind,
                    seq,
                    str(oid),
                    _SIDE[op[3]],
                    info.price(op[4]),  # type: ignore[misc]
                    info.qty(op[5]),
                ]
            )  # type: ignore[misc]
        elif kind == "fill":
            out.append([kind, seq, str(oid), info.qty(op[3]), info.qty(op[4])])  # type: ignore[misc]
        elif kind == "amend":
            out.append([kind, seq, str(oid), info.qty(op[3])])
        else:
            out.append([kind, seq, str(oid), op[3]])
    return {
        "e": "l3Update",
        "E": event_ms,
        "s": info.wire_symbol,
        "U": first,
        "u": last,
        "pu": first - 1,
        "o": out,
    }


def heartbeat_event(last_seq: int, event_ms: int) -> dict[str, Any]:
    """Extension: sent every second on the ``heartbeat`` stream, books changed or not."""
    return {"e": "heartbeat", "E": event_ms, "u": last_seq}
