"""Custody's view of assets: which chain carries each engine asset, and the unit conversion at
the chain edge.

The engine is bounded by 2**62 atoms, so an asset may be kept in the engine with fewer decimals
than the chain uses (ETH: 18 on chain, 9 in the engine, i.e. gwei). Converting a chain amount
therefore splits it into whole engine atoms and a *dust* remainder. Dust is never rounded up
and never silently dropped: a deposit is credited ``amount // scale`` atoms and its dust is
recorded beside it (reconciliation names it as the exchange's), and a withdrawal is always a
whole number of engine atoms, so it converts back exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChainKind(enum.Enum):
    ETHEREUM = "ethereum"
    BITCOIN = "bitcoin"
    """The Bitcoin family: BTC, LTC, ... (Bitcoin Core's JSON-RPC)."""


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """One chain the exchange watches."""

    name: str
    """Stable name used in deposit keys and the custody store (``eth-31337``, ``ltc-regtest``)."""
    kind: ChainKind
    confirmations: int
    """A deposit is credited once it has this many confirmations (its own block counts as 1);
    a reorg that removes a block this deep is a deep reorg (operator alert)."""
    hrp: str = ""
    """Bech32 human-readable part of the Bitcoin-family network (``ltc``, ``tltc``, ``rltc``)."""
    bip44_coin: int = 0
    """BIP44/BIP84 coin type (0 BTC, 2 LTC, 60 ETH, 1 for every test network)."""

    def __post_init__(self) -> None:
        if self.confirmations < 1:
            raise ValueError(f"{self.name}: confirmations must be >= 1")
        if self.kind is ChainKind.BITCOIN and not self.hrp:
            raise ValueError(f"{self.name}: a Bitcoin-family chain needs its bech32 hrp")


@dataclass(frozen=True, slots=True)
class CustodyAsset:
    """An engine asset and the chain object that carries it."""

    asset_id: int
    symbol: str
    chain: str
    """`ChainSpec.name`."""
    chain_decimals: int
    engine_decimals: int
    contract: str = ""
    """ERC-20 contract address (checksummed); empty for the chain's native coin."""
    min_withdrawal_atoms: int = 1
    """Below this a withdrawal is refused as dust (engine atoms)."""
    daily_limit_atoms: int = 0
    """Per account, over any rolling 24 h window; 0 = no limit."""
    approval_threshold_atoms: int = 0
    """A withdrawal of more than this waits for two finance approvals (four eyes); 0 = off."""
    approve_new_address: bool = False
    """A withdrawal to an address the account never withdrew to waits for four eyes."""
    tier_daily_limit_atoms: tuple[int, ...] = ()
    """Per KYC tier (index 0-3), per account over any rolling 24 h window; 0 or missing = no
    tier limit. Tier 0 never withdraws whatever this says; accounts without a tier (made by
    an operator) are not held to it. Checked by the gateway before anything is journaled."""

    tier_daily_deposit_limit_atoms: tuple[int, ...] = ()
    """Per KYC tier (index 0-3), what custody credits an account over any rolling 24 h
    window; 0 or missing = no limit. A deposit cannot be refused on chain: one that would go
    over waits in custody (status ``over_limit``, listed for compliance by the operator API)
    and is credited when the window or a higher tier makes room. Accounts without a tier are
    not held to it."""

    def __post_init__(self) -> None:
        for name in ("tier_daily_limit_atoms", "tier_daily_deposit_limit_atoms"):
            limits = tuple(getattr(self, name))
            object.__setattr__(self, name, limits)
            if len(limits) > 4 or any(type(x) is not int or x < 0 for x in limits):
                raise ValueError(f"{self.symbol}: {name} is at most 4 integers >= 0 (tiers 0-3)")
        if self.engine_decimals > self.chain_decimals:
            raise ValueError(f"{self.symbol}: engine decimals above chain decimals")
        if self.min_withdrawal_atoms < 1:
            raise ValueError(f"{self.symbol}: min_withdrawal_atoms must be >= 1")
        if self.approval_threshold_atoms < 0:
            raise ValueError(f"{self.symbol}: approval_threshold_atoms must be >= 0")

    @property
    def scale(self) -> int:
        """Chain units per engine atom (10**9 for ETH kept in gwei)."""
        return 10 ** (self.chain_decimals - self.engine_decimals)

    @property
    def native(self) -> bool:
        return not self.contract

    def to_engine(self, chain_amount: int) -> tuple[int, int]:
        """Split a chain amount into (engine atoms, dust in chain units)."""
        if chain_amount < 0:
            raise ValueError(f"negative chain amount {chain_amount}")
        return divmod(chain_amount, self.scale)

    def deposit_limit(self, tier: int) -> int:
        """The tier's 24 h deposit limit in engine atoms; 0 = none (no tier: -1, none)."""
        limits = self.tier_daily_deposit_limit_atoms
        return limits[tier] if 0 <= tier < len(limits) else 0

    def to_chain(self, atoms: int) -> int:
        return atoms * self.scale


class AssetRegistry:
    """Lookup by asset id and by chain object; one place to ask "do we custody this?"."""

    def __init__(self, chains: list[ChainSpec], assets: list[CustodyAsset]) -> None:
        self.chains = {c.name: c for c in chains}
        self.assets = {a.asset_id: a for a in assets}
        for a in assets:
            if a.chain not in self.chains:
                raise ValueError(f"{a.symbol}: unknown chain {a.chain!r}")
        self._by_contract = {(a.chain, a.contract.lower()): a for a in assets if a.contract}
        self._native = {a.chain: a for a in assets if a.native}

    def asset(self, asset_id: int) -> CustodyAsset | None:
        return self.assets.get(asset_id)

    def by_symbol(self, symbol: str) -> CustodyAsset | None:
        return next((a for a in self.assets.values() if a.symbol == symbol.upper()), None)

    def chain_of(self, asset: CustodyAsset) -> ChainSpec:
        return self.chains[asset.chain]

    def native(self, chain: str) -> CustodyAsset | None:
        return self._native.get(chain)

    def token(self, chain: str, contract: str) -> CustodyAsset | None:
        return self._by_contract.get((chain, contract.lower()))

    def on_chain(self, chain: str) -> list[CustodyAsset]:
        return [a for a in self.assets.values() if a.chain == chain]
