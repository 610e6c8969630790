"""The custody store's withdrawal tables: withdrawals and their signing attempts, nonces and
spent outpoints (a signed transaction is stored before it is broadcast).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from custody.storedb import StoreDb
from custody.storerows import Attempt, WithdrawalRow, withdrawal_row


class WithdrawalTables(StoreDb):
    """Withdrawals, attempts, nonces and outpoints; `custody.store.CustodyStore` adds the rest."""

    def withdrawal(self, withdrawal_id: int) -> WithdrawalRow | None:
        row = self._one("SELECT * FROM withdrawals WHERE withdrawal_id=?", withdrawal_id)
        return None if row is None else withdrawal_row(row)

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
        return [withdrawal_row(r) for r in rows]

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
