"""The PostgreSQL projector: engine events -> back-office tables, by COPY, crash-safe.

**Exactly once, by construction.** Events are projected in chunks that end at command
boundaries. A chunk is written in *one* database transaction: COPY of postings, transactions,
trades and assets, upserts of the orders and balances it changed, and the move of
``projection_checkpoint.last_seq`` from the chunk's ``first_seq - 1`` to its ``last_seq``. If
the projector dies anywhere inside (mid-COPY included) PostgreSQL rolls the whole chunk back,
and the next run replays the journal up to the checkpoint and continues from the command after
it: no gap. Every row has a primary key on a stable id (``txn_id``, ``(txn_id, index)``,
``(market_id, trade_id)``, ``order_id``), and the checkpoint row is locked and compared before
anything is written, so a duplicate is impossible, not merely unlikely: a second projector on
the same database fails with `ProjectionConflict` instead of writing twice.

**Durability setting.** The session runs with ``synchronous_commit = off``: a commit lost in a
database crash only moves the checkpoint back with its rows (the commit is still atomic), and
the next sync redoes that stretch from the journal, which is the source of truth.

After a failed chunk the projector's in-memory state (open orders, next transaction id) is
ahead of the database, so it refuses further work; reconnect to resume from the checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from engine.schema import (
    AssetCreated,
    EngineConfig,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderTriggered,
    Posting,
    SelfTradePrevented,
    Trade,
)
from engine.usererror import UserError
from ledger.orders import COLUMNS as ORDER_COLUMNS
from ledger.orders import OrderState, OrderTracker
from ledger.pg.connect import connect as pg_connect
from ledger.pg.migrations import migrate
from ledger.source import (
    DEFAULT_CHUNK_COMMANDS,
    Chunk,
    default_snapshot_dir,
    journal_chunks,
    open_journal,
)

log = structlog.get_logger(__name__)

APPLICATION_NAME: Final = "kootabase-ledger"

LAG: Final = Gauge(
    "kootabase_ledger_projection_lag_commands",
    "Journal last sequence minus the last sequence projected into PostgreSQL.",
)
PROJECTED_SEQ: Final = Gauge(
    "kootabase_ledger_projected_seq", "Last journal sequence projected into PostgreSQL."
)
POSTINGS: Final = Counter(
    "kootabase_ledger_postings_projected", "Postings written to PostgreSQL by this process."
)

POSTING_COLUMNS: Final = (
    "txn_id",
    "posting_index",
    "seq",
    "ts_ns",
    "event_index",
    "reason",
    "asset_id",
    "debit_account",
    "debit_bucket",
    "credit_account",
    "credit_bucket",
    "amount_atoms",
)
TXN_COLUMNS: Final = ("txn_id", "seq", "ts_ns", "event_index", "reason", "postings")
TRADE_COLUMNS: Final = (
    "market_id",
    "trade_id",
    "seq",
    "ts_ns",
    "event_index",
    "price_atoms",
    "qty_atoms",
    "quote_atoms",
    "maker_order_id",
    "maker_account_id",
    "taker_order_id",
    "taker_account_id",
    "taker_side",
    "maker_fee_atoms",
    "taker_fee_atoms",
)
_ORDER_MUTABLE: Final = (
    "price_atoms",
    "open_qty_atoms",
    "filled_qty_atoms",
    "filled_quote_atoms",
    "fee_atoms",
    "status",
    "close_reason",
    "updated_seq",
    "updated_ts_ns",
    "orig_qty_atoms",
    "working_ts_ns",
    "prevented_qty_atoms",
    "prevented_match_id",
)
_ORDERS_APPLY: Final = (
    "UPDATE orders o SET "
    + ", ".join(f"{c} = s.{c}" for c in _ORDER_MUTABLE)
    + " FROM orders_stage s WHERE o.order_id = s.order_id"
)
_ACCEPTED_SEQ: Final = ORDER_COLUMNS.index("accepted_seq")

_BALANCES_APPLY: Final = """
UPDATE balances b SET amount_atoms = b.amount_atoms + s.delta FROM balances_stage s
 WHERE b.account_id = s.account_id AND b.asset_id = s.asset_id AND b.bucket = s.bucket;
INSERT INTO balances (account_id, asset_id, bucket, amount_atoms)
SELECT s.account_id, s.asset_id, s.bucket, s.delta FROM balances_stage s
 WHERE NOT EXISTS (SELECT 1 FROM balances b WHERE b.account_id = s.account_id
                   AND b.asset_id = s.asset_id AND b.bucket = s.bucket)
"""


class ProjectionConflict(UserError, RuntimeError):
    """The database checkpoint is not where this projector left it: another projector wrote
    to the same database, or the chunk is not the next one (one line at the command line)."""


@dataclass(slots=True)
class ChunkRows:
    postings: list[tuple[int, ...]]
    transactions: list[tuple[int, ...]]
    trades: list[tuple[int, ...]]
    assets: list[tuple[object, ...]]
    orders: list[tuple[object, ...]]
    balance_deltas: dict[tuple[int, int, int], int]
    next_txn_id: int
    stp_ids: list[tuple[int, int]]
    """(market_id, next prevented match id) of the markets whose counter moved."""


def build_rows(chunk: Chunk, tracker: OrderTracker, next_txn_id: int) -> ChunkRows:
    """Turn a chunk's events into table rows; checks transaction ids are contiguous."""
    postings: list[tuple[int, ...]] = []
    txns: list[tuple[int, ...]] = []
    trades: list[tuple[int, ...]] = []
    assets: list[tuple[object, ...]] = []
    deltas: dict[tuple[int, int, int], int] = defaultdict(int)
    times = chunk.times
    seq = -1
    ts = 0
    index = 0
    txn_id = 0  # the transaction being collected (0: none)
    txn_start = 0
    for ev in chunk.events:
        if ev.seq != seq:
            if seq != -1:
                tracker.end_command()
            seq = ev.seq
            ts = times[seq]
            index = 0
        kind = type(ev)
        if kind is Posting:
            p: Posting = ev  # type: ignore[assignment]
            if p.txn_id != txn_id:
                if txn_id:
                    first = postings[txn_start]
                    txns.append(
                        (txn_id, first[2], first[3], first[4], first[5], len(postings) - txn_start)
                    )
                if p.txn_id != next_txn_id:
                    raise ProjectionConflict(
                        f"seq {seq}: transaction {p.txn_id} where {next_txn_id} was due"
                    )
                txn_id = p.txn_id
                next_txn_id += 1
                txn_start = len(postings)
            amount = p.amount_atoms
            postings.append(
                (
                    txn_id,
                    len(postings) - txn_start,
                    seq,
                    ts,
                    index,
                    p.reason,
                    p.asset_id,
                    p.debit_account_id,
                    p.debit_bucket,
                    p.credit_account_id,
                    p.credit_bucket,
                    amount,
                )
            )
            deltas[(p.debit_account_id, p.asset_id, p.debit_bucket)] -= amount
            deltas[(p.credit_account_id, p.asset_id, p.credit_bucket)] += amount
        else:
            if kind is Trade:
                t: Trade = ev  # type: ignore[assignment]
                trades.append(
                    (
                        t.market_id,
                        t.trade_id,
                        seq,
                        ts,
                        index,
                        t.price_atoms,
                        t.qty_atoms,
                        t.quote_atoms,
                        t.maker_order_id,
                        t.maker_account_id,
                        t.taker_order_id,
                        t.taker_account_id,
                        t.taker_side,
                        t.maker_fee_atoms,
                        t.taker_fee_atoms,
                    )
                )
                tracker.trade(t, ts)
            elif kind is OrderAccepted:
                tracker.accepted(ev, ts)  # type: ignore[arg-type]
            elif kind is OrderAmended:
                tracker.amended(ev, ts)  # type: ignore[arg-type]
            elif kind is OrderCancelled or kind is OrderExpired:
                tracker.ended(ev, ts)  # type: ignore[arg-type]
            elif kind is OrderTriggered:
                tracker.triggered(ev, ts)  # type: ignore[arg-type]
            elif kind is SelfTradePrevented:
                tracker.self_trade_prevented(ev, ts)  # type: ignore[arg-type]
            elif kind is AssetCreated:
                a: AssetCreated = ev  # type: ignore[assignment]
                assets.append((a.asset_id, a.symbol, a.decimals, seq))
        index += 1
    if seq != -1:
        tracker.end_command()
    if txn_id:
        first = postings[txn_start]
        txns.append((txn_id, first[2], first[3], first[4], first[5], len(postings) - txn_start))
    orders = [o.row() for o in tracker.take()]
    return ChunkRows(
        postings, txns, trades, assets, orders, deltas, next_txn_id, tracker.take_stp_ids()
    )


class Projector:
    """One connection that owns the projection while it runs (see module docstring).

    Two stages per chunk: `build` turns events into rows (CPU, Python) and `write` sends them
    (mostly PostgreSQL's CPU). `project` overlaps them: the next chunk's rows are built in a
    worker thread while the current chunk is written, so the two processes work in parallel.
    """

    def __init__(
        self,
        conn: asyncpg.Connection,
        last_seq: int,
        last_ts_ns: int,
        next_txn_id: int,
        open_orders: dict[int, OrderState],
        stp_next_ids: dict[int, int] | None = None,
    ) -> None:
        self.conn = conn
        self.last_seq = last_seq
        """Committed: the checkpoint as this projector last wrote it."""
        self.last_ts_ns = last_ts_ns
        self.next_txn_id = next_txn_id
        self.tracker = OrderTracker(open_orders, stp_next_ids=stp_next_ids)
        self._built_seq = last_seq
        """Build side: rows exist up to here (ahead of ``last_seq`` while pipelining)."""
        self._built_txn_id = next_txn_id
        self._broken = False

    @classmethod
    async def connect(cls, dsn: str) -> Projector:
        conn = await pg_connect(dsn, server_settings={"application_name": APPLICATION_NAME})
        try:
            await migrate(conn)
            await conn.execute("SET synchronous_commit = off")
            await conn.execute(
                "CREATE TEMP TABLE orders_stage (LIKE orders) ON COMMIT DELETE ROWS;"
                "CREATE TEMP TABLE balances_stage (account_id bigint, asset_id integer,"
                " bucket smallint, delta bigint) ON COMMIT DELETE ROWS"
            )
            row = await conn.fetchrow(
                "SELECT last_seq, last_ts_ns, next_txn_id FROM projection_checkpoint WHERE id = 1"
            )
            open_rows = await conn.fetch(
                f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE status = 'open'"
            )
            stp_rows = await conn.fetch("SELECT market_id, next_match_id FROM stp_match_ids")
        except BaseException:
            await conn.close()
            raise
        orders = {r["order_id"]: OrderState.from_row(tuple(r)) for r in open_rows}
        stp_ids = {int(r[0]): int(r[1]) for r in stp_rows}
        return cls(conn, row["last_seq"], row["last_ts_ns"], row["next_txn_id"], orders, stp_ids)

    async def close(self) -> None:
        await self.conn.close()

    def build(self, chunk: Chunk) -> ChunkRows:
        """Rows for the chunk after the last one built (chunks must come in order)."""
        if self._broken:
            raise RuntimeError("projector failed on an earlier chunk; reconnect to resume")
        if chunk.first_seq != self._built_seq + 1:
            raise ProjectionConflict(
                f"chunk starts at seq {chunk.first_seq}, the projection is at {self._built_seq}"
            )
        self._broken = True  # the tracker is mid-update until this returns
        rows = build_rows(chunk, self.tracker, self._built_txn_id)
        self._built_seq = chunk.last_seq
        self._built_txn_id = rows.next_txn_id
        self._broken = False
        return rows

    async def write_chunk(self, chunk: Chunk) -> int:
        """Project one chunk atomically; returns the number of postings written."""
        return await self.write(chunk, self.build(chunk))

    async def project(
        self, chunks: Iterable[Chunk], on_chunk: Callable[[Chunk, int], None] | None = None
    ) -> int:
        """Project chunks in order, building the next while writing the current; returns the
        number of postings written. Pulling from ``chunks`` happens in the worker thread too,
        so a journal replay feeding it overlaps with the database as well."""
        iterator = iter(chunks)

        def prepare() -> tuple[Chunk, ChunkRows] | None:
            chunk = next(iterator, None)
            return None if chunk is None else (chunk, self.build(chunk))

        total = 0
        ready = await asyncio.to_thread(prepare)
        while ready is not None:
            upcoming = asyncio.ensure_future(asyncio.to_thread(prepare))
            try:
                written = await self.write(*ready)
            except BaseException:
                self._broken = True
                await asyncio.gather(upcoming, return_exceptions=True)
                raise
            total += written
            if on_chunk is not None:
                on_chunk(ready[0], written)
            ready = await upcoming
        return total

    async def write(self, chunk: Chunk, rows: ChunkRows) -> int:
        """Write a built chunk in one database transaction (see module docstring)."""
        if chunk.first_seq != self.last_seq + 1:
            raise ProjectionConflict(
                f"chunk starts at seq {chunk.first_seq}, the projection is at {self.last_seq}"
            )
        conn = self.conn
        try:
            async with conn.transaction():
                await self._write_rows(chunk, rows)
        except BaseException:
            self._broken = True
            raise
        self.last_seq = chunk.last_seq
        self.last_ts_ns = chunk.last_ts_ns
        self.next_txn_id = rows.next_txn_id
        PROJECTED_SEQ.set(self.last_seq)
        POSTINGS.inc(len(rows.postings))
        return len(rows.postings)

    async def _write_rows(self, chunk: Chunk, rows: ChunkRows) -> None:
        conn = self.conn
        cp = await conn.fetchrow(
            "SELECT last_seq, next_txn_id FROM projection_checkpoint WHERE id = 1 FOR UPDATE"
        )
        if (cp["last_seq"], cp["next_txn_id"]) != (self.last_seq, self.next_txn_id):
            raise ProjectionConflict(
                f"database checkpoint is seq {cp['last_seq']} / txn {cp['next_txn_id']}, "
                f"this projector expected {self.last_seq} / {self.next_txn_id}: another "
                "projector is writing to this database"
            )
        # The staging joins touch a few thousand rows of tables that grow without bound:
        # index lookups, never a scan of the whole table (the planner has no stats for the
        # staging tables and would pick a hash join).
        await conn.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        if rows.assets:
            await conn.copy_records_to_table(
                "assets",
                records=rows.assets,
                columns=("asset_id", "symbol", "decimals", "created_seq"),
            )
        if rows.postings:
            await conn.copy_records_to_table(
                "transactions", records=rows.transactions, columns=TXN_COLUMNS
            )
            await conn.copy_records_to_table(
                "postings", records=rows.postings, columns=POSTING_COLUMNS
            )
        if rows.trades:
            await conn.copy_records_to_table("trades", records=rows.trades, columns=TRADE_COLUMNS)
        # Orders accepted in this chunk are new rows (COPY; the primary key refuses a
        # duplicate); older orders that changed are updated from a staging table.
        new_orders = [r for r in rows.orders if r[_ACCEPTED_SEQ] >= chunk.first_seq]
        if new_orders:
            await conn.copy_records_to_table("orders", records=new_orders, columns=ORDER_COLUMNS)
        if len(new_orders) < len(rows.orders):
            await conn.copy_records_to_table(
                "orders_stage",
                columns=ORDER_COLUMNS,
                records=[r for r in rows.orders if r[_ACCEPTED_SEQ] < chunk.first_seq],
            )
            await conn.execute(_ORDERS_APPLY)
        if rows.balance_deltas:
            await conn.copy_records_to_table(
                "balances_stage", records=[(*k, v) for k, v in rows.balance_deltas.items() if v]
            )
            # Update, then insert the new keys: an INSERT ... ON CONFLICT would test the
            # floor CHECK on the delta itself, which may well be negative.
            await conn.execute(_BALANCES_APPLY)
        if rows.stp_ids:
            await conn.executemany(
                "INSERT INTO stp_match_ids VALUES ($1, $2) ON CONFLICT (market_id) "
                "DO UPDATE SET next_match_id = EXCLUDED.next_match_id",
                rows.stp_ids,
            )
        await conn.execute(
            "UPDATE projection_checkpoint SET last_seq = $1, last_ts_ns = $2, "
            "next_txn_id = $3, updated_at = now() WHERE id = 1",
            chunk.last_seq,
            chunk.last_ts_ns,
            rows.next_txn_id,
        )


@dataclass(frozen=True, slots=True)
class SyncResult:
    from_seq: int
    """The checkpoint found at start."""
    to_seq: int
    commands: int
    postings: int
    seconds: float


async def sync(
    dsn: str,
    journal_dir: Path,
    *,
    to_seq: int | None = None,
    chunk_commands: int = DEFAULT_CHUNK_COMMANDS,
    config: EngineConfig | None = None,
    on_chunk: Callable[[Chunk, int], None] | None = None,
) -> SyncResult:
    """Catch the projection up with the journal (from its checkpoint to ``to_seq``/the end)."""
    started = time.perf_counter()
    projector = await Projector.connect(dsn)
    start = projector.last_seq
    try:
        with open_journal(journal_dir) as journal:
            LAG.set(max(0, journal.last_sequence - projector.last_seq))
            chunks = journal_chunks(
                journal,
                after_seq=projector.last_seq,
                to_seq=to_seq,
                chunk_commands=chunk_commands,
                config=config,
                snapshot_dir=default_snapshot_dir(journal_dir),
            )

            def progress(chunk: Chunk, written: int) -> None:
                LAG.set(max(0, journal.last_sequence - projector.last_seq))
                if on_chunk is not None:
                    on_chunk(chunk, written)

            postings = await projector.project(chunks, progress)
            end = projector.last_seq
    finally:
        await projector.close()
    seconds = time.perf_counter() - started
    log.info(
        "ledger_synced", from_seq=start, to_seq=end, postings=postings, seconds=round(seconds, 3)
    )
    return SyncResult(start, end, end - start, postings, seconds)
