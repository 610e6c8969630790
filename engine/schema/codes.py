"""The enumerations of the contract: sides, order types, time in force, STP modes, market
states, balance buckets, posting reasons, cancel/expire reasons and rejection codes."""

from __future__ import annotations

import enum
from typing import Final


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
    ACCOUNT_FROZEN = 45
    """The account is frozen by staff: no new orders, no amend that adds exposure, no
    withdrawal; cancels work."""
    INVALID_TIER = 46
    """SetAccountTier or SetTierTradeLimit outside 0..MAX_TIER."""
    TIER_TRADE_LIMIT = 47
    """The order's notional is above what the account's KYC tier may place in its quote
    asset (SetTierTradeLimit), or cannot be valued (a market order by quantity before the
    market's first trade)."""


MAX_TIER: Final = 3
"""KYC tiers are 0..MAX_TIER; an account never given one has none (-1: no KYC regime)."""


class StreamReject(enum.IntEnum):
    """Why a stream message was not a batch this build runs (cluster mode, issue 18). Stable
    codes journaled in `RejectStreamMessage`: every replica derives the same code from the same
    bytes (never a library's message text, which could differ between builds)."""

    UNKNOWN_FORMAT = 1
    """Missing or unknown ``Kb-Format`` header (a future or foreign format version)."""
    UNDECODABLE = 2
    """The body is not a msgpack `CommandBatch` of this schema."""
    BATCH_SIZE = 3
    """No commands, or more than ``MAX_COMMANDS_PER_BATCH``."""
    OUT_OF_RANGE = 4
    """Origin, batch number or journal time outside their ranges."""
    ENCODER_REFUSED = 5
    """A command the engine's encoder refuses (a field outside int64)."""
    RESERVED_COMMAND = 6
    """The batch carries a command only replicas derive (`RejectStreamMessage`)."""
