"""The reference engine's admin and custody commands (docs/engine-semantics.md): assets, markets,
accounts and their states, deposits, withdrawals and their results. Every handler validates
everything first (returning a reason code), and only then mutates and emits events.
"""

from __future__ import annotations

from engine.reference.model import (
    Account,
    Asset,
    Market,
    Withdrawal,
)
from engine.reference.orders import OrderCommands
from engine.reference.state import AVAILABLE, HELD_WITHDRAWALS, MAX
from engine.schema import (
    MAX_BAND_BPS,
    MAX_FEE_PPM,
    MAX_TIER,
    SYSTEM_ACCOUNT,
    AccountCreated,
    AccountFrozenChanged,
    AccountTierChanged,
    AssetCreated,
    Bucket,
    Command,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    MarketCreated,
    MarketState,
    MarketStateChanged,
    PostingReason,
    Reject,
    RejectStreamMessage,
    SetAccountFrozen,
    SetAccountTier,
    SetMarketState,
    SetTierTradeLimit,
    StreamMessageRejected,
    TierTradeLimitSet,
    WithdrawalDecision,
    WithdrawalHeld,
    WithdrawalSettled,
    WithdrawRequest,
    WithdrawResult,
)


class AdminCommands(OrderCommands):
    """The handlers of every command that is not an order command."""

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

    def _set_tier_trade_limit(self, c: SetTierTradeLimit) -> None:
        if not 0 <= c.tier <= MAX_TIER:
            return self._command_rejected(c, Reject.INVALID_TIER)
        if c.asset_id not in self.assets:
            return self._command_rejected(c, Reject.UNKNOWN_ASSET)
        if not 0 <= c.max_order_notional_atoms <= MAX:
            return self._command_rejected(c, Reject.INVALID_AMOUNT)
        if c.max_order_notional_atoms:
            self.tier_limits[c.asset_id, c.tier] = c.max_order_notional_atoms
        else:
            self.tier_limits.pop((c.asset_id, c.tier), None)
        self._emit(
            TierTradeLimitSet,
            tier=c.tier,
            asset_id=c.asset_id,
            max_order_notional_atoms=c.max_order_notional_atoms,
            staff_id=c.staff_id,
        )
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
            address=c.address,
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
