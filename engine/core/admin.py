"""Admin and custody commands, in plain Python on the core's arrays (they are rare).

docs/engine-semantics.md, "Admin and custody commands": same checks, same order, same events
as the kernel would produce; the balances they touch are the kernel's numpy arrays.
"""

from __future__ import annotations

import numpy as np

from engine.core.accountrow import install_account
from engine.core.arrays import CoreArrays
from engine.core.layout import (
    A_DMS,
    A_EXISTS,
    A_FROZEN,
    A_TIER,
    B_AVAILABLE,
    B_HELD_WITHDRAWALS,
    C_NEXT_DMS,
    C_NEXT_TXN,
    M_BAND,
    M_BASE,
    M_EXISTS,
    M_LAST_PRICE,
    M_LAST_TRADE,
    M_LOT,
    M_LOT_DIV,
    M_MAKER_PPM,
    M_MAXQ,
    M_MIN_NOTIONAL,
    M_PROT,
    M_QTL,
    M_QUOTE,
    M_STATE,
    M_TAKER_PPM,
    M_TICK,
    M_TICK_DIV,
    M_TIER_LIMIT,
    M_TRAIL_HEAD,
    M_TRAIL_TAIL,
    M_WORST_PPM,
    MAX,
    S_CUSTODY,
)
from engine.core.money import divisor_constants
from engine.core.tierlimits import TierLimits
from engine.schema import (
    LEGACY_DEMO_KEY_PREFIX,
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
    DeadMansSwitchSet,
    Deposit,
    EngineConfig,
    Event,
    MarketCreated,
    MarketState,
    MarketStateChanged,
    Posting,
    PostingReason,
    Reject,
    RejectStreamMessage,
    SetAccountFrozen,
    SetAccountTier,
    SetDeadMansSwitch,
    SetMarketState,
    SetTierTradeLimit,
    StreamMessageRejected,
    WithdrawalDecision,
    WithdrawalHeld,
    WithdrawalSettled,
    WithdrawRequest,
    WithdrawResult,
)


class AdminCommands(TierLimits):
    """Python-side state (symbols, deposit keys, withdrawals) and the admin handlers."""

    config: EngineConfig
    _a: CoreArrays

    def _init_admin(self) -> None:
        self._assets: dict[int, tuple[str, int]] = {}  # asset_id -> (symbol, decimals)
        self._market_symbols: dict[int, str] = {}
        self._deposit_keys: set[str] = set()
        self._withdrawal_ids: set[int] = set()
        self._pending: dict[int, tuple[int, int, int]] = {}  # id -> (account, asset, amount)
        self._ticks: list[int] = [0] * self.config.max_markets
        self._lots: list[int] = [0] * self.config.max_markets
        # (base, quote) asset ids per market: the decoder derives a trade's postings from them
        self._market_assets: list[tuple[int, int]] = [(0, 0)] * self.config.max_markets
        self._tier_limits: dict[tuple[int, int], int] = {}  # see TierLimits

    def deposit_credited(self, deposit_key: str) -> bool:
        """Whether a Deposit with this key was credited (keys are credited at most once)."""
        return deposit_key in self._deposit_keys

    def demo_deposit_accounts(self) -> set[int]:
        """Accounts credited by the demo faucet, from the credited deposit keys (the faucet
        keys its deposits ``demo:<account>:<asset>``; no other source may use the prefix)."""
        out = set()
        for key in self._deposit_keys:
            if key.startswith(LEGACY_DEMO_KEY_PREFIX):
                account = key.split(":", 2)[1]
                if account.isascii() and account.isdecimal():
                    out.add(int(account))
        return out

    # ---- helpers ---------------------------------------------------------------------------

    def _account_exists(self, account_id: int) -> bool:
        return 1 <= account_id < self.config.max_accounts and bool(
            self._a.acct[account_id, A_EXISTS]
        )

    def _posting(
        self,
        seq: int,
        reason: PostingReason,
        asset: int,
        debit: tuple[int, int],
        credit: tuple[int, int],
        amount: int,
    ) -> Posting:
        """A one-posting transaction (amount > 0), applied to the arrays."""
        a = self._a
        txn = int(a.ctr[C_NEXT_TXN])
        a.ctr[C_NEXT_TXN] = txn + 1
        for (account, bucket), delta in ((debit, -amount), (credit, amount)):
            if account == SYSTEM_ACCOUNT:
                assert bucket == Bucket.CUSTODY, bucket
                a.sysb[asset, S_CUSTODY] += delta
            else:
                a.bal[account, asset, bucket] += delta
                assert a.bal[account, asset, bucket] >= 0, (account, asset, bucket)
        return Posting(
            seq=seq,
            txn_id=txn,
            reason=int(reason),
            asset_id=asset,
            debit_account_id=debit[0],
            debit_bucket=int(debit[1]),
            credit_account_id=credit[0],
            credit_bucket=int(credit[1]),
            amount_atoms=amount,
        )

    @staticmethod
    def _rejected(seq: int, command: Command, reason: Reject) -> list[Event]:
        return [CommandRejected(seq=seq, command=type(command).__name__, reason=int(reason))]

    def _run_admin(self, seq: int, ts: int, cmd: Command) -> list[Event]:
        t = type(cmd)
        if t is SetMarketState:
            return self._set_market_state(seq, cmd)
        if t is SetDeadMansSwitch:
            return self._set_dead_mans_switch(seq, ts, cmd)
        if t is Deposit:
            return self._deposit(seq, cmd)
        if t is WithdrawRequest:
            return self._withdraw_request(seq, cmd)
        if t is WithdrawResult:
            return self._withdraw_result(seq, cmd)
        if t is CreateAccount:
            return self._create_account(seq, cmd)
        if t is CreateAsset:
            return self._create_asset(seq, cmd)
        if t is CreateMarket:
            return self._create_market(seq, cmd)
        if t is SetAccountFrozen:
            return self._set_account_frozen(seq, cmd)
        if t is SetAccountTier:
            return self._set_account_tier(seq, cmd)
        if t is SetTierTradeLimit:
            return self._set_tier_trade_limit(seq, cmd)
        if t is WithdrawalDecision:
            return self._withdrawal_decision(seq, cmd)
        if t is RejectStreamMessage:  # a replica's record of a stream message it could not run
            return [StreamMessageRejected(seq=seq, stream_seq=cmd.stream_seq, reason=cmd.reason)]
        raise TypeError(f"not a command: {cmd!r}")

    # ---- handlers --------------------------------------------------------------------------

    def _create_asset(self, seq: int, c: CreateAsset) -> list[Event]:
        if not 0 <= c.asset_id < self.config.max_assets:
            return self._rejected(seq, c, Reject.INVALID_ASSET_SPEC)
        if c.asset_id in self._assets:
            return self._rejected(seq, c, Reject.ASSET_EXISTS)
        if not (0 <= c.decimals <= 18 and 1 <= len(c.symbol) <= 16):
            return self._rejected(seq, c, Reject.INVALID_ASSET_SPEC)
        self._assets[c.asset_id] = (c.symbol, c.decimals)
        return [AssetCreated(seq=seq, asset_id=c.asset_id, symbol=c.symbol, decimals=c.decimals)]

    def _create_market(self, seq: int, c: CreateMarket) -> list[Event]:
        if not 0 <= c.market_id < self.config.max_markets:
            return self._rejected(seq, c, Reject.INVALID_MARKET_SPEC)
        if self._a.mkt[c.market_id, M_EXISTS]:
            return self._rejected(seq, c, Reject.MARKET_EXISTS)
        if c.base_asset_id not in self._assets or c.quote_asset_id not in self._assets:
            return self._rejected(seq, c, Reject.UNKNOWN_ASSET)
        if c.base_asset_id == c.quote_asset_id:
            return self._rejected(seq, c, Reject.INVALID_MARKET_SPEC)
        if not (
            1 <= c.tick_size_atoms <= MAX
            and 1 <= c.lot_size_atoms <= MAX
            and 0 <= c.min_notional_atoms <= MAX
            and 1 <= len(c.symbol) <= 32
        ):
            return self._rejected(seq, c, Reject.INVALID_MARKET_SPEC)
        whole = 10 ** self._assets[c.base_asset_id][1]
        tick_lot = c.tick_size_atoms * c.lot_size_atoms
        qtl = tick_lot // whole
        if tick_lot % whole != 0 or not 1 <= qtl <= MAX:
            return self._rejected(seq, c, Reject.INVALID_MARKET_SPEC)
        if not (0 <= c.maker_fee_ppm <= MAX_FEE_PPM and 0 <= c.taker_fee_ppm <= MAX_FEE_PPM):
            return self._rejected(seq, c, Reject.INVALID_FEE)
        if not (
            0 <= c.price_band_bps <= MAX_BAND_BPS
            and 0 <= c.market_protection_bps <= MAX_BAND_BPS
            and 0 <= c.max_order_qty_atoms <= MAX
            and c.max_order_qty_atoms % c.lot_size_atoms == 0
        ):
            return self._rejected(seq, c, Reject.INVALID_MARKET_SPEC)
        self._install_market(
            c.market_id,
            c.symbol,
            c.base_asset_id,
            c.quote_asset_id,
            c.tick_size_atoms,
            c.lot_size_atoms,
            c.min_notional_atoms,
            c.maker_fee_ppm,
            c.taker_fee_ppm,
            0,
            rules=(0, c.price_band_bps, c.market_protection_bps, c.max_order_qty_atoms, 0),
        )
        return [
            MarketCreated(
                seq=seq,
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
        ]

    def _set_market_state(self, seq: int, c: SetMarketState) -> list[Event]:
        if not (0 <= c.market_id < self.config.max_markets and self._a.mkt[c.market_id, M_EXISTS]):
            return self._rejected(seq, c, Reject.UNKNOWN_MARKET)
        if not MarketState.OPEN <= c.state <= MarketState.POST_ONLY:
            return self._rejected(seq, c, Reject.INVALID_MARKET_STATE)
        self._a.mkt[c.market_id, M_STATE] = c.state
        return [MarketStateChanged(seq=seq, market_id=c.market_id, state=c.state)]

    def _set_account_frozen(self, seq: int, c: SetAccountFrozen) -> list[Event]:
        if not self._account_exists(c.account_id):
            return self._rejected(seq, c, Reject.UNKNOWN_ACCOUNT)
        self._a.acct[c.account_id, A_FROZEN] = int(bool(c.frozen))
        return [
            AccountFrozenChanged(
                seq=seq, account_id=c.account_id, frozen=bool(c.frozen), staff_id=c.staff_id
            )
        ]

    def _set_account_tier(self, seq: int, c: SetAccountTier) -> list[Event]:
        if not self._account_exists(c.account_id):
            return self._rejected(seq, c, Reject.UNKNOWN_ACCOUNT)
        if not 0 <= c.tier <= MAX_TIER:
            return self._rejected(seq, c, Reject.INVALID_TIER)
        self._a.acct[c.account_id, A_TIER] = c.tier + 1
        return [
            AccountTierChanged(seq=seq, account_id=c.account_id, tier=c.tier, staff_id=c.staff_id)
        ]

    def account_standing(self, account_id: int) -> tuple[bool, int]:
        """(frozen, tier; -1 = never set) of an existing account."""
        row = self._a.acct[account_id]
        return bool(row[A_FROZEN]), int(row[A_TIER]) - 1

    def _set_dead_mans_switch(self, seq: int, ts: int, c: SetDeadMansSwitch) -> list[Event]:
        if not self._account_exists(c.account_id):
            return self._rejected(seq, c, Reject.UNKNOWN_ACCOUNT)
        if c.fire_at_ns < 0 or (c.fire_at_ns != 0 and c.fire_at_ns <= ts):
            return self._rejected(seq, c, Reject.INVALID_EXPIRY)
        self._arm(c.account_id, c.fire_at_ns)
        return [DeadMansSwitchSet(seq=seq, account_id=c.account_id, fire_at_ns=c.fire_at_ns)]

    def _arm(self, account_id: int, fire_at: int) -> None:
        """Set (0 = disarm) a switch; C_NEXT_DMS stays a lower bound of the armed times."""
        a = self._a
        a.acct[account_id, A_DMS] = fire_at
        if 0 < fire_at < a.ctr[C_NEXT_DMS]:
            a.ctr[C_NEXT_DMS] = fire_at

    def _install_market(
        self,
        market_id: int,
        symbol: str,
        base: int,
        quote: int,
        tick: int,
        lot: int,
        min_notional: int,
        maker_ppm: int,
        taker_ppm: int,
        last_trade_id: int,
        *,
        rules: tuple[int, int, int, int, int],
    ) -> None:
        """``rules``: (state, band bps, protection bps, max order qty atoms, last price atoms)."""
        row = self._a.mkt[market_id]
        row[:] = 0
        row[M_EXISTS] = 1
        row[M_BASE] = base
        row[M_QUOTE] = quote
        row[M_TICK] = tick
        row[M_LOT] = lot
        row[M_TICK_DIV : M_TICK_DIV + 3] = divisor_constants(tick)
        row[M_LOT_DIV : M_LOT_DIV + 3] = divisor_constants(lot)
        row[M_QTL] = tick * lot // 10 ** self._assets[base][1]
        row[M_MIN_NOTIONAL] = min_notional
        row[M_MAKER_PPM] = maker_ppm
        row[M_TAKER_PPM] = taker_ppm
        row[M_WORST_PPM] = max(maker_ppm, taker_ppm)
        row[M_LAST_TRADE] = last_trade_id
        state, band, protection, max_qty, last_price = rules
        row[M_STATE] = state
        row[M_BAND] = band
        row[M_PROT] = protection
        row[M_MAXQ] = max_qty // lot
        row[M_LAST_PRICE] = last_price // tick
        row[M_TRAIL_HEAD] = -1
        row[M_TRAIL_TAIL] = -1
        for tier in range(MAX_TIER + 1):
            row[M_TIER_LIMIT + tier] = self._tier_limits.get((quote, tier), 0)
        self._market_symbols[market_id] = symbol
        self._ticks[market_id] = tick
        self._lots[market_id] = lot
        self._market_assets[market_id] = (base, quote)

    def _create_account(self, seq: int, c: CreateAccount) -> list[Event]:
        if not 1 <= c.account_id < self.config.max_accounts:
            return self._rejected(seq, c, Reject.INVALID_ACCOUNT_ID)
        if self._a.acct[c.account_id, A_EXISTS]:
            return self._rejected(seq, c, Reject.ACCOUNT_EXISTS)
        install_account(self._a.acct, self._a.ctr, c.account_id)
        return [AccountCreated(seq=seq, account_id=c.account_id)]

    def _deposit(self, seq: int, c: Deposit) -> list[Event]:
        if not self._account_exists(c.account_id):
            return self._rejected(seq, c, Reject.UNKNOWN_ACCOUNT)
        if c.asset_id not in self._assets:
            return self._rejected(seq, c, Reject.UNKNOWN_ASSET)
        if not 1 <= c.amount_atoms <= MAX:
            return self._rejected(seq, c, Reject.INVALID_AMOUNT)
        if c.deposit_key in self._deposit_keys:
            return self._rejected(seq, c, Reject.DUPLICATE_DEPOSIT)
        if -int(self._a.sysb[c.asset_id, S_CUSTODY]) + c.amount_atoms > MAX:
            return self._rejected(seq, c, Reject.BALANCE_OVERFLOW)
        self._deposit_keys.add(c.deposit_key)
        return [
            self._posting(
                seq,
                PostingReason.DEPOSIT,
                c.asset_id,
                (SYSTEM_ACCOUNT, Bucket.CUSTODY),
                (c.account_id, B_AVAILABLE),
                c.amount_atoms,
            )
        ]

    def _withdraw_request(self, seq: int, c: WithdrawRequest) -> list[Event]:
        if not self._account_exists(c.account_id):
            return self._rejected(seq, c, Reject.UNKNOWN_ACCOUNT)
        if c.asset_id not in self._assets:
            return self._rejected(seq, c, Reject.UNKNOWN_ASSET)
        if not 1 <= c.amount_atoms <= MAX:
            return self._rejected(seq, c, Reject.INVALID_AMOUNT)
        if c.withdrawal_id < 1 or c.withdrawal_id in self._withdrawal_ids:
            return self._rejected(seq, c, Reject.DUPLICATE_WITHDRAWAL)
        if c.amount_atoms > int(self._a.bal[c.account_id, c.asset_id, B_AVAILABLE]):
            return self._rejected(seq, c, Reject.INSUFFICIENT_FUNDS)
        if self._a.acct[c.account_id, A_FROZEN]:
            return self._rejected(seq, c, Reject.ACCOUNT_FROZEN)
        self._withdrawal_ids.add(c.withdrawal_id)
        self._pending[c.withdrawal_id] = (c.account_id, c.asset_id, c.amount_atoms)
        return [
            WithdrawalHeld(
                seq=seq,
                withdrawal_id=c.withdrawal_id,
                account_id=c.account_id,
                asset_id=c.asset_id,
                amount_atoms=c.amount_atoms,
                address=c.address,
            ),
            self._posting(
                seq,
                PostingReason.WITHDRAW_HOLD,
                c.asset_id,
                (c.account_id, B_AVAILABLE),
                (c.account_id, B_HELD_WITHDRAWALS),
                c.amount_atoms,
            ),
        ]

    def _withdrawal_decision(self, seq: int, c: WithdrawalDecision) -> list[Event]:
        """A staff decision, recorded: only checked against the held withdrawal."""
        w = self._pending.get(c.withdrawal_id)
        if w is None or w[0] != c.account_id:
            return self._rejected(seq, c, Reject.UNKNOWN_WITHDRAWAL)
        return []

    def _withdraw_result(self, seq: int, c: WithdrawResult) -> list[Event]:
        w = self._pending.pop(c.withdrawal_id, None)
        if w is None:
            return self._rejected(seq, c, Reject.UNKNOWN_WITHDRAWAL)
        account, asset, amount = w
        success = bool(c.success)
        if success:
            reason, credit = PostingReason.WITHDRAW_SETTLE, (SYSTEM_ACCOUNT, Bucket.CUSTODY)
        else:
            reason, credit = PostingReason.WITHDRAW_RELEASE, (account, B_AVAILABLE)
        return [
            WithdrawalSettled(
                seq=seq,
                withdrawal_id=c.withdrawal_id,
                account_id=account,
                asset_id=asset,
                amount_atoms=amount,
                success=success,
            ),
            self._posting(seq, reason, asset, (account, B_HELD_WITHDRAWALS), credit, amount),
        ]


def balances_nonzero(bal: np.ndarray, accounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(account index into ``accounts``, asset) pairs with a non-zero bucket, sorted."""
    sub = bal[accounts]
    return np.nonzero(sub.any(axis=2))
