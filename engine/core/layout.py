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

import numpy as np

from engine.core.kernelapi import kernel
from engine.schema import MAX_AMOUNT_ATOMS, Bucket

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
M_TIER_LIMIT = 20  # 20..23: largest order notional (quote atoms) of tier 0..3, 0 = no limit;
# a copy of the engine's per-(quote asset, tier) limits (SetTierTradeLimit), so the kernel
# reads one row per order
M_TICK_DIV = 24  # 24..26: exact division by the tick without a divide (money.exact_div_by)
M_LOT_DIV = 27  # 27..29: the same for the lot
M_W = 30

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
S_W = 2  # sysb columns
B_W = 3  # bal buckets per (account, asset): available, held for orders, held for withdrawals

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
C_ACCOUNTS = 15  # accounts created (rows with A_EXISTS set): the account prefetches' gate
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
E_W = 16

ROW_WIDTHS = {
    "ords": O_W,
    "olnk": K_W,
    "lvl": V_W,
    "bal": B_W,
    "sysb": S_W,
    "mkt": M_W,
    "acct": A_W,
    "ev": E_W,
}
"""The last dimension of these state tables, compiled into the kernels as a constant
(`engine.core.kernelapi._fixed_widths`); `engine.core.arrays.check_row_widths` holds every
state built for the kernels to them (a table of another width would be read at the wrong
addresses)."""

EV_ACCEPTED = 1  # 2 order_id 3 account 4 market 5 coid 6 side 7 type 8 tif
#                  9 price_atoms 10 qty_atoms 11 quote_qty_atoms 12 hold_atoms  (echoed atoms)
EV_REJECTED = 2  # 2 account 3 market 4 order_id 5 coid 6 reason 7 cancel half of a replace
EV_TRADE = 3  # 2 trade_id 3 market 4 price_ticks 5 qty_lots 6 quote_atoms 7 maker_oid
#               8 maker_account 9 taker_oid 10 taker_account 11 taker_side 12 maker_fee 13 taker_fee
#               14 txn 15 maker hold released (atoms): also the trade's postings, which the
#               decoder derives (engine.core.eventrows)
EV_CANCELLED = 4  # 2 order_id 3 account 4 market 5 remaining_lots 6 reason
EV_EXPIRED = 5  # same columns as EV_CANCELLED
EV_AMENDED = 6  # 2 order_id 3 account 4 market 5 price_ticks 6 qty_lots 7 priority_kept 8 hold
EV_POSTING = 7  # 2 txn 3 reason 4 asset 5 debit_account 6 debit_bucket 7 credit_account
#                 8 credit_bucket 9 amount_atoms
EV_STP = 8  # 2 market 3 account 4 taker_oid 5 maker_oid 6 qty_lots 7 mode
EV_TRIGGERED = 9  # 2 order_id 3 account 4 market 5 trigger_ticks 6 last_ticks 7 price_ticks
EV_ICEBERG = 10  # 2 order_id 3 market 4 price_ticks 5 visible_lots 6 hidden_lots
EV_DMS_FIRED = 11  # 2 account 3 fire_at_ns
# OrderAccepted and OrderAmended rows also carry the order's hold movement (a posting the
# decoder derives: engine.core.events.hold_in_row): txn (0 = none), asset, signed atoms.
H_TXN = 13
H_ASSET = 14
H_AMOUNT = 15
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
ERR_EVENT_BOUND = 8

ERROR_NAMES = {
    ERR_NEGATIVE_BALANCE: "a balance went negative",
    ERR_NEGATIVE_HOLD: "an order hold went negative",
    ERR_SLOT_EXHAUSTED: "no free order slot",
    ERR_LEVEL_EXHAUSTED: "no free price level",
    ERR_SIDE_FULL: "book side over capacity",
    ERR_INDEX: "hash index inconsistent",
    ERR_BOOK: "book structure inconsistent",
    ERR_EVENT_BOUND: "a command wrote more event rows than its worst case",
}


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
