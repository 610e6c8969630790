"""Order and trade records of every kind the dialect renders differently, for the byte-exact
rendering test (`tests/test_wire_bytes.py`): order types, times in force, statuses, waiting and
triggered conditional orders, trailing stops, icebergs, self-trade prevention, quote-quantity
market orders, the three client id forms, amounts with and without a fraction, and trades of
each side and role."""

from __future__ import annotations

from engine.schema import OrderType, StpMode, TimeInForce
from gateway import clientids
from gateway.markets import Asset, Market
from gateway.records import OrderRecord, TradeRecord

T_NS = 1_767_225_600_123_456_789
LONG_CLIENT_ID = "a-client-order-id-longer-than-the-short-form-0123"


def markets() -> list[Market]:
    """Two markets with different scales (8/6 and 18/2 decimals)."""
    btc, usdt = Asset(1, "BTC", 8), Asset(2, "USDT", 6)
    eth, eur = Asset(3, "ETH", 18), Asset(4, "EUR", 2)
    return [
        Market(
            0, "BTC-USDT", "BTCUSDT", btc, usdt, 10_000, 1_000, 10_000_000, 1_000, 2_000, 10**12
        ),
        Market(1, "ETH-EUR", "ETHEUR", eth, eur, 1, 10**12, 100, 0, 0, 10**30),
    ]


def client_ids() -> clientids.ClientIdBook:
    ids = clientids.ClientIdBook(None)
    ids.remember(LONG_CLIENT_ID, clientids.encode(LONG_CLIENT_ID))
    return ids


def orders(market_id: int) -> list[OrderRecord]:
    """One record per rendering branch, on one market."""
    base = 10**8 if market_id == 0 else 10**18
    quote = 10**6 if market_id == 0 else 100
    long_cid = clientids.encode(LONG_CLIENT_ID)
    unknown_hashed = clientids.HASHED_BASE + 0x0123456789ABCDEF
    out: list[OrderRecord] = []

    def add(**kw: object) -> None:
        fields: dict[str, object] = {
            "order_id": 1_000 + len(out),
            "account_id": 7,
            "market_id": market_id,
            "client_order_id": 0,
            "side": 0,
            "order_type": OrderType.LIMIT,
            "time_in_force": TimeInForce.GTC,
            "price": 50_000 * quote,
            "orig_qty": base // 4,
            "orig_quote_qty": 0,
            "time_ns": T_NS + len(out) * 1_000_001,
        }
        fields.update(kw)
        out.append(OrderRecord(**fields))  # type: ignore[arg-type]

    add()  # NEW limit buy, auto client id
    add(
        side=1,
        client_order_id=clientids.encode("mm-1"),
        status="PARTIALLY_FILLED",
        executed=base // 8,
        cum_quote=6_250 * quote,
        update_ns=T_NS + 5_000_000_000,
    )
    add(
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
        price=0,
        status="FILLED",
        executed=base // 4,
        cum_quote=12_345 * quote + 7,
        update_ns=T_NS + 1,
    )
    add(
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
        price=0,
        orig_qty=0,
        orig_quote_qty=100 * quote + 1,
        executed=123,
        cum_quote=99 * quote,
        status="FILLED",
    )
    add(order_type=OrderType.LIMIT_MAKER, status="EXPIRED", client_order_id=long_cid)
    add(time_in_force=TimeInForce.FOK, status="EXPIRED", client_order_id=unknown_hashed)
    add(time_in_force=TimeInForce.GTD, status="CANCELED", update_ns=T_NS + 999_999)
    add(order_type=OrderType.STOP_LIMIT, stop_price=49_000 * quote, working_ns=-1)
    add(
        order_type=OrderType.STOP_MARKET,
        price=0,
        stop_price=48_000 * quote + 3,
        working_ns=T_NS + 7_000_000_000,
        status="FILLED",
        executed=base // 4,
        cum_quote=12_000 * quote,
    )
    add(
        order_type=OrderType.TAKE_PROFIT_LIMIT,
        stop_price=51_000 * quote,
        working_ns=-1,
        status="CANCELED",
    )
    add(order_type=OrderType.TAKE_PROFIT_MARKET, price=0, stop_price=52_000 * quote, working_ns=-1)
    add(order_type=OrderType.TRAILING_STOP_MARKET, price=0, trailing_delta=150, working_ns=-1)
    add(
        order_type=OrderType.TRAILING_STOP_LIMIT,
        trailing_delta=25,
        stop_price=49_500 * quote,
        working_ns=T_NS + 3_000_000_000,
        status="PARTIALLY_FILLED",
        executed=1,
        cum_quote=1,
    )
    add(iceberg_qty=base // 40, status="NEW")
    add(
        stp_mode=StpMode.EXPIRE_TAKER,
        status="EXPIRED_IN_MATCH",
        prevented_match_id=3,
        prevented_qty=base // 4,
    )
    add(
        stp_mode=StpMode.DECREMENT,
        prevented_match_id=0,
        prevented_qty=1,
        executed=base // 8,
        cum_quote=1,
        status="PARTIALLY_FILLED",
    )
    add(
        stp_mode=StpMode.EXPIRE_MAKER,
        side=1,
        orig_qty=10**30 if market_id else 10**17,
        price=10**20,
        status="CANCELED",
    )
    add(stp_mode=StpMode.EXPIRE_BOTH, price=1, orig_qty=1, time_ns=0, update_ns=0)
    return out


def trades(market_id: int) -> list[TradeRecord]:
    quote = 10**6 if market_id == 0 else 100
    out = []
    for i, (is_buyer, is_maker) in enumerate(
        [(True, True), (True, False), (False, True), (False, False)]
    ):
        out.append(
            TradeRecord(
                market_id,
                500 + i,
                1_000 + i,
                50_000 * quote + i,
                10**5 * (i + 1),
                5 * quote * (i + 1) + i,
                i * 37,
                is_buyer,
                is_maker,
                T_NS + i * 999_999,
            )
        )
    out.append(TradeRecord(market_id, 1, 1, 1, 1, 0, 0, True, False, 0))
    return out
