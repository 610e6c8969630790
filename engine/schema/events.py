"""Events: what the engine emits (tagged msgspec Structs), every one carrying its command's
sequence."""

from __future__ import annotations

from typing import Final

import msgspec

# --------------------------------------------------------------------------------------------
# Events. Every event carries the sequence of the command that caused it; (seq, index within
# the command) is its stable identity.


class _Event(msgspec.Struct, tag=True, frozen=True, kw_only=True, array_like=True):
    seq: int


class AssetCreated(_Event):
    asset_id: int
    symbol: str
    decimals: int


class MarketCreated(_Event):
    market_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick_size_atoms: int
    lot_size_atoms: int
    min_notional_atoms: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    price_band_bps: int = 0
    market_protection_bps: int = 0
    max_order_qty_atoms: int = 0


class MarketStateChanged(_Event):
    market_id: int
    state: int


class AccountFrozenChanged(_Event):
    account_id: int
    frozen: bool
    staff_id: str


class AccountTierChanged(_Event):
    account_id: int
    tier: int
    staff_id: str


class TierTradeLimitSet(_Event):
    tier: int
    asset_id: int
    max_order_notional_atoms: int
    """0 = no limit."""
    staff_id: str


class DeadMansSwitchSet(_Event):
    account_id: int
    fire_at_ns: int
    """0 = disarmed."""


class DeadMansSwitchFired(_Event):
    """Followed by OrderCancelled(DEAD_MANS_SWITCH) for each of the account's open orders."""

    account_id: int
    fire_at_ns: int


class AccountCreated(_Event):
    account_id: int


class CommandRejected(_Event):
    """A non-order command refused; nothing changed."""

    command: str
    reason: int


class StreamMessageRejected(_Event):
    """A `RejectStreamMessage` ran: the stream message at ``stream_seq`` executed nothing
    (``reason``: `StreamReject`). Operators are alerted (log, metric)."""

    stream_seq: int
    reason: int


class OrderAccepted(_Event):
    order_id: int
    """Equal to the sequence of the PlaceOrder command: unique, increasing, free to compute."""
    account_id: int
    market_id: int
    client_order_id: int
    side: int
    order_type: int
    time_in_force: int
    price_atoms: int
    qty_atoms: int
    quote_qty_atoms: int
    hold_atoms: int
    """Atoms moved to HELD_ORDERS for this order (quote for buys, base for sells)."""
    stop_price_atoms: int = 0
    trailing_delta_bps: int = 0
    limit_offset_atoms: int = 0
    display_qty_atoms: int = 0
    expire_at_ns: int = 0
    stp_mode: int = 0


class OrderRejected(_Event):
    """An order command (place, cancel, amend, cancel-all) refused; nothing changed."""

    account_id: int
    market_id: int
    order_id: int
    """The target for cancel/amend, 0 for a refused placement."""
    client_order_id: int
    reason: int


class Trade(_Event):
    trade_id: int
    """Per market, 1, 2, 3, ..."""
    market_id: int
    price_atoms: int
    qty_atoms: int
    quote_atoms: int
    """price x qty in quote atoms, before fees."""
    maker_order_id: int
    maker_account_id: int
    taker_order_id: int
    taker_account_id: int
    taker_side: int
    maker_fee_atoms: int
    taker_fee_atoms: int


class SelfTradePrevented(_Event):
    """The taker met a resting order of its own account; no trade. What happens next (which
    order expires or shrinks) follows from ``stp_mode`` and is reported by its own events."""

    market_id: int
    account_id: int
    taker_order_id: int
    maker_order_id: int
    qty_atoms: int
    """The quantity that would have traded (for a quote-bounded taker: the maker's open qty)."""
    stp_mode: int


class OrderTriggered(_Event):
    """A conditional order's condition held: it now enters as a taker (same order id)."""

    order_id: int
    account_id: int
    market_id: int
    trigger_price_atoms: int
    last_price_atoms: int
    price_atoms: int
    """The limit it enters with (0 = market)."""


class IcebergRefreshed(_Event):
    """The visible slice of an iceberg was filled: a new slice joins the back of its level."""

    order_id: int
    market_id: int
    price_atoms: int
    visible_qty_atoms: int
    hidden_qty_atoms: int


class OrderCancelled(_Event):
    order_id: int
    account_id: int
    market_id: int
    remaining_qty_atoms: int
    reason: int


class OrderExpired(_Event):
    order_id: int
    account_id: int
    market_id: int
    remaining_qty_atoms: int
    reason: int


class OrderAmended(_Event):
    order_id: int
    account_id: int
    market_id: int
    price_atoms: int
    qty_atoms: int
    """New open quantity."""
    priority_kept: bool
    hold_atoms: int
    """The order's hold after the amend."""


class WithdrawalHeld(_Event):
    withdrawal_id: int
    account_id: int
    asset_id: int
    amount_atoms: int
    address: str = ""
    """The request's destination (``WithdrawRequest.address``), for AML's address rules."""


class WithdrawalSettled(_Event):
    withdrawal_id: int
    account_id: int
    asset_id: int
    amount_atoms: int
    success: bool


class Posting(_Event):
    """One balanced movement: ``amount_atoms`` leave (debit) one bucket and enter (credit)
    another, same asset. A transaction is the postings sharing ``txn_id``; each posting balances
    on its own, so every transaction balances per asset by construction."""

    txn_id: int
    reason: int
    asset_id: int
    debit_account_id: int
    debit_bucket: int
    credit_account_id: int
    credit_bucket: int
    amount_atoms: int


Event = (
    AssetCreated
    | MarketCreated
    | AccountCreated
    | CommandRejected
    | OrderAccepted
    | OrderRejected
    | Trade
    | OrderCancelled
    | OrderExpired
    | OrderAmended
    | SelfTradePrevented
    | OrderTriggered
    | IcebergRefreshed
    | MarketStateChanged
    | DeadMansSwitchSet
    | DeadMansSwitchFired
    | WithdrawalHeld
    | WithdrawalSettled
    | Posting
    | AccountFrozenChanged
    | AccountTierChanged
    | TierTradeLimitSet
    | StreamMessageRejected
)

EVENT_DECODER: Final = msgspec.msgpack.Decoder(Event)
