"""A state image's resting orders as the engine's load columns, checked in bulk.

`engine.core.imaging.restore_image` checks every resting order of an image (known market and
account, price and quantity on the market's grid, hold equal to the order's commitment) and
turns it into a row of ticks and lots. One Python iteration per order was most of a node's
start-up at a deep book (~20 us an order: 2 s for 100,000). `load_columns` does the same
checks and arithmetic on columns; when any order fails one, it answers None and the caller's
order-by-order loop runs, which names the first bad order exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from engine.core.layout import A_EXISTS, M_BASE, M_EXISTS, M_QTL, M_QUOTE, M_WORST_PPM
from engine.core.money import required_buy

if TYPE_CHECKING:
    from engine.core.compiled import CompiledEngine
    from engine.schema import OrderImage

#: Columns of the load rows (`engine.core.imaging.load_orders`), in order.
LOAD_COLUMNS = 14


@njit(cache=True, nogil=True)
def _buy_holds(p, q, qtl, worst_ppm, out):  # pragma: no cover - njit
    for i in range(len(p)):
        out[i] = required_buy(p[i], q[i], qtl[i], worst_ppm[i])


def load_columns(
    eng: CompiledEngine, orders: Sequence[OrderImage]
) -> tuple[np.ndarray, dict[tuple[int, int], int]] | None:
    """(load rows, order holds summed per (account, asset)) for ``orders``; None when any
    order fails a check (or a field does not fit int64): the caller's loop then refuses it."""
    n = len(orders)
    if n == 0:
        return np.zeros((0, LOAD_COLUMNS), dtype=np.int64), {}
    try:
        raw = np.array(
            [
                (
                    o.order_id,
                    o.account_id,
                    o.market_id,
                    o.side,
                    o.order_type,
                    o.price_atoms,
                    o.qty_atoms,
                    o.hold_atoms,
                    o.client_order_id,
                    o.time_in_force,
                    o.expire_at_ns,
                    o.stp_mode,
                    o.display_qty_atoms,
                    o.visible_qty_atoms,
                )
                for o in orders
            ],
            dtype=np.int64,
        )
    except OverflowError:
        return None
    a = eng._a
    cfg = eng.config
    acc, m, side = raw[:, 1], raw[:, 2], raw[:, 3]
    price, qty, hold = raw[:, 5], raw[:, 6], raw[:, 7]
    if ((m < 0) | (m >= cfg.max_markets)).any() or not a.mkt[m, M_EXISTS].all():
        return None
    if ((acc < 1) | (acc >= cfg.max_accounts)).any() or not a.acct[acc, A_EXISTS].all():
        return None
    tick = np.asarray(eng._ticks, dtype=np.int64)[m]
    lot = np.asarray(eng._lots, dtype=np.int64)[m]
    if (price <= 0).any() or (qty <= 0).any() or (price % tick).any() or (qty % lot).any():
        return None
    p, q = price // tick, qty // lot
    rows = a.mkt[m]
    buy = side == 0
    commitment = q * lot
    buy_holds = np.empty(int(buy.sum()), dtype=np.int64)
    _buy_holds(p[buy], q[buy], rows[buy, M_QTL], rows[buy, M_WORST_PPM], buy_holds)
    commitment[buy] = buy_holds
    if (hold != commitment).any():
        return None
    asset = np.where(buy, rows[:, M_QUOTE], rows[:, M_BASE])
    assets = cfg.max_assets
    keys, inverse = np.unique(acc * assets + asset, return_inverse=True)  # acc >= 1, asset < max
    sums = np.zeros(len(keys), dtype=np.int64)
    np.add.at(sums, inverse, hold)
    held = {(k // assets, k % assets): s for k, s in zip(keys.tolist(), sums.tolist(), strict=True)}
    cols = np.empty((n, LOAD_COLUMNS), dtype=np.int64)
    cols[:, :5] = raw[:, :5]
    cols[:, 5], cols[:, 6] = p, q
    cols[:, 7:12] = raw[:, 7:12]
    cols[:, 12] = raw[:, 12] // lot
    cols[:, 13] = raw[:, 13] // lot
    return cols, held
