"""The durable history index of the embedded default: closed orders and trades in SQLite (WAL).

Why SQLite and not a segment index of our own: both were measured (docs/history.md); a B-tree
keyed by (account, market, order id) answers a point lookup and a 500-row page in well under
the targets, needs no compaction or retention code of ours, and survives a crash by itself.

Layout: both tables are clustered by (account, market, id) (``WITHOUT ROWID``), so a page of an
account's history is a few adjacent B-tree pages however the accounts interleave in time (with
a rowid table, a 500-row page touched ~500 scattered pages). A point lookup by order id goes
through the ``orders_id`` index (two seeks).

What is stored: every *closed* order (its final state, written once) and every trade, one row
per (account, side of the trade). Open orders are never here: they live in the read model (and
its snapshot). A row is its keys as columns plus the read model's own record as a msgpack blob
(`OrderRecord` / `TradeRecord` are array-like msgspec Structs), decoded straight back into the
record: a 500-row page is one small column per row to fetch instead of twenty-two.

The index is derived data: it records the last journal sequence it covers (``meta.last_seq``,
written in the same transaction as the rows), and replaying the journal from any earlier point
rewrites the same rows (``INSERT OR REPLACE``), so it can always be rebuilt from the journal.

Threads: one `HistoryIndex` per connection. The writer thread owns one (`gateway.history.writer`);
the event loop owns a read-only one. WAL lets the reader see each committed batch without ever
waiting for the writer.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import msgspec

from gateway.records import OrderRecord, TradeRecord

SCHEMA_VERSION: Final = 3
MAX_ROWS: Final = 1_000
"""Largest page any query returns (the dialect's maximum ``limit``)."""
NO_END: Final = 1 << 62
WRITER_CACHE_KIB: Final = 64 * 1024
READER_CACHE_KIB: Final = 32 * 1024

_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    account_id INTEGER NOT NULL, market_id INTEGER NOT NULL, order_id INTEGER NOT NULL,
    client_order_id INTEGER NOT NULL, time_ns INTEGER NOT NULL, close_ns INTEGER NOT NULL,
    traded INTEGER NOT NULL, rec BLOB NOT NULL,
    PRIMARY KEY (account_id, market_id, order_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS orders_id ON orders (order_id);
CREATE INDEX IF NOT EXISTS orders_client_id ON orders (account_id, client_order_id)
    WHERE client_order_id != 0;
CREATE INDEX IF NOT EXISTS orders_unfilled ON orders (close_ns) WHERE traded = 0;
CREATE TABLE IF NOT EXISTS trades (
    account_id INTEGER NOT NULL, market_id INTEGER NOT NULL, trade_id INTEGER NOT NULL,
    order_id INTEGER NOT NULL, time_ns INTEGER NOT NULL, rec BLOB NOT NULL,
    PRIMARY KEY (account_id, market_id, trade_id, order_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trades_order ON trades (account_id, order_id, trade_id);
DROP INDEX IF EXISTS orders_time;
DROP INDEX IF EXISTS trades_time;
INSERT OR IGNORE INTO meta VALUES ('schema', {SCHEMA_VERSION}), ('last_seq', 0);
"""
_ORDER_SELECT: Final = "SELECT rec FROM orders"
_ORDER_INSERT: Final = "INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_TRADE_INSERT: Final = "INSERT OR REPLACE INTO trades VALUES (?, ?, ?, ?, ?, ?)"
ORDER_KEY: Final = operator.itemgetter(0, 1, 2)
"""An order row's primary key (account, market, order id): a cold start inserts a delta's rows
in this order (`gateway.histchain.apply_deltas`). The live writer does not sort: with its page
cache holding the leaves it hits, sorting a commit's rows measured no better (docs/history.md)."""
TRADE_KEY: Final = operator.itemgetter(0, 1, 2, 3)
"""A trade row's primary key (account, market, trade id, order id)."""
_ENCODE: Final = msgspec.msgpack.Encoder().encode
_DECODE_ORDER: Final = msgspec.msgpack.Decoder(OrderRecord).decode
_DECODE_TRADE: Final = msgspec.msgpack.Decoder(TradeRecord).decode


class HistoryIndexError(Exception):
    """The index file cannot be used (another schema, corrupt): rebuild it by replay."""


def order_row(o: OrderRecord) -> tuple[object, ...]:
    """Key columns and the record itself (msgpack, array-like: ~70 bytes)."""
    return (
        o.account_id,
        o.market_id,
        o.order_id,
        o.client_order_id,
        o.time_ns,
        o.update_ns,
        o.executed > 0,
        _ENCODE(o),
    )


def trade_row(account_id: int, t: TradeRecord) -> tuple[object, ...]:
    return (account_id, t.market_id, t.trade_id, t.order_id, t.time_ns, _ENCODE(t))


class HistoryIndex:
    """One connection to the index file; ``readonly`` for the event loop's queries."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            self.db = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                # The journal is the durable record; the index only has to be consistent with
                # its own meta.last_seq after a crash, which WAL gives without an fsync per batch.
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA wal_autocheckpoint=8192")  # pages (32 MiB of WAL)
                self.db.executescript(_SCHEMA)
            except sqlite3.DatabaseError as exc:
                self.db.close()
                raise HistoryIndexError(f"{path}: {exc}") from exc
            version = self._meta("schema")
            if version != SCHEMA_VERSION:
                self.db.close()
                raise HistoryIndexError(
                    f"{path}: schema {version}, this build writes {SCHEMA_VERSION}"
                )
        # Page cache: the writer's holds the B-tree leaves that inserts hit (one per account and
        # market in each index); the reader's the hot part of recent history. Both count in
        # the gateway's memory budget (docs/history.md).
        cache_kib = READER_CACHE_KIB if readonly else WRITER_CACHE_KIB
        self.db.execute(f"PRAGMA cache_size=-{cache_kib}")

    def close(self) -> None:
        self.db.close()

    def _meta(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return -1 if row is None else int(row[0])

    @property
    def last_seq(self) -> int:
        """The journal sequence through which every closed order and trade is here."""
        return self._meta("last_seq")

    # ---- writing (the writer thread) -----------------------------------------------------

    def write(
        self,
        last_seq: int,
        orders: Iterable[tuple[object, ...]],
        trades: Iterable[tuple[object, ...]],
    ) -> None:
        """One transaction: the rows and the sequence they bring the index to."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany(_ORDER_INSERT, orders)
            db.executemany(_TRADE_INSERT, trades)
            db.execute("UPDATE meta SET value = max(value, ?) WHERE key = 'last_seq'", (last_seq,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def prune_unfilled(self, closed_before_ns: int) -> int:
        """Retention: drop cancelled/expired orders that never traded and closed before
        ``closed_before_ns`` (journal time). Orders that traded, and all trades, are kept."""
        cur = self.db.execute(
            "DELETE FROM orders WHERE traded = 0 AND close_ns < ?",
            (closed_before_ns,),
        )
        return cur.rowcount

    # ---- queries (the event loop) --------------------------------------------------------

    def order(self, order_id: int) -> OrderRecord | None:
        row = self.db.execute(f"{_ORDER_SELECT} WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else _DECODE_ORDER(row[0])

    def latest_by_client_id(
        self, account_id: int, market_id: int, client_order_id: int
    ) -> OrderRecord | None:
        row = self.db.execute(
            f"{_ORDER_SELECT} WHERE account_id = ? AND client_order_id = ? AND market_id = ? "
            "AND client_order_id != 0 "  # lets SQLite use the partial index
            "ORDER BY order_id DESC LIMIT 1",
            (account_id, client_order_id, market_id),
        ).fetchone()
        return None if row is None else _DECODE_ORDER(row[0])

    def orders(
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
        """Closed orders of (account, market) with ``order_id >= from_id`` accepted within
        [start_ns, end_ns], ascending order id: the first ``limit`` of them, or with
        ``newest`` the last ``limit``. Order ids grow with journal time, so the time range
        is a range of order ids as well."""
        assert 1 <= limit <= MAX_ROWS
        lo, hi = self._id_range("orders", "order_id", account_id, market_id, start_ns, end_ns)
        rows = self.db.execute(
            f"{_ORDER_SELECT} WHERE account_id = ? AND market_id = ? AND order_id BETWEEN ? AND ?"
            f" ORDER BY order_id {'DESC' if newest else 'ASC'} LIMIT ?",
            (account_id, market_id, max(lo, from_id), hi, limit),
        ).fetchall()
        if newest:
            rows.reverse()
        return [_DECODE_ORDER(r[0]) for r in rows]

    def _id_range(
        self,
        table: str,
        id_column: str,
        account_id: int,
        market_id: int,
        start_ns: int,
        end_ns: int,
    ) -> tuple[int, int]:
        """The time range as a range of ids. Ids grow with journal time (order ids are
        sequences, trade ids count up per market in sequence order, and journal time never
        goes back), so within one (account, market) the rows sorted by id are sorted by time
        too, and each bound is a bisection over the primary key (~log2 of the id span seeks:
        a page far into a long history costs the same as the first). No time index is kept
        for this: it cost every insert one more B-tree (docs/history.md, "Writer cost")."""
        lo, hi = 0, NO_END
        if start_ns <= 0 and end_ns >= NO_END:
            return lo, hi
        probe = self.db.execute
        after = (
            f"SELECT {id_column}, time_ns FROM {table} WHERE account_id = ? AND market_id = ? "
            f"AND {id_column} >= ? ORDER BY {id_column} LIMIT 1"
        )
        key = (account_id, market_id)

        # Two single-row seeks: min() and max() in one SELECT would scan the account's rows.
        first_id = probe(
            f"SELECT min({id_column}) FROM {table} WHERE account_id = ? AND market_id = ?", key
        ).fetchone()[0]
        if first_id is None:  # no rows: any range finds nothing
            return lo, hi
        last_id = probe(
            f"SELECT max({id_column}) FROM {table} WHERE account_id = ? AND market_id = ?", key
        ).fetchone()[0]

        def first_at_or_after(time_ns: int) -> int | None:
            """The smallest id whose row's time is >= ``time_ns`` (None: no such row)."""
            lo_id, hi_id, found = int(first_id), int(last_id) + 1, None
            while lo_id < hi_id:
                mid = (lo_id + hi_id) // 2
                row = probe(after, (*key, mid)).fetchone()
                if row is None or row[0] >= hi_id:
                    hi_id = mid
                elif row[1] >= time_ns:
                    found, hi_id = int(row[0]), mid
                else:
                    lo_id = int(row[0]) + 1
            return found

        if start_ns > 0:
            first = first_at_or_after(start_ns)
            lo = NO_END if first is None else first
        if end_ns < NO_END:
            past = first_at_or_after(end_ns + 1)  # the last id at or before end_ns is below it
            if past is None:
                hi = NO_END
            else:
                row = probe(
                    f"SELECT {id_column} FROM {table} WHERE account_id = ? AND market_id = ? "
                    f"AND {id_column} < ? ORDER BY {id_column} DESC LIMIT 1",
                    (*key, past),
                ).fetchone()
                hi = -1 if row is None else int(row[0])
        return lo, hi

    def trades(
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
        """Trades of (account, market), ascending trade id, like `orders`."""
        assert 1 <= limit <= MAX_ROWS
        lo, hi = self._id_range("trades", "trade_id", account_id, market_id, start_ns, end_ns)
        where = "account_id = ? AND market_id = ? AND trade_id BETWEEN ? AND ?"
        args: list[object] = [account_id, market_id, max(lo, from_id), hi]
        source = "trades"
        if order_id is not None:  # an order's trades: seek the order, not the account's range
            where += " AND order_id = ?"
            args.append(order_id)
            source = "trades INDEXED BY trades_order"
        direction = "DESC" if newest else "ASC"
        rows = self.db.execute(
            f"SELECT rec FROM {source} WHERE {where} "
            f"ORDER BY trade_id {direction}, order_id {direction} "
            "LIMIT ?",
            (*args, limit),
        ).fetchall()
        if newest:
            rows.reverse()
        return [_DECODE_TRADE(r[0]) for r in rows]

    def counts(self) -> tuple[int, int]:
        """(orders, trades) stored (tests, bench)."""
        o = self.db.execute("SELECT count(*) FROM orders").fetchone()[0]
        t = self.db.execute("SELECT count(*) FROM trades").fetchone()[0]
        return int(o), int(t)
