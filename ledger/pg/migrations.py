"""Versioned schema migrations, applied at start by whoever connects first.

Each migration runs in its own transaction together with its ``schema_migrations`` row, under
an advisory lock, so two processes starting at once apply each version exactly once and a crash
half-way leaves the previous version intact. Migrations are append-only: a released version is
never edited (a change is a new version).

Column conventions: atoms are ``bigint`` (every amount fits int64, see MAX_AMOUNT_ATOMS);
journal times are ``bigint`` ns (the sequencer's clock, not the database's). The floors of the
chart of accounts are CHECK constraints too, so the database refuses a negative user or fee
balance even if the projector had a bug.
"""

from __future__ import annotations

from typing import Final

import asyncpg

ADVISORY_LOCK_KEY: Final = 0x6B6F6F7461  # "koota"

MIGRATIONS: Final[tuple[tuple[int, str, str], ...]] = (
    (
        1,
        "ledger core",
        """
CREATE TABLE assets (
    asset_id integer PRIMARY KEY,
    symbol text NOT NULL,
    decimals smallint NOT NULL CHECK (decimals BETWEEN 0 AND 18),
    created_seq bigint NOT NULL
);
CREATE TABLE transactions (
    txn_id bigint PRIMARY KEY CHECK (txn_id > 0),
    seq bigint NOT NULL,
    ts_ns bigint NOT NULL,
    event_index integer NOT NULL,
    reason smallint NOT NULL,
    postings smallint NOT NULL CHECK (postings > 0)
);
CREATE TABLE postings (
    txn_id bigint NOT NULL,
    posting_index smallint NOT NULL,
    seq bigint NOT NULL,
    ts_ns bigint NOT NULL,
    event_index integer NOT NULL,
    reason smallint NOT NULL,
    asset_id integer NOT NULL,
    debit_account bigint NOT NULL,
    debit_bucket smallint NOT NULL,
    credit_account bigint NOT NULL,
    credit_bucket smallint NOT NULL,
    amount_atoms bigint NOT NULL CHECK (amount_atoms > 0),
    PRIMARY KEY (txn_id, posting_index)
);
-- One key per side, without seq: B-tree deduplication keeps these small and cheap to insert
-- into (an (account, seq) key is unique per row and costs twice as much per COPY); heap order
-- follows seq, so a statement still reads its rows in order.
CREATE INDEX postings_debit ON postings (debit_account);
CREATE INDEX postings_credit ON postings (credit_account);
CREATE TABLE balances (
    account_id bigint NOT NULL,
    asset_id integer NOT NULL,
    bucket smallint NOT NULL,
    amount_atoms bigint NOT NULL,
    PRIMARY KEY (account_id, asset_id, bucket),
    CONSTRAINT balances_floor CHECK (bucket = 4 OR amount_atoms >= 0)
);
CREATE TABLE trades (
    market_id integer NOT NULL,
    trade_id bigint NOT NULL,
    seq bigint NOT NULL,
    ts_ns bigint NOT NULL,
    event_index integer NOT NULL,
    price_atoms bigint NOT NULL,
    qty_atoms bigint NOT NULL,
    quote_atoms bigint NOT NULL,
    maker_order_id bigint NOT NULL,
    maker_account_id bigint NOT NULL,
    taker_order_id bigint NOT NULL,
    taker_account_id bigint NOT NULL,
    taker_side smallint NOT NULL,
    maker_fee_atoms bigint NOT NULL,
    taker_fee_atoms bigint NOT NULL,
    PRIMARY KEY (market_id, trade_id)
);
CREATE INDEX trades_seq ON trades (seq);
CREATE TABLE orders (
    order_id bigint PRIMARY KEY,
    account_id bigint NOT NULL,
    market_id integer NOT NULL,
    client_order_id bigint NOT NULL,
    side smallint NOT NULL,
    order_type smallint NOT NULL,
    time_in_force smallint NOT NULL,
    price_atoms bigint NOT NULL,
    qty_atoms bigint NOT NULL,
    quote_qty_atoms bigint NOT NULL,
    open_qty_atoms bigint NOT NULL CHECK (open_qty_atoms >= 0),
    filled_qty_atoms bigint NOT NULL,
    filled_quote_atoms bigint NOT NULL,
    fee_atoms bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'filled', 'cancelled', 'expired')),
    close_reason smallint,
    accepted_seq bigint NOT NULL,
    accepted_ts_ns bigint NOT NULL,
    updated_seq bigint NOT NULL,
    updated_ts_ns bigint NOT NULL
);
CREATE INDEX orders_account ON orders (account_id, order_id);
CREATE INDEX orders_open ON orders (order_id) WHERE status = 'open';
CREATE TABLE projection_checkpoint (
    id smallint PRIMARY KEY CHECK (id = 1),
    last_seq bigint NOT NULL,
    last_ts_ns bigint NOT NULL,
    next_txn_id bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoint (id, last_seq, last_ts_ns, next_txn_id) VALUES (1, 0, 0, 1);
""",
    ),
    (
        2,
        "order history for the gateway",
        # The gateway answers order.status / allOrders / myTrades from these tables
        # (docs/history.md#postgresql): the dialect's fields the first version did not keep,
        # the per-market prevented-match counter the projector resumes with, and per-account
        # indexes for its pages. Rows projected before this version lack the new fields:
        # ``history_from_seq`` records where they start, and the gateway reads the history
        # here only when it is 0 (a projection rebuilt from the journal's start).
        """
ALTER TABLE orders
    ADD COLUMN orig_qty_atoms bigint NOT NULL DEFAULT 0,
    ADD COLUMN stop_price_atoms bigint NOT NULL DEFAULT 0,
    ADD COLUMN trailing_delta_bps bigint NOT NULL DEFAULT 0,
    ADD COLUMN display_qty_atoms bigint NOT NULL DEFAULT 0,
    ADD COLUMN stp_mode smallint NOT NULL DEFAULT 0,
    ADD COLUMN working_ts_ns bigint NOT NULL DEFAULT 0,
    ADD COLUMN prevented_qty_atoms bigint NOT NULL DEFAULT 0,
    ADD COLUMN prevented_match_id bigint NOT NULL DEFAULT -1;
CREATE INDEX orders_history ON orders (account_id, market_id, order_id) WHERE status <> 'open';
CREATE INDEX orders_history_time ON orders (account_id, market_id, accepted_ts_ns, order_id)
    WHERE status <> 'open';
CREATE INDEX orders_client_id ON orders (account_id, client_order_id, order_id)
    WHERE client_order_id <> 0 AND status <> 'open';
CREATE INDEX trades_maker_history ON trades (maker_account_id, market_id, trade_id);
CREATE INDEX trades_taker_history ON trades (taker_account_id, market_id, trade_id);
CREATE INDEX trades_time ON trades (market_id, ts_ns, trade_id);
CREATE INDEX trades_maker_order ON trades (maker_order_id);
CREATE INDEX trades_taker_order ON trades (taker_order_id);
CREATE TABLE stp_match_ids (
    market_id integer PRIMARY KEY,
    next_match_id bigint NOT NULL
);
ALTER TABLE projection_checkpoint ADD COLUMN history_from_seq bigint NOT NULL DEFAULT 0;
UPDATE projection_checkpoint SET history_from_seq = last_seq;
""",
    ),
)

SCHEMA_MIGRATIONS_DDL: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the migrations not yet applied; returns the versions applied now (idempotent)."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(SCHEMA_MIGRATIONS_DDL)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied_now.append(version)
        unknown = done - {v for v, _, _ in MIGRATIONS}
        if unknown:
            raise RuntimeError(
                f"database has schema versions {sorted(unknown)} this code does "
                "not know: it was migrated by a newer kootabase"
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    return applied_now
