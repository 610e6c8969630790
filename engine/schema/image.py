"""The state image: the canonical encoding of the whole engine state, and its hash."""

from __future__ import annotations

from typing import Final

import msgspec

# --------------------------------------------------------------------------------------------
# State image: the canonical encoding of the whole engine state. The state hash is BLAKE2b-256
# of its msgpack encoding, snapshots store it, and both the compiled core and the reference
# model produce it, so "same state" is checked by comparing bytes, not by trusting a walk.
# Everything is listed in a defined order; nothing depends on slot allocation or dict order.


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Explicit bounds (TIGER_STYLE): every table in the engine has a fixed capacity."""

    max_accounts: int = 1 << 14
    """Account ids are 1 .. max_accounts - 1."""
    max_assets: int = 64
    max_markets: int = 64
    max_orders: int = 1 << 20
    """Open orders across the engine."""
    max_levels_per_side: int = 1 << 14
    max_open_orders_per_account: int = 1_000
    max_fills_per_order: int = 1_000
    """A taker stops (OrderExpired MAX_FILLS) after this many fills: bounds one command's work."""
    max_triggers_per_command: int = 16
    """Conditional orders fired by one command at most (bounds a trigger cascade); others whose
    condition held stay pending and are evaluated again after the market's next trades."""


class AssetImage(msgspec.Struct, frozen=True, array_like=True):
    asset_id: int
    symbol: str
    decimals: int
    fees_atoms: int
    """Balance of the system FEES bucket."""
    custody_atoms: int
    """Balance of the system CUSTODY bucket: minus (deposits - settled withdrawals)."""


class MarketImage(msgspec.Struct, frozen=True, array_like=True):
    market_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick_size_atoms: int
    lot_size_atoms: int
    min_notional_atoms: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    last_trade_id: int
    state: int
    price_band_bps: int
    market_protection_bps: int
    max_order_qty_atoms: int
    last_price_atoms: int
    """Price of the last trade, 0 before the first."""


class BalanceImage(msgspec.Struct, frozen=True, array_like=True):
    asset_id: int
    available_atoms: int
    held_orders_atoms: int
    held_withdrawals_atoms: int


class AccountImage(msgspec.Struct, frozen=True, array_like=True):
    account_id: int
    balances: list[BalanceImage]
    """Ascending asset_id; only assets with a non-zero bucket."""
    dead_mans_switch_ns: int = 0
    """Armed dead-man's switch time, 0 = none."""


class AccountFlagsImage(msgspec.Struct, frozen=True, array_like=True):
    """Staff-set standing of an account (only accounts with one are listed)."""

    account_id: int
    frozen: bool
    tier: int
    """-1 = never set (no KYC regime: operator-made accounts), else 0..MAX_TIER."""


class TierTradeLimitImage(msgspec.Struct, frozen=True, array_like=True):
    """A tier's largest order notional in markets quoted in an asset (SetTierTradeLimit)."""

    asset_id: int
    tier: int
    max_order_notional_atoms: int
    """> 0 (a limit set back to 0 is not listed)."""


class OrderImage(msgspec.Struct, frozen=True, array_like=True):
    order_id: int
    account_id: int
    market_id: int
    side: int
    order_type: int
    price_atoms: int
    qty_atoms: int
    """Open quantity."""
    hold_atoms: int
    client_order_id: int
    time_in_force: int
    expire_at_ns: int
    stp_mode: int
    display_qty_atoms: int
    """Iceberg slice size, 0 = not an iceberg."""
    visible_qty_atoms: int
    """What market data shows (the current slice; = qty_atoms when not an iceberg); the rest
    of qty_atoms is hidden."""


class ConditionalOrderImage(msgspec.Struct, frozen=True, array_like=True):
    """A conditional order waiting for its trigger (not in the book)."""

    order_id: int
    account_id: int
    market_id: int
    side: int
    order_type: int
    time_in_force: int
    price_atoms: int
    """Limit (STOP_LIMIT, TAKE_PROFIT_LIMIT) or limit bound (TRAILING_STOP_LIMIT); 0 = market."""
    qty_atoms: int
    quote_qty_atoms: int
    """Market buys: the budget held."""
    trigger_price_atoms: int
    """Current trigger price (a trailing stop's moves with the market)."""
    trailing_delta_bps: int
    limit_offset_atoms: int
    extreme_price_atoms: int
    """Trailing stops: the peak (sell) or trough (buy) since placement; 0 otherwise."""
    expire_at_ns: int
    stp_mode: int
    display_qty_atoms: int
    hold_atoms: int
    client_order_id: int


class WithdrawalImage(msgspec.Struct, frozen=True, array_like=True):
    withdrawal_id: int
    account_id: int
    asset_id: int
    amount_atoms: int


class StateImage(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    format_version: int
    config: EngineConfig
    last_seq: int
    next_txn_id: int
    assets: list[AssetImage]
    """Ascending asset_id."""
    markets: list[MarketImage]
    """Ascending market_id."""
    accounts: list[AccountImage]
    """Ascending account_id; every created account, even with no balance."""
    orders: list[OrderImage]
    """Book order: markets ascending; in each, bids best to worst then asks best to worst;
    within a price level, time priority."""
    conditional_orders: list[ConditionalOrderImage]
    """Ascending order_id."""
    pending_withdrawals: list[WithdrawalImage]
    """Ascending withdrawal_id."""
    withdrawal_ids: list[int]
    """Every withdrawal id ever requested, ascending (duplicates are refused forever)."""
    deposit_keys: list[str]
    """Every credited deposit key, sorted."""
    account_flags: list[AccountFlagsImage] = []
    """Ascending account_id: accounts frozen or given a tier. Last, and left out by
    `encode_image` when empty, so a state without any is encoded (and hashed) exactly as
    before the field existed; older snapshots decode with the default."""
    tier_trade_limits: list[TierTradeLimitImage] = []
    """Ascending (asset_id, tier): the limits in force. Left out by `encode_image` when
    empty, like ``account_flags`` (and with it, when both are), for the same reason."""


IMAGE_ENCODER: Final = msgspec.msgpack.Encoder()
IMAGE_DECODER: Final = msgspec.msgpack.Decoder(StateImage)


def encode_image(image: StateImage) -> bytes:
    """The canonical encoding. Without account flags, the 12-field array of images written
    before `StateImage.account_flags` existed (msgspec writes every field of an array-like
    struct, defaults included), so their recorded hashes still match; likewise without tier
    trade limits, the 13-field array of images written before those."""
    if image.tier_trade_limits:
        return IMAGE_ENCODER.encode(image)
    fields = msgspec.structs.astuple(image)[:-1]
    return IMAGE_ENCODER.encode(fields if image.account_flags else fields[:-1])


def state_hash(image: StateImage) -> str:
    """BLAKE2b-256 hex of the canonical encoding: equal hashes mean equal engine states."""
    import hashlib

    return hashlib.blake2b(encode_image(image), digest_size=32).hexdigest()
