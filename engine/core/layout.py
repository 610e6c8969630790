"""Column constants and array allocation for the compiled core.

All state lives in a handful of numpy arrays ("tables") with named column constants; the
njit kernels receive these arrays and nothing else. Integers only (int64 unless noted), no
Python objects. Sentinels: -1 = "none" for every slot/level/link column; the hash indexes
store ``slot + 1`` so that a zeroed table is empty (allocation stays lazy: untouched pages of
a large table are never committed).

Units: prices inside the core are *ticks* (``price_atoms // tick``), quantities *lots*
(``qty_atoms // lot``); balances, holds and fees are atoms.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from engine.schema import (
    MAX_ACCOUNT_ID,
    MAX_AMOUNT_ATOMS,
    MAX_TRAILING_DELTA_BPS,
    Bucket,
    CancelReason,
    EngineConfig,
    ExpireReason,
    MarketState,
    OrderType,
    PostingReason,
    Reject,
    Side,
    StpMode,
    TimeInForce,
)

_I64 = types.int64
_ARRAY_ARGS = {
    # the state arrays (CoreState's fields, in order) ...
    "ords": types.int64[:, ::1],
    "olnk": types.int32[:, ::1],
    "idx": types.int32[:, ::1],
    "oidx": types.int64[::1],
    "lvl": types.int64[:, ::1],
    "bkl": types.int32[:, ::1],
    "bkp": types.int64[:, ::1],
    "bkn": types.int64[::1],
    "bal": types.int64[:, :, ::1],
    "sysb": types.int64[:, ::1],
    "mkt": types.int64[:, ::1],
    "acct": types.int64[:, ::1],
    "ctr": types.int64[::1],
    "ofree": types.int32[::1],
    "lfree": types.int32[::1],
    "ev": types.int64[:, ::1],
    # ... command rows and helper buffers
    "c": types.int64[:, ::1],
    "cols": types.int64[:, ::1],
    "by_id": types.int64[::1],
    "slots": types.int64[::1],
    "out": types.int64[::1],
}
_BOOL_ARGS = frozenset({"is_limit", "quote_bounded", "rest_ok", "kept", "reset_events", "trading"})


class CoreState(NamedTuple):
    """The compiled core's whole mutable state as one kernel argument (``st``).

    Kernels read ``st.ords``, ``st.bal``, ...; a new table is one field here, one entry in
    `_ARRAY_ARGS` and one allocation in `CoreArrays`, instead of a new parameter threaded
    through every kernel. Kernels called from Python take ``st``; kernels call each other with
    a reference to it (``sp``, `state_ref`). Small helpers that touch two or three tables still
    take those arrays.
    """

    ords: np.ndarray
    olnk: np.ndarray
    idx: np.ndarray
    oidx: np.ndarray
    lvl: np.ndarray
    bkl: np.ndarray
    bkp: np.ndarray
    bkn: np.ndarray
    bal: np.ndarray
    sysb: np.ndarray
    mkt: np.ndarray
    acct: np.ndarray
    ctr: np.ndarray
    ofree: np.ndarray
    lfree: np.ndarray
    ev: np.ndarray


_STATE_TYPE = types.NamedTuple([_ARRAY_ARGS[name] for name in CoreState._fields], CoreState)
_ARRAY_ARGS["st"] = _STATE_TYPE
_ARRAY_ARGS["sp"] = types.CPointer(_STATE_TYPE)
"""The state passed by reference (``sp``) between kernels: see `state_ref`."""


@intrinsic
def state_ref(typingctx, st):  # type: ignore[no-untyped-def]
    """A pointer to a copy of ``st`` in the caller's frame: what kernels pass to each other.

    Numba flattens an aggregate argument into scalars, so a call passing the `CoreState`
    itself pushes ~130 words (16 arrays of 7-11 fields) on the stack: measured at ~45 % of the
    CPU of workload (c). Entry kernels (called from Python with ``st``) take the reference once
    per batch; every other kernel takes ``sp`` and reads the fields it uses (`load_state`).
    """
    sig = types.CPointer(st)(st)

    def codegen(context, builder, signature, args):
        model = context.data_model_manager[signature.args[0]]
        slot = cgutils.alloca_once(builder, model.get_data_type())
        builder.store(model.as_data(builder, args[0]), slot)
        return slot

    return sig, codegen


@intrinsic
def load_state(typingctx, sp):  # type: ignore[no-untyped-def]
    """The `CoreState` behind ``sp`` (LLVM loads only the fields the kernel uses)."""
    sig = sp.dtype(sp)

    def codegen(context, builder, signature, args):
        model = context.data_model_manager[signature.return_type]
        return model.from_data(builder, builder.load(args[0]))

    return sig, codegen


def kernel(fn: Callable[..., Any] | None = None, *, generic: dict[str, list[Any]] | None = None):
    """Decorator of every core kernel: nopython, cached on disk, no NRT (kernels never
    allocate, so no reference counting is emitted), numpy error model (no zero-division
    branches: every divisor is validated >= 1 before use).

    The signature is explicit, derived from the parameter names (state arrays by name, flags
    in ``_BOOL_ARGS``, every other scalar int64): one compiled version per function instead of
    one per combination of literal, int32 and int64 arguments at its call sites (which
    multiplied compile time). ``generic`` maps a parameter to the list of its types (one
    version per entry, e.g. a helper used on int32 and int64 arrays).
    """

    def wrap(f: Callable[..., Any]) -> Any:
        names = list(inspect.signature(f).parameters)
        variants: list[tuple[Any, ...]] = [()]
        for name in names:
            if generic and name in generic:
                options = generic[name]
            elif name in _ARRAY_ARGS:
                options = [_ARRAY_ARGS[name]]
            elif name in _BOOL_ARGS:
                options = [types.boolean]
            else:
                options = [_I64]
            variants = [(*v, t) for v in variants for t in options]
        return njit(variants, cache=True, nogil=True, error_model="numpy", _nrt=False)(f)

    return wrap(fn) if fn is not None else wrap


MAX = MAX_AMOUNT_ATOMS
PPM = 1_000_000
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# ---- orders table: int64 [max_orders, O_W] -------------------------------------------------
# What the matching loop reads of a maker (id, price, qty, hold, visible) comes first: 40
# contiguous bytes, so mostly one cache line per maker.
O_ID = 0  # order id (= seq of the PlaceOrder)
O_PRICE = 1  # ticks
O_QTY = 2  # open lots
O_HOLD = 3  # atoms held for this order (quote for buys, base for sells)
O_VISIBLE = 4  # lots of the current slice (= O_QTY for a plain order)
O_COID = 5  # client order id, 0 = none
O_EXPIRE = 6  # GTD expiry (journal ns), 0 = none
O_DISPLAY = 7  # iceberg slice (lots), 0 = not an iceberg
O_W = 8
# A waiting conditional order is never in the book, so it reuses the resting-only columns
# (a conditional market buy's budget is its hold, which does not change while it waits):
O_TRIGGER = O_DISPLAY  # stop / take-profit: trigger price (ticks)
O_EXTREME = O_VISIBLE  # trailing: peak (sell) or trough (buy), ticks
# A trailing stop's trigger is always trailing_trigger(side, extreme, delta) (triggers.py),
# never stored, so its O_TRIGGER column holds the limit offset instead:
O_OFFSET = O_DISPLAY  # trailing: limit offset, ticks (0 for TRAILING_STOP_MARKET)

# ---- order links table: int32 [max_orders, K_W] --------------------------------------------
K_ACCOUNT = 0
K_MARKET = 1
K_FLAGS = 2  # side, type, tif, stp mode, pending, fire, trailing delta: see the F_* bits
K_LEVEL = 3  # level id (row of the levels table)
K_PREV = 4  # previous slot in the level queue (towards the head), -1 = none
K_NEXT = 5
K_APREV = 6  # previous slot in the account's open-order list (ascending order id)
K_ANEXT = 7
K_W = 8

# K_FLAGS bits (every field is validated before it is packed; the value stays < 2**31):
F_SIDE = 1  # bit 0: the side (BUY = 0, SELL = 1)
F_TYPE_SHIFT = 1  # bits 1-4: order type
F_TIF_SHIFT = 5  # bits 5-7: time in force
F_STP_SHIFT = 8  # bits 8-10: self-trade prevention mode
F_PENDING = 1 << 11  # conditional order waiting for its trigger (not in the book)
F_FIRE = 1 << 12  # collect(): this trailing stop fires on the current burst
F_DELTA_SHIFT = 13  # bits 13-26: trailing delta, bps (<= 9_999)

# ---- levels table: int64 [level_capacity, V_W] ---------------------------------------------
V_PRICE = 0  # ticks
V_HEAD = 1  # first slot (time priority), -1 = empty
V_TAIL = 2
V_W = 3  # (no per-level quantity total: it could overflow int64 and nothing needs it)

# ---- markets table: int64 [max_markets, M_W] -----------------------------------------------
M_EXISTS = 0
M_BASE = 1
M_QUOTE = 2
M_TICK = 3  # atoms
M_LOT = 4  # atoms
M_QTL = 5  # quote atoms per tick-lot
M_MIN_NOTIONAL = 6
M_MAKER_PPM = 7
M_TAKER_PPM = 8
M_WORST_PPM = 9  # max(maker, taker): what a resting buy holds for fees
M_LAST_TRADE = 10
M_STATE = 11
M_BAND = 12  # price band, bps (0 = off)
M_PROT = 13  # market order protection, bps (0 = off)
M_MAXQ = 14  # max order size, lots (0 = none)
M_LAST_PRICE = 15  # ticks of the last trade, 0 = none yet
M_BURST_FIRST = 16  # first and last trade price of the current taker (0 = no trade yet)
M_BURST_LAST = 17
M_TRAIL_HEAD = 18  # pending trailing stops, ascending order id (links K_PREV/K_NEXT)
M_TRAIL_TAIL = 19
M_W = 20

# ---- accounts table: int64 [max_accounts, A_W] ---------------------------------------------
A_EXISTS = 0
A_OPEN = 1  # open orders
A_HEAD = 2  # first slot of the open-order list (lowest order id), -1 = none
A_TAIL = 3
A_DMS = 4  # dead-man's switch time (journal ns), 0 = disarmed
A_FROZEN = 5  # 1 = frozen by staff (SetAccountFrozen)
A_TIER = 6  # KYC tier + 1 (SetAccountTier); 0 = never set
A_W = 7

# ---- balances: int64 [max_accounts, max_assets, 3], system buckets int64 [max_assets, 2] -----
B_AVAILABLE = int(Bucket.AVAILABLE)
B_HELD_ORDERS = int(Bucket.HELD_ORDERS)
B_HELD_WITHDRAWALS = int(Bucket.HELD_WITHDRAWALS)
B_FEES = int(Bucket.FEES)
B_CUSTODY = int(Bucket.CUSTODY)
S_FEES = 0
S_CUSTODY = 1

# ---- counters and configuration: int64 [C_W] -----------------------------------------------
C_NEXT_TXN = 0
C_LAST_SEQ = 1
C_OPEN_ORDERS = 2
C_ORDER_HWM = 3  # slots [0, hwm) have been handed out at least once
C_ORDER_FREE = 4  # entries on the order free stack
C_LEVEL_HWM = 5
C_LEVEL_FREE = 6
C_EV_POS = 7  # next free row of the event buffer
C_ERROR = 8  # invariant violation code (0 = none)
C_ERROR_SEQ = 9
C_NEXT_DMS = 10  # earliest armed dead-man's switch (INT64_MAX = none)
C_NEXT_GTD = 11  # a lower bound of the open GTD orders' expiries (INT64_MAX = none)
C_NOW = 12  # journal time of the command being run
C_FIFO_HEAD = 13  # triggered orders waiting to execute in this command (links K_NEXT)
C_FIFO_TAIL = 14
CF_MAX_ORDERS = 16
CF_LEVEL_CAP = 17
CF_MAX_LEVELS = 18  # per side
CF_MAX_OPEN = 19  # per account
CF_MAX_FILLS = 20
CF_MAX_ACCOUNTS = 21
CF_MAX_MARKETS = 22
CF_MAX_ASSETS = 23
CF_HASH_MASK = 24
CF_EV_CAP = 25
CF_MAX_TRIGGERS = 26
C_W = 32

# ---- command rows: int64 [n, R_W] ----------------------------------------------------------
R_KIND = 0
R_SEQ = 1
R_ACCOUNT = 2
R_MARKET = 3
# PlaceOrder
R_SIDE = 4
R_TYPE = 5
R_TIF = 6
R_PRICE = 7
R_QTY = 8
R_QUOTE_QTY = 9
R_COID = 10
R_TS = 11  # journal time of every row
R_STOP = 12
R_DELTA = 13
R_OFFSET = 14
R_DISPLAY = 15
R_EXPIRE = 16
R_STP = 17
# CancelOrder / AmendOrder (target)
R_ORDER_ID = 4
R_TARGET_COID = 5
R_NEW_PRICE = 6
R_NEW_QTY = 7
# CancelReplaceOrder: a CMD_REPLACE row (the cancel target above, and this flag) followed by
# the CMD_PLACE row of its new order, both with the command's seq
R_ALLOW_FAILURE = 6
R_W = 18

CMD_PLACE = 1
CMD_CANCEL = 2
CMD_AMEND = 3
CMD_CANCEL_ALL = 4
CMD_ADMIN = 5  # handled in Python by the wrapper; the kernel stops before it (after the sweep)
CMD_TICK = 6  # journal time only: the sweep
CMD_DISCONNECT = 7  # cancel-on-disconnect (a CancelAll of every market, reason DISCONNECT)
CMD_REPLACE = 8  # CancelReplaceOrder's cancel; the next row is its CMD_PLACE (same seq)

# ---- event rows: int64 [capacity, E_W]; col 0 kind, col 1 seq ------------------------------
E_KIND = 0
E_SEQ = 1
E_W = 14

EV_ACCEPTED = 1  # 2 order_id 3 account 4 market 5 coid 6 side 7 type 8 tif
#                  9 price_atoms 10 qty_atoms 11 quote_qty_atoms 12 hold_atoms  (echoed atoms)
EV_REJECTED = 2  # 2 account 3 market 4 order_id 5 coid 6 reason 7 cancel half of a replace
EV_TRADE = 3  # 2 trade_id 3 market 4 price_ticks 5 qty_lots 6 quote_atoms 7 maker_oid
#               8 maker_account 9 taker_oid 10 taker_account 11 taker_side 12 maker_fee 13 taker_fee
EV_CANCELLED = 4  # 2 order_id 3 account 4 market 5 remaining_lots 6 reason
EV_EXPIRED = 5  # same columns as EV_CANCELLED
EV_AMENDED = 6  # 2 order_id 3 account 4 market 5 price_ticks 6 qty_lots 7 priority_kept 8 hold
EV_POSTING = 7  # 2 txn 3 reason 4 asset 5 debit_account 6 debit_bucket 7 credit_account
#                 8 credit_bucket 9 amount_atoms
EV_STP = 8  # 2 market 3 account 4 taker_oid 5 maker_oid 6 qty_lots 7 mode
EV_TRIGGERED = 9  # 2 order_id 3 account 4 market 5 trigger_ticks 6 last_ticks 7 price_ticks
EV_ICEBERG = 10  # 2 order_id 3 market 4 price_ticks 5 visible_lots 6 hidden_lots
EV_DMS_FIRED = 11  # 2 account 3 fire_at_ns
EV_ACCEPTED_X = 12  # right after an EV_ACCEPTED whose issue-3 fields are not all 0:
#                    2 stop_atoms 3 delta_bps 4 offset_atoms 5 display_atoms 6 expire 7 stp

# ---- kernel status (returned with the next row index) --------------------------------------
ST_DONE = 0
ST_CAPACITY = 1  # event buffer cannot hold the next command's worst case: drain and resume
ST_ADMIN = 2  # next row is an admin command: the wrapper handles it
ST_SEQ = 3  # sequence not strictly increasing
ST_INVARIANT = 4  # an always-on invariant failed: ctr[C_ERROR] says which

ERR_NEGATIVE_BALANCE = 1
ERR_NEGATIVE_HOLD = 2
ERR_SLOT_EXHAUSTED = 3
ERR_LEVEL_EXHAUSTED = 4
ERR_SIDE_FULL = 5
ERR_INDEX = 6
ERR_BOOK = 7

ERROR_NAMES = {
    ERR_NEGATIVE_BALANCE: "a balance went negative",
    ERR_NEGATIVE_HOLD: "an order hold went negative",
    ERR_SLOT_EXHAUSTED: "no free order slot",
    ERR_LEVEL_EXHAUSTED: "no free price level",
    ERR_SIDE_FULL: "book side over capacity",
    ERR_INDEX: "hash index inconsistent",
    ERR_BOOK: "book structure inconsistent",
}

# ---- enums as plain ints (compile-time constants for numba) --------------------------------
BUY = int(Side.BUY)
SELL = int(Side.SELL)
LIMIT = int(OrderType.LIMIT)
MARKET = int(OrderType.MARKET)
LIMIT_MAKER = int(OrderType.LIMIT_MAKER)
STOP_MARKET = int(OrderType.STOP_MARKET)
STOP_LIMIT_TYPE = int(OrderType.STOP_LIMIT)
TP_MARKET = int(OrderType.TAKE_PROFIT_MARKET)
TP_LIMIT = int(OrderType.TAKE_PROFIT_LIMIT)
TRAIL_MARKET = int(OrderType.TRAILING_STOP_MARKET)
TRAIL_LIMIT = int(OrderType.TRAILING_STOP_LIMIT)
MAX_TRAILING_DELTA = MAX_TRAILING_DELTA_BPS
GTC = int(TimeInForce.GTC)
IOC = int(TimeInForce.IOC)
FOK = int(TimeInForce.FOK)
GTD = int(TimeInForce.GTD)
STP_NONE = int(StpMode.NONE)
STP_EXPIRE_TAKER = int(StpMode.EXPIRE_TAKER)
STP_EXPIRE_MAKER = int(StpMode.EXPIRE_MAKER)
STP_EXPIRE_BOTH = int(StpMode.EXPIRE_BOTH)
STP_DECREMENT = int(StpMode.DECREMENT)
ST_OPEN = int(MarketState.OPEN)
ST_HALTED = int(MarketState.HALTED)
ST_CANCEL_ONLY = int(MarketState.CANCEL_ONLY)
ST_POST_ONLY = int(MarketState.POST_ONLY)
CANCEL_DMS = int(CancelReason.DEAD_MANS_SWITCH)
CANCEL_DISCONNECT = int(CancelReason.DISCONNECT)
EXP_GTD = int(ExpireReason.GTD)
EXP_STP = int(ExpireReason.SELF_TRADE_PREVENTED)
EXP_PROTECTION = int(ExpireReason.PRICE_PROTECTION)

P_ORDER_HOLD = int(PostingReason.ORDER_HOLD)
P_ORDER_RELEASE = int(PostingReason.ORDER_RELEASE)
P_TRADE_QUOTE = int(PostingReason.TRADE_QUOTE)
P_TRADE_BASE = int(PostingReason.TRADE_BASE)
P_FEE = int(PostingReason.FEE)

CANCEL_USER = int(CancelReason.USER)
CANCEL_ALL = int(CancelReason.CANCEL_ALL)

EXP_IOC_REMAINDER = int(ExpireReason.IOC_REMAINDER)
EXP_FOK_UNFILLABLE = int(ExpireReason.FOK_UNFILLABLE)
EXP_NO_LIQUIDITY = int(ExpireReason.NO_LIQUIDITY)
EXP_BUDGET_EXHAUSTED = int(ExpireReason.BUDGET_EXHAUSTED)
EXP_MAX_FILLS = int(ExpireReason.MAX_FILLS)

REJ_UNKNOWN_MARKET = int(Reject.UNKNOWN_MARKET)
REJ_UNKNOWN_ACCOUNT = int(Reject.UNKNOWN_ACCOUNT)
REJ_UNKNOWN_ORDER = int(Reject.UNKNOWN_ORDER)
REJ_INVALID_SIDE = int(Reject.INVALID_SIDE)
REJ_INVALID_ORDER_TYPE = int(Reject.INVALID_ORDER_TYPE)
REJ_INVALID_TIF = int(Reject.INVALID_TIME_IN_FORCE)
REJ_INVALID_QTY = int(Reject.INVALID_QTY)
REJ_INVALID_PRICE = int(Reject.INVALID_PRICE)
REJ_QTY_OFF_LOT = int(Reject.QTY_OFF_LOT)
REJ_PRICE_OFF_TICK = int(Reject.PRICE_OFF_TICK)
REJ_NOTIONAL_OVERFLOW = int(Reject.NOTIONAL_OVERFLOW)
REJ_MIN_NOTIONAL = int(Reject.MIN_NOTIONAL)
REJ_INSUFFICIENT_FUNDS = int(Reject.INSUFFICIENT_FUNDS)
REJ_DUPLICATE_COID = int(Reject.DUPLICATE_CLIENT_ORDER_ID)
REJ_TAKER_NOT_ALLOWED = int(Reject.TAKER_NOT_ALLOWED)
REJ_BOOK_FULL = int(Reject.BOOK_FULL)
REJ_TOO_MANY_OPEN = int(Reject.TOO_MANY_OPEN_ORDERS)
REJ_INVALID_AMEND = int(Reject.INVALID_AMEND)
REJ_INVALID_COID = int(Reject.INVALID_CLIENT_ORDER_ID)
REJ_HALTED = int(Reject.MARKET_HALTED)
REJ_CANCEL_ONLY = int(Reject.MARKET_CANCEL_ONLY)
REJ_POST_ONLY = int(Reject.MARKET_POST_ONLY)
REJ_BAND = int(Reject.PRICE_OUTSIDE_BAND)
REJ_TOO_LARGE = int(Reject.ORDER_TOO_LARGE)
REJ_STP_MODE = int(Reject.INVALID_STP_MODE)
REJ_EXPIRY = int(Reject.INVALID_EXPIRY)
REJ_STOP_PRICE = int(Reject.INVALID_STOP_PRICE)
REJ_TRAILING = int(Reject.INVALID_TRAILING_DELTA)
REJ_DISPLAY = int(Reject.INVALID_DISPLAY_QTY)
REJ_NO_REFERENCE = int(Reject.NO_REFERENCE_PRICE)
REJ_FROZEN = int(Reject.ACCOUNT_FROZEN)

# Matching loop stop reasons.
STOP_FILLED = 0
STOP_MAX_FILLS = 1
STOP_BOOK_EMPTY = 2
STOP_LIMIT = 3
STOP_BUDGET = 4
STOP_STP = 5


# ---- K_FLAGS accessors (inlined by LLVM) ---------------------------------------------------


@kernel
def pack_flags(side, otype, tif, stp):
    """K_FLAGS of a new order (not pending, delta 0)."""
    return side | (otype << F_TYPE_SHIFT) | (tif << F_TIF_SHIFT) | (stp << F_STP_SHIFT)


@kernel
def k_side(olnk, s):
    return olnk[s, K_FLAGS] & F_SIDE


@kernel
def k_type(olnk, s):
    return (olnk[s, K_FLAGS] >> F_TYPE_SHIFT) & 15


@kernel
def k_tif(olnk, s):
    return (olnk[s, K_FLAGS] >> F_TIF_SHIFT) & 7


@kernel
def k_stp(olnk, s):
    return (olnk[s, K_FLAGS] >> F_STP_SHIFT) & 7


@kernel
def k_pending(olnk, s):
    return (olnk[s, K_FLAGS] & F_PENDING) != 0


@kernel
def k_fire(olnk, s):
    return (olnk[s, K_FLAGS] & F_FIRE) != 0


@kernel
def k_delta(olnk, s):
    return olnk[s, K_FLAGS] >> F_DELTA_SHIFT


def unpack_flags(flags: np.ndarray) -> dict[str, np.ndarray]:
    """The K_FLAGS fields of a column of flags (int64 arrays), for images."""
    f = flags.astype(np.int64)
    return {
        "side": f & F_SIDE,
        "type": (f >> F_TYPE_SHIFT) & 15,
        "tif": (f >> F_TIF_SHIFT) & 7,
        "stp": (f >> F_STP_SHIFT) & 7,
        "pending": (f & F_PENDING) != 0,
        "delta": f >> F_DELTA_SHIFT,
    }


def validate_config(config: EngineConfig) -> None:
    """Explicit bounds: the core's int32 slot numbers and table shapes need these."""
    bounds = {
        "max_accounts": (2, MAX_ACCOUNT_ID + 1),
        "max_assets": (1, 1 << 16),
        "max_markets": (1, 1 << 20),
        "max_orders": (1, 1 << 29),
        "max_levels_per_side": (1, 1 << 29),
        "max_open_orders_per_account": (1, 1 << 20),  # CancelAll: 2 event rows each
        "max_fills_per_order": (1, 1 << 16),  # the event buffer holds 7 rows per fill
        "max_triggers_per_command": (0, 1 << 10),
    }
    for name, (low, high) in bounds.items():
        value = getattr(config, name)
        if not (isinstance(value, int) and low <= value <= high):
            raise ValueError(f"EngineConfig.{name}={value!r} outside {low}..{high}")


def hash_capacity(max_orders: int) -> int:
    """Power of two >= 2 * max_orders: load factor <= 0.5 for linear probing."""
    capacity = 4
    while capacity < 2 * max_orders:
        capacity <<= 1
    return capacity


def per_command_event_bound(config: EngineConfig) -> int:
    """Worst-case event rows of one hot command (checked by the kernel before each command)."""
    # accepted (+ its extension row), hold, steps x (trade + 5 postings + iceberg refresh),
    # expire, release
    # ... for the order and each order it triggers (plus the trigger event and its release)
    place = (7 * config.max_fills_per_order + 8) * (1 + config.max_triggers_per_command)
    cancel_all = 2 * config.max_open_orders_per_account + 1
    return max(place, cancel_all)


class CoreArrays:
    """The compiled core's whole mutable state, as numpy arrays (see the column constants)."""

    __slots__ = (
        "acct",
        "bal",
        "bkl",
        "bkn",
        "bkp",
        "ctr",
        "ev",
        "idx",
        "lfree",
        "lvl",
        "mkt",
        "ofree",
        "oidx",
        "olnk",
        "ords",
        "sysb",
    )

    def __init__(
        self, config: EngineConfig, event_capacity: int = 0, *, prefault: bool = False
    ) -> None:
        """``prefault``: commit every page of every table now (static allocation, as a node
        runs), instead of on first touch in the middle of matching: a 1M-order engine takes
        ~150 MB of page faults, ~15 % of the CPU time of its first million orders. Off by
        default so that the many engines of tests and tools stay cheap to create (np.zeros is
        lazy: untouched pages cost nothing)."""
        validate_config(config)
        n_orders = config.max_orders
        sides = 4 * config.max_markets  # bids, asks, then falling and rising trigger books
        level_cap = min(n_orders, sides * config.max_levels_per_side)
        hcap = hash_capacity(n_orders)
        bound = per_command_event_bound(config)
        # Rows of the event buffer: the kernel starts a command only when the command's worst
        # case fits, so the buffer must hold at least one worst case.
        ev_cap = max(event_capacity, bound) if event_capacity > 0 else max(2 * bound, 1 << 15)
        # np.zeros is lazy (calloc): big tables cost nothing until touched.
        self.ords = np.zeros((n_orders, O_W), dtype=np.int64)
        self.olnk = np.zeros((n_orders, K_W), dtype=np.int32)
        self.ofree = np.zeros(n_orders, dtype=np.int32)
        self.idx = np.zeros((1, hcap), dtype=np.int32)  # (account, client order id)
        self.oidx = np.zeros(hcap, dtype=np.int64)  # order id (hashindex: fingerprint, slot)
        self.lvl = np.zeros((level_cap, V_W), dtype=np.int64)
        self.lfree = np.zeros(level_cap, dtype=np.int32)
        self.bkl = np.zeros((sides, config.max_levels_per_side), dtype=np.int32)
        self.bkp = np.zeros((sides, config.max_levels_per_side), dtype=np.int64)
        self.bkn = np.zeros(sides, dtype=np.int64)
        self.bal = np.zeros((config.max_accounts, config.max_assets, 3), dtype=np.int64)
        self.sysb = np.zeros((config.max_assets, 2), dtype=np.int64)
        self.mkt = np.zeros((config.max_markets, M_W), dtype=np.int64)
        self.acct = np.zeros((config.max_accounts, A_W), dtype=np.int64)
        self.ev = np.zeros((ev_cap, E_W), dtype=np.int64)
        # Static allocation: commit now every page the hot path may touch, so that no command
        # pays a page fault (see the docstring for why it is optional).
        if prefault:
            for table in (self.ev, self.idx, self.oidx, self.ords, self.olnk, self.ofree,
                          self.lvl, self.lfree, self.bkl, self.bkp):  # fmt: skip
                table.fill(0)
        ctr = np.zeros(C_W, dtype=np.int64)
        ctr[C_NEXT_TXN] = 1
        ctr[CF_MAX_ORDERS] = n_orders
        ctr[CF_LEVEL_CAP] = level_cap
        ctr[CF_MAX_LEVELS] = config.max_levels_per_side
        ctr[CF_MAX_OPEN] = config.max_open_orders_per_account
        ctr[CF_MAX_FILLS] = config.max_fills_per_order
        ctr[CF_MAX_ACCOUNTS] = config.max_accounts
        ctr[CF_MAX_MARKETS] = config.max_markets
        ctr[CF_MAX_ASSETS] = config.max_assets
        ctr[CF_HASH_MASK] = hcap - 1
        ctr[CF_EV_CAP] = ev_cap
        ctr[C_NEXT_DMS] = INT64_MAX
        ctr[C_NEXT_GTD] = INT64_MAX
        ctr[C_FIFO_HEAD] = -1
        ctr[C_FIFO_TAIL] = -1
        ctr[CF_MAX_TRIGGERS] = config.max_triggers_per_command
        self.ctr = ctr

    def state(self) -> CoreState:
        """The tables as the one ``st`` argument of the kernels (same arrays, not copies)."""
        return CoreState(
            self.ords,
            self.olnk,
            self.idx,
            self.oidx,
            self.lvl,
            self.bkl,
            self.bkp,
            self.bkn,
            self.bal,
            self.sysb,
            self.mkt,
            self.acct,
            self.ctr,
            self.ofree,
            self.lfree,
            self.ev,
        )


def bytes_per_resting_order(config: EngineConfig) -> dict[str, float]:
    """Memory that scales with max_orders, per order slot (levels counted separately)."""
    n = config.max_orders
    per_order = O_W * 8 + K_W * 4 + 4  # orders, links, free stack
    index = hash_capacity(n) * (8 + 4) / n  # order ids (int64 entries), client ids (int32)
    sides = 4 * config.max_markets
    level_cap = min(n, sides * config.max_levels_per_side)
    return {
        "order_tables": per_order,
        "hash_indexes": index,
        "total_per_order": per_order + index,
        "per_level": V_W * 8 + 4 + 4 + 8,  # levels table, free stack, book arrays (per slot)
        "level_tables_per_order_slot": (V_W * 8 + 4) * level_cap / n,
    }
