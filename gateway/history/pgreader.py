"""Older history from the PostgreSQL projection (``serve --ledger-dsn``), queried with asyncpg.

The ledger projection (`ledger.pg`) already holds every order and trade; since ledger migration
2 its ``orders`` rows carry every field the dialect answers with (stop price, trailing delta,
iceberg quantity, STP mode, prevented quantity and match id, working time, the quantity after an
amend), folded by the same rules as the gateway's read model. This module turns those rows back
into `OrderRecord` / `TradeRecord`, so the answers are the bytes the local index gives. A query
selects one JSON array (``json_agg`` of the records' array form) that msgspec decodes straight
into records: per-column decoding of 500 rows in Python was ~2 ms of the gateway's CPU a page.

Which source answers is decided per query by `gateway.history.lookup`: PostgreSQL only while its
checkpoint covers everything memory no longer holds (`Store.pg_serves`), else the local index.
A poll task reads the checkpoint; a failed query or poll marks PostgreSQL down until the next
poll succeeds, and the query that failed is answered from the local index.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import asyncpg
import msgspec
import structlog

from engine.schema import ExpireReason, Side
from gateway.history.index import MAX_ROWS, NO_END
from gateway.history.writer import DAY_NS
from gateway.records import CANCELED, EXPIRED, EXPIRED_IN_MATCH, FILLED, OrderRecord, TradeRecord
from gateway.store import Store

log = structlog.get_logger(__name__)

POLL_INTERVAL_S: Final = 0.2
QUERY_TIMEOUT_S: Final = 2.0
PG_ERRORS: Final = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)
"""What a PostgreSQL that is down, restarting or unmigrated raises: fall back, never 500."""

_STP_EXPIRED: Final = int(ExpireReason.SELF_TRADE_PREVENTED)
_BUY: Final = int(Side.BUY)
_ORDER_ARRAY: Final = (
    "json_build_array(order_id, account_id, market_id, client_order_id, side, order_type, "
    "time_in_force, price_atoms, orig_qty_atoms, quote_qty_atoms, accepted_ts_ns, "
    f"filled_qty_atoms, filled_quote_atoms, CASE status WHEN 'filled' THEN '{FILLED}' "
    f"WHEN 'cancelled' THEN '{CANCELED}' WHEN 'expired' THEN CASE WHEN close_reason = "
    f"{_STP_EXPIRED} THEN '{EXPIRED_IN_MATCH}' ELSE '{EXPIRED}' END END, updated_ts_ns, "
    "stop_price_atoms, trailing_delta_bps, display_qty_atoms, stp_mode, working_ts_ns, "
    "prevented_qty_atoms, prevented_match_id)"
)
"""An ``orders`` row as the JSON array of an `OrderRecord` (array-like: its field order)."""
_TRADE_ARRAY: Final = (
    "json_build_array(market_id, trade_id, order_id, price_atoms, qty_atoms, quote_atoms, "
    "commission, is_buyer, is_maker, ts_ns)"
)
_CLOSED: Final = "status <> 'open'"
_KEPT: Final = "(filled_qty_atoms > 0 OR updated_ts_ns >= {})"
"""Retention (`PgHistory._kept_since_ns`), with the parameter's number."""
_DECODE_ORDERS: Final = msgspec.json.Decoder(list[OrderRecord]).decode
_DECODE_TRADES: Final = msgspec.json.Decoder(list[TradeRecord]).decode


def _orders_json(inner: str) -> str:
    """One JSON array of the rows ``inner`` selects, ascending order id: a page is one text
    value that msgspec decodes straight into records (no per-column decoding in Python)."""
    return (
        f"SELECT coalesce(json_agg({_ORDER_ARRAY} ORDER BY order_id), '[]')::text FROM ({inner}) o"
    )


def _trade_select(side: str) -> str:
    """One side's trades as the account sees them (a self-trade is two rows, one per order)."""
    maker = side == "maker"
    return (
        f"SELECT market_id, trade_id, {side}_order_id AS order_id, price_atoms, qty_atoms, "
        f"quote_atoms, {side}_fee_atoms AS commission, "
        f"taker_side {'<>' if maker else '='} {_BUY} AS is_buyer, "
        f"{'true' if maker else 'false'} AS is_maker, ts_ns FROM trades"
    )


class PgHistory:
    """One asyncpg pool; `start` on the running loop, `close` at shutdown."""

    def __init__(
        self,
        dsn: str,
        store: Store,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        retention_days: int = 90,
    ) -> None:
        assert retention_days >= 0, "0 keeps everything forever"
        self.dsn = dsn
        self.store = store
        self.retention_ns = retention_days * DAY_NS
        self.poll_interval_s = poll_interval_s
        self.pool: asyncpg.Pool | None = None
        self.up = False
        self.state = "starting"
        self.queries = 0
        """Queries answered from PostgreSQL (tests, metrics)."""
        self.fallbacks = 0
        """Queries that failed here and were answered from the local index."""
        self.fallback = "local index"
        """What answers while PostgreSQL cannot (``--history pg``: nothing, a refusal)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name="pg-history-poll")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.pool is not None:
            await self.pool.close()
        self.store.pg_seq = None

    def serves(self) -> bool:
        return self.up and self.store.pg_serves()

    def down(self, exc: BaseException, *, query: bool = True) -> None:
        """A query (or the poll) failed: the local index answers until a poll succeeds."""
        if self.up:
            log.warning("pg_history_down", error=str(exc)[:200])
        self.up = False
        self.fallbacks += query

    def status(self) -> dict[str, object]:
        """Always ``ok`` (trading goes on): while PostgreSQL cannot serve, the local index
        answers, or with ``--history pg`` history queries are refused (``source`` says so)."""
        return {
            "ok": True,
            "source": "postgresql" if self.serves() else self.fallback,
            "state": self.state,
            "seq": self.store.pg_seq,
            "heldRows": self.store.held.rows,
            "rowsShed": self.store.held.shed_rows,
            "shedThroughSeq": self.store.held.shed_through_seq,
        }

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll()
            except PG_ERRORS as exc:
                self.down(exc, query=False)
                self.state = f"down: {str(exc)[:200]}"
            await asyncio.sleep(self.poll_interval_s)

    async def poll(self) -> None:
        """Read the projection's checkpoint; history is served only from a projection whose
        dialect columns were filled from the journal's start (``history_from_seq`` 0)."""
        if self.pool is None:
            # min_size 0: with a floor, asyncpg's pool reconnects on its own while the
            # database is gone and prints a raw traceback on stderr each time; without one a
            # lost database is this loop's PG_ERRORS, logged once (`down`)
            self.pool = await asyncpg.create_pool(
                self.dsn, min_size=0, max_size=4, timeout=QUERY_TIMEOUT_S
            )
        row = await self.pool.fetchrow(
            "SELECT last_seq, history_from_seq FROM projection_checkpoint WHERE id = 1",
            timeout=QUERY_TIMEOUT_S,
        )
        if row is None or row[1] != 0:
            self.up = False
            self.state = "projection predates the history columns: rebuild it to serve history"
            return
        if not self.up:
            log.info("pg_history_up", seq=row[0])
        self.up = True
        self.state = "running"
        # as read, not the highest seen: a projection rebuilt from scratch starts again at 0
        self.store.pg_seq = int(row[0])

    def _kept_since_ns(self) -> int:
        """Retention as the local index applies it (`HistoryWriter`): a cancelled or expired
        order that never traded is not answered once it closed longer ago than that (journal
        time); the projection, the back-office's record, keeps the row."""
        if not self.retention_ns:
            return 0
        return self.store.last_ts_ns - self.retention_ns

    async def _fetch(self, sql: str, *args: object) -> bytes:
        """The one JSON text value ``sql`` selects."""
        assert self.pool is not None
        text = await self.pool.fetchval(sql, *args, timeout=QUERY_TIMEOUT_S)
        self.queries += 1
        return text.encode() if isinstance(text, str) else b"[]"

    # ---- the HistoryReader queries, awaited ------------------------------------------------

    async def order(self, order_id: int) -> OrderRecord | None:
        rows = _DECODE_ORDERS(
            await self._fetch(
                _orders_json(
                    f"SELECT * FROM orders WHERE order_id = $1 AND {_CLOSED} "
                    f"AND {_KEPT.format('$2')}"
                ),
                order_id,
                self._kept_since_ns(),
            )
        )
        return rows[0] if rows else None

    async def latest_by_client_id(
        self, account_id: int, market_id: int, client_order_id: int
    ) -> OrderRecord | None:
        if client_order_id == 0:
            return None
        rows = _DECODE_ORDERS(
            await self._fetch(
                _orders_json(
                    "SELECT * FROM orders WHERE account_id = $1 AND client_order_id = $2 "
                    f"AND market_id = $3 AND client_order_id <> 0 AND {_CLOSED} "
                    f"AND {_KEPT.format('$4')} ORDER BY order_id DESC LIMIT 1"
                ),
                account_id,
                client_order_id,
                market_id,
                self._kept_since_ns(),
            )
        )
        return rows[0] if rows else None

    async def orders(
        self,
        account_id: int,
        market_id: int,
        *,
        from_id: int = 0,
        start_ns: int = 0,
        end_ns: int = NO_END,
        limit: int = 500,
        newest: bool = False,
    ) -> list[OrderRecord]:
        """As `HistoryIndex.orders`: the time range becomes an id range by two seeks on the
        time index (ids grow with journal time), in the same statement."""
        assert 1 <= limit <= MAX_ROWS
        where = f"account_id = $1 AND market_id = $2 AND {_CLOSED}"
        where += f" AND {_KEPT.format('$7')}"
        lo, hi = _id_bounds("order_id", f"FROM orders WHERE {where}", "accepted_ts_ns")
        text = await self._fetch(
            _orders_json(
                f"SELECT * FROM orders WHERE {where} AND order_id >= greatest($3, {lo}) "
                f"AND order_id <= {hi} ORDER BY order_id {'DESC' if newest else 'ASC'} LIMIT $6"
            ),
            account_id,
            market_id,
            from_id,
            start_ns,
            end_ns,
            limit,
            self._kept_since_ns(),
        )
        return _DECODE_ORDERS(text)

    async def trades(
        self,
        account_id: int,
        market_id: int,
        *,
        order_id: int | None = None,
        from_id: int = 0,
        start_ns: int = 0,
        end_ns: int = NO_END,
        limit: int = 500,
        newest: bool = False,
    ) -> list[TradeRecord]:
        """As `HistoryIndex.trades`: the account's maker rows and taker rows, each side's
        first ``limit`` by its index, merged. Trade ids grow with journal time per market, so
        the market's time index bounds the id range."""
        assert 1 <= limit <= MAX_ROWS
        lo, hi = _id_bounds("trade_id", "FROM trades WHERE market_id = $2", "ts_ns")
        direction = "DESC" if newest else "ASC"
        parts = []
        for side in ("maker", "taker"):
            cond = (
                f"{side}_account_id = $1 AND market_id = $2 AND trade_id >= greatest($3, {lo}) "
                f"AND trade_id <= {hi}"
            )
            if order_id is not None:
                cond += f" AND {side}_order_id = $7"
            parts.append(
                f"({_trade_select(side)} WHERE {cond} ORDER BY trade_id {direction} LIMIT $6)"
            )
        args: list[object] = [account_id, market_id, from_id, start_ns, end_ns, limit]
        if order_id is not None:
            args.append(order_id)
        text = await self._fetch(
            f"SELECT coalesce(json_agg({_TRADE_ARRAY} ORDER BY trade_id, order_id), '[]')::text "
            f"FROM ({parts[0]} UNION ALL {parts[1]} "
            f"ORDER BY trade_id {direction}, order_id {direction} LIMIT $6) t",
            *args,
        )
        return _DECODE_TRADES(text)


def _id_bounds(id_col: str, source: str, time_col: str) -> tuple[str, str]:
    """SQL for the id range of the time range [$4, $5] (``$4`` 0 / ``$5`` NO_END: open)."""
    lo = (
        f"CASE WHEN $4::bigint > 0 THEN coalesce((SELECT {id_col} {source} AND {time_col} >= $4 "
        f"ORDER BY {time_col}, {id_col} LIMIT 1), {NO_END}) ELSE 0 END"
    )
    hi = (
        f"CASE WHEN $5::bigint < {NO_END} THEN coalesce((SELECT {id_col} {source} AND "
        f"{time_col} <= $5 ORDER BY {time_col} DESC, {id_col} DESC LIMIT 1), -1) "
        f"ELSE {NO_END} END"
    )
    return lo, hi
