"""The custody store: everything custody must remember across restarts, in one SQLite file.

Why SQLite and not the journal: this is custody's *operational* state (where a watcher is,
which deposit it has seen, which transaction it signed), not engine state. Engine effects still
go through journaled commands only; the store remembers what custody did so a restart neither
re-credits nor misses a deposit and never signs a withdrawal twice. Every write is its own
durable transaction (``synchronous=FULL``), written *before* the effect it guards (a signed
transaction is stored before it is broadcast).
"""

from __future__ import annotations

from pathlib import Path

from custody.storerows import Attempt, DepositRow, WithdrawalRow, deposit_row
from custody.storewithdrawals import WithdrawalTables
from engine.usererror import UserError


def require_store(path: Path) -> None:
    """A one-line error unless custody has created its store at ``path``."""
    if not path.exists():
        raise UserError(
            f"no custody store at {path}", hint="check --data-dir (custody never ran there)"
        )


__all__ = ["Attempt", "CustodyStore", "DepositRow", "WithdrawalRow"]


class CustodyStore(WithdrawalTables):
    """Thin typed wrapper over one SQLite database (one writer: the custody process)."""

    @classmethod
    def open_existing(cls, path: Path) -> CustodyStore:
        """The store of a data dir where custody has run; opening creates one otherwise, which
        an operator command must not (a typo in --data-dir would leave a store behind)."""
        require_store(path)
        return cls(path)

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
                deposit_row(r)
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
        return [deposit_row(r) for r in self._all(sql + " ORDER BY height, key", *args)]

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
