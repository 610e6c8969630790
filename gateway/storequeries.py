"""The read model's queries: an account's orders and trades, from memory and the history index.

What ``order.status``, ``allOrders`` and ``myTrades`` ask of the store, kept apart from the fold
that builds it (`gateway.store`): open orders and closed ones not yet durable come from memory,
the rest from the durable index (`gateway.history`), merged by id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.markets import Market
from gateway.records import AccountView, OrderRecord, TradeRecord

if TYPE_CHECKING:
    from gateway.history.reader import HistoryReader


class StoreQueries:
    """The query side of `gateway.store.Store` (a base class: the fold fills these fields)."""

    by_wire: dict[str, Market]
    accounts: dict[int, AccountView]
    orders: dict[int, OrderRecord]
    history: HistoryReader | None

    def market(self, wire_symbol: str) -> Market | None:
        return self.by_wire.get(wire_symbol)

    def order_of(self, account_id: int, order_id: int) -> OrderRecord | None:
        o = self.orders.get(order_id)
        if o is None and self.history is not None:
            o = self.history.order(order_id)
        return o if o is not None and o.account_id == account_id else None

    def known(self, account_id: int, order_id: int) -> OrderRecord:
        """An order an acknowledged command's events just named (in memory, or already moved
        to the history index by a later batch before the awaiting request resumed)."""
        o = self.order_of(account_id, order_id)
        assert o is not None, f"order {order_id} of account {account_id} not found"
        return o

    def open_by_client_id(self, account_id: int, client_order_id: int) -> OrderRecord | None:
        acct = self.accounts.get(account_id)
        if acct is None:
            return None
        oid = acct.open_client_ids.get(client_order_id)
        return None if oid is None else acct.open_orders.get(oid)

    def find_by_client_id(
        self, account_id: int, market_id: int, client_order_id: int
    ) -> OrderRecord | None:
        """The account's order in ``market_id`` that used the client id last: the open one,
        else the latest closed one (a client id is unique among open orders, so a later order
        can reuse it only after the earlier one closed)."""
        o = self.memory_by_client_id(account_id, market_id, client_order_id)
        if o is not None or self.history is None:
            return o
        return self.history.latest_by_client_id(account_id, market_id, client_order_id)

    def memory_by_client_id(
        self, account_id: int, market_id: int, client_order_id: int
    ) -> OrderRecord | None:
        """`find_by_client_id` among what memory holds: the open order, else the latest
        closed one not yet trimmed (newer than anything the durable history holds)."""
        o = self.open_by_client_id(account_id, client_order_id)
        if o is not None and o.market_id == market_id:
            return o
        acct = self.accounts.get(account_id)
        if acct is None:
            return None
        for _, c in reversed(acct.pending_orders):
            if c.client_order_id == client_order_id and c.market_id == market_id:
                return c
        return None

    def orders_page(
        self,
        account_id: int,
        market_id: int,
        *,
        from_id: int,
        start_ns: int,
        end_ns: int,
        limit: int,
        newest: bool,
        index_rows: list[OrderRecord] | None = None,
    ) -> list[OrderRecord]:
        """allOrders: the account's orders in a market with ``order_id >= from_id`` placed
        within [start_ns, end_ns], ascending order id; the first ``limit`` (oldest first) or
        with ``newest`` the last ``limit``. Index rows merged with what only memory has (open
        orders and closed ones the writer has not committed yet). ``index_rows``: the durable
        part already fetched (from PostgreSQL), else the local index is asked."""
        acct = self.accounts.get(account_id)
        if acct is None:
            return []
        rows: dict[int, OrderRecord] = {}
        if index_rows is not None:
            rows = {o.order_id: o for o in index_rows}
        elif self.history is not None:
            for o in self.history.orders(
                account_id,
                market_id,
                from_id=from_id,
                start_ns=start_ns,
                end_ns=end_ns,
                limit=limit,
                newest=newest,
            ):
                rows[o.order_id] = o
        mem = [o for _, o in acct.pending_orders]
        mem += acct.open_orders.values()
        for o in mem:
            if (
                o.market_id == market_id
                and o.order_id >= from_id
                and start_ns <= o.time_ns <= end_ns
            ):
                rows[o.order_id] = o
        out = sorted(rows.values(), key=lambda o: o.order_id)
        return out[-limit:] if newest else out[:limit]

    def trades_page(
        self,
        account_id: int,
        market_id: int,
        *,
        order_id: int | None,
        from_id: int,
        start_ns: int,
        end_ns: int,
        limit: int,
        newest: bool,
        index_rows: list[TradeRecord] | None = None,
    ) -> list[TradeRecord]:
        """myTrades (and an order's trades): like `orders_page`, by trade id."""
        acct = self.accounts.get(account_id)
        if acct is None:
            return []
        rows: dict[tuple[int, int], TradeRecord] = {}
        if index_rows is not None:
            rows = {(t.trade_id, t.order_id): t for t in index_rows}
        elif self.history is not None:
            for t in self.history.trades(
                account_id,
                market_id,
                order_id=order_id,
                from_id=from_id,
                start_ns=start_ns,
                end_ns=end_ns,
                limit=limit,
                newest=newest,
            ):
                rows[(t.trade_id, t.order_id)] = t
        for _, t in acct.pending_trades:
            if (
                t.market_id == market_id
                and t.trade_id >= from_id
                and (order_id is None or t.order_id == order_id)
                and start_ns <= t.time_ns <= end_ns
            ):
                rows[(t.trade_id, t.order_id)] = t
        out = [rows[k] for k in sorted(rows)]
        return out[-limit:] if newest else out[:limit]
