"""The workload generators' view of the open orders: who owns what, where, and how much.

The generators must only emit commands that the engine accepts (a cancel of an order that an
IOC just consumed would be rejected and would measure the reject path, not the hot path). So
they keep this model of every open order and the best price of each book side. It holds no
matching logic: every fill is read back from the events of a scratch engine (see
`bench.workloads`), so the model cannot drift from the engine's own semantics.

Units are the core's: prices in ticks, quantities in lots.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sortedcontainers import SortedList


@dataclass(slots=True)
class OpenOrder:
    """One resting order as the generator believes it to be."""

    account_id: int
    market_id: int
    side: int
    price: int
    """Ticks."""
    qty: int
    """Open lots."""


class BookModel:
    """Open orders with O(1) uniform sampling and O(log n) best-price lookup.

    Sampling is uniform over *orders* (not accounts): with ~1 order per account in workload
    (a) the two are the same, and with a deep book it gives every resting order the same
    chance of being cancelled or moved, which keeps the depth profile stationary.
    """

    def __init__(self) -> None:
        self.orders: dict[int, OpenOrder] = {}
        self._ids: list[int] = []
        self._pos: dict[int, int] = {}
        # (market_id, side) -> sorted prices of the open orders (one entry per order)
        self._prices: dict[tuple[int, int], SortedList] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._pos

    def add(self, order_id: int, order: OpenOrder) -> None:
        assert order_id not in self._pos, f"order {order_id} already open"
        assert order.qty > 0 and order.price > 0
        self.orders[order_id] = order
        self._pos[order_id] = len(self._ids)
        self._ids.append(order_id)
        self._side(order.market_id, order.side).add(order.price)

    def remove(self, order_id: int) -> None:
        order = self.orders.pop(order_id)
        index = self._pos.pop(order_id)
        last = self._ids.pop()
        if last != order_id:  # swap-remove keeps sampling O(1)
            self._ids[index] = last
            self._pos[last] = index
        self._side(order.market_id, order.side).remove(order.price)

    def reprice(self, order_id: int, price: int) -> None:
        order = self.orders[order_id]
        prices = self._side(order.market_id, order.side)
        prices.remove(order.price)
        prices.add(price)
        order.price = price

    def reduce(self, order_id: int, lots: int) -> None:
        """Take ``lots`` off an order (a fill or a qty decrease); it leaves the book at 0."""
        order = self.orders[order_id]
        assert 0 < lots <= order.qty, f"order {order_id}: reduce {lots} of {order.qty}"
        order.qty -= lots
        if order.qty == 0:
            self.remove(order_id)

    def sample(self, rng: random.Random) -> int | None:
        """A uniformly chosen open order id, or None when the book is empty."""
        if not self._ids:
            return None
        return self._ids[rng.randrange(len(self._ids))]

    def best_bid(self, market_id: int) -> int | None:
        prices = self._prices.get((market_id, 0))
        return prices[-1] if prices else None

    def best_ask(self, market_id: int) -> int | None:
        prices = self._prices.get((market_id, 1))
        return prices[0] if prices else None

    def side_count(self, market_id: int, side: int) -> int:
        prices = self._prices.get((market_id, side))
        return len(prices) if prices else 0

    def levels(self, market_id: int, side: int) -> int:
        """Distinct price levels on one side (O(n): for statistics, not the hot loop)."""
        prices = self._prices.get((market_id, side))
        return len(set(prices)) if prices else 0

    def _side(self, market_id: int, side: int) -> SortedList:
        key = (market_id, side)
        prices = self._prices.get(key)
        if prices is None:
            prices = self._prices[key] = SortedList()
        return prices
