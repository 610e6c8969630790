"""The manual fiat rail: bank transfers in, recorded by finance, credited under four eyes.

Fiat arrives by bank transfer, which no watcher sees: a finance staff member reads the bank
statement and records the transfer (account, asset, amount, the bank's reference); that alone
credits nothing. A *different* staff member with finance or admin approves it, and only then is
it the journaled ``Deposit`` keyed ``fiat:<bank reference>``, so a bank transfer is credited at
most once (the engine refuses a key twice) and "nothing creates money except a journaled
deposit from a real source" holds for fiat too: the source is a bank reference two people
checked. A rejection (with a reason) journals nothing.

Records live in the identity store (``bo_fiat_deposits``, PostgreSQL or SQLite); a bank
reference may be recorded once unless rejected. Approving claims the row first (``pending`` ->
``approving`` in one statement) so two approvers cannot both journal; a journal failure puts it
back; a crash between the two is settled from the journal at the next start
(`backoffice.fiatrecovery`). A fiat asset is one whose symbol is an ISO 4217 code in
`FIAT_SYMBOLS` and that custody does not handle (custodied assets arrive only through their
chain watcher).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

from backoffice import errors
from backoffice.db import Db, UniqueViolation
from backoffice.errors import (
    FIAT_DECIDED,
    FIAT_NOT_FOUND,
    REFERENCE_TAKEN,
    SAME_STAFF,
    BackofficeError,
)
from backoffice.store import new_id, now_ms

FIAT_SYMBOLS: Final = frozenset({"USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SGD"})
KEY_PREFIX: Final = "fiat:"
MAX_REASON_CHARS: Final = 500
STATUSES: Final = ("pending", "approving", "approved", "rejected")
_REFERENCE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9./_-]{3,63}")


JournalDeposit = Callable[[dict[str, Any], str], Awaitable[int]]
"""(the record, deposit_key) -> seq of the journaled Deposit naming both staff members (a
duplicate key counts as journaled: a retry after a crash)."""


def parse_reference(raw: object) -> str:
    if not isinstance(raw, str) or not _REFERENCE.fullmatch(raw):
        raise errors.bad_request(
            "bank_reference is 4..64 letters, digits and . / _ - (starting with a letter or digit)"
        )
    return raw


def public(row: dict[str, Any], symbol: str, amount: str) -> dict[str, Any]:
    return {
        "deposit_id": row["deposit_id"],
        "account_id": row["account_id"],
        "asset": symbol,
        "amount": amount,
        "bank_reference": row["bank_reference"],
        "status": row["status"],
        "recorded_by": row["recorded_by"],
        "recorded_ms": row["recorded_ms"],
        "decided_by": row["decided_by"] or None,
        "decided_ms": row["decided_ms"] or None,
        "reason": row["reason"] or None,
        "seq": row["seq"] or None,
    }


class FiatDeposits:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def record(
        self, staff_id: str, account_id: int, asset_id: int, atoms: int, reference: str
    ) -> dict[str, Any]:
        assert staff_id and atoms > 0
        deposit_id = new_id()
        try:
            await self.db.execute(
                "INSERT INTO bo_fiat_deposits (deposit_id, account_id, asset_id, amount_atoms, "
                "bank_reference, status, recorded_by, recorded_ms) "
                "VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
                deposit_id,
                account_id,
                asset_id,
                atoms,
                reference,
                staff_id,
                now_ms(),
            )
        except UniqueViolation:
            raise BackofficeError(
                409, REFERENCE_TAKEN, f"bank reference {reference} is already recorded"
            ) from None
        return await self.get(deposit_id)

    async def get(self, deposit_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "SELECT * FROM bo_fiat_deposits WHERE deposit_id = $1", deposit_id
        )
        if row is None:
            raise BackofficeError(404, FIAT_NOT_FOUND, "no such fiat deposit")
        return row

    async def listing(self, status: str, limit: int) -> list[dict[str, Any]]:
        if status == "pending":
            return await self.db.fetch(
                "SELECT * FROM bo_fiat_deposits WHERE status IN ('pending', 'approving') "
                "ORDER BY recorded_ms, deposit_id LIMIT $1",
                limit,
            )
        return await self.db.fetch(
            "SELECT * FROM bo_fiat_deposits WHERE status = $1 "
            "ORDER BY decided_ms DESC, deposit_id LIMIT $2",
            status,
            limit,
        )

    async def _refuse_state(self, deposit_id: str) -> BackofficeError:
        row = await self.get(deposit_id)  # 404 when there is none
        return BackofficeError(409, FIAT_DECIDED, f"this deposit is {row['status']}, not pending")

    async def approve(
        self, deposit_id: str, staff_id: str, journal: JournalDeposit
    ) -> dict[str, Any]:
        """The second pair of eyes: journal the Deposit, then mark it approved."""
        assert staff_id
        row = await self.get(deposit_id)
        if row["recorded_by"] == staff_id:
            raise BackofficeError(
                409, SAME_STAFF, "you recorded this transfer: another person must approve it"
            )
        changed = await self.db.execute(
            "UPDATE bo_fiat_deposits SET status = 'approving', decided_by = $1 "
            "WHERE deposit_id = $2 AND status = 'pending'",
            staff_id,
            deposit_id,
        )
        if changed != 1:
            raise await self._refuse_state(deposit_id)
        key = KEY_PREFIX + row["bank_reference"]
        try:
            seq = await journal({**row, "decided_by": staff_id}, key)
        except BaseException:
            await self.reopen(deposit_id)
            raise
        await self.mark_approved(deposit_id, seq)
        return await self.get(deposit_id)

    async def reopen(self, deposit_id: str) -> None:
        """An approval whose Deposit was not journaled: pending again, for anyone to approve."""
        await self.db.execute(
            "UPDATE bo_fiat_deposits SET status = 'pending', decided_by = '' "
            "WHERE deposit_id = $1 AND status = 'approving'",
            deposit_id,
        )

    async def mark_approved(self, deposit_id: str, seq: int) -> None:
        """An approval whose Deposit is journaled at ``seq`` (0: credited, its record no longer
        in the local journal)."""
        await self.db.execute(
            "UPDATE bo_fiat_deposits SET status = 'approved', seq = $1, decided_ms = $2 "
            "WHERE deposit_id = $3 AND status = 'approving'",
            seq,
            now_ms(),
            deposit_id,
        )

    async def approving(self) -> list[dict[str, Any]]:
        """Approvals a crash interrupted between claiming the row and marking it (at start,
        before serving, nothing else is approving)."""
        return await self.db.fetch(
            "SELECT * FROM bo_fiat_deposits WHERE status = 'approving' ORDER BY recorded_ms"
        )

    async def reject(self, deposit_id: str, staff_id: str, reason: object) -> dict[str, Any]:
        if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= MAX_REASON_CHARS:
            raise errors.bad_request(f"reason must be 1..{MAX_REASON_CHARS} characters")
        changed = await self.db.execute(
            "UPDATE bo_fiat_deposits SET status = 'rejected', decided_by = $1, reason = $2, "
            "decided_ms = $3 WHERE deposit_id = $4 AND status = 'pending'",
            staff_id,
            reason.strip(),
            now_ms(),
            deposit_id,
        )
        if changed != 1:
            raise await self._refuse_state(deposit_id)
        return await self.get(deposit_id)
