"""Allocation of the compiled core's tables from an `EngineConfig`, and their memory cost."""

from __future__ import annotations

import numpy as np

from engine.core.hashindex import MIN_CAPACITY
from engine.core.kernelapi import CoreState
from engine.core.layout import (
    A_W,
    B_W,
    C_FIFO_HEAD,
    C_FIFO_TAIL,
    C_NEXT_DMS,
    C_NEXT_GTD,
    C_NEXT_TXN,
    C_W,
    CF_EV_CAP,
    CF_HASH_MASK,
    CF_LEVEL_CAP,
    CF_MAX_ACCOUNTS,
    CF_MAX_ASSETS,
    CF_MAX_FILLS,
    CF_MAX_LEVELS,
    CF_MAX_MARKETS,
    CF_MAX_OPEN,
    CF_MAX_ORDERS,
    CF_MAX_TRIGGERS,
    E_W,
    INT64_MAX,
    K_W,
    M_W,
    O_W,
    ROW_WIDTHS,
    S_W,
    V_W,
)
from engine.schema import MAX_ACCOUNT_ID, EngineConfig


def validate_config(config: EngineConfig) -> None:
    """Explicit bounds: the core's int32 slot numbers and table shapes need these."""
    bounds = {
        "max_accounts": (2, MAX_ACCOUNT_ID + 1),
        "max_assets": (1, 1 << 16),
        "max_markets": (1, 1 << 20),
        "max_orders": (1, 1 << 29),
        "max_levels_per_side": (1, 1 << 29),
        "max_open_orders_per_account": (1, 1 << 20),  # CancelAll: 2 event rows each
        "max_fills_per_order": (1, 1 << 16),  # the event buffer holds 3 rows per fill
        "max_triggers_per_command": (0, 1 << 10),
    }
    for name, (low, high) in bounds.items():
        value = getattr(config, name)
        if not (isinstance(value, int) and low <= value <= high):
            raise ValueError(f"EngineConfig.{name}={value!r} outside {low}..{high}")


def hash_capacity(max_orders: int) -> int:
    """Power of two >= 2 * max_orders: load factor <= 0.5 for linear probing (and at least
    `engine.core.hashindex.MIN_CAPACITY`)."""
    capacity = MIN_CAPACITY
    while capacity < 2 * max_orders:
        capacity <<= 1
    return capacity


ROWS_PER_STEP = 3
"""Most event rows of one matching step. A fill is one trade row (its postings and the
maker's release ride on it, engine.core.eventrows) plus an iceberg refresh; a self-trade
prevention step is its own row plus the maker's end and its release (expire maker or both,
or a decrement to zero) or the maker's hold change and refresh (a decrement)."""
ROWS_PER_ORDER = 8
"""Event rows of one order besides its steps, with room to spare: OrderAccepted and its
extension row (the hold rides on it) or OrderTriggered and a hold change, then an expiry and
a release (a FOK refusal: an expiry and a release); the remainder of 8 is slack."""


def per_command_event_bound(config: EngineConfig) -> int:
    """Worst-case event rows of one hot command (checked by the kernel before each command,
    and asserted after it: `engine.core.kernel.run_batch` fails with ERR_EVENT_BOUND when a
    command writes more)."""
    # the order and each order it triggers
    place = (ROWS_PER_STEP * config.max_fills_per_order + ROWS_PER_ORDER) * (
        1 + config.max_triggers_per_command
    )
    cancel_all = 2 * config.max_open_orders_per_account + 1
    return max(place, cancel_all)


class CoreArrays:
    """The compiled core's whole mutable state, as numpy arrays (see the column constants)."""

    __slots__ = (
        "acct",
        "bal",
        "bkl",
        "bkn",
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
        self.bkn = np.zeros(sides, dtype=np.int64)
        self.bal = np.zeros((config.max_accounts, config.max_assets, B_W), dtype=np.int64)
        self.sysb = np.zeros((config.max_assets, S_W), dtype=np.int64)
        self.mkt = np.zeros((config.max_markets, M_W), dtype=np.int64)
        self.acct = np.zeros((config.max_accounts, A_W), dtype=np.int64)
        self.ev = np.zeros((ev_cap, E_W), dtype=np.int64)
        # Static allocation: commit now every page the hot path may touch, so that no command
        # pays a page fault (see the docstring for why it is optional).
        if prefault:
            for table in (self.ev, self.idx, self.oidx, self.ords, self.olnk, self.ofree,
                          self.lvl, self.lfree, self.bkl):  # fmt: skip
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
        state = CoreState(
            self.ords,
            self.olnk,
            self.idx,
            self.oidx,
            self.lvl,
            self.bkl,
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
        check_row_widths(state)
        return state


def check_row_widths(state: CoreState) -> None:
    """Refuse a state whose tables are not as wide as the kernels were compiled for."""
    for name, width in ROW_WIDTHS.items():
        table = getattr(state, name)
        if table.shape[-1] != width or not table.flags.c_contiguous:
            need = f"C-contiguous rows of {width}"
            raise ValueError(f"{name}: shape {table.shape}, the kernels need {need}")


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
        "per_level": V_W * 8 + 4 + 4,  # levels table, free stack, sorted book array (per slot)
        "level_tables_per_order_slot": (V_W * 8 + 4) * level_cap / n,
    }
