"""The history queries of order.status, allOrders and myTrades: memory first, then the durable
history, PostgreSQL (awaited) or the local index (synchronous).

Correctness rule (docs/history.md#postgresql): the gateway answers for every order it
acknowledged, at once. Memory holds every closed order and trade of batches after
``Store.trimmed_seq``; with a PostgreSQL history the store keeps them until the projection's
checkpoint passes them too (up to `gateway.store.PG_GAP_COMMANDS`), so PostgreSQL + memory is
complete while ``pg_seq >= trimmed_seq``. Otherwise (PostgreSQL down, behind by more than the
gap, or a query failing) the local index + memory answers, which is always complete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway import errors
from gateway.history.pgreader import PG_ERRORS, PgHistory
from gateway.records import OrderRecord, TradeRecord
from gateway.store import Store

R = TypeVar("R", OrderRecord, TradeRecord)


class HistoryLookup:
    """Async front of `Store`'s queries; ``pg`` None: the local index only (embedded);
    ``local`` False: no local index (``--history pg``), PostgreSQL or a refusal."""

    def __init__(self, store: Store, pg: PgHistory | None = None, *, local: bool = True) -> None:
        self.store = store
        self.pg = pg
        self.local = local

    def _pg(self) -> PgHistory | None:
        pg = self.pg
        if pg is not None and pg.serves():
            return pg
        if not self.local:
            raise errors.history_unavailable(self._why_not())
        return None

    def _why_not(self) -> str:
        pg, store = self.pg, self.store
        if pg is None:
            return "no --ledger-dsn: this server keeps no local history index (--history pg)"
        if not pg.up:
            return f"PostgreSQL history is not serving: {pg.state}"
        why = (
            f"PostgreSQL's projection is at seq {store.pg_seq}, short of seq "
            f"{store.trimmed_seq} through which this server's memory no longer holds history"
        )
        if store.held.shed_through_seq > (store.pg_seq or 0):
            why += " (rows past --history-held-rows were shed while it lagged)"
        return why

    def _failed(self, pg: PgHistory, exc: BaseException) -> None:
        """A PostgreSQL query failed: marked down; without a local index, refused."""
        pg.down(exc)
        if not self.local:
            raise errors.history_unavailable(f"PostgreSQL query failed: {str(exc)[:200]}")

    async def _durable(
        self, account_id: int, query: Callable[[PgHistory], Awaitable[list[R]]]
    ) -> list[R] | None:
        """A page's durable part from PostgreSQL; None: the local index is to answer it."""
        pg = self._pg() if account_id in self.store.accounts else None
        if pg is None:
            return None
        try:
            return await query(pg)
        except PG_ERRORS as exc:
            self._failed(pg, exc)
            return None

    async def order_of(self, account_id: int, order_id: int) -> OrderRecord | None:
        store = self.store
        o = store.orders.get(order_id)  # open, cached, and every order closed after trimmed_seq
        pg = self._pg() if o is None else None
        if pg is None:
            return store.order_of(account_id, order_id)
        try:
            o = await pg.order(order_id)
        except PG_ERRORS as exc:
            self._failed(pg, exc)
            return store.order_of(account_id, order_id)
        return o if o is not None and o.account_id == account_id else None

    async def find_by_client_id(
        self, account_id: int, market_id: int, client_order_id: int
    ) -> OrderRecord | None:
        store = self.store
        o = store.memory_by_client_id(account_id, market_id, client_order_id)
        pg = self._pg() if o is None else None
        if pg is None:
            return o or store.find_by_client_id(account_id, market_id, client_order_id)
        try:
            return await pg.latest_by_client_id(account_id, market_id, client_order_id)
        except PG_ERRORS as exc:
            self._failed(pg, exc)
            return store.find_by_client_id(account_id, market_id, client_order_id)

    async def orders_page(
        self,
        account_id: int,
        market_id: int,
        *,
        from_id: int,
        start_ns: int,
        end_ns: int,
        limit: int,
        newest: bool,
    ) -> list[OrderRecord]:
        args = dict(from_id=from_id, start_ns=start_ns, end_ns=end_ns, limit=limit, newest=newest)
        rows = await self._durable(
            account_id,
            lambda pg: pg.orders(account_id, market_id, **args),  # type: ignore[arg-type]
        )
        return self.store.orders_page(
            account_id,
            market_id,
            index_rows=rows,
            **args,  # type: ignore[arg-type]
        )

    async def trades_page(
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
    ) -> list[TradeRecord]:
        args = dict(
            order_id=order_id,
            from_id=from_id,
            start_ns=start_ns,
            end_ns=end_ns,
            limit=limit,
            newest=newest,
        )
        rows = await self._durable(
            account_id,
            lambda pg: pg.trades(account_id, market_id, **args),  # type: ignore[arg-type]
        )
        return self.store.trades_page(
            account_id,
            market_id,
            index_rows=rows,
            **args,  # type: ignore[arg-type]
        )
