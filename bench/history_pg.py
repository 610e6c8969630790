"""``kootabase bench history --dsn``: the same generated history in the ledger projection's
tables, so the query phase can time the PostgreSQL path against the local index.

The rows are what the projector would have written for these orders and trades (ledger
migration 2's columns included), loaded by COPY into a freshly migrated database: the bench
measures the queries, not the projector (``kootabase bench ledger`` does that).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from engine.schema import ExpireReason
from gateway.records import CANCELED, EXPIRED, OrderRecord, TradeRecord

_STATUS = {CANCELED: "cancelled", EXPIRED: "expired"}


def order_row(o: OrderRecord) -> tuple[object, ...]:
    """The ``orders`` row (ledger.orders.COLUMNS order) the projector keeps for a closed order."""
    status = _STATUS.get(o.status, "filled")
    reason = int(ExpireReason.IOC_REMAINDER) if status == "expired" else None
    if status == "cancelled":
        reason = 0
    return (
        o.order_id, o.account_id, o.market_id, o.client_order_id, o.side, o.order_type,
        o.time_in_force, o.price, o.orig_qty, o.orig_quote_qty, 0, o.executed, o.cum_quote,
        0, status, reason, o.order_id, o.time_ns, o.order_id, o.update_ns, o.orig_qty,
        o.stop_price, o.trailing_delta, o.iceberg_qty, o.stp_mode, o.working_ns,
        o.prevented_qty, o.prevented_match_id,
    )  # fmt: skip


def trade_row(maker: TradeRecord, taker: TradeRecord, maker_account: int, taker_account: int
              ) -> tuple[object, ...]:  # fmt: skip
    """The ``trades`` row of one trade from its two sides as the gateway keeps them."""
    taker_side = 0 if taker.is_buyer else 1
    return (
        maker.market_id, maker.trade_id, maker.order_id, maker.time_ns, 0, maker.price,
        maker.qty, maker.quote, maker.order_id, maker_account, taker.order_id, taker_account,
        taker_side, maker.commission, taker.commission,
    )  # fmt: skip


async def load(dsn: str, orders: list[tuple[object, ...]], trades: list[tuple[object, ...]]
               ) -> None:  # fmt: skip
    """Migrate a fresh database and COPY the rows in; the checkpoint says the history columns
    were filled from the start (``history_from_seq`` 0)."""
    from ledger.orders import COLUMNS
    from ledger.pg.connect import connect
    from ledger.pg.migrations import migrate
    from ledger.pg.projector import TRADE_COLUMNS

    conn = await connect(dsn)
    try:
        await migrate(conn)
        await conn.copy_records_to_table("orders", records=orders, columns=COLUMNS)
        await conn.copy_records_to_table("trades", records=trades, columns=TRADE_COLUMNS)
        await conn.execute("UPDATE projection_checkpoint SET history_from_seq = 0")
        await conn.execute("ANALYZE orders; ANALYZE trades")
    finally:
        await conn.close()


async def set_checkpoint(dsn: str, last_seq: int) -> None:
    """The generated rows run past the setup journal: say the projection covers it."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE projection_checkpoint SET last_seq = $1", last_seq)
    finally:
        await conn.close()


def rows_of(closed: list[OrderRecord], trades: list[tuple[int, TradeRecord]]
            ) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:  # fmt: skip
    """PostgreSQL rows of one generated batch (trades come as maker side, then taker side)."""
    out: list[Any] = []
    for i in range(0, len(trades), 2):
        (ma, m), (ta, t) = trades[i], trades[i + 1]
        assert m.is_maker and not t.is_maker and m.trade_id == t.trade_id
        out.append(trade_row(m, t, ma, ta))
    return [order_row(o) for o in closed], out


async def backend_cpu(dsn: str) -> Callable[[], float]:
    """A reader of the CPU seconds (user + system) the gateway's PostgreSQL backends have used:
    the server's share of a query, which the gateway's thread time does not see. The bench
    runs beside the server (the same machine), so /proc has them."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    finally:
        await conn.close()
    pids = [int(r[0]) for r in rows]
    assert pids, "no backend of the gateway's pool"
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_s() -> float:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return total / tick

    return cpu_s
