"""Price levels, their FIFO queues, order slots and per-account open-order lists.

Per (market, side) -- side index ``sx = 2 * market + side`` -- the levels live in a sorted
array ``bkl[sx, 0:bkn[sx]]`` of level ids. The sort key is the level's price (``lvl[lv,
V_PRICE]``) for bids and minus it for asks, so the array ascends by key and the BEST level is
always the LAST one: taking or adding at the top of the book is O(1), any other price is a
binary search plus a shift. The keys are read through the level ids, not kept in a parallel
array: a level insert or drop in the middle of the book (most of workload (a)'s moves) then
shifts 4 bytes per level instead of 12, for a dependent load per step of the search.

A level's orders form a doubly-linked list through the links table (``K_PREV``/``K_NEXT``),
head = oldest (time priority). Each account's open orders form another doubly-linked list
(``K_APREV``/``K_ANEXT``) in ascending order id: new orders always have the largest id, so
they are appended, and amends keep their id, so the list never needs sorting.
"""

from __future__ import annotations

from numba.core import cgutils, types
from numba.extending import intrinsic

from engine.core.codes import BUY
from engine.core.hashindex import coid_delete, coid_insert, oid_delete, oid_insert
from engine.core.kernelapi import below_mask, kernel, nonneg, opaque
from engine.core.layout import (
    A_HEAD,
    A_OPEN,
    A_TAIL,
    C_ERROR,
    C_LEVEL_FREE,
    C_LEVEL_HWM,
    C_OPEN_ORDERS,
    C_ORDER_FREE,
    C_ORDER_HWM,
    CF_HASH_MASK,
    CF_LEVEL_CAP,
    CF_MAX_LEVELS,
    CF_MAX_ORDERS,
    ERR_BOOK,
    ERR_INDEX,
    ERR_LEVEL_EXHAUSTED,
    ERR_SIDE_FULL,
    ERR_SLOT_EXHAUSTED,
    K_ACCOUNT,
    K_ANEXT,
    K_APREV,
    K_LEVEL,
    K_MARKET,
    K_NEXT,
    K_PREV,
    O_COID,
    O_ID,
    O_PRICE,
    V_HEAD,
    V_PRICE,
    V_TAIL,
    k_side,
)


@intrinsic
def _memmove_items(typingctx, arr, dst, src, count):
    """memmove ``count`` items of the C-contiguous ``arr`` from flat index ``src`` to ``dst``
    (LLVM's memmove: vectorized, overlap-safe)."""
    sig = types.void(arr, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        itemsize = context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype))
        dst_ptr = builder.gep(ary.data, [args[1]])
        src_ptr = builder.gep(ary.data, [args[2]])
        cgutils.raw_memmove(builder, dst_ptr, src_ptr, args[3], itemsize)
        return context.get_dummy_value()

    return sig, codegen


@kernel(generic={"arr": [types.int32[:, ::1]]})
def shift_row(arr, row, src, dst, count):
    """Move ``arr[row, src:src+count]`` to ``arr[row, dst:dst+count]`` (2-D C-contiguous)."""
    if count > 0:
        base = row * arr.shape[1]
        _memmove_items(arr, base + dst, base + src, count)


@kernel
def fail(ctr, code):
    """Record the first invariant violation; the kernel stops after the current command."""
    if ctr[C_ERROR] == 0:
        ctr[C_ERROR] = code


@kernel
def side_key(side, price):
    return price if side == BUY else -price


# ---- sorted level arrays -------------------------------------------------------------------


@kernel(inline=True)
def key_at(lvl, bkl, sx, pos, side):
    """The sort key of the level at position ``pos`` of side ``sx`` (see the module doc)."""
    return side_key(side, lvl[nonneg(bkl[sx, pos]), V_PRICE])


@kernel
def level_pos(lvl, bkl, bkn, sx, side, key):
    """Lower bound: first position whose key is >= ``key`` (== bkn[sx] if none)."""
    sx = nonneg(sx)
    n = bkn[sx]
    # Most activity is at the top of the book, i.e. at the end of the array.
    if n == 0 or key_at(lvl, bkl, sx, nonneg(n - 1), side) < key:
        return n
    # Branchless lower bound over [0, n - 1] (the answer is <= n - 1 now): a new price is
    # uniform over a side's levels in workload (a), so a branch here would mispredict about
    # every other step (see below_mask).
    # Keys compared as price ^ flip, flip = -side (BUY 0, SELL 1): an ask's ~price orders
    # as its -price key does (key - 1), one instruction on the step's dependent chain. flip
    # is opaque, so LLVM does not make one copy of the loop per side behind a branch on the
    # side, which mispredicts when resting orders' sides come in random order.
    flip = opaque(-side)
    key_x = key + flip
    base = 0
    length = n
    while length > 1:
        half = length >> 1
        price = lvl[nonneg(bkl[sx, nonneg(base + half - 1)]), V_PRICE]  # >= 0: no wraparound
        base += half & below_mask(price ^ flip, key_x)
        length -= half
    return base


@kernel
def level_find(lvl, bkl, bkn, sx, side, price):
    """Level id of ``price`` on side ``sx``, or -1."""
    sx = nonneg(sx)
    pos = level_pos(lvl, bkl, bkn, sx, side, side_key(side, price))
    if pos < bkn[sx]:
        lv = bkl[sx, pos]
        if lvl[nonneg(lv), V_PRICE] == price:
            return lv
    return -1


@kernel
def best_level(bkl, bkn, sx):
    sx = nonneg(sx)
    n = bkn[sx]
    if n == 0:
        return -1
    return bkl[sx, nonneg(n - 1)]


@kernel
def check_not_crossed(lvl, bkl, bkn, ctr, m):
    """Always-on invariant after an order rests: best bid < best ask."""
    bid = best_level(bkl, bkn, 2 * m)
    ask = best_level(bkl, bkn, 2 * m + 1)
    if bid >= 0 and ask >= 0 and lvl[bid, V_PRICE] >= lvl[ask, V_PRICE]:
        fail(ctr, ERR_BOOK)


@kernel
def level_get_or_add(lvl, bkl, bkn, lfree, ctr, sx, side, price):
    """Level id of ``price`` on side ``sx``, created (empty) if absent; -1 on exhaustion."""
    sx = nonneg(sx)
    n = bkn[sx]
    pos = level_pos(lvl, bkl, bkn, sx, side, side_key(side, price))
    if pos < n:
        found = bkl[sx, pos]
        if lvl[nonneg(found), V_PRICE] == price:
            return found
    if n >= ctr[CF_MAX_LEVELS]:
        fail(ctr, ERR_SIDE_FULL)
        return -1
    # Allocate a level id: free stack first, then the high-water mark.
    if ctr[C_LEVEL_FREE] > 0:
        ctr[C_LEVEL_FREE] -= 1
        lv = lfree[ctr[C_LEVEL_FREE]]
    elif ctr[C_LEVEL_HWM] < ctr[CF_LEVEL_CAP]:
        lv = ctr[C_LEVEL_HWM]
        ctr[C_LEVEL_HWM] += 1
    else:
        fail(ctr, ERR_LEVEL_EXHAUSTED)
        return -1
    lvl[lv, V_PRICE] = price
    lvl[lv, V_HEAD] = -1
    lvl[lv, V_TAIL] = -1
    shift_row(bkl, sx, pos, pos + 1, n - pos)
    bkl[sx, pos] = lv
    bkn[sx] = n + 1
    return lv


@kernel(inline=True)
def level_index(lvl, bkl, bkn, ctr, sx, side, lv):
    """Position of level ``lv`` in side ``sx``'s array (the best, the common case, without a
    search), or -1 after recording ERR_INDEX when it is not there."""
    n = bkn[sx]
    if n > 0 and bkl[sx, n - 1] == lv:
        return n - 1
    pos = level_pos(lvl, bkl, bkn, sx, side, side_key(side, lvl[lv, V_PRICE]))
    if pos >= n or bkl[sx, pos] != lv:
        fail(ctr, ERR_INDEX)
        return -1
    return pos


@kernel(inline=True)
def level_remove_at(bkl, bkn, lfree, ctr, sx, pos, lv):
    """Take level ``lv`` out of position ``pos`` of side ``sx`` and free its id."""
    n = bkn[sx]
    shift_row(bkl, sx, pos + 1, pos, n - 1 - pos)
    bkn[sx] = n - 1
    lfree[ctr[C_LEVEL_FREE]] = lv
    ctr[C_LEVEL_FREE] += 1


@kernel
def level_drop(lvl, bkl, bkn, lfree, ctr, sx, side, lv):
    """Remove the (empty) level ``lv`` from side ``sx`` and free its id."""
    sx = nonneg(sx)
    lv = nonneg(lv)
    pos = level_index(lvl, bkl, bkn, ctr, sx, side, lv)
    if pos >= 0:
        level_remove_at(bkl, bkn, lfree, ctr, sx, pos, lv)


# ---- level queues --------------------------------------------------------------------------


@kernel
def queue_push(lvl, olnk, lv, s):
    """Append slot ``s`` at the back of level ``lv`` (lowest time priority)."""
    lv = nonneg(lv)
    s = nonneg(s)
    tail = lvl[lv, V_TAIL]
    olnk[s, K_LEVEL] = lv
    olnk[s, K_PREV] = tail
    olnk[s, K_NEXT] = -1
    if tail < 0:
        lvl[lv, V_HEAD] = s
    else:
        olnk[tail, K_NEXT] = s
    lvl[lv, V_TAIL] = s


@kernel
def queue_unlink(lvl, olnk, lv, s):
    lv = nonneg(lv)
    s = nonneg(s)
    prev = olnk[s, K_PREV]
    nxt = olnk[s, K_NEXT]
    if prev < 0:
        lvl[lv, V_HEAD] = nxt
    else:
        olnk[prev, K_NEXT] = nxt
    if nxt < 0:
        lvl[lv, V_TAIL] = prev
    else:
        olnk[nxt, K_PREV] = prev


@kernel
def rest_order(sp, s):
    """Put slot ``s`` (price, qty, side, market set) at the back of its price level."""
    s = nonneg(s)
    lvl = sp.lvl  # used again after level_get_or_add's stores (sp.X would load it again)
    olnk = sp.olnk
    side = k_side(olnk, s)
    sx = nonneg(2 * olnk[s, K_MARKET] + side)
    lv = level_get_or_add(lvl, sp.bkl, sp.bkn, sp.lfree, sp.ctr, sx, side, sp.ords[s, O_PRICE])
    if lv < 0:
        return
    queue_push(lvl, olnk, lv, s)


@kernel
def unrest_order(sp, s):
    """Take slot ``s`` out of its level; drop the level if it becomes empty."""
    s = nonneg(s)
    lvl = sp.lvl  # used again after queue_unlink's stores (sp.X would load it again)
    olnk = sp.olnk
    lv = nonneg(olnk[s, K_LEVEL])
    queue_unlink(lvl, olnk, lv, s)
    olnk[s, K_LEVEL] = -1
    if lvl[lv, V_HEAD] < 0:
        side = k_side(olnk, s)
        level_drop(
            lvl,
            sp.bkl,
            sp.bkn,
            sp.lfree,
            sp.ctr,
            2 * olnk[s, K_MARKET] + side,
            side,
            lv,
        )


@kernel
def move_order(sp, s):
    """`unrest_order` then `rest_order` for slot ``s``, whose price (``ords[s, O_PRICE]``) an
    amend has just changed on the same side, in one pass: the same book, level ids and free
    stack as the two steps. When the move empties the slot's level and the new price has no
    level, the level itself moves (same id, new price) and only the ids between its old and
    new positions shift, where the two steps shifted every id above each position (workload
    (a): most commands are such moves)."""
    s = nonneg(s)
    lvl = sp.lvl  # locals for the stores below (sp.X would load again after each)
    olnk = sp.olnk
    bkl = sp.bkl
    bkn = sp.bkn
    lv = nonneg(olnk[s, K_LEVEL])
    price = sp.ords[s, O_PRICE]
    side = k_side(olnk, s)
    sx = nonneg(2 * olnk[s, K_MARKET] + side)
    queue_unlink(lvl, olnk, lv, s)
    if lvl[lv, V_HEAD] >= 0:  # the level keeps other orders: the new price's is searched for
        to = level_get_or_add(lvl, bkl, bkn, sp.lfree, sp.ctr, sx, side, price)
        if to < 0:
            olnk[s, K_LEVEL] = -1
            return
        queue_push(lvl, olnk, to, s)
        return
    if lvl[lv, V_PRICE] == price:  # the two steps would drop it and make it again, in place
        queue_push(lvl, olnk, lv, s)
        return
    old_pos = level_index(lvl, bkl, bkn, sp.ctr, sx, side, lv)
    if old_pos < 0:
        return
    n = bkn[sx]
    new_pos = level_pos(lvl, bkl, bkn, sx, side, side_key(side, price))
    if new_pos < n and lvl[nonneg(bkl[sx, new_pos]), V_PRICE] == price:
        # The new price has a level: drop the emptied one, join the other.
        found = bkl[sx, new_pos]
        level_remove_at(bkl, bkn, sp.lfree, sp.ctr, sx, old_pos, lv)
        queue_push(lvl, olnk, found, s)
        return
    # new_pos counts the emptied level when it sits below: without it the place is one less.
    if new_pos > old_pos:
        shift_row(bkl, sx, old_pos + 1, old_pos, new_pos - 1 - old_pos)
        bkl[sx, new_pos - 1] = lv
    else:
        shift_row(bkl, sx, new_pos, new_pos + 1, old_pos - new_pos)
        bkl[sx, new_pos] = lv
    lvl[lv, V_PRICE] = price
    queue_push(lvl, olnk, lv, s)  # its head and tail are -1 since the unlink


# ---- order slots, indexes and account lists -------------------------------------------------


@kernel
def order_alloc(ofree, ctr):
    """A free order slot, or -1 (the caller has checked the open-order bound)."""
    if ctr[C_ORDER_FREE] > 0:
        ctr[C_ORDER_FREE] -= 1
        return ofree[ctr[C_ORDER_FREE]]
    if ctr[C_ORDER_HWM] < ctr[CF_MAX_ORDERS]:
        s = ctr[C_ORDER_HWM]
        ctr[C_ORDER_HWM] += 1
        return s
    fail(ctr, ERR_SLOT_EXHAUSTED)
    return -1


@kernel
def open_order(sp, s):
    """Register the filled-in slot ``s`` as open: indexes, account list, counters."""
    ords = sp.ords
    olnk = sp.olnk
    acct = sp.acct
    ctr = sp.ctr
    s = nonneg(s)
    mask = ctr[CF_HASH_MASK]
    oid_insert(sp.oidx, ords, mask, s)
    if ords[s, O_COID] != 0:
        coid_insert(sp.idx, ords, olnk, mask, s)
    a = nonneg(olnk[s, K_ACCOUNT])
    tail = acct[a, A_TAIL]
    olnk[s, K_APREV] = tail
    olnk[s, K_ANEXT] = -1
    if tail < 0:
        acct[a, A_HEAD] = s
    else:
        olnk[tail, K_ANEXT] = s
    acct[a, A_TAIL] = s
    acct[a, A_OPEN] += 1
    ctr[C_OPEN_ORDERS] += 1


@kernel
def forget_order(sp, s):
    """Undo `open_order` (the slot is already out of its level) and free the slot."""
    s = nonneg(s)
    mask = sp.ctr[CF_HASH_MASK]
    ok = oid_delete(sp.oidx, sp.ords, mask, s)
    if sp.ords[s, O_COID] != 0:
        ok = coid_delete(sp.idx, sp.ords, sp.olnk, mask, s) and ok
    ctr = sp.ctr  # locals for the run of stores below (sp.X loads again after each)
    olnk = sp.olnk
    acct = sp.acct
    if not ok:
        fail(ctr, ERR_INDEX)
    a = nonneg(olnk[s, K_ACCOUNT])
    prev = olnk[s, K_APREV]
    nxt = olnk[s, K_ANEXT]
    if prev < 0:
        acct[a, A_HEAD] = nxt
    else:
        olnk[prev, K_ANEXT] = nxt
    if nxt < 0:
        acct[a, A_TAIL] = prev
    else:
        olnk[nxt, K_APREV] = prev
    acct[a, A_OPEN] -= 1
    ctr[C_OPEN_ORDERS] -= 1
    sp.ofree[nonneg(ctr[C_ORDER_FREE])] = s
    ctr[C_ORDER_FREE] += 1
    sp.ords[s, O_ID] = 0  # a free slot (the GTD sweep scans slots)
