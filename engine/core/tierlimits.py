"""Tier trade limits of the compiled core (SetTierTradeLimit): the largest notional one order
of an account of a KYC tier may have in the markets quoted in an asset.

The limits are kept per (quote asset, tier) and copied into the markets table (M_TIER_LIMIT +
tier) of every market quoted in that asset, so that the kernel's check reads one row it
already has in cache; a market created later copies them at creation.
"""

from __future__ import annotations

import numpy as np

from engine.core.arrays import CoreArrays
from engine.core.layout import M_EXISTS, M_QUOTE, M_TIER_LIMIT, MAX
from engine.schema import (
    MAX_TIER,
    CommandRejected,
    Event,
    Reject,
    SetTierTradeLimit,
    TierTradeLimitImage,
    TierTradeLimitSet,
)


class TierLimits:
    """Mixin of the compiled engine: the limits, their command and their image."""

    _a: CoreArrays
    _assets: dict[int, tuple[str, int]]
    _tier_limits: dict[tuple[int, int], int]
    """(quote asset, tier) -> largest order notional (atoms); only limits > 0."""

    def _set_tier_trade_limit(self, seq: int, c: SetTierTradeLimit) -> list[Event]:
        if not 0 <= c.tier <= MAX_TIER:
            return self._refused(seq, Reject.INVALID_TIER)
        if c.asset_id not in self._assets:
            return self._refused(seq, Reject.UNKNOWN_ASSET)
        if not 0 <= c.max_order_notional_atoms <= MAX:
            return self._refused(seq, Reject.INVALID_AMOUNT)
        self.install_tier_limit(c.asset_id, c.tier, c.max_order_notional_atoms)
        return [
            TierTradeLimitSet(
                seq=seq,
                tier=c.tier,
                asset_id=c.asset_id,
                max_order_notional_atoms=c.max_order_notional_atoms,
                staff_id=c.staff_id,
            )
        ]

    def install_tier_limit(self, asset_id: int, tier: int, notional_atoms: int) -> None:
        """Record a limit (0 = none) and copy it into every market quoted in the asset."""
        if notional_atoms:
            self._tier_limits[asset_id, tier] = notional_atoms
        else:
            self._tier_limits.pop((asset_id, tier), None)
        mkt = self._a.mkt
        quoted = np.nonzero((mkt[:, M_EXISTS] != 0) & (mkt[:, M_QUOTE] == asset_id))[0]
        mkt[quoted, M_TIER_LIMIT + tier] = notional_atoms

    def tier_trade_limits(self) -> dict[tuple[int, int], int]:
        """(quote asset, tier) -> largest order notional in atoms, for the limits in force."""
        return dict(self._tier_limits)

    @staticmethod
    def _refused(seq: int, reason: Reject) -> list[Event]:
        return [CommandRejected(seq=seq, command="SetTierTradeLimit", reason=int(reason))]

    def tier_limit_images(self) -> list[TierTradeLimitImage]:
        """The limits in force, ascending (asset, tier), for the state image."""
        return [TierTradeLimitImage(a, t, n) for (a, t), n in sorted(self._tier_limits.items())]

    def restore_tier_limits(self, images: list[TierTradeLimitImage]) -> None:
        """Install an image's limits (before its markets: they copy them); raises ValueError
        on a limit the command would have refused."""
        for lim in images:
            if lim.asset_id not in self._assets or not 0 <= lim.tier <= MAX_TIER:
                raise ValueError(f"tier trade limit of asset {lim.asset_id}, tier {lim.tier}")
            if not 1 <= lim.max_order_notional_atoms <= MAX:
                raise ValueError(f"tier trade limit {lim.max_order_notional_atoms} outside 1..MAX")
            self.install_tier_limit(lim.asset_id, lim.tier, lim.max_order_notional_atoms)
