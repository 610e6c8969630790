"""The reference-data half of the gateway's read model (`gateway.store.Store`): assets,
markets and their state, account standing (frozen, KYC tier), tier trade limits and armed
dead-man's switches. Kept apart from the order/trade/balance fold because it changes rarely
and every handler is a plain upsert; `Store` owns the fields (set in its ``__init__``) and
routes the events here through its handler table.
"""

from __future__ import annotations

from typing import Any

from engine.schema import (
    AccountCreated,
    AccountFrozenChanged,
    AccountTierChanged,
    AssetCreated,
    DeadMansSwitchFired,
    DeadMansSwitchSet,
    MarketCreated,
    MarketStateChanged,
    TierTradeLimitSet,
)
from gateway.markets import Asset, Market
from gateway.records import AccountView


class ReferenceFold:
    """Handlers of the reference-data events (a base class of `gateway.store.Store`)."""

    assets: dict[int, Asset]
    markets: dict[int, Market]
    by_wire: dict[str, Market]
    accounts: dict[int, AccountView]
    standing: dict[int, tuple[bool, int]]
    tier_limits: dict[tuple[int, int], int]
    dead_mans: dict[int, int]

    def reference_handlers(self) -> dict[type, Any]:
        """Event type -> handler, merged into `gateway.store.Store`'s table."""
        return {
            AssetCreated: self._asset,
            MarketCreated: self._market,
            MarketStateChanged: self._market_state,
            AccountCreated: self._account,
            DeadMansSwitchSet: self._dms_set,
            DeadMansSwitchFired: self._dms_fired,
            AccountFrozenChanged: self._frozen,
            AccountTierChanged: self._tier,
            TierTradeLimitSet: self._tier_limit,
        }

    def _asset(self, ev: AssetCreated) -> None:
        self.assets[ev.asset_id] = Asset(ev.asset_id, ev.symbol, ev.decimals)

    def _market(self, ev: MarketCreated) -> None:
        m = Market(
            market_id=ev.market_id,
            symbol=ev.symbol,
            wire=ev.symbol.replace("-", "").upper(),
            base=self.assets[ev.base_asset_id],
            quote=self.assets[ev.quote_asset_id],
            tick=ev.tick_size_atoms,
            lot=ev.lot_size_atoms,
            min_notional=ev.min_notional_atoms,
            maker_fee_ppm=ev.maker_fee_ppm,
            taker_fee_ppm=ev.taker_fee_ppm,
            max_order_qty=ev.max_order_qty_atoms,
            price_band_bps=ev.price_band_bps,
        )
        self.markets[m.market_id] = m
        self.by_wire[m.wire] = m

    def _market_state(self, ev: MarketStateChanged) -> None:
        self.markets[ev.market_id].state = ev.state

    def _frozen(self, ev: AccountFrozenChanged) -> None:
        self.standing[ev.account_id] = (ev.frozen, self.tier(ev.account_id))

    def _tier(self, ev: AccountTierChanged) -> None:
        self.standing[ev.account_id] = (self.frozen(ev.account_id), ev.tier)

    def frozen(self, account_id: int) -> bool:
        return self.standing.get(account_id, (False, -1))[0]

    def _tier_limit(self, ev: TierTradeLimitSet) -> None:
        if ev.max_order_notional_atoms:
            self.tier_limits[ev.asset_id, ev.tier] = ev.max_order_notional_atoms
        else:
            self.tier_limits.pop((ev.asset_id, ev.tier), None)

    def tier(self, account_id: int) -> int:
        """The KYC tier, -1 when never set (operator-made accounts: no KYC regime)."""
        return self.standing.get(account_id, (False, -1))[1]

    def _account(self, ev: AccountCreated) -> None:
        self.accounts.setdefault(ev.account_id, AccountView())

    def _dms_set(self, ev: DeadMansSwitchSet) -> None:
        if ev.fire_at_ns:
            self.dead_mans[ev.account_id] = ev.fire_at_ns
        else:
            self.dead_mans.pop(ev.account_id, None)

    def _dms_fired(self, ev: DeadMansSwitchFired) -> None:
        """Its OrderCancelled(DEAD_MANS_SWITCH) events follow and close the orders as CANCELED."""
        self.dead_mans.pop(ev.account_id, None)
