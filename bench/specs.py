"""What a benchmark workload is made of: assets, markets, mixes and the `Workload` record.

Kept apart from the generator (`bench.generator`) so the benchmark runner can read a
workload's shape without the generation machinery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from engine.schema import Command, EngineConfig

Record = tuple[int, int, Command]
"""(seq, ts_ns, command): what ``Engine.process`` takes."""

TS_STEP_NS = 1_000
"""Journal time advances 1 µs per command: deterministic, and the engine never reads a clock."""


@dataclass(frozen=True, slots=True)
class AssetSpec:
    asset_id: int
    symbol: str
    decimals: int
    deposit_whole: int
    """Whole units credited to every account: large enough that funds never run out, small
    enough that the asset's total supply stays below MAX_AMOUNT_ATOMS."""


@dataclass(frozen=True, slots=True)
class MarketSpec:
    market_id: int
    symbol: str
    base: AssetSpec
    quote: AssetSpec
    tick_atoms: int
    lot_atoms: int
    mid: int
    """Centre price in ticks; bids are drawn below it, asks above it."""
    half_range: int
    """Passive prices are drawn up to this many ticks from the mid."""
    max_lots: int
    """Maker sizes are uniform in 1..max_lots lots."""
    weight: float = 1.0
    """Share of the flow (workloads with several markets)."""
    min_notional_atoms: int = 1_000_000
    maker_fee_ppm: int = 100
    taker_fee_ppm: int = 200

    @property
    def qtl(self) -> int:
        """Quote atoms per tick-lot (docs/engine-semantics.md)."""
        return self.tick_atoms * self.lot_atoms // 10**self.base.decimals


USDT = AssetSpec(1, "USDT", 6, 100_000_000)
BTC = AssetSpec(2, "BTC", 8, 100_000)
SOL = AssetSpec(3, "SOL", 9, 100_000)
# ETH with 18 decimals would cap the whole ETH supply at MAX_AMOUNT_ATOMS = 4.6 ETH, so the
# multi-market workload uses SOL (9 decimals) as its second base asset.

BTC_USDT = MarketSpec(
    1, "BTC-USDT", BTC, USDT, tick_atoms=10_000, lot_atoms=100_000, mid=3_000_000,
    half_range=820, max_lots=10,
)  # fmt: skip
"""0.01 USDT tick, 0.001 BTC lot, mid 30,000 USDT. A 820-tick range holds 500 orders a side
on ~375 distinct levels: ~750 levels for 1,000 orders, as in exchange-core."""


@dataclass(frozen=True)
class Workload:
    """A generated workload and what the generator observed while simulating it."""

    name: str
    seed: int
    config: EngineConfig
    setup: list[Record]
    prefill: list[Record]
    stream: list[Record]
    mix: dict[str, int]
    """Stream commands by kind (see the module docstring)."""
    rejected: int
    """Stream commands the scratch engine rejected: should be 0."""
    resting_after_prefill: int
    levels_after_prefill: int
    resting_at_end: int
    levels_at_end: int
    min_resting: int
    max_resting: int
    simulator: str
    """Class name of the scratch engine used to follow fills."""

    @property
    def rejected_fraction(self) -> float:
        return self.rejected / len(self.stream) if self.stream else 0.0

    def digest(self) -> str:
        """BLAKE2b-128 of every record (msgpack): equal digests mean identical workloads."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.setup, self.prefill, self.stream):
            h.update(msgspec.msgpack.encode(part))
        return h.hexdigest()


BTC_USDT_DEEP = MarketSpec(
    1, "BTC-USDT", BTC, USDT, tick_atoms=10_000, lot_atoms=100_000, mid=3_000_000,
    half_range=3_000, max_lots=10, weight=0.6,
)  # fmt: skip
SOL_USDT_DEEP = MarketSpec(
    2, "SOL-USDT", SOL, USDT, tick_atoms=1_000, lot_atoms=10_000_000, mid=100_000,
    half_range=2_000, max_lots=20, weight=0.4, min_notional_atoms=100_000,
)  # fmt: skip
"""0.001 USDT tick, 0.01 SOL lot, mid 100 USDT."""

DEEP_SKEW = 2.0
"""Offsets from the mid are ``range * u**2``: a deep book is densest near the touch."""

# Stream mixes: shares of one uniform draw per command (see bench.workloads).
MIX_A: dict[str, float] = {"gtc": 0.09, "ioc": 0.03, "cancel": 0.06, "move": 0.82}
MIX_B: dict[str, float] = {
    "gtc": 0.35, "gtc_marketable": 0.05, "ioc": 0.06, "fok": 0.04, "market_sell": 0.04,
    "market_buy": 0.03, "market_buy_quote": 0.03, "cancel": 0.25, "amend_price": 0.10,
    "amend_qty": 0.05,
}  # fmt: skip
"""The core issue's crypto mix (before conditional orders and icebergs existed)."""
MIX_B_ISSUE3: dict[str, float] = {
    **{kind: share * 0.85 for kind, share in MIX_B.items()},
    "conditional": 0.10, "iceberg": 0.05,
}  # fmt: skip
"""Issue 3: the same mix scaled to 85 %, plus 10 % conditional orders (stop-market, stop-limit
and take-profit around the last trade price) and 5 % iceberg limit orders."""
