"""Software prefetch of the rows a batch's coming commands will touch.

Why: on workload (b) (100,000 resting orders, 10,000 accounts) a command's first touches of its
account row, its balances and, for a cancel or an amend, the order-id index entry and the
order's rows are mostly last-level cache misses (~3.4 per command in callgrind's model), each
paid in full because the loop reaches them one command at a time. The batch's rows are all
known up front, so the loop asks for row ``i + AHEAD``'s account rows and index entry, and for
row ``i + AHEAD // 2``'s order rows (its index entry has arrived by then), while it runs row
``i``. A prefetch changes no value and cannot fault: determinism and the events are untouched,
and a wrong guess (an id that is not indexed, a slot that moved) only costs the fetch.

Each prefetch costs instructions (~35 per command for the account rows, ~60 per cancel or
amend for the order side) and fetches nothing when its rows are cached anyway: the order side
runs only while at least `DEEP_BOOK_ORDERS` orders are open, the account side only once
`MANY_ACCOUNTS` accounts exist (workload (a): ~1,000 resting orders and 1,000 accounts, and
(c): 32 accounts, skip them; (b), 109,000 orders and 10,000 accounts, keeps both).
"""

from __future__ import annotations

from engine.core.hashindex import FP_MASK, oid_home, oid_home_slot
from engine.core.kernelapi import kernel, nonneg, prefetch
from engine.core.layout import (
    CF_HASH_MASK,
    CMD_AMEND,
    CMD_CANCEL,
    CMD_PLACE,
    CMD_REPLACE,
    M_BASE,
    M_QUOTE,
    R_ACCOUNT,
    R_KIND,
    R_MARKET,
    R_ORDER_ID,
)

AHEAD = 8
"""Rows between a prefetch of a command's account and index rows and its processing: about
one last-level miss latency of work at ~0.2-0.5 us per command."""
DEEP_BOOK_ORDERS = 8_192
"""Open orders from which the order-side prefetches run: below it, the order rows and index
entries (~130 bytes per order) fit in a second-level cache of 1 MiB."""
MANY_ACCOUNTS = 2_048
"""Accounts from which the account prefetches run: below it, the lines a command reads of an
account (its row and two balance rows: three 64-byte lines) fit in under half of that
cache."""


@kernel(inline=True)
def targets_order(kind):
    return kind in (CMD_CANCEL, CMD_AMEND, CMD_REPLACE)


@kernel(inline=True)
def prefetch_accounts(sp, c, j, deep_book):
    """Account row and the two balance rows of row ``j``'s market (valid ids only), and in a
    deep book the index entry of its target order."""
    kind = c[j, R_KIND]
    if kind != CMD_PLACE and not targets_order(kind):
        return
    a = c[j, R_ACCOUNT]
    m = c[j, R_MARKET]
    if a < 0 or a >= sp.acct.shape[0] or m < 0 or m >= sp.mkt.shape[0]:
        return
    a = nonneg(a)
    m = nonneg(m)
    bal = sp.bal
    prefetch(sp.acct, a, 0)
    prefetch(bal, a, nonneg(sp.mkt[m, M_BASE]))
    prefetch(bal, a, nonneg(sp.mkt[m, M_QUOTE]))
    if deep_book and targets_order(kind):
        oid = c[j, R_ORDER_ID]
        if oid > 0:
            prefetch(sp.oidx, oid_home(oid & FP_MASK, sp.ctr[CF_HASH_MASK]), 0)


@kernel(inline=True)
def prefetch_order(sp, c, j):
    """The order rows of row ``j``'s target, if the first index entry of its id holds it."""
    if not targets_order(c[j, R_KIND]):
        return
    oid = c[j, R_ORDER_ID]
    if oid <= 0:
        return
    s = oid_home_slot(sp.oidx, sp.ctr[CF_HASH_MASK], oid)
    if s < 0 or s >= sp.ords.shape[0]:
        return
    s = nonneg(s)
    prefetch(sp.ords, s, 0)
    prefetch(sp.olnk, s, 0)


@kernel(inline=True)
def prefetch_ahead(sp, c, i, stop, deep_book, many_accounts):
    """The prefetches issued before row ``i`` (>= 0) runs (rows past ``stop`` are not looked
    at); ``deep_book``, ``many_accounts``: the gates (module doc) when the batch started."""
    if many_accounts and i + AHEAD < stop:
        prefetch_accounts(sp, c, nonneg(i + AHEAD), deep_book)
    if deep_book and i + AHEAD // 2 < stop:
        prefetch_order(sp, c, nonneg(i + AHEAD // 2))
