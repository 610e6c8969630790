"""State image (canonical, allocation-independent) and rebuilding the arrays from one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.core.accountrow import install_account
from engine.core.book import level_get_or_add, open_order, order_alloc, queue_push, rest_order
from engine.core.codes import TRAIL_MARKET
from engine.core.kernelapi import kernel, state_ref
from engine.core.layout import (
    A_DMS,
    A_EXISTS,
    A_FROZEN,
    A_TIER,
    C_ERROR,
    C_LAST_SEQ,
    C_NEXT_TXN,
    C_OPEN_ORDERS,
    C_ORDER_HWM,
    CF_MAX_MARKETS,
    F_DELTA_SHIFT,
    F_PENDING,
    K_ACCOUNT,
    K_FLAGS,
    K_LEVEL,
    K_MARKET,
    K_NEXT,
    K_PREV,
    M_BAND,
    M_BASE,
    M_EXISTS,
    M_LAST_PRICE,
    M_LAST_TRADE,
    M_LOT,
    M_MAKER_PPM,
    M_MAXQ,
    M_MIN_NOTIONAL,
    M_PROT,
    M_QTL,
    M_QUOTE,
    M_STATE,
    M_TAKER_PPM,
    M_TICK,
    M_TRAIL_HEAD,
    M_TRAIL_TAIL,
    M_WORST_PPM,
    O_COID,
    O_DISPLAY,
    O_EXPIRE,
    O_EXTREME,
    O_HOLD,
    O_ID,
    O_OFFSET,
    O_PRICE,
    O_QTY,
    O_TRIGGER,
    O_VISIBLE,
    S_CUSTODY,
    S_FEES,
    V_HEAD,
    pack_flags,
    unpack_flags,
)
from engine.core.money import required_buy
from engine.core.restoreorders import load_columns
from engine.core.triggers import falls, note_gtd, pending_trigger, trigger_book
from engine.schema import (
    FORMAT_VERSION,
    MAX_TIER,
    AccountFlagsImage,
    AccountImage,
    AssetImage,
    BalanceImage,
    ConditionalOrderImage,
    MarketImage,
    OrderImage,
    StateImage,
    WithdrawalImage,
)

if TYPE_CHECKING:
    from engine.core.compiled import CompiledEngine


@kernel
def book_slots(st, out):
    """Fill ``out`` with open order slots in image order; returns how many."""
    k = 0
    for m in range(st.ctr[CF_MAX_MARKETS]):
        if st.mkt[m, M_EXISTS] == 0:
            continue
        for side in range(2):
            sx = 2 * m + side
            for pos in range(st.bkn[sx] - 1, -1, -1):
                s = st.lvl[st.bkl[sx, pos], V_HEAD]
                while s >= 0:
                    out[k] = s
                    k += 1
                    s = st.olnk[s, K_NEXT]
    return k


@kernel
def open_in_order(st, by_id):
    """Register slots as open in ascending order id (the order of the account lists)."""
    sp = state_ref(st)
    for s in by_id:
        open_order(sp, s)


@kernel
def load_pending(st, cols, slots):
    """Waiting conditional orders from image columns (ascending order id): order_id, account,
    market, side, type, tif, p, q, quote, trigger, delta, offset, extreme, expire, stp, hold,
    coid."""
    for r in range(cols.shape[0]):
        s = order_alloc(st.ofree, st.ctr)
        slots[r] = s
        st.ords[s, O_ID] = cols[r, 0]
        st.olnk[s, K_ACCOUNT] = cols[r, 1]
        m = cols[r, 2]
        side = cols[r, 3]
        otype = cols[r, 4]
        st.olnk[s, K_MARKET] = m
        st.olnk[s, K_FLAGS] = (
            pack_flags(side, otype, cols[r, 5], cols[r, 14])
            | F_PENDING
            | (cols[r, 10] << F_DELTA_SHIFT)
        )
        st.ords[s, O_PRICE] = cols[r, 6]
        st.ords[s, O_QTY] = cols[r, 7]
        if otype >= TRAIL_MARKET:
            st.ords[s, O_OFFSET] = cols[r, 11]  # the trigger follows from extreme and delta
        else:
            st.ords[s, O_TRIGGER] = cols[r, 9]
        st.ords[s, O_EXTREME] = cols[r, 12]
        st.ords[s, O_EXPIRE] = cols[r, 13]
        st.ords[s, O_HOLD] = cols[r, 15]
        st.ords[s, O_COID] = cols[r, 16]
        st.olnk[s, K_LEVEL] = -1
        if otype >= TRAIL_MARKET:
            tail = st.mkt[m, M_TRAIL_TAIL]
            st.olnk[s, K_PREV] = tail
            st.olnk[s, K_NEXT] = -1
            if tail < 0:
                st.mkt[m, M_TRAIL_HEAD] = s
            else:
                st.olnk[tail, K_NEXT] = s
            st.mkt[m, M_TRAIL_TAIL] = s
        else:
            tx = trigger_book(st.ctr, m, falls(otype, side))
            lv = level_get_or_add(st.lvl, st.bkl, st.bkn, st.lfree, st.ctr, tx, tx & 1, cols[r, 9])
            if lv >= 0:
                queue_push(st.lvl, st.olnk, lv, s)
        note_gtd(st.ords, st.olnk, st.ctr, s)


@kernel
def load_orders(st, cols, slots):
    """Rebuild books from image-order columns (order_id, account, market, side, type, p, q,
    hold, coid, tif, expire, stp, display, visible): appending in image order restores time
    priority. ``slots`` receives the slot of each row."""
    sp = state_ref(st)
    n = cols.shape[0]
    for r in range(n):
        s = order_alloc(st.ofree, st.ctr)
        slots[r] = s
        st.ords[s, O_ID] = cols[r, 0]
        st.olnk[s, K_ACCOUNT] = cols[r, 1]
        st.olnk[s, K_MARKET] = cols[r, 2]
        st.olnk[s, K_FLAGS] = pack_flags(cols[r, 3], cols[r, 4], cols[r, 9], cols[r, 11])
        st.ords[s, O_PRICE] = cols[r, 5]
        st.ords[s, O_QTY] = cols[r, 6]
        st.ords[s, O_HOLD] = cols[r, 7]
        st.ords[s, O_COID] = cols[r, 8]
        st.ords[s, O_EXPIRE] = cols[r, 10]
        st.ords[s, O_DISPLAY] = cols[r, 12]
        st.ords[s, O_VISIBLE] = cols[r, 13]
        rest_order(sp, s)
        note_gtd(st.ords, st.olnk, st.ctr, s)


def ordered_slots(eng: CompiledEngine) -> np.ndarray:
    a = eng._a
    hwm = int(a.ctr[C_ORDER_HWM])
    pending = int(
        np.count_nonzero((a.ords[:hwm, O_ID] != 0) & ((a.olnk[:hwm, K_FLAGS] & F_PENDING) != 0))
    )
    out = np.empty(int(a.ctr[C_OPEN_ORDERS]) - pending, dtype=np.int64)
    k = book_slots(eng._st, out)
    assert k == len(out), (k, len(out))
    return out


def conditional_images(eng: CompiledEngine) -> list[ConditionalOrderImage]:
    a = eng._a
    hwm = int(a.ctr[C_ORDER_HWM])
    ids = a.ords[:hwm, O_ID]
    pend = np.nonzero((ids != 0) & ((a.olnk[:hwm, K_FLAGS] & F_PENDING) != 0))[0]
    pend = pend[np.argsort(ids[pend], kind="stable")]
    out = []
    for s in pend.tolist():
        o = a.ords[s].tolist()
        k = a.olnk[s].tolist()
        f = {name: int(v[0]) for name, v in unpack_flags(np.array([k[K_FLAGS]])).items()}
        tick, lot = eng._ticks[k[K_MARKET]], eng._lots[k[K_MARKET]]
        trigger = int(pending_trigger(a.ords, a.olnk, s))
        offset = o[O_OFFSET] if f["type"] >= TRAIL_MARKET else 0
        out.append(
            ConditionalOrderImage(
                o[O_ID],
                k[K_ACCOUNT],
                k[K_MARKET],
                f["side"],
                f["type"],
                f["tif"],
                o[O_PRICE] * tick,
                o[O_QTY] * lot,
                o[O_HOLD] if f["side"] == 0 and o[O_PRICE] == 0 else 0,
                trigger * tick,
                f["delta"],
                offset * tick,
                o[O_EXTREME] * tick,
                o[O_EXPIRE],
                f["stp"],
                0,
                o[O_HOLD],
                o[O_COID],
            )
        )
    return out


def balance_table(eng: CompiledEngine) -> tuple[np.ndarray, np.ndarray]:
    """(account ids ascending, int64 rows ``[account index, asset, available, held orders,
    held withdrawals]`` of every non-zero balance, by account then asset): the canonical
    balances, as `build_image` writes them and `engine.core.digest` hashes them."""
    a = eng._a
    account_ids = np.nonzero(a.acct[:, A_EXISTS])[0].astype(np.int64)
    if not len(account_ids):
        return account_ids, np.zeros((0, 5), dtype=np.int64)
    sub = a.bal[account_ids]
    rows, cols = np.nonzero(sub.any(axis=2))
    table = np.empty((len(rows), 5), dtype=np.int64)
    table[:, 0], table[:, 1], table[:, 2:] = rows, cols, sub[rows, cols]
    return account_ids, table


def order_columns(eng: CompiledEngine) -> np.ndarray:
    """The resting orders in book order as int64 rows of `OrderImage`'s fields (canonical,
    allocation-independent: what `build_image` writes and `engine.core.digest` hashes)."""
    a = eng._a
    slots = ordered_slots(eng)
    return order_rows(a.ords[slots], a.olnk[slots], a.mkt)


def order_rows(o: np.ndarray, olnk: np.ndarray, mkt: np.ndarray) -> np.ndarray:
    """`order_columns` from the order and link rows of the resting orders in book order and
    the market table: plain arrays, so `engine.core.digest` can finish a checkpoint from
    copies on another thread while the engine goes on."""
    lk = olnk.astype(np.int64)
    mk = lk[:, K_MARKET]
    fl = unpack_flags(lk[:, K_FLAGS])
    lots = mkt[mk, M_LOT]
    cols = (
        o[:, O_ID],
        lk[:, K_ACCOUNT],
        mk,
        fl["side"],
        fl["type"],
        o[:, O_PRICE] * mkt[mk, M_TICK],
        o[:, O_QTY] * lots,
        o[:, O_HOLD],
        o[:, O_COID],
        fl["tif"],
        o[:, O_EXPIRE],
        fl["stp"],
        o[:, O_DISPLAY] * lots,
        o[:, O_VISIBLE] * lots,
    )
    return np.stack([np.asarray(c, dtype=np.int64) for c in cols], axis=1).reshape(-1, len(cols))


def header_image(
    eng: CompiledEngine,
    accounts: list[AccountImage] | None = None,
    orders: list[OrderImage] | None = None,
) -> StateImage:
    """The image; without ``accounts`` and ``orders``, only its parts that stay small."""
    a = eng._a
    ctr = a.ctr
    assets = [
        AssetImage(i, sym, dec, int(a.sysb[i, S_FEES]), int(a.sysb[i, S_CUSTODY]))
        for i, (sym, dec) in sorted(eng._assets.items())
    ]
    markets = []
    for m in np.nonzero(a.mkt[:, M_EXISTS])[0].tolist():
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
                r[M_STATE],
                r[M_BAND],
                r[M_PROT],
                r[M_MAXQ] * r[M_LOT],
                r[M_LAST_PRICE] * r[M_TICK],
            )
        )
    flagged = np.nonzero(a.acct[:, A_FROZEN] | a.acct[:, A_TIER])[0].tolist()
    flags = [AccountFlagsImage(x, *eng.account_standing(x)) for x in flagged]
    return StateImage(
        format_version=FORMAT_VERSION,
        config=eng.config,
        last_seq=int(ctr[C_LAST_SEQ]),
        next_txn_id=int(ctr[C_NEXT_TXN]),
        assets=assets,
        markets=markets,
        accounts=accounts or [],
        orders=orders or [],
        conditional_orders=conditional_images(eng),
        pending_withdrawals=[WithdrawalImage(w, *eng._pending[w]) for w in sorted(eng._pending)],
        withdrawal_ids=sorted(eng._withdrawal_ids),
        deposit_keys=sorted(eng._deposit_keys),
        account_flags=flags,
        tier_trade_limits=eng.tier_limit_images(),
    )


def build_image(eng: CompiledEngine) -> StateImage:
    a = eng._a
    account_ids, table = balance_table(eng)
    balances: dict[int, list[BalanceImage]] = {}
    for r, c, av, ho, hw in table.tolist():
        balances.setdefault(r, []).append(BalanceImage(c, av, ho, hw))
    dms = a.acct[account_ids, A_DMS].tolist() if len(account_ids) else []
    accounts = [
        AccountImage(acc, balances.get(k, []), dms[k]) for k, acc in enumerate(account_ids.tolist())
    ]
    orders = [OrderImage(*row) for row in order_columns(eng).tolist()]
    return header_image(eng, accounts, orders)


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
    eng.restore_tier_limits(image.tier_trade_limits)  # before the markets: they copy them
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
            rules=(
                m.state,
                m.price_band_bps,
                m.market_protection_bps,
                m.max_order_qty_atoms,
                m.last_price_atoms,
            ),
        )
    for acc in image.accounts:
        install_account(a.acct, a.ctr, acc.account_id)
        if acc.dead_mans_switch_ns:
            eng._arm(acc.account_id, acc.dead_mans_switch_ns)
        for b in acc.balances:
            a.bal[acc.account_id, b.asset_id] = (
                b.available_atoms,
                b.held_orders_atoms,
                b.held_withdrawals_atoms,
            )
    for f in image.account_flags:
        if not eng._account_exists(f.account_id) or not -1 <= f.tier <= MAX_TIER:
            raise ValueError(f"account flags of {f.account_id}: unknown account or bad tier")
        a.acct[f.account_id, A_FROZEN] = int(f.frozen)
        a.acct[f.account_id, A_TIER] = f.tier + 1
    n = len(image.orders)
    held: dict[tuple[int, int], int]
    bulk = load_columns(eng, image.orders)  # None: an order fails a check, the loop names it
    if bulk is not None:
        cols, held = bulk
    else:
        cols = np.zeros((n, 14), dtype=np.int64)
        held = {}
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
                o.time_in_force,
                o.expire_at_ns,
                o.stp_mode,
                o.display_qty_atoms // lot,
                o.visible_qty_atoms // lot,
            )
    slots = np.zeros(n, dtype=np.int64)
    load_orders(eng._st, cols, slots)
    pcols = np.zeros((len(image.conditional_orders), 17), dtype=np.int64)
    for r, o in enumerate(image.conditional_orders):
        m = o.market_id
        tick, lot = eng._ticks[m], eng._lots[m]
        pcols[r] = (
            o.order_id,
            o.account_id,
            m,
            o.side,
            o.order_type,
            o.time_in_force,
            o.price_atoms // tick,
            o.qty_atoms // lot,
            o.quote_qty_atoms,
            o.trigger_price_atoms // tick,
            o.trailing_delta_bps,
            o.limit_offset_atoms // tick,
            o.extreme_price_atoms // tick,
            o.expire_at_ns,
            o.stp_mode,
            o.hold_atoms,
            o.client_order_id,
        )
        asset = int(a.mkt[m, M_QUOTE if o.side == 0 else M_BASE])
        held[(o.account_id, asset)] = held.get((o.account_id, asset), 0) + o.hold_atoms
    pslots = np.zeros(len(pcols), dtype=np.int64)
    load_pending(eng._st, pcols, pslots)
    all_ids = np.concatenate([cols[:, 0], pcols[:, 0]])
    all_slots = np.concatenate([slots, pslots])
    open_in_order(eng._st, all_slots[np.argsort(all_ids, kind="stable")])
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
