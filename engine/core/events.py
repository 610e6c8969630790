"""Event rows and postings: the kernel's only output.

Each writer appends one fixed-width int64 row at ``ctr[C_EV_POS]`` (the kernel has checked the
per-command worst case before starting the command, so there is always room). Posting writers
also apply the movement to the balance arrays, so a balance changes only together with the
posting that explains it (money rule 2).
"""

from __future__ import annotations

from engine.core.book import fail
from engine.core.codes import P_ORDER_HOLD, P_ORDER_RELEASE
from engine.core.kernelapi import kernel, nonneg
from engine.core.layout import (
    B_AVAILABLE,
    B_HELD_ORDERS,
    C_EV_POS,
    C_NEXT_TXN,
    E_KIND,
    E_SEQ,
    ERR_NEGATIVE_BALANCE,
    EV_AMENDED,
    EV_ICEBERG,
    EV_POSTING,
    EV_REJECTED,
    EV_STP,
    H_AMOUNT,
    H_ASSET,
    H_TXN,
)


@kernel
def next_row(ev, ctr, kind, seq):
    r = nonneg(ctr[C_EV_POS])
    ctr[C_EV_POS] = r + 1
    ev[r, E_KIND] = kind
    ev[r, E_SEQ] = seq
    return r


@kernel
def new_txn(ctr):
    t = ctr[C_NEXT_TXN]
    ctr[C_NEXT_TXN] = t + 1
    return t


@kernel
def emit_posting(ev, ctr, seq, txn, reason, asset, d_acct, d_bucket, c_acct, c_bucket, amount):
    r = next_row(ev, ctr, EV_POSTING, seq)
    ev[r, 2] = txn
    ev[r, 3] = reason
    ev[r, 4] = asset
    ev[r, 5] = d_acct
    ev[r, 6] = d_bucket
    ev[r, 7] = c_acct
    ev[r, 8] = c_bucket
    ev[r, 9] = amount


@kernel
def post_hold(ev, ctr, bal, seq, txn, account, asset, amount):
    """ORDER_HOLD: (account, AVAILABLE) -> (account, HELD_ORDERS)."""
    emit_posting(
        ev, ctr, seq, txn, P_ORDER_HOLD, asset, account, B_AVAILABLE, account, B_HELD_ORDERS, amount
    )
    bal[account, asset, B_AVAILABLE] -= amount
    bal[account, asset, B_HELD_ORDERS] += amount
    if bal[account, asset, B_AVAILABLE] < 0:
        fail(ctr, ERR_NEGATIVE_BALANCE)


@kernel
def post_release(ev, ctr, bal, seq, txn, account, asset, amount):
    """ORDER_RELEASE: (account, HELD_ORDERS) -> (account, AVAILABLE)."""
    emit_posting(
        ev,
        ctr,
        seq,
        txn,
        P_ORDER_RELEASE,
        asset,
        account,
        B_HELD_ORDERS,
        account,
        B_AVAILABLE,
        amount,
    )
    bal[account, asset, B_HELD_ORDERS] -= amount
    bal[account, asset, B_AVAILABLE] += amount
    if bal[account, asset, B_HELD_ORDERS] < 0:
        fail(ctr, ERR_NEGATIVE_BALANCE)


@kernel
def hold_txn(ev, ctr, bal, seq, account, asset, amount):
    """A stand-alone transaction moving ``amount`` into (> 0) or out of (< 0) HELD_ORDERS."""
    if amount > 0:
        post_hold(ev, ctr, bal, seq, new_txn(ctr), account, asset, amount)
    elif amount < 0:
        post_release(ev, ctr, bal, seq, new_txn(ctr), account, asset, -amount)


@kernel
def hold_in_row(ev, ctr, bal, r, account, asset, amount):
    """The stand-alone hold movement of `hold_txn`, carried by row ``r`` (an OrderAccepted or
    an OrderAmended of ``account``) instead of a posting row of its own: columns H_TXN (0 =
    none), H_ASSET and H_AMOUNT (> 0 into HELD_ORDERS, < 0 out of it); the decoder writes the
    Posting out right after the row's event (engine.core.eventrows)."""
    if amount == 0:
        ev[r, H_TXN] = 0
        return
    account = nonneg(account)
    asset = nonneg(asset)
    ev[r, H_TXN] = new_txn(ctr)
    ev[r, H_ASSET] = asset
    ev[r, H_AMOUNT] = amount
    bal[account, asset, B_AVAILABLE] -= amount
    bal[account, asset, B_HELD_ORDERS] += amount
    if (amount > 0 and bal[account, asset, B_AVAILABLE] < 0) or (
        amount < 0 and bal[account, asset, B_HELD_ORDERS] < 0
    ):
        fail(ctr, ERR_NEGATIVE_BALANCE)  # as post_hold and post_release check


@kernel
def emit_rejected(ev, ctr, seq, account, market, order_id, coid, reason):
    r = next_row(ev, ctr, EV_REJECTED, seq)
    ev[r, 2] = account
    ev[r, 3] = market
    ev[r, 4] = order_id
    ev[r, 5] = coid
    ev[r, 6] = reason
    ev[r, 7] = 0  # 1 only for the cancel half of a CancelReplaceOrder (set by the kernel)


@kernel
def emit_order_end(ev, ctr, kind, seq, order_id, account, market, remaining_lots, reason):
    """OrderCancelled or OrderExpired (same columns)."""
    r = next_row(ev, ctr, kind, seq)
    ev[r, 2] = order_id
    ev[r, 3] = account
    ev[r, 4] = market
    ev[r, 5] = remaining_lots
    ev[r, 6] = reason


@kernel
def emit_amended(ev, ctr, seq, order_id, account, market, price, qty, kept, hold):
    r = next_row(ev, ctr, EV_AMENDED, seq)
    ev[r, 2] = order_id
    ev[r, 3] = account
    ev[r, 4] = market
    ev[r, 5] = price
    ev[r, 6] = qty
    ev[r, 7] = 1 if kept else 0
    ev[r, 8] = hold
    return r


@kernel
def emit_stp(ev, ctr, seq, market, account, taker_oid, maker_oid, lots, mode):
    r = next_row(ev, ctr, EV_STP, seq)
    ev[r, 2] = market
    ev[r, 3] = account
    ev[r, 4] = taker_oid
    ev[r, 5] = maker_oid
    ev[r, 6] = lots
    ev[r, 7] = mode


@kernel
def emit_iceberg(ev, ctr, seq, order_id, market, price, visible, hidden):
    r = next_row(ev, ctr, EV_ICEBERG, seq)
    ev[r, 2] = order_id
    ev[r, 3] = market
    ev[r, 4] = price
    ev[r, 5] = visible
    ev[r, 6] = hidden
