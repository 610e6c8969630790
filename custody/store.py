"""The custody store: everything custody must remember across restarts, in one SQLite file.

Why SQLite and not the journal: this is custody's *operational* state (where a watcher is,
which deposit it has seen, which transaction it signed), not engine state. Engine effects still
go through journaled commands only; the store remembers what custody did so a restart neither
re-credits nor misses a deposit and never signs a withdrawal twice. Every write is its own
durable transaction (``synchronous=FULL``), written *before* the effect it guards (a signed
transaction is stored before it is broadcast).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class DepositRow:
    key: str
    chain: str
    height: int
    block_hash: str
    account_id: int
    asset_id: int
    chain_amount: int
    atoms: int
    dust: int
    status: str
    seen_ns: int = 0
    """Wall-clock time the scanner first saw it (0 in stores older than the column)."""
    credited_ns: int = 0
    """Wall-clock time it was credited, 0 until then."""
    detail: str = ""
    """Why it is in its status (over a tier's deposit limit, refused by the engine, dust)."""


@dataclass(frozen=True, slots=True)
class WithdrawalRow:
    withdrawal_id: int
    account_id: int
    asset_id: int
    atoms: int
    address: str
    chain: str
    status: str
    created_ns: int
    updated_ns: int
    detail: str
    txid: str
    mined_height: int
    fee_chain: int
    review: str = ""
    """Why it waits for four eyes (comma-separated reasons: ``threshold``, ``new_address``,
    ``aml:<rule>``); empty when it needed no approval."""


@dataclass(frozen=True, slots=True)
class Attempt:
    withdrawal_id: int
    attempt: int
    txid: str
    raw: str
    nonce: int
    max_fee: int
    tip: int
    fee_chain: int
    created_ns: int


def _deposit(row: sqlite3.Row) -> DepositRow:
    return DepositRow(
        row["key"],
        row["chain"],
        row["height"],
        row["block_hash"],
        row["account_id"],
        row["asset_id"],
        int(row["chain_amount"]),
        row["atoms"],
        int(row["dust"]),
        row["status"],
        row["seen_ns"],
        row["credited_ns"],
        row["detail"],
    )


def _withdrawal(row: sqlite3.Row) -> WithdrawalRow:
    return WithdrawalRow(
        row["withdrawal_id"],
        row["account_id"],
        row["asset_id"],
        row["atoms"],
        row["address"],
        row["chain"],
        row["status"],
        row["created_ns"],
        row["updated_ns"],
        row["detail"],
        row["txid"],
        row["mined_height"],
        int(row["fee_chain"]),
        row["review"],
    )


class CustodyStore:
    """Thin typed wrapper over one SQLite database (one writer: the custody process)."""

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

    # ---- addresses ---------------------------------------------------------------------------

    def address_of(self, chain: str, account_id: int) -> tuple[int, str] | None:
        row = self._one(
            "SELECT idx, address FROM addresses WHERE chain=? AND account_id=?", chain, account_id
        )
        return None if row is None else (row["idx"], row["address"])

    def next_address_index(self, chain: str) -> int:
        row = self._one("SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM addresses WHERE chain=?", chain)
        assert row is not None
        return int(row["n"])

    def add_address(self, chain: str, account_id: int, idx: int, address: str, script: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO addresses (chain, account_id, idx, address, script) "
                "VALUES (?,?,?,?,?)",
                (chain, account_id, idx, address, script),
            )

    def watched(self, chain: str) -> dict[str, int]:
        """script (Bitcoin family) or lower-case address (Ethereum) -> account id."""
        return {
            r["script"]: r["account_id"]
            for r in self._all("SELECT script, account_id FROM addresses WHERE chain=?", chain)
        }

    def addresses(self, chain: str) -> list[str]:
        return [
            r["address"]
            for r in self._all("SELECT address FROM addresses WHERE chain=? ORDER BY idx", chain)
        ]

    # ---- blocks and deposits -----------------------------------------------------------------

    def tip(self, chain: str) -> tuple[int, str] | None:
        row = self._one(
            "SELECT height, hash FROM blocks WHERE chain=? ORDER BY height DESC LIMIT 1", chain
        )
        return None if row is None else (row["height"], row["hash"])

    def block_hash(self, chain: str, height: int) -> str | None:
        row = self._one("SELECT hash FROM blocks WHERE chain=? AND height=?", chain, height)
        return None if row is None else str(row["hash"])

    def add_block(
        self, chain: str, height: int, block_hash: str, parent: str, deposits: list[DepositRow]
    ) -> None:
        """A scanned block and the deposits found in it, atomically: the watcher's progress."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO blocks (chain, height, hash, parent) VALUES (?,?,?,?)",
                (chain, height, block_hash, parent),
            )
            for d in deposits:
                # a key seen before (orphaned, now back in another block) is re-armed
                db.execute(
                    "INSERT INTO deposits (key, chain, height, block_hash, account_id, asset_id, "
                    "chain_amount, atoms, dust, status, seen_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(key) DO UPDATE SET height=excluded.height, "
                    "block_hash=excluded.block_hash, status='pending' "
                    "WHERE deposits.status='orphaned'",
                    (
                        d.key,
                        d.chain,
                        d.height,
                        d.block_hash,
                        d.account_id,
                        d.asset_id,
                        str(d.chain_amount),
                        d.atoms,
                        str(d.dust),
                        "pending",
                        d.seen_ns,
                    ),
                )

    def rollback_to(self, chain: str, height: int) -> list[DepositRow]:
        """Forget blocks above ``height``; their pending deposits become orphaned. Returns the
        *credited* deposits that were in those blocks (a deep reorg, for the alert)."""
        with self.tx() as db:
            credited = [
                _deposit(r)
                for r in db.execute(
                    "SELECT * FROM deposits WHERE chain=? AND height>? AND status='credited'",
                    (chain, height),
                ).fetchall()
            ]
            db.execute(
                "UPDATE deposits SET status='orphaned' WHERE chain=? AND height>? "
                "AND status IN ('pending', 'over_limit')",
                (chain, height),
            )
            db.execute("DELETE FROM blocks WHERE chain=? AND height>?", (chain, height))
        return credited

    def deposits(self, chain: str | None = None, status: str | None = None) -> list[DepositRow]:
        sql, args = "SELECT * FROM deposits WHERE 1=1", []
        if chain is not None:
            sql += " AND chain=?"
            args.append(chain)
        if status is not None:
            sql += " AND status=?"
            args.append(status)
        return [_deposit(r) for r in self._all(sql + " ORDER BY height, key", *args)]

    def credited_atoms(self, account_id: int, asset_id: int, since_ns: int) -> int:
        """Engine atoms of the account's deposits of the asset credited at or after
        ``since_ns`` (the tier's 24 h deposit limit counts them)."""
        rows = self._all(
            "SELECT COALESCE(SUM(atoms), 0) AS n FROM deposits WHERE account_id=? AND asset_id=? "
            "AND status='credited' AND credited_ns>=?",
            account_id,
            asset_id,
            since_ns,
        )
        return int(rows[0]["n"])

    def set_deposit_status(
        self, key: str, status: str, detail: str = "", credited_ns: int = 0
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE deposits SET status=?, detail=?, credited_ns=? WHERE key=?",
                (status, detail, credited_ns, key),
            )

    # ---- alerts ------------------------------------------------------------------------------

    def add_alert(self, chain: str, kind: str, detail: str, now_ns: int) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO alerts (chain, kind, detail, created_ns) VALUES (?,?,?,?)",
                (chain, kind, detail, now_ns),
            )

    def open_alerts(self, chain: str | None = None) -> list[tuple[int, str, str, str]]:
        rows = self._all(
            "SELECT id, chain, kind, detail FROM alerts WHERE acknowledged=0 "
            "AND (? IS NULL OR chain=?) ORDER BY id",
            chain,
            chain,
        )
        return [(r["id"], r["chain"], r["kind"], r["detail"]) for r in rows]

    def acknowledge_alert(self, alert_id: int) -> None:
        with self.tx() as db:
            db.execute("UPDATE alerts SET acknowledged=1 WHERE id=?", (alert_id,))

    # ---- withdrawals -------------------------------------------------------------------------

    def withdrawal(self, withdrawal_id: int) -> WithdrawalRow | None:
        row = self._one("SELECT * FROM withdrawals WHERE withdrawal_id=?", withdrawal_id)
        return None if row is None else _withdrawal(row)

    def withdrawals(
        self, status: str | None = None, chain: str | None = None
    ) -> list[WithdrawalRow]:
        rows = self._all(
            "SELECT * FROM withdrawals WHERE (? IS NULL OR status=?) AND (? IS NULL OR chain=?) "
            "ORDER BY withdrawal_id",
            status,
            status,
            chain,
            chain,
        )
        return [_withdrawal(r) for r in rows]

    def next_withdrawal_id(self) -> int:
        row = self._one("SELECT COALESCE(MAX(withdrawal_id) + 1, 1) AS n FROM withdrawals")
        assert row is not None
        return int(row["n"])

    def add_withdrawal(self, w: WithdrawalRow) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO withdrawals (withdrawal_id, account_id, asset_id, atoms, address, "
                "chain, status, created_ns, updated_ns, review) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    w.withdrawal_id,
                    w.account_id,
                    w.asset_id,
                    w.atoms,
                    w.address,
                    w.chain,
                    w.status,
                    w.created_ns,
                    w.updated_ns,
                    w.review,
                ),
            )

    def update_withdrawal(self, withdrawal_id: int, now_ns: int, **fields: Any) -> None:
        fields = {k: (str(v) if k == "fee_chain" else v) for k, v in fields.items()}
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.tx() as db:
            db.execute(
                f"UPDATE withdrawals SET {sets}, updated_ns=? WHERE withdrawal_id=?",
                (*fields.values(), now_ns, withdrawal_id),
            )

    def withdrawn_since(self, account_id: int, asset_id: int, since_ns: int) -> int:
        """Atoms requested since ``since_ns`` that count against the 24 h limit (not failed)."""
        row = self._one(
            "SELECT COALESCE(SUM(atoms), 0) AS s FROM withdrawals WHERE account_id=? AND "
            "asset_id=? AND created_ns>=? AND status NOT IN ('failed', 'rejected', 'cancelled')",
            account_id,
            asset_id,
            since_ns,
        )
        assert row is not None
        return int(row["s"])

    def used_address(self, account_id: int, chain: str, address: str) -> bool:
        """Whether the account already withdrew to ``address`` on ``chain`` (a withdrawal
        that was sent: signed or later; refused, cancelled and failed ones do not count)."""
        row = self._one(
            "SELECT 1 FROM withdrawals WHERE account_id=? AND chain=? AND lower(address)=? "
            "AND status IN ('signed', 'broadcast', 'mined', 'settled') LIMIT 1",
            account_id,
            chain,
            address.lower(),
        )
        return row is not None

    def attempts(self, withdrawal_id: int) -> list[Attempt]:
        return [
            Attempt(
                r["withdrawal_id"],
                r["attempt"],
                r["txid"],
                r["raw"],
                r["nonce"],
                int(r["max_fee"]),
                int(r["tip"]),
                int(r["fee_chain"]),
                r["created_ns"],
            )
            for r in self._all(
                "SELECT * FROM attempts WHERE withdrawal_id=? ORDER BY attempt", withdrawal_id
            )
        ]

    def add_attempt(
        self,
        a: Attempt,
        *,
        spends: Sequence[tuple[str, int]] = (),
        chain: str = "",
        next_nonce: tuple[str, int] | None = None,
    ) -> None:
        """Record a signed transaction *before* it is broadcast (never send twice), with the
        outpoints it spends and the nonce it consumes, atomically."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO attempts (withdrawal_id, attempt, txid, raw, nonce, max_fee, tip, "
                "fee_chain, created_ns) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    a.withdrawal_id,
                    a.attempt,
                    a.txid,
                    a.raw,
                    a.nonce,
                    str(a.max_fee),
                    str(a.tip),
                    str(a.fee_chain),
                    a.created_ns,
                ),
            )
            for txid, vout in spends:
                db.execute(
                    "INSERT INTO spent (chain, txid, vout, withdrawal_id) VALUES (?,?,?,?)",
                    (chain, txid, vout, a.withdrawal_id),
                )
            if next_nonce is not None:
                db.execute(
                    "INSERT INTO nonces (chain, address, next_nonce) VALUES (?,?,?) "
                    "ON CONFLICT(chain, address) DO UPDATE SET next_nonce=MAX(next_nonce, "
                    "excluded.next_nonce)",
                    (chain, next_nonce[0], next_nonce[1]),
                )
            db.execute(
                "UPDATE withdrawals SET status='signed', txid=?, updated_ns=? "
                "WHERE withdrawal_id=?",
                (a.txid, a.created_ns, a.withdrawal_id),
            )

    def next_nonce(self, chain: str, address: str) -> int:
        row = self._one("SELECT next_nonce FROM nonces WHERE chain=? AND address=?", chain, address)
        return 0 if row is None else int(row["next_nonce"])

    def set_next_nonce(self, chain: str, address: str, nonce: int) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE nonces SET next_nonce=? WHERE chain=? AND address=?",
                (nonce, chain, address),
            )

    def spent_outpoints(self, chain: str) -> set[tuple[str, int]]:
        return {
            (r["txid"], r["vout"])
            for r in self._all("SELECT txid, vout FROM spent WHERE chain=?", chain)
        }

    def release_outpoints(self, chain: str, withdrawal_id: int) -> None:
        with self.tx() as db:
            db.execute(
                "DELETE FROM spent WHERE chain=? AND withdrawal_id=?", (chain, withdrawal_id)
            )

    # ---- treasury ----------------------------------------------------------------------------

    def add_treasury(
        self, chain: str, asset_id: int, chain_amount: int, note: str, now_ns: int
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO treasury (chain, asset_id, chain_amount, note, created_ns) "
                "VALUES (?,?,?,?,?)",
                (chain, asset_id, str(chain_amount), note, now_ns),
            )

    def treasury(self, asset_id: int) -> int:
        return sum(
            int(r["chain_amount"])
            for r in self._all("SELECT chain_amount FROM treasury WHERE asset_id=?", asset_id)
        )
