"""An order-by-order (L3) book per market, from which L2 depth and L1 are read.

The book is a projection of engine events and nothing else, so replaying the journal rebuilds
it exactly; the engine's state image (orders in book order) is its oracle in tests. Each side
maps a price to a `Level` (total quantity plus its orders in time priority: a dict keeps
insertion order, so the FIFO costs nothing extra and removal is O(1)).

Consumers that publish diffs register a *dirty set*; every change to a level's total marks
``(side, price)`` in each of them, so a 100 ms diff and a 1 s diff of the same book are both
exact without the book knowing about streams. L3 changes are appended to `ops` as tuples, in
event order, for the L3 stream to drain.
"""

from __future__ import annotations

from itertools import islice

from sortedcontainers import SortedDict

BUY = 0
SELL = 1

# L3 op kinds (first element of each op tuple); the wire names are in `marketdata.wire`.
OP_OPEN = "open"
"""(OP_OPEN, seq, order_id, side, price, qty): joins the back of its price level."""
OP_FILL = "fill"
"""(OP_FILL, seq, order_id, fill_qty, left_qty): a resting order traded; left 0 = gone."""
OP_DONE = "done"
"""(OP_DONE, seq, order_id, reason): left the book other than by a fill."""
OP_AMEND = "amend"
"""(OP_AMEND, seq, order_id, qty): open quantity reduced in place (priority kept)."""

L3Op = (
    tuple[str, int, int, int] | tuple[str, int, int, int, int] | tuple[str, int, int, int, int, int]
)


class Level:
    """One price level: the total open quantity and the orders in time priority."""

    __slots__ = ("orders", "qty")

    def __init__(self) -> None:
        self.qty = 0
        self.orders: dict[int, int] = {}
        """order_id -> open quantity, in time priority (dict insertion order)."""


class Book:
    """The resting orders of one market. Prices and quantities are atoms (integers)."""

    def __init__(self, market_id: int) -> None:
        self.market_id = market_id
        # Bids keyed by -price so both sides iterate best first.
        self._sides: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self._where: dict[int, tuple[int, int]] = {}
        """order_id -> (side, price) of every resting order."""
        self.dirty_sets: list[set[tuple[int, int]]] = []
        self.ops: list[L3Op] = []
        self.l3_enabled = True
        """When False, L3 ops are not recorded (nobody can ever read them)."""

    # ---- reading ------------------------------------------------------------------------

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def best(self, side: int) -> tuple[int, int] | None:
        """(price, total qty) of the best level of ``side``, or None when the side is empty."""
        levels = self._sides[side]
        if not levels:
            return None
        key, level = levels.peekitem(0)
        return (-key if side == BUY else key), level.qty

    def level_qty(self, side: int, price: int) -> int:
        level = self._sides[side].get(-price if side == BUY else price)
        return 0 if level is None else level.qty

    def depth(self, side: int, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` (price, total qty) levels of ``side``, best first."""
        sign = -1 if side == BUY else 1
        return [(sign * k, lv.qty) for k, lv in islice(self._sides[side].items(), limit)]

    def orders(self, side: int) -> list[tuple[int, int, int]]:
        """(order_id, price, qty) of every order of ``side`` in book order (best first, time
        priority within a level), the order of the engine's state image."""
        sign = -1 if side == BUY else 1
        return [
            (oid, sign * key, qty)
            for key, level in self._sides[side].items()
            for oid, qty in level.orders.items()
        ]

    def order(self, order_id: int) -> tuple[int, int, int] | None:
        """(side, price, open qty) of a resting order, or None."""
        where = self._where.get(order_id)
        if where is None:
            return None
        side, price = where
        level = self._sides[side][-price if side == BUY else price]
        return side, price, level.orders[order_id]

    # ---- changing -----------------------------------------------------------------------

    def _mark(self, side: int, price: int) -> None:
        for dirty in self.dirty_sets:
            dirty.add((side, price))

    def add(self, seq: int, order_id: int, side: int, price: int, qty: int) -> None:
        """Rest ``order_id`` at the back of its level."""
        assert qty > 0, f"order {order_id} rests with qty {qty}"
        assert order_id not in self._where, f"order {order_id} already on the book"
        levels = self._sides[side]
        key = -price if side == BUY else price
        level = levels.get(key)
        if level is None:
            level = levels[key] = Level()
        level.orders[order_id] = qty
        level.qty += qty
        self._where[order_id] = (side, price)
        self._mark(side, price)
        if self.l3_enabled:
            self.ops.append((OP_OPEN, seq, order_id, side, price, qty))

    def fill(self, seq: int, order_id: int, qty: int) -> bool:
        """A resting order traded ``qty``; it leaves the book at zero. False if not resting."""
        where = self._where.get(order_id)
        if where is None:
            return False
        side, price = where
        key = -price if side == BUY else price
        levels = self._sides[side]
        level = levels[key]
        left = level.orders[order_id] - qty
        assert left >= 0, f"order {order_id} filled beyond its open quantity"
        level.qty -= qty
        if left == 0:
            del level.orders[order_id]
            del self._where[order_id]
            if not level.orders:
                del levels[key]
        else:
            level.orders[order_id] = left
        self._mark(side, price)
        if self.l3_enabled:
            self.ops.append((OP_FILL, seq, order_id, qty, left))
        return True

    def remove(self, seq: int, order_id: int, reason: str) -> bool:
        """Take a resting order off the book; False if it was not resting."""
        where = self._where.pop(order_id, None)
        if where is None:
            return False
        side, price = where
        key = -price if side == BUY else price
        levels = self._sides[side]
        level = levels[key]
        level.qty -= level.orders.pop(order_id)
        if not level.orders:
            del levels[key]
        self._mark(side, price)
        if self.l3_enabled:
            self.ops.append((OP_DONE, seq, order_id, reason))
        return True

    def reduce_in_place(self, seq: int, order_id: int, qty: int) -> bool:
        """Set a resting order's open quantity, keeping its place (amend, priority kept)."""
        where = self._where.get(order_id)
        if where is None:
            return False
        side, price = where
        level = self._sides[side][-price if side == BUY else price]
        level.qty += qty - level.orders[order_id]
        level.orders[order_id] = qty
        self._mark(side, price)
        if self.l3_enabled:
            self.ops.append((OP_AMEND, seq, order_id, qty))
        return True

    def drain_ops(self) -> list[L3Op]:
        ops, self.ops = self.ops, []
        return ops
