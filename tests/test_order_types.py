"""Hand-computed scenarios for the issue-3 order types, run through both engines.

Each scenario checks the events that matter by hand and that the compiled core and the
reference model agree event for event and image for image (the random streams of
tests/test_differential.py cover the combinations; these pin the intended behaviour).
"""

from __future__ import annotations

from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import (
    CancelOnDisconnect,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    DeadMansSwitchFired,
    Deposit,
    EngineConfig,
    Event,
    ExpireReason,
    IcebergRefreshed,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    OrderType,
    PlaceOrder,
    Reject,
    SelfTradePrevented,
    SetDeadMansSwitch,
    SetMarketState,
    StpMode,
    Tick,
    TimeInForce,
    Trade,
)

M, BTC, USD = 1, 1, 2
A, B = 1, 2
CONFIG = EngineConfig(max_accounts=8, max_assets=4, max_markets=4, max_orders=256,
                      max_levels_per_side=64)  # fmt: skip


class Both:
    """Both engines, fed the same records; every call checks they agree."""

    def __init__(self, **rules: int) -> None:
        self.c = CompiledEngine(CONFIG)
        self.r = ReferenceEngine(CONFIG)
        self.seq = 0
        self.run(
            CreateAsset(asset_id=BTC, symbol="BTC", decimals=0),
            CreateAsset(asset_id=USD, symbol="USD", decimals=0),
            CreateMarket(market_id=M, symbol="BTC-USD", base_asset_id=BTC, quote_asset_id=USD,
                         tick_size_atoms=1, lot_size_atoms=1, min_notional_atoms=0,
                         maker_fee_ppm=0, taker_fee_ppm=0, **rules),
            *[CreateAccount(account_id=a) for a in (A, B)],
            *[Deposit(account_id=a, asset_id=x, amount_atoms=10**6, deposit_key=f"{a}{x}")
              for a in (A, B) for x in (BTC, USD)],
        )  # fmt: skip

    def run(self, *commands: object, at: int | None = None) -> list[Event]:
        out: list[Event] = []
        for command in commands:
            self.seq += 1
            record = (self.seq, at if at is not None else 1_000 * self.seq, command)
            ours, theirs = self.c.process([record]), self.r.process([record])
            assert ours == theirs, (command, ours, theirs)
            out.extend(ours)
        assert self.c.image() == self.r.image()
        return out

    def place(self, account: int, side: int, price: int, qty: int, **fields: int) -> list[Event]:
        return self.run(PlaceOrder(account_id=account, market_id=M, side=side,
                                   order_type=fields.pop("order_type", OrderType.LIMIT),
                                   price_atoms=price, qty_atoms=qty, **fields))  # fmt: skip


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_stp_expire_maker_skips_own_order_and_trades_behind_it() -> None:
    x = Both()
    x.place(A, 1, 100, 5)
    x.place(B, 1, 100, 5)
    events = x.place(A, 0, 100, 5, stp_mode=StpMode.EXPIRE_MAKER)
    (stp,) = of(events, SelfTradePrevented)
    assert (stp.taker_order_id, stp.maker_order_id, stp.qty_atoms) == (x.seq, x.seq - 2, 5)
    assert [e.reason for e in of(events, OrderExpired)] == [ExpireReason.SELF_TRADE_PREVENTED]
    assert [t.maker_order_id for t in of(events, Trade)] == [x.seq - 1]


def test_stp_decrement_shrinks_both() -> None:
    x = Both()
    x.place(A, 1, 100, 8)
    events = x.place(A, 0, 100, 3, stp_mode=StpMode.DECREMENT)
    assert not of(events, Trade)
    assert of(events, OrderExpired)[0].remaining_qty_atoms == 0  # the taker, decremented to 0
    assert x.r.image().orders[0].qty_atoms == 5


def test_iceberg_refresh_goes_to_the_back() -> None:
    x = Both()
    x.place(A, 1, 100, 10, display_qty_atoms=4)
    x.place(B, 1, 100, 3)
    events = x.place(B, 0, 100, 6)
    makers = [t.maker_order_id for t in of(events, Trade)]
    assert makers == [x.seq - 2, x.seq - 1]  # the slice of 4, then B's 3 (behind the refresh)
    (refresh,) = of(events, IcebergRefreshed)
    assert (refresh.visible_qty_atoms, refresh.hidden_qty_atoms) == (4, 2)


def test_stop_market_fires_after_a_trade() -> None:
    x = Both()
    x.place(A, 0, 90, 5)
    x.place(B, 1, 100, 1)
    x.place(A, 0, 100, 1)  # last trade 100
    x.place(B, 1, 0, 2, order_type=OrderType.STOP_MARKET, stop_price_atoms=95)
    events = x.place(A, 1, 95, 1)  # sell 1 into nothing at 95 ... rests; no trade
    assert not of(events, OrderTriggered)
    events = x.place(B, 1, 90, 1)  # trades at 90 -> the stop fires, sells 2 at 90
    (trig,) = of(events, OrderTriggered)
    assert trig.price_atoms == 0 and trig.last_price_atoms == 90
    assert [t.taker_order_id for t in of(events, Trade)][-1] == trig.order_id


def test_gtd_expires_on_tick_and_dead_mans_switch_fires() -> None:
    x = Both()
    x.place(A, 0, 90, 1, time_in_force=TimeInForce.GTD, expire_at_ns=1_000 * x.seq + 5_000)
    x.place(B, 0, 80, 1)
    x.run(SetDeadMansSwitch(account_id=B, fire_at_ns=1_000 * x.seq + 9_000))
    events = x.run(Tick(), at=1_000 * x.seq + 6_000)
    assert [e.reason for e in of(events, OrderExpired)] == [ExpireReason.GTD]
    events = x.run(Tick(), at=1_000 * x.seq + 20_000)
    assert of(events, DeadMansSwitchFired) and len(of(events, OrderCancelled)) == 1


def test_halt_band_and_disconnect() -> None:
    x = Both(price_band_bps=1_000, max_order_qty_atoms=50)
    x.place(A, 0, 100, 1)
    x.place(B, 1, 120, 1)
    assert of(x.place(A, 0, 95, 60), OrderRejected)[0].reason == Reject.ORDER_TOO_LARGE
    assert of(x.place(A, 0, 90, 1), OrderRejected)[0].reason == Reject.PRICE_OUTSIDE_BAND
    x.run(SetMarketState(market_id=M, state=1))
    assert of(x.place(A, 0, 105, 1), OrderRejected)[0].reason == Reject.MARKET_HALTED
    events = x.run(CancelOnDisconnect(account_id=A))
    assert len(of(events, OrderCancelled)) == 1
