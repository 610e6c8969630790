"""The embedded defaults ``kootabase serve`` starts from: demo assets and markets.

A fresh data directory is bootstrapped with the demo assets and markets through the journal
(so replay reproduces them). The server itself (node + gateway + market data on one aiohttp
app) lives in ``gateway.server.run_serve_cli``: the engine imports no upper layer (DESIGN.md).
"""

from __future__ import annotations

from typing import Final

import structlog

from engine.node import EngineNode
from engine.schema import Command, CreateAsset, CreateMarket

log = structlog.get_logger(__name__)

USDT: Final = 0
BTC: Final = 1
ETH: Final = 2
LTC: Final = 3

DEMO_COMMANDS: Final[tuple[Command, ...]] = (
    CreateAsset(asset_id=USDT, symbol="USDT", decimals=6),
    CreateAsset(asset_id=BTC, symbol="BTC", decimals=8),
    # The engine keeps ETH in gwei (9 decimals): 2**62 wei would cap all ETH at 4.6 ETH.
    # Custody converts wei <-> gwei at the chain edge.
    CreateAsset(asset_id=ETH, symbol="ETH", decimals=9),
    CreateAsset(asset_id=LTC, symbol="LTC", decimals=8),
    # tick 0.01 USDT; lots 0.0001 BTC, 0.0001 ETH, 0.001 LTC; min notional 5 USDT; 0.1 % fees.
    CreateMarket(
        market_id=0,
        symbol="BTC-USDT",
        base_asset_id=BTC,
        quote_asset_id=USDT,
        tick_size_atoms=10_000,
        lot_size_atoms=10_000,
        min_notional_atoms=5_000_000,
        maker_fee_ppm=1_000,
        taker_fee_ppm=1_000,
    ),
    CreateMarket(
        market_id=1,
        symbol="ETH-USDT",
        base_asset_id=ETH,
        quote_asset_id=USDT,
        tick_size_atoms=10_000,
        lot_size_atoms=100_000,
        min_notional_atoms=5_000_000,
        maker_fee_ppm=1_000,
        taker_fee_ppm=1_000,
    ),
    CreateMarket(
        market_id=2,
        symbol="LTC-USDT",
        base_asset_id=LTC,
        quote_asset_id=USDT,
        tick_size_atoms=10_000,
        lot_size_atoms=100_000,
        min_notional_atoms=5_000_000,
        maker_fee_ppm=1_000,
        taker_fee_ppm=1_000,
    ),
)


def bootstrap_demo(node: EngineNode) -> None:
    """Create the demo assets and markets in a new data directory (journaled, replayable).
    Markets only: no account and no money (``serve --demo`` adds those, in the gateway)."""
    if node.last_seq == 0:
        node.submit(list(DEMO_COMMANDS))
        log.info("demo_markets_created", markets=["BTC-USDT", "ETH-USDT", "LTC-USDT"])
