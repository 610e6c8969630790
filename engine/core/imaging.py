"""State image (canonical, allocation-independent) and rebuilding the arrays from one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.core.book import open_order, order_alloc, rest_order
from engine.core.layout import (
    A_EXISTS,
    C_ERROR,
    C_LAST_SEQ,
    C_NEXT_TXN,
    C_OPEN_ORDERS,
    CF_MAX_MARKETS,
    K_ACCOUNT,
    K_MARKET,
    K_NEXT,
    K_SIDE,
    K_TYPE,
    M_BASE,
    M_EXISTS,
    M_LAST_TRADE,
    M_LOT,
    M_MAKER_PPM,
    M_MIN_NOTIONAL,
    M_QTL,
    M_QUOTE,
    M_TAKER_PPM,
    M_TICK,
    M_WORST_PPM,
    O_COID,
    O_HOLD,
    O_ID,
    O_PRICE,
    O_QTY,
    S_CUSTODY,
    S_FEES,
    V_HEAD,
    kernel,
)
from engine.core.money import required_buy
from engine.schema import (
    FORMAT_VERSION,
    AccountImage,
    AssetImage,
    BalanceImage,
    MarketImage,
    OrderImage,
    StateImage,
    WithdrawalImage,
)

if TYPE_CHECKING:
    from engine.core.compiled import CompiledEngine


@kernel
def book_slots(lvl, bkl, bkn, olnk, mkt, ctr, out):
    """Fill ``out`` with open order slots in image order; returns how many."""
    k = 0
    for m in range(ctr[CF_MAX_MARKETS]):
        if mkt[m, M_EXISTS] == 0:
            continue
        for side in range(2):
            sx = 2 * m + side
            for pos in range(bkn[sx] - 1, -1, -1):
                s = lvl[bkl[sx, pos], V_HEAD]
                while s >= 0:
                    out[k] = s
                    k += 1
                    s = olnk[s, K_NEXT]
    return k


@kernel
def load_orders(ords, olnk, idx, lvl, bkl, bkp, bkn, acct, ctr, ofree, lfree, cols, by_id, slots):
    """Rebuild books from image-order columns (order_id, account, market, side, type, p, q,
    hold, coid): appending in image order restores time priority. ``by_id`` lists the rows in
    ascending order id, the order of the account lists. ``slots`` receives the slot of each
    row."""
    n = cols.shape[0]
    for r in range(n):
        s = order_alloc(ofree, ctr)
        slots[r] = s
        ords[s, O_ID] = cols[r, 0]
        olnk[s, K_ACCOUNT] = cols[r, 1]
        olnk[s, K_MARKET] = cols[r, 2]
        olnk[s, K_SIDE] = cols[r, 3]
        olnk[s, K_TYPE] = cols[r, 4]
        ords[s, O_PRICE] = cols[r, 5]
        ords[s, O_QTY] = cols[r, 6]
        ords[s, O_HOLD] = cols[r, 7]
        ords[s, O_COID] = cols[r, 8]
        rest_order(ords, olnk, lvl, bkl, bkp, bkn, lfree, ctr, s)
    for r in by_id:
        open_order(ords, olnk, idx, acct, ctr, slots[r])


def ordered_slots(eng: CompiledEngine) -> np.ndarray:
    a = eng._a
    out = np.empty(int(a.ctr[C_OPEN_ORDERS]), dtype=np.int64)
    k = book_slots(a.lvl, a.bkl, a.bkn, a.olnk, a.mkt, a.ctr, out)
    assert k == len(out), (k, len(out))
    return out


def build_image(eng: CompiledEngine) -> StateImage:
    a = eng._a
    ctr = a.ctr
    assets = [
        AssetImage(i, sym, dec, int(a.sysb[i, S_FEES]), int(a.sysb[i, S_CUSTODY]))
        for i, (sym, dec) in sorted(eng._assets.items())
    ]
    market_ids = np.nonzero(a.mkt[:, M_EXISTS])[0].tolist()
    markets = []
    for m in market_ids:
        r = a.mkt[m].tolist()
        markets.append(
            MarketImage(
                m,
                eng._market_symbols[m],
                r[M_BASE],
                r[M_QUOTE],
                r[M_TICK],
                r[M_LOT],
                r[M_MIN_NOTIONAL],
                r[M_MAKER_PPM],
                r[M_TAKER_PPM],
                r[M_LAST_TRADE],
            )
        )
    account_ids = np.nonzero(a.acct[:, A_EXISTS])[0]
    balances: dict[int, list[BalanceImage]] = {}
    if len(account_ids):
        sub = a.bal[account_ids]
        rows, cols = np.nonzero(sub.any(axis=2))
        vals = sub[rows, cols].tolist()
        for r, c, v in zip(rows.tolist(), cols.tolist(), vals, strict=True):
            balances.setdefault(r, []).append(BalanceImage(c, v[0], v[1], v[2]))
    accounts = [
        AccountImage(acc, balances.get(k, [])) for k, acc in enumerate(account_ids.tolist())
    ]
    slots = ordered_slots(eng)
    o = a.ords[slots]
    lk = a.olnk[slots].astype(np.int64)
    mk = lk[:, K_MARKET]
    price = o[:, O_PRICE] * a.mkt[mk, M_TICK]
    qty = o[:, O_QTY] * a.mkt[mk, M_LOT]
    orders = [
        OrderImage(*row)
        for row in zip(
            o[:, O_ID].tolist(),
            lk[:, K_ACCOUNT].tolist(),
            mk.tolist(),
            lk[:, K_SIDE].tolist(),
            lk[:, K_TYPE].tolist(),
            price.tolist(),
            qty.tolist(),
            o[:, O_HOLD].tolist(),
            o[:, O_COID].tolist(),
            strict=True,
        )
    ]
    return StateImage(
        format_version=FORMAT_VERSION,
        config=eng.config,
        last_seq=int(ctr[C_LAST_SEQ]),
        next_txn_id=int(ctr[C_NEXT_TXN]),
        assets=assets,
        markets=markets,
        accounts=accounts,
        orders=orders,
        pending_withdrawals=[WithdrawalImage(w, *eng._pending[w]) for w in sorted(eng._pending)],
        withdrawal_ids=sorted(eng._withdrawal_ids),
        deposit_keys=sorted(eng._deposit_keys),
    )


def restore_image(eng: CompiledEngine, image: StateImage) -> None:
    """Fill a fresh engine (built with ``image.config``) from ``image``."""
    if image.format_version != FORMAT_VERSION:
        raise ValueError(f"image format {image.format_version}, expected {FORMAT_VERSION}")
    a = eng._a
    a.ctr[C_LAST_SEQ] = image.last_seq
    a.ctr[C_NEXT_TXN] = image.next_txn_id
    for x in image.assets:
        eng._assets[x.asset_id] = (x.symbol, x.decimals)
        a.sysb[x.asset_id, S_FEES] = x.fees_atoms
        a.sysb[x.asset_id, S_CUSTODY] = x.custody_atoms
    for m in image.markets:
        eng._install_market(
            m.market_id,
            m.symbol,
            m.base_asset_id,
            m.quote_asset_id,
            m.tick_size_atoms,
            m.lot_size_atoms,
            m.min_notional_atoms,
            m.maker_fee_ppm,
            m.taker_fee_ppm,
            m.last_trade_id,
        )
    for acc in image.accounts:
        eng._install_account(acc.account_id)
        for b in acc.balances:
            a.bal[acc.account_id, b.asset_id] = (
                b.available_atoms,
                b.held_orders_atoms,
                b.held_withdrawals_atoms,
            )
    n = len(image.orders)
    cols = np.zeros((n, 9), dtype=np.int64)
    held: dict[tuple[int, int], int] = {}
    for r, o in enumerate(image.orders):
        m = o.market_id
        if not (0 <= m < eng.config.max_markets and a.mkt[m, M_EXISTS]):
            raise ValueError(f"order {o.order_id}: unknown market {m}")
        if not eng._account_exists(o.account_id):
            raise ValueError(f"order {o.order_id}: unknown account {o.account_id}")
        tick, lot = eng._ticks[m], eng._lots[m]
        if o.price_atoms % tick or o.qty_atoms % lot or o.qty_atoms <= 0 or o.price_atoms <= 0:
            raise ValueError(f"order {o.order_id}: price or quantity off the market grid")
        p, q = o.price_atoms // tick, o.qty_atoms // lot
        row = a.mkt[m]
        if o.side == 0:
            commitment = int(required_buy(p, q, int(row[M_QTL]), int(row[M_WORST_PPM])))
            asset = int(row[M_QUOTE])
        else:
            commitment, asset = q * lot, int(row[M_BASE])
        if o.hold_atoms != commitment:
            raise ValueError(f"order {o.order_id}: hold {o.hold_atoms} != {commitment}")
        held[(o.account_id, asset)] = held.get((o.account_id, asset), 0) + o.hold_atoms
        cols[r] = (
            o.order_id,
            o.account_id,
            m,
            o.side,
            o.order_type,
            p,
            q,
            o.hold_atoms,
            o.client_order_id,
        )
    by_id = np.argsort(cols[:, 0], kind="stable").astype(np.int64)
    slots = np.zeros(n, dtype=np.int64)
    load_orders(
        a.ords,
        a.olnk,
        a.idx,
        a.lvl,
        a.bkl,
        a.bkp,
        a.bkn,
        a.acct,
        a.ctr,
        a.ofree,
        a.lfree,
        cols,
        by_id,
        slots,
    )
    if a.ctr[C_ERROR] != 0:
        raise ValueError("image does not fit the engine's bounds")
    if not np.array_equal(ordered_slots(eng), slots):
        raise ValueError("image orders are not in canonical book order")
    imaged = {
        (acc.account_id, b.asset_id): b.held_orders_atoms
        for acc in image.accounts
        for b in acc.balances
        if b.held_orders_atoms
    }
    if imaged != held:
        raise ValueError("held_orders balances differ from the sum of the order holds")
    for w in image.pending_withdrawals:
        eng._pending[w.withdrawal_id] = (w.account_id, w.asset_id, w.amount_atoms)
    eng._withdrawal_ids = set(image.withdrawal_ids)
    eng._deposit_keys = set(image.deposit_keys)
