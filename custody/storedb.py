"""The custody store's SQLite database: its schema (created, and upgraded in place, on open),
and one durable transaction per write. See `custody.store` for why SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS addresses (
    chain TEXT NOT NULL, account_id INTEGER NOT NULL, idx INTEGER NOT NULL,
    address TEXT NOT NULL, script TEXT NOT NULL,
    PRIMARY KEY (chain, account_id), UNIQUE (chain, idx), UNIQUE (chain, address));
CREATE TABLE IF NOT EXISTS blocks (
    chain TEXT NOT NULL, height INTEGER NOT NULL, hash TEXT NOT NULL, parent TEXT NOT NULL,
    PRIMARY KEY (chain, height));
CREATE TABLE IF NOT EXISTS deposits (
    key TEXT PRIMARY KEY, chain TEXT NOT NULL, height INTEGER NOT NULL, block_hash TEXT NOT NULL,
    account_id INTEGER NOT NULL, asset_id INTEGER NOT NULL, chain_amount TEXT NOT NULL,
    atoms INTEGER NOT NULL, dust TEXT NOT NULL, status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '', seen_ns INTEGER NOT NULL DEFAULT 0,
    credited_ns INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS deposits_by_status ON deposits (chain, status, height);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chain TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL, created_ns INTEGER NOT NULL, acknowledged INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS withdrawals (
    withdrawal_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, asset_id INTEGER NOT NULL,
    atoms INTEGER NOT NULL, address TEXT NOT NULL, chain TEXT NOT NULL, status TEXT NOT NULL,
    created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '',
    txid TEXT NOT NULL DEFAULT '', mined_height INTEGER NOT NULL DEFAULT 0,
    fee_chain TEXT NOT NULL DEFAULT '0');
CREATE INDEX IF NOT EXISTS withdrawals_by_account ON withdrawals (account_id, asset_id, created_ns);
CREATE TABLE IF NOT EXISTS attempts (
    withdrawal_id INTEGER NOT NULL, attempt INTEGER NOT NULL, txid TEXT NOT NULL,
    raw TEXT NOT NULL, nonce INTEGER NOT NULL DEFAULT -1, max_fee TEXT NOT NULL DEFAULT '0',
    tip TEXT NOT NULL DEFAULT '0', fee_chain TEXT NOT NULL DEFAULT '0',
    created_ns INTEGER NOT NULL, PRIMARY KEY (withdrawal_id, attempt));
CREATE TABLE IF NOT EXISTS nonces (
    chain TEXT NOT NULL, address TEXT NOT NULL, next_nonce INTEGER NOT NULL,
    PRIMARY KEY (chain, address));
CREATE TABLE IF NOT EXISTS spent (
    chain TEXT NOT NULL, txid TEXT NOT NULL, vout INTEGER NOT NULL,
    withdrawal_id INTEGER NOT NULL, PRIMARY KEY (chain, txid, vout));
CREATE TABLE IF NOT EXISTS approvals (
    withdrawal_id INTEGER NOT NULL, staff_id TEXT NOT NULL, decision TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', created_ns INTEGER NOT NULL,
    PRIMARY KEY (withdrawal_id, staff_id));
CREATE TABLE IF NOT EXISTS decision_intents (
    withdrawal_id INTEGER NOT NULL, staff_id TEXT NOT NULL, decision TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '', after_seq INTEGER NOT NULL, created_ns INTEGER NOT NULL,
    PRIMARY KEY (withdrawal_id, staff_id));
CREATE TABLE IF NOT EXISTS treasury (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chain TEXT NOT NULL, asset_id INTEGER NOT NULL,
    chain_amount TEXT NOT NULL, note TEXT NOT NULL, created_ns INTEGER NOT NULL);
"""
# Chain amounts (wei can exceed int64) are stored as decimal TEXT and summed in Python.
_ADDED_COLUMNS = (
    ("deposits", "seen_ns", "INTEGER NOT NULL DEFAULT 0"),
    ("deposits", "credited_ns", "INTEGER NOT NULL DEFAULT 0"),
    ("withdrawals", "review", "TEXT NOT NULL DEFAULT ''"),
)
"""Columns newer than a store's first schema: added in place when missing (0 = not known)."""


class StoreDb:
    """One SQLite database opened with the schema (one writer: the custody process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        for table, column, decl in _ADDED_COLUMNS:
            names = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in names:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable write (BEGIN IMMEDIATE .. COMMIT, rolled back on error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        return self.db.execute(sql, args).fetchone()
