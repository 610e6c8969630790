"""The reference engine's state image: the whole state as a `StateImage` (in atoms, sorted, as
the compiled core writes it) and back, so snapshots of either engine compare field by field.
"""

from __future__ import annotations

from typing import Self

from engine.reference.model import (
    Account,
    Asset,
    Market,
    Order,
    Withdrawal,
)
from engine.reference.orders import OrderCommands
from engine.schema import (
    FORMAT_VERSION,
    AccountFlagsImage,
    AccountImage,
    AssetImage,
    BalanceImage,
    ConditionalOrderImage,
    MarketImage,
    OrderImage,
    StateImage,
    TierTradeLimitImage,
    WithdrawalImage,
)


class StateImages(OrderCommands):
    """`image` and `from_image`: the state out to a `StateImage` and back."""

    def image(self) -> StateImage:
        markets = [self.markets[i] for i in sorted(self.markets)]
        return StateImage(
            format_version=FORMAT_VERSION,
            config=self.config,
            last_seq=self.last_seq,
            next_txn_id=self.next_txn_id,
            assets=[
                AssetImage(a.asset_id, a.symbol, a.decimals, a.fees, a.custody)
                for a in (self.assets[i] for i in sorted(self.assets))
            ],
            markets=[
                MarketImage(
                    m.market_id,
                    m.symbol,
                    m.base,
                    m.quote,
                    m.tick,
                    m.lot,
                    m.min_notional,
                    m.maker_ppm,
                    m.taker_ppm,
                    m.last_trade_id,
                    m.state,
                    m.band_bps,
                    m.protection_bps,
                    m.max_qty * m.lot,
                    m.last_price * m.tick,
                )
                for m in markets
            ],
            accounts=[
                AccountImage(
                    a.account_id,
                    [
                        BalanceImage(asset_id, *buckets)
                        for asset_id, buckets in sorted(a.balances.items())
                        if any(buckets)
                    ],
                    a.dms,
                )
                for a in (self.accounts[i] for i in sorted(self.accounts))
            ],
            orders=[
                OrderImage(
                    o.order_id,
                    o.account_id,
                    o.market_id,
                    o.side,
                    o.order_type,
                    o.p * m.tick,
                    o.q * m.lot,
                    o.hold,
                    o.client_order_id,
                    o.time_in_force,
                    o.expire_at,
                    o.stp,
                    o.display * m.lot,
                    o.visible * m.lot,
                )
                for m in markets
                for o in m.book_order()
            ],
            conditional_orders=[
                self._conditional_image(self.orders[i])
                for i in sorted(self.orders)
                if self.orders[i].pending
            ],
            pending_withdrawals=[
                WithdrawalImage(w.withdrawal_id, w.account_id, w.asset_id, w.amount)
                for w in (self.pending[i] for i in sorted(self.pending))
            ],
            withdrawal_ids=sorted(self.withdrawal_ids),
            deposit_keys=sorted(self.deposit_keys),
            account_flags=[
                AccountFlagsImage(a.account_id, a.frozen, a.tier)
                for a in (self.accounts[i] for i in sorted(self.accounts))
                if a.frozen or a.tier != -1
            ],
            tier_trade_limits=[
                TierTradeLimitImage(asset, tier, n)
                for (asset, tier), n in sorted(self.tier_limits.items())
            ],
        )

    def _conditional_image(self, o: Order) -> ConditionalOrderImage:
        m = self.markets[o.market_id]
        return ConditionalOrderImage(
            o.order_id,
            o.account_id,
            o.market_id,
            o.side,
            o.order_type,
            o.time_in_force,
            o.p * m.tick,
            o.q * m.lot,
            o.quote_qty,
            o.trigger * m.tick,
            o.delta_bps,
            o.offset * m.tick,
            o.extreme * m.tick,
            o.expire_at,
            o.stp,
            o.display * m.lot,
            o.hold,
            o.client_order_id,
        )

    @classmethod
    def from_image(cls, image: StateImage) -> Self:
        assert image.format_version == FORMAT_VERSION, image.format_version
        eng = cls(image.config)
        eng.last_seq = image.last_seq
        eng.next_txn_id = image.next_txn_id
        for a in image.assets:
            eng.assets[a.asset_id] = Asset(
                a.asset_id, a.symbol, a.decimals, a.fees_atoms, a.custody_atoms
            )
        eng.tier_limits = {
            (x.asset_id, x.tier): x.max_order_notional_atoms for x in image.tier_trade_limits
        }
        for m in image.markets:
            whole = 10 ** eng.assets[m.base_asset_id].decimals
            eng.markets[m.market_id] = Market(
                market_id=m.market_id,
                symbol=m.symbol,
                base=m.base_asset_id,
                quote=m.quote_asset_id,
                tick=m.tick_size_atoms,
                lot=m.lot_size_atoms,
                min_notional=m.min_notional_atoms,
                maker_ppm=m.maker_fee_ppm,
                taker_ppm=m.taker_fee_ppm,
                qtl=m.tick_size_atoms * m.lot_size_atoms // whole,
                last_trade_id=m.last_trade_id,
                state=m.state,
                band_bps=m.price_band_bps,
                protection_bps=m.market_protection_bps,
                max_qty=m.max_order_qty_atoms // m.lot_size_atoms,
                last_price=m.last_price_atoms // m.tick_size_atoms,
            )
        for a in image.accounts:
            account = eng.accounts[a.account_id] = Account(a.account_id, dms=a.dead_mans_switch_ns)
            if a.dead_mans_switch_ns:
                eng.armed.add(a.account_id)
            for b in a.balances:
                account.balances[b.asset_id] = [
                    b.available_atoms,
                    b.held_orders_atoms,
                    b.held_withdrawals_atoms,
                ]
        for f in image.account_flags:
            eng.accounts[f.account_id].frozen = f.frozen
            eng.accounts[f.account_id].tier = f.tier
        for o in image.orders:  # book order: appending rebuilds each level's time priority
            market = eng.markets[o.market_id]
            order = Order(
                order_id=o.order_id,
                account_id=o.account_id,
                market_id=o.market_id,
                side=o.side,
                order_type=o.order_type,
                p=o.price_atoms // market.tick,
                q=o.qty_atoms // market.lot,
                hold=o.hold_atoms,
                client_order_id=o.client_order_id,
                time_in_force=o.time_in_force,
                expire_at=o.expire_at_ns,
                stp=o.stp_mode,
                display=o.display_qty_atoms // market.lot,
                visible=o.visible_qty_atoms // market.lot,
            )
            market.add(order)
            eng._register(order)
        for c in image.conditional_orders:
            market = eng.markets[c.market_id]
            tick, lot = market.tick, market.lot
            order = Order(
                order_id=c.order_id,
                account_id=c.account_id,
                market_id=c.market_id,
                side=c.side,
                order_type=c.order_type,
                p=c.price_atoms // tick,
                q=c.qty_atoms // lot,
                hold=c.hold_atoms,
                client_order_id=c.client_order_id,
                time_in_force=c.time_in_force,
                expire_at=c.expire_at_ns,
                stp=c.stp_mode,
                display=c.display_qty_atoms // lot,
                pending=True,
                trigger=c.trigger_price_atoms // tick,
                delta_bps=c.trailing_delta_bps,
                offset=c.limit_offset_atoms // tick,
                extreme=c.extreme_price_atoms // tick,
                quote_qty=c.quote_qty_atoms,
            )
            market.wait(order)
            eng._register(order)
        for w in image.pending_withdrawals:
            eng.pending[w.withdrawal_id] = Withdrawal(
                w.withdrawal_id, w.account_id, w.asset_id, w.amount_atoms
            )
        eng.withdrawal_ids = set(image.withdrawal_ids)
        eng.deposit_keys = set(image.deposit_keys)
        return eng
