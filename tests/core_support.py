"""A small compiled-core exchange for the focused tests of engine/core: one BTC-USDT market,
two funded accounts, a Driver that numbers commands, and order builders in ticks and lots.
"""

from __future__ import annotations

from engine.core.compiled import CompiledEngine
from engine.schema import (
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    PlaceOrder,
)

# Engine scenarios with exact events

CONFIG = EngineConfig(
    max_accounts=8,
    max_assets=4,
    max_markets=4,
    max_orders=64,
    max_levels_per_side=8,
    max_open_orders_per_account=6,
    max_fills_per_order=3,
)
BTC, USDT, M = 0, 1, 0
TICK, LOT = 100, 1_000  # price in USDT atoms per whole BTC (10**8 atoms); qtl = 1
SETUP = [
    CreateAsset(asset_id=BTC, symbol="BTC", decimals=8),
    CreateAsset(asset_id=USDT, symbol="USDT", decimals=6),
    CreateMarket(market_id=M, symbol="BTC-USDT", base_asset_id=BTC, quote_asset_id=USDT,
                 tick_size_atoms=TICK * 1_000_000, lot_size_atoms=LOT * 100,
                 min_notional_atoms=0, maker_fee_ppm=1_000, taker_fee_ppm=2_000),
    CreateAccount(account_id=1),
    CreateAccount(account_id=2),
    Deposit(account_id=1, asset_id=USDT, amount_atoms=10**12, deposit_key="u1"),
    Deposit(account_id=2, asset_id=BTC, amount_atoms=10**10, deposit_key="b2"),
]  # fmt: skip


# One market of whole units, for streams compared with the reference engine

UNIT_SETUP = [
    CreateAsset(asset_id=0, symbol="B", decimals=0),
    CreateAsset(asset_id=1, symbol="Q", decimals=0),
    CreateMarket(market_id=0, symbol="B-Q", base_asset_id=0, quote_asset_id=1, tick_size_atoms=1,
                 lot_size_atoms=1, min_notional_atoms=0, maker_fee_ppm=0, taker_fee_ppm=1_000),
    CreateAccount(account_id=1),
    CreateAccount(account_id=2),
    Deposit(account_id=1, asset_id=0, amount_atoms=10**9, deposit_key="b1"),
    Deposit(account_id=1, asset_id=1, amount_atoms=10**12, deposit_key="q1"),
    Deposit(account_id=2, asset_id=0, amount_atoms=10**9, deposit_key="b2"),
    Deposit(account_id=2, asset_id=1, amount_atoms=10**12, deposit_key="q2"),
]  # fmt: skip
"""Market 0 (B-Q, tick and lot of one atom, so a price is a small integer), accounts 1 and 2
funded in both assets: for random streams whose events and images must equal the reference's."""
PX = TICK * 1_000_000  # one tick in price atoms
QX = LOT * 100  # one lot in base atoms
QTL = PX * QX // 10**8  # quote atoms per tick-lot


class Driver:
    def __init__(self, config: EngineConfig = CONFIG, **kwargs: int) -> None:
        self.eng = CompiledEngine(config, **kwargs)
        self.seq = 0
        self.run(*SETUP)

    def run(self, *commands: object) -> list[object]:
        records = []
        for c in commands:
            self.seq += 1
            records.append((self.seq, self.seq * 1000, c))
        return self.eng.process(records)


def buy(price: int, qty: int, **kw: int) -> PlaceOrder:
    return PlaceOrder(account_id=kw.pop("account_id", 1), market_id=M, side=0,
                      order_type=kw.pop("order_type", 0), price_atoms=price * PX,
                      qty_atoms=qty * QX, **kw)  # fmt: skip


def sell(price: int, qty: int, **kw: int) -> PlaceOrder:
    return PlaceOrder(account_id=kw.pop("account_id", 2), market_id=M, side=1,
                      order_type=kw.pop("order_type", 0), price_atoms=price * PX,
                      qty_atoms=qty * QX, **kw)  # fmt: skip


def required(p: int, q: int) -> int:
    n = p * q * QTL
    return n + n * 2_000 // 1_000_000
