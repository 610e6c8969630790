"""The reference engine: docs/engine-semantics.md, step by step, in plain Python.

Every handler validates everything first (returning a reason code), and only then mutates and
emits events. Resolutions of points the contract leaves open are marked "Resolution:".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.reference.model import (
    Account,
    Asset,
    Market,
    Order,
    Withdrawal,
)
from engine.reference.orders import OrderCommands
from engine.reference.state import AVAILABLE, HELD_WITHDRAWALS, MAX
from engine.schema import (
    FORMAT_VERSION,
    MAX_BAND_BPS,
    MAX_FEE_PPM,
    MAX_TIER,
    SYSTEM_ACCOUNT,
    AccountCreated,
    AccountFlagsImage,
    AccountFrozenChanged,
    AccountImage,
    AccountTierChanged,
    AmendOrder,
    AssetCreated,
    AssetImage,
    BalanceImage,
    Bucket,
    CancelAll,
    CancelOnDisconnect,
    CancelOrder,
    CancelReplaceOrder,
    Command,
    CommandRejected,
    ConditionalOrderImage,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    MarketCreated,
    MarketImage,
    MarketState,
    MarketStateChanged,
    OrderImage,
    PlaceOrder,
    PostingReason,
    Reject,
    RejectStreamMessage,
    SetAccountFrozen,
    SetAccountTier,
    SetDeadMansSwitch,
    SetMarketState,
    StateImage,
    StreamMessageRejected,
    Tick,
    WithdrawalDecision,
    WithdrawalHeld,
    WithdrawalImage,
    WithdrawalSettled,
    WithdrawRequest,
    WithdrawResult,
)


class ReferenceEngine(OrderCommands):
    def __init__(self, config: EngineConfig = EngineConfig()) -> None:  # noqa: B008
        super().__init__(config)
        self._handlers: dict[type, Callable[[Any], None]] = {
            CreateAsset: self._create_asset,
            CreateMarket: self._create_market,
            CreateAccount: self._create_account,
            Deposit: self._deposit,
            WithdrawRequest: self._withdraw_request,
            WithdrawResult: self._withdraw_result,
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            CancelAll: self._cancel_all,
            CancelReplaceOrder: self._cancel_replace,
            SetMarketState: self._set_market_state,
            Tick: self._tick,
            SetDeadMansSwitch: self._set_dead_mans_switch,
            CancelOnDisconnect: self._cancel_on_disconnect,
            SetAccountFrozen: self._set_account_frozen,
            SetAccountTier: self._set_account_tier,
            WithdrawalDecision: self._withdrawal_decision,
            RejectStreamMessage: self._reject_stream_message,
        }
        self._now = 0

    # ---------------------------------------------------------------------------------------
    # Driver

    def process(self, records: Sequence[tuple[int, int, Command]]) -> list[Event]:
        out: list[Event] = []
        self._out = out
        for seq, timestamp_ns, command in records:
            assert seq > self.last_seq, (seq, self.last_seq)
            self._seq = seq
            self._now = timestamp_ns
            handler = self._handlers.get(type(command))
            assert handler is not None, f"unknown command {type(command).__name__}"
            self._sweep()
            handler(command)
            self.last_seq = seq
            market = self.markets.get(getattr(command, "market_id", -1))
            if market is not None:
                market.assert_not_crossed()
            assert all(m.burst is None for m in self.markets.values())
        return out

    # ---------------------------------------------------------------------------------------
    # Admin and custody commands

    def _command_rejected(self, command: Command, reason: Reject) -> None:
        self._emit(CommandRejected, command=type(command).__name__, reason=reason)

    def _reject_stream_message(self, c: RejectStreamMessage) -> None:
        """A replica's record of a stream message it could not run: an echo, nothing else."""
        self._emit(StreamMessageRejected, stream_seq=c.stream_seq, reason=c.reason)

    def _create_asset(self, c: CreateAsset) -> None:
        # Resolution: len(symbol) counts Python str characters (Unicode code points).
        if not 0 <= c.asset_id < self.config.max_assets:
            return self._command_rejected(c, Reject.INVALID_ASSET_SPEC)
        if c.asset_id in self.assets:
            return self._command_rejected(c, Reject.ASSET_EXISTS)
        if not (0 <= c.decimals <= 18 and 1 <= len(c.symbol) <= 16):
            return self._command_rejected(c, Reject.INVALID_ASSET_SPEC)
        self.assets[c.asset_id] = Asset(c.asset_id, c.symbol, c.decimals)
        self._emit(AssetCreated, asset_id=c.asset_id, symbol=c.symbol, decimals=c.decimals)

    def _check_market_spec(self, c: CreateMarket) -> Reject | None:
        if not 0 <= c.market_id < self.config.max_markets:
            return Reject.INVALID_MARKET_SPEC
        if c.market_id in self.markets:
            return Reject.MARKET_EXISTS
        if c.base_asset_id not in self.assets or c.quote_asset_id not in self.assets:
            return Reject.UNKNOWN_ASSET
        if c.base_asset_id == c.quote_asset_id:
            return Reject.INVALID_MARKET_SPEC
        if not (
            1 <= c.tick_size_atoms <= MAX
            and 1 <= c.lot_size_atoms <= MAX
            and 0 <= c.min_notional_atoms <= MAX
            and 1 <= len(c.symbol) <= 32
        ):
            return Reject.INVALID_MARKET_SPEC
        tick_lot = c.tick_size_atoms * c.lot_size_atoms
        whole = 10 ** self.assets[c.base_asset_id].decimals
        if tick_lot % whole != 0 or not 1 <= tick_lot // whole <= MAX:
            return Reject.INVALID_MARKET_SPEC
        if not (0 <= c.maker_fee_ppm <= MAX_FEE_PPM and 0 <= c.taker_fee_ppm <= MAX_FEE_PPM):
            return Reject.INVALID_FEE
        if not (
            0 <= c.price_band_bps <= MAX_BAND_BPS
            and 0 <= c.market_protection_bps <= MAX_BAND_BPS
            and 0 <= c.max_order_qty_atoms <= MAX
            and c.max_order_qty_atoms % c.lot_size_atoms == 0
        ):
            return Reject.INVALID_MARKET_SPEC
        return None

    def _create_market(self, c: CreateMarket) -> None:
        reason = self._check_market_spec(c)
        if reason is not None:
            return self._command_rejected(c, reason)
        qtl = c.tick_size_atoms * c.lot_size_atoms // 10 ** self.assets[c.base_asset_id].decimals
        self.markets[c.market_id] = Market(
            market_id=c.market_id,
            symbol=c.symbol,
            base=c.base_asset_id,
            quote=c.quote_asset_id,
            tick=c.tick_size_atoms,
            lot=c.lot_size_atoms,
            min_notional=c.min_notional_atoms,
            maker_ppm=c.maker_fee_ppm,
            taker_ppm=c.taker_fee_ppm,
            qtl=qtl,
            band_bps=c.price_band_bps,
            protection_bps=c.market_protection_bps,
            max_qty=c.max_order_qty_atoms // c.lot_size_atoms,
        )
        self._emit(
            MarketCreated,
            market_id=c.market_id,
            symbol=c.symbol,
            base_asset_id=c.base_asset_id,
            quote_asset_id=c.quote_asset_id,
            tick_size_atoms=c.tick_size_atoms,
            lot_size_atoms=c.lot_size_atoms,
            min_notional_atoms=c.min_notional_atoms,
            maker_fee_ppm=c.maker_fee_ppm,
            taker_fee_ppm=c.taker_fee_ppm,
            price_band_bps=c.price_band_bps,
            market_protection_bps=c.market_protection_bps,
            max_order_qty_atoms=c.max_order_qty_atoms,
        )

    def _set_market_state(self, c: SetMarketState) -> None:
        market = self.markets.get(c.market_id)
        if market is None:
            return self._command_rejected(c, Reject.UNKNOWN_MARKET)
        if not MarketState.OPEN <= c.state <= MarketState.POST_ONLY:
            return self._command_rejected(c, Reject.INVALID_MARKET_STATE)
        market.state = c.state
        self._emit(MarketStateChanged, market_id=c.market_id, state=c.state)
        return None

    def _set_account_frozen(self, c: SetAccountFrozen) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            return self._command_rejected(c, Reject.UNKNOWN_ACCOUNT)
        account.frozen = bool(c.frozen)
        self._emit(
            AccountFrozenChanged,
            account_id=c.account_id,
            frozen=account.frozen,
            staff_id=c.staff_id,
        )
        return None

    def _withdrawal_decision(self, c: WithdrawalDecision) -> None:
        """A staff decision, recorded: only checked against the held withdrawal."""
        w = self.pending.get(c.withdrawal_id)
        if w is None or w.account_id != c.account_id:
            return self._command_rejected(c, Reject.UNKNOWN_WITHDRAWAL)
        return None

    def _set_account_tier(self, c: SetAccountTier) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            return self._command_rejected(c, Reject.UNKNOWN_ACCOUNT)
        if not 0 <= c.tier <= MAX_TIER:
            return self._command_rejected(c, Reject.INVALID_TIER)
        account.tier = c.tier
        self._emit(AccountTierChanged, account_id=c.account_id, tier=c.tier, staff_id=c.staff_id)
        return None

    def _create_account(self, c: CreateAccount) -> None:
        if not 1 <= c.account_id < self.config.max_accounts:
            return self._command_rejected(c, Reject.INVALID_ACCOUNT_ID)
        if c.account_id in self.accounts:
            return self._command_rejected(c, Reject.ACCOUNT_EXISTS)
        self.accounts[c.account_id] = Account(c.account_id)
        self._emit(AccountCreated, account_id=c.account_id)

    def _deposit(self, c: Deposit) -> None:
        # Resolution: the system account 0 is never a created account: UNKNOWN_ACCOUNT.
        if c.account_id not in self.accounts:
            return self._command_rejected(c, Reject.UNKNOWN_ACCOUNT)
        asset = self.assets.get(c.asset_id)
        if asset is None:
            return self._command_rejected(c, Reject.UNKNOWN_ASSET)
        if not 1 <= c.amount_atoms <= MAX:
            return self._command_rejected(c, Reject.INVALID_AMOUNT)
        if c.deposit_key in self.deposit_keys:
            return self._command_rejected(c, Reject.DUPLICATE_DEPOSIT)
        if -asset.custody + c.amount_atoms > MAX:
            return self._command_rejected(c, Reject.BALANCE_OVERFLOW)
        self.deposit_keys.add(c.deposit_key)
        self._post1(
            PostingReason.DEPOSIT,
            c.asset_id,
            (SYSTEM_ACCOUNT, Bucket.CUSTODY),
            (c.account_id, AVAILABLE),
            c.amount_atoms,
        )

    def _withdraw_request(self, c: WithdrawRequest) -> None:
        account = self.accounts.get(c.account_id)
        if account is None:
            return self._command_rejected(c, Reject.UNKNOWN_ACCOUNT)
        if c.asset_id not in self.assets:
            return self._command_rejected(c, Reject.UNKNOWN_ASSET)
        if not 1 <= c.amount_atoms <= MAX:
            return self._command_rejected(c, Reject.INVALID_AMOUNT)
        # Resolution: an id is "seen" only once a request with it was accepted (a refusal
        # changes nothing), so a refused id may be used again.
        if c.withdrawal_id < 1 or c.withdrawal_id in self.withdrawal_ids:
            return self._command_rejected(c, Reject.DUPLICATE_WITHDRAWAL)
        if c.amount_atoms > account.available(c.asset_id):
            return self._command_rejected(c, Reject.INSUFFICIENT_FUNDS)
        if account.frozen:
            return self._command_rejected(c, Reject.ACCOUNT_FROZEN)
        self.withdrawal_ids.add(c.withdrawal_id)
        self.pending[c.withdrawal_id] = Withdrawal(
            c.withdrawal_id, c.account_id, c.asset_id, c.amount_atoms
        )
        self._emit(
            WithdrawalHeld,
            withdrawal_id=c.withdrawal_id,
            account_id=c.account_id,
            asset_id=c.asset_id,
            amount_atoms=c.amount_atoms,
        )
        self._post1(
            PostingReason.WITHDRAW_HOLD,
            c.asset_id,
            (c.account_id, AVAILABLE),
            (c.account_id, HELD_WITHDRAWALS),
            c.amount_atoms,
        )

    def _withdraw_result(self, c: WithdrawResult) -> None:
        w = self.pending.get(c.withdrawal_id)
        if w is None:
            return self._command_rejected(c, Reject.UNKNOWN_WITHDRAWAL)
        del self.pending[c.withdrawal_id]
        success = bool(c.success)
        self._emit(
            WithdrawalSettled,
            withdrawal_id=w.withdrawal_id,
            account_id=w.account_id,
            asset_id=w.asset_id,
            amount_atoms=w.amount,
            success=success,
        )
        if success:
            reason, credit = PostingReason.WITHDRAW_SETTLE, (SYSTEM_ACCOUNT, Bucket.CUSTODY)
        else:
            reason, credit = PostingReason.WITHDRAW_RELEASE, (w.account_id, AVAILABLE)
        self._post1(reason, w.asset_id, (w.account_id, HELD_WITHDRAWALS), credit, w.amount)

    # ---------------------------------------------------------------------------------------
    # State image

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
    def from_image(cls, image: StateImage) -> ReferenceEngine:
        assert image.format_version == FORMAT_VERSION, image.format_version
        eng = cls(image.config)
        eng.last_seq = image.last_seq
        eng.next_txn_id = image.next_txn_id
        for a in image.assets:
            eng.assets[a.asset_id] = Asset(
                a.asset_id, a.symbol, a.decimals, a.fees_atoms, a.custody_atoms
            )
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
