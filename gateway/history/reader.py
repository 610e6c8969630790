"""What the read model asks of a durable history index (SQLite in the embedded default)."""

from __future__ import annotations

from typing import Protocol

from gateway.records import OrderRecord, TradeRecord


class HistoryReader(Protocol):
    """Closed orders and trades, queried on the event loop's thread. Every method answers
    from committed rows only; the read model merges what it has not committed yet."""

    def order(self, order_id: int) -> OrderRecord | None: ...

    def latest_by_client_id(
        self, account_id: int, market_id: int, client_order_id: int
    ) -> OrderRecord | None: ...

    def orders(
        self,
        account_id: int,
        market_id: int,
        *,
        from_id: int = 0,
        start_ns: int = 0,
        end_ns: int = ...,
        limit: int = 500,
        newest: bool = False,
    ) -> list[OrderRecord]: ...

    def trades(
        self,
        account_id: int,
        market_id: int,
        *,
        order_id: int | None = None,
        from_id: int = 0,
        start_ns: int = 0,
        end_ns: int = ...,
        limit: int = 500,
        newest: bool = False,
    ) -> list[TradeRecord]: ...
