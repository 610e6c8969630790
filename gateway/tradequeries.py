"""Order and account queries (order.status, openOrders, allOrders, myTrades, account), the
read-only half of `gateway.trading`: the base of `Trading`, which adds order entry.

Queries read the store and the history index, never the journal; while the node is stopped
they answer "status unknown" rather than a possibly stale "does not exist" (issue 11).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from gateway import clientids, errors, wire, wireviews
from gateway.bridge import Bridge
from gateway.clientids import ClientIdBook
from gateway.history.index import NO_END
from gateway.history.lookup import HistoryLookup
from gateway.markets import Market
from gateway.params import get_bool, get_int, get_str
from gateway.records import OrderRecord
from gateway.store import Store

MAX_TIME_MS: Final = NO_END // 1_000_000 - 1
"""Largest startTime/endTime accepted (year 2116; keeps nanoseconds in 63 bits)."""


class TradingQueries:
    """The queries of an account, and the parameter readers order entry shares with them
    (``symbol``, client order ids)."""

    def __init__(self, store: Store, bridge: Bridge, ids: ClientIdBook) -> None:
        self.store = store
        self.bridge = bridge
        self.ids = ids
        self.history = HistoryLookup(store)
        """order.status / allOrders / myTrades beyond memory (PostgreSQL attached by `serve
        --ledger-dsn`, `gateway.server`)."""

    def market(self, params: Mapping[str, Any], *, required: bool = True) -> Market | None:
        symbol = get_str(params, "symbol", required=required)
        if symbol is None:
            return None
        m = self.store.market(symbol)
        if m is None:
            raise errors.ApiError(errors.BAD_SYMBOL, "Invalid symbol.")
        return m

    def _client_id(self, params: Mapping[str, Any], name: str) -> tuple[str, int] | None:
        s = params.get(name)
        if s is None or s == "":
            return None
        if not isinstance(s, str) or not clientids.CLIENT_ID_RE.fullmatch(s):
            raise errors.illegal(name, clientids.CLIENT_ID_LEGAL)
        return s, clientids.encode(s)

    def _require_running(self) -> None:
        """Order and trade queries while the node is stopped answer "status unknown" (issue 11):
        the read model may lack commands the journal holds, so "does not exist" (or a history
        without the last fills) could be false."""
        failure = self.bridge.failure
        if failure is not None:
            raise errors.status_unknown(failure)

    async def order_status(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        self._require_running()
        m = self.market(params)
        assert m is not None
        oid = get_int(params, "orderId", lo=1)
        cid = self._client_id(params, "origClientOrderId")
        o: OrderRecord | None = None
        history = self.history
        if oid is not None:
            o = await history.order_of(account_id, oid)
        elif cid is not None:
            o = await history.find_by_client_id(account_id, m.market_id, cid[1])
            auto = clientids.AUTO_RE.fullmatch(cid[0])
            if o is None and auto is not None:
                o = await history.order_of(account_id, int(auto.group(1)))
        else:
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if o is None or o.market_id != m.market_id:
            raise errors.ApiError(errors.NO_SUCH_ORDER, "Order does not exist.")
        return wire.order(o, m, self.ids)

    def open_orders(self, account_id: int, params: Mapping[str, Any]) -> list[Any]:
        self._require_running()
        m = self.market(params, required=False)
        acct = self.store.accounts.get(account_id)
        if acct is None:
            return []
        out = []
        for o in sorted(acct.open_orders.values(), key=lambda o: o.order_id):
            if m is None or o.market_id == m.market_id:
                out.append(wire.order(o, self.store.markets[o.market_id], self.ids))
        return out

    async def all_orders(self, account_id: int, params: Mapping[str, Any]) -> msgspec.Raw:
        """allOrders over the whole history. With ``orderId`` or ``startTime`` the oldest
        matching orders from there (ascending): what an incremental sync pages with; without
        either, the newest ``limit`` (ascending), as the dialect defines it."""
        self._require_running()
        m = self.market(params)
        assert m is not None
        from_id, start_ns, end_ns, limit, newest = _page(params, "orderId")
        rows = await self.history.orders_page(
            account_id,
            m.market_id,
            from_id=from_id,
            start_ns=start_ns,
            end_ns=end_ns,
            limit=limit,
            newest=newest,
        )
        return wireviews.orders_json(rows, m, self.ids)

    async def my_trades(self, account_id: int, params: Mapping[str, Any]) -> msgspec.Raw:
        """myTrades, same paging rule as `all_orders` (``fromId`` is a trade id); with
        ``orderId`` the trades of that order."""
        self._require_running()
        m = self.market(params)
        assert m is not None
        oid = get_int(params, "orderId", lo=1)
        from_id, start_ns, end_ns, limit, newest = _page(params, "fromId")
        if oid is not None and from_id:
            raise errors.ApiError(
                errors.INVALID_PARAMETER, "fromId and orderId cannot be sent together."
            )
        rows = await self.history.trades_page(
            account_id,
            m.market_id,
            order_id=oid,
            from_id=from_id,
            start_ns=start_ns,
            end_ns=end_ns,
            limit=limit,
            newest=newest and oid is None,
        )
        return wireviews.trades_json(rows, m)

    def account(
        self, account_id: int, params: Mapping[str, Any], can_trade: bool, can_withdraw: bool
    ) -> dict[str, Any]:
        omit = get_bool(params, "omitZeroBalances")
        if account_id not in self.store.accounts:
            raise errors.ApiError(
                errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401
            )
        return wire.account(self.store, account_id, can_trade, can_withdraw, omit)


def _page(params: Mapping[str, Any], id_name: str) -> tuple[int, int, int, int, bool]:
    """(from_id, start_ns, end_ns, limit, newest) of a history query."""
    given_id = get_int(params, id_name, lo=0)
    from_id = given_id or 0
    start_ms = get_int(params, "startTime", lo=0, hi=MAX_TIME_MS)
    end_ms = get_int(params, "endTime", lo=0, hi=MAX_TIME_MS)
    limit = get_int(params, "limit", default=500, lo=1, hi=1000) or 500
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise errors.ApiError(
            errors.INVALID_PARAMETER, "startTime must be less than or equal to endTime."
        )
    start_ns = (start_ms or 0) * 1_000_000
    end_ns = NO_END if end_ms is None else end_ms * 1_000_000 + 999_999
    newest = given_id is None and start_ms is None
    return from_id, start_ns, end_ns, limit, newest
