"""Commands and events: the engine's contract, and the single source of truth for the journal.

Every value that crosses the engine boundary is one of the msgspec Structs below. Commands are
what the sequencer journals; events are what the engine emits. Both are tagged unions (the tag
is the class name), so one decoder reads any of them and a new kind is a new Struct, never a
new field meaning.

Units (DESIGN.md, money rule 1): integers only.

- ``*_atoms``: an amount in the asset's smallest unit (satoshi, wei, 10^-6 USDT, ...).
- ``price_atoms``: quote atoms per one *whole* base unit (10^base_decimals base atoms).
  A price must be a multiple of the market's ``tick_size_atoms``.
- ``qty_atoms``: base atoms; a multiple of the market's ``lot_size_atoms``.
- ``*_ppm``: parts per million (1_000 ppm = 0.1 %).
- ``*_ns``: nanoseconds of journal time (the sequencer's clock, never a wall clock).

Inside the core, prices are ticks and quantities lots; the conversion happens once, when a
command is admitted, and every rejection for a value off the grid names the grid.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

FORMAT_VERSION: Final = 2
"""Bumped whenever an encoded command or event changes meaning; recorded in snapshots."""

MAX_AMOUNT_ATOMS: Final = (1 << 62) - 1
"""Upper bound for any amount, price or balance; keeps every sum of two inside int64."""

MAX_ACCOUNT_ID: Final = (1 << 31) - 1
MAX_CLIENT_ORDER_ID: Final = (1 << 63) - 1
"""Client order ids are non-negative int64 values; 0 means none."""
MAX_FEE_PPM: Final = 100_000
"""10 %: a bound that keeps amount + fee inside int64 and catches a fee typed in basis points."""
BPS: Final = 10_000
"""Basis points per whole: price bands, market protection and trailing deltas are in bps."""
MAX_BAND_BPS: Final = 10_000
"""Price band and market protection bound: 100 % (a band of 0 is off)."""
MAX_TRAILING_DELTA_BPS: Final = 9_999
SYSTEM_ACCOUNT: Final = 0
"""Account 0 is the exchange itself: it owns the fee and custody buckets."""


class Side(enum.IntEnum):
    BUY = 0
    SELL = 1


class OrderType(enum.IntEnum):
    LIMIT = 0
    MARKET = 1
    LIMIT_MAKER = 2
    """Post-only: rejected (TAKER_NOT_ALLOWED) if any part would take liquidity on arrival."""
    STOP_MARKET = 3
    """Conditional: a market order once the last trade price reaches ``stop_price_atoms``
    (buy: last >= stop; sell: last <= stop)."""
    STOP_LIMIT = 4
    """Conditional: a limit order at ``price_atoms`` once the stop condition holds."""
    TAKE_PROFIT_MARKET = 5
    """Conditional: a market order once the last trade price reaches ``stop_price_atoms`` from
    the other side (buy: last <= stop; sell: last >= stop)."""
    TAKE_PROFIT_LIMIT = 6
    TRAILING_STOP_MARKET = 7
    """Conditional: a stop whose trigger trails the best last price since placement by
    ``trailing_delta_bps`` (sell: peak - delta; buy: trough + delta)."""
    TRAILING_STOP_LIMIT = 8
    """Trailing stop entering as a limit order ``limit_offset_atoms`` beyond the trigger,
    bounded by ``price_atoms`` (buy: at most; sell: at least)."""


CONDITIONAL_TYPES: Final = frozenset(range(3, 9))
LIMIT_CONDITIONAL_TYPES: Final = frozenset({4, 6, 8})


class TimeInForce(enum.IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2
    GTD = 3
    """Good till date: rests like GTC until the first command whose journal timestamp is at or
    after ``expire_at_ns``, which expires it first (OrderExpired GTD)."""


class StpMode(enum.IntEnum):
    """Self-trade prevention, chosen by the taker: what happens when it meets its own maker."""

    NONE = 0
    EXPIRE_TAKER = 1
    EXPIRE_MAKER = 2
    EXPIRE_BOTH = 3
    DECREMENT = 4
    """Both orders shrink by the overlap; an order brought to zero expires."""


class MarketState(enum.IntEnum):
    OPEN = 0
    HALTED = 1
    """Nothing matches; new orders and amends are rejected; cancels work."""
    CANCEL_ONLY = 2
    POST_ONLY = 3
    """Only resting limit orders that take nothing are accepted."""


class Bucket(enum.IntEnum):
    """Where an account's units of one asset sit. Postings move atoms between buckets."""

    AVAILABLE = 0
    HELD_ORDERS = 1
    HELD_WITHDRAWALS = 2
    FEES = 3
    """System account only: fee revenue."""
    CUSTODY = 4
    """System account only: the on-chain side; the only bucket that goes negative."""


class PostingReason(enum.IntEnum):
    DEPOSIT = 0
    ORDER_HOLD = 1
    ORDER_RELEASE = 2
    TRADE_QUOTE = 3
    TRADE_BASE = 4
    FEE = 5
    WITHDRAW_HOLD = 6
    WITHDRAW_SETTLE = 7
    WITHDRAW_RELEASE = 8


class CancelReason(enum.IntEnum):
    USER = 0
    CANCEL_ALL = 1
    AMEND_FAILED = 2
    DEAD_MANS_SWITCH = 3
    DISCONNECT = 4


class ExpireReason(enum.IntEnum):
    IOC_REMAINDER = 0
    """IOC or market order: the part that did not fill at once."""
    FOK_UNFILLABLE = 1
    NO_LIQUIDITY = 2
    """Market order: nothing (more) on the other side."""
    BUDGET_EXHAUSTED = 3
    """Market buy by quote amount: the rest of the budget cannot buy one more lot."""
    MAX_FILLS = 4
    """A taker stopped after ``MAX_FILLS_PER_ORDER`` fills (an explicit bound on one command)."""
    GTD = 5
    """A GTD order's expiry time was reached (journal time)."""
    SELF_TRADE_PREVENTED = 6
    PRICE_PROTECTION = 7
    """A market order reached the market's protection price; the rest expires."""


class Reject(enum.IntEnum):
    """Stable reason codes. Values never change meaning; new codes are appended."""

    UNKNOWN_MARKET = 1
    UNKNOWN_ACCOUNT = 2
    UNKNOWN_ASSET = 3
    UNKNOWN_ORDER = 4
    INVALID_SIDE = 5
    INVALID_ORDER_TYPE = 6
    INVALID_TIME_IN_FORCE = 7
    INVALID_QTY = 8
    """Zero, negative or above MAX_AMOUNT_ATOMS."""
    INVALID_PRICE = 9
    QTY_OFF_LOT = 10
    PRICE_OFF_TICK = 11
    NOTIONAL_OVERFLOW = 12
    """price x qty (plus fee) does not fit the engine's integer bounds."""
    MIN_NOTIONAL = 13
    INSUFFICIENT_FUNDS = 14
    DUPLICATE_CLIENT_ORDER_ID = 15
    TAKER_NOT_ALLOWED = 16
    """Post-only (LIMIT_MAKER) order or amend that would take liquidity."""
    BOOK_FULL = 17
    """The market side has no free price level or the engine no free order slot."""
    TOO_MANY_OPEN_ORDERS = 18
    ACCOUNT_EXISTS = 19
    MARKET_EXISTS = 20
    ASSET_EXISTS = 21
    INVALID_MARKET_SPEC = 22
    INVALID_AMOUNT = 23
    DUPLICATE_DEPOSIT = 24
    DUPLICATE_WITHDRAWAL = 25
    UNKNOWN_WITHDRAWAL = 26
    BALANCE_OVERFLOW = 27
    INVALID_AMEND = 28
    """Amend changes nothing, or a market order field was given."""
    INVALID_ACCOUNT_ID = 29
    INVALID_FEE = 30
    """A fee rate outside 0..MAX_FEE_PPM."""
    INVALID_CLIENT_ORDER_ID = 31
    INVALID_ASSET_SPEC = 32
    MARKET_HALTED = 33
    MARKET_CANCEL_ONLY = 34
    MARKET_POST_ONLY = 35
    """The market is post-only and the order could take liquidity (or is not a resting type)."""
    PRICE_OUTSIDE_BAND = 36
    ORDER_TOO_LARGE = 37
    """Quantity above the market's ``max_order_qty_atoms``."""
    INVALID_STP_MODE = 38
    INVALID_EXPIRY = 39
    """GTD without a future ``expire_at_ns``, or an expiry on another time in force."""
    INVALID_STOP_PRICE = 40
    """Stop price missing, off the tick, given to a non-stop type, or already reached."""
    INVALID_TRAILING_DELTA = 41
    INVALID_DISPLAY_QTY = 42
    """Iceberg display quantity off the lot, not below the quantity, or on a non-resting type."""
    INVALID_MARKET_STATE = 43
    NO_REFERENCE_PRICE = 44
    """A trailing stop needs a last trade price to trail."""


# --------------------------------------------------------------------------------------------
# Commands. `kw_only` keeps construction explicit; `frozen` because a journaled fact never
# changes. Optional fields default to 0, meaning "absent", so the encoding stays fixed-width
# friendly for the compiled core.


class _Command(msgspec.Struct, tag=True, frozen=True, kw_only=True, array_like=True):
    pass


class CreateAsset(_Command):
    asset_id: int
    symbol: str
    decimals: int
    """Atoms per whole unit = 10**decimals (BTC 8, ETH 18, USDT 6)."""


class CreateMarket(_Command):
    market_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick_size_atoms: int
    """Price increment in quote atoms per whole base unit."""
    lot_size_atoms: int
    """Quantity increment in base atoms."""
    min_notional_atoms: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    price_band_bps: int = 0
    """Limit prices further than this from the reference price are refused; 0 = off."""
    market_protection_bps: int = 0
    """A market order stops this far beyond the best price at its arrival; 0 = off."""
    max_order_qty_atoms: int = 0
    """Largest quantity of one order; 0 = no limit."""


class SetMarketState(_Command):
    market_id: int
    state: int


class Tick(_Command):
    """Journaled by the write path's owner when time must advance without traffic (the gateway:
    when a dead-man's switch is due): carries journal time only, so GTD expiries and
    dead-man's switches fire on time without any other command."""


class SetDeadMansSwitch(_Command):
    """Cancel all the account's orders at the first command at or after ``fire_at_ns`` unless
    this command is sent again with a later time; 0 disarms."""

    account_id: int
    fire_at_ns: int


class CancelOnDisconnect(_Command):
    """The gateway lost the account's session (journaled so replay cancels the same orders)."""

    account_id: int


class CreateAccount(_Command):
    account_id: int


LEGACY_DEMO_KEY_PREFIX: Final = "demo:"
"""Deposit keys of the demo faucet before ``Deposit.demo`` existed (journals written before
issue 11): such deposits count as demo credits, so an old data directory's demo money is still
reported apart. The gateway refuses this prefix for any other deposit."""


class Deposit(_Command, omit_defaults=True):
    """A credit across the custody boundary, at most once per ``deposit_key`` (money rule 4).

    ``demo`` marks the demo faucet (``kootabase serve --demo``): money from nowhere by design,
    for trying the exchange. The engine credits it like any deposit (the state hash stays one
    function of the journal); reports and reconciliation account for it apart from custody
    (`is_demo`). ``omit_defaults`` keeps a non-demo deposit's encoding byte-identical to
    journals written before the field existed, and those journals decode with ``demo=False``.
    """

    account_id: int
    asset_id: int
    amount_atoms: int
    deposit_key: str
    """(chain, tx, output/log index) rendered by custody; the engine only compares it."""
    demo: bool = False

    @property
    def is_demo(self) -> bool:
        """A demo credit: flagged, or keyed by the faucet of journals older than the flag."""
        return self.demo or self.deposit_key.startswith(LEGACY_DEMO_KEY_PREFIX)


class WithdrawRequest(_Command):
    withdrawal_id: int
    account_id: int
    asset_id: int
    amount_atoms: int


class WithdrawResult(_Command):
    withdrawal_id: int
    success: bool


class PlaceOrder(_Command):
    account_id: int
    market_id: int
    side: int
    order_type: int
    time_in_force: int = TimeInForce.GTC
    price_atoms: int = 0
    """Limit price; 0 for market orders."""
    qty_atoms: int = 0
    """Base quantity; 0 only for a market buy by quote amount."""
    quote_qty_atoms: int = 0
    """Market buy only: spend at most this many quote atoms, fees included."""
    client_order_id: int = 0
    """Chosen by the client, unique among the account's open orders; 0 = none; at most
    MAX_CLIENT_ORDER_ID."""
    stop_price_atoms: int = 0
    """STOP_* / TAKE_PROFIT_* trigger price; 0 otherwise."""
    trailing_delta_bps: int = 0
    """TRAILING_STOP_* only: 1..MAX_TRAILING_DELTA_BPS."""
    limit_offset_atoms: int = 0
    """TRAILING_STOP_LIMIT only: the limit lies this far beyond the trigger (multiple of tick)."""
    display_qty_atoms: int = 0
    """Iceberg: the visible slice (LIMIT, GTC or GTD); 0 = everything visible."""
    expire_at_ns: int = 0
    """GTD only: journal time at which the order expires."""
    stp_mode: int = 0
    """StpMode of this order when it takes liquidity."""


class CancelOrder(_Command):
    """Cancel by ``order_id``, or by ``client_order_id`` when ``order_id`` is 0."""

    account_id: int
    market_id: int
    order_id: int = 0
    client_order_id: int = 0


class AmendOrder(_Command):
    """Change a resting order's price and/or open quantity.

    ``new_qty_atoms`` is the new *open* (unfilled) quantity, 0 = unchanged. A pure decrease
    keeps time priority; a price change or an increase loses it (the order re-enters as if new,
    and may trade). ``new_price_atoms`` 0 = unchanged.
    """

    account_id: int
    market_id: int
    order_id: int = 0
    client_order_id: int = 0
    new_price_atoms: int = 0
    new_qty_atoms: int = 0


class CancelAll(_Command):
    account_id: int
    market_id: int = -1
    """-1 = every market."""


class CancelReplaceOrder(_Command):
    """Cancel an open order and place ``place`` in one step: the cancel runs first, so the
    new order is funded by the hold it frees, and nothing else runs in between.

    The cancel targets ``place``'s account and market, by ``cancel_order_id`` when non-zero,
    else by ``cancel_client_order_id`` (as CancelOrder). When the cancel is refused, the new
    order is not attempted unless ``allow_failure``. The new order's id is this command's seq.
    """

    place: PlaceOrder
    cancel_order_id: int = 0
    cancel_client_order_id: int = 0
    allow_failure: bool = False

    @property
    def account_id(self) -> int:
        return self.place.account_id

    @property
    def market_id(self) -> int:
        return self.place.market_id

    def cancel(self) -> CancelOrder:
        """The cancel half, as the CancelOrder it behaves like."""
        return CancelOrder(account_id=self.place.account_id, market_id=self.place.market_id,
                           order_id=self.cancel_order_id,
                           client_order_id=self.cancel_client_order_id)


Command = (
    CreateAsset
    | CreateMarket
    | CreateAccount
    | Deposit
    | WithdrawRequest
    | WithdrawResult
    | PlaceOrder
    | CancelOrder
    | AmendOrder
    | CancelAll
    | CancelReplaceOrder
    | SetMarketState
    | Tick
    | SetDeadMansSwitch
    | CancelOnDisconnect
)


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
)

COMMAND_ENCODER: Final = msgspec.msgpack.Encoder()
COMMAND_DECODER: Final = msgspec.msgpack.Decoder(Command)
EVENT_DECODER: Final = msgspec.msgpack.Decoder(Event)


def encode_command(command: Command) -> bytes:
    return COMMAND_ENCODER.encode(command)


def decode_command(payload: bytes) -> Command:
    """Decode a journaled command; raises msgspec.ValidationError on a malformed payload."""
    return COMMAND_DECODER.decode(payload)


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


IMAGE_ENCODER: Final = msgspec.msgpack.Encoder()
IMAGE_DECODER: Final = msgspec.msgpack.Decoder(StateImage)


def state_hash(image: StateImage) -> str:
    """BLAKE2b-256 hex of the canonical encoding: equal hashes mean equal engine states."""
    import hashlib

    return hashlib.blake2b(IMAGE_ENCODER.encode(image), digest_size=32).hexdigest()
