"""AML cases: opened by rule hits, worked by compliance staff (assign, comment, close).

Cases live in the back office's store (PostgreSQL, or SQLite in the data dir), tables
``bo_aml_cases`` and ``bo_aml_notes`` (`backoffice.schema`). A case's id is its hit's
deterministic id (``rule@seq``) and opening is an insert that ignores an existing id, so
rebuilding from the journal after a crash, or twice, opens each case exactly once. Every staff
action on a case is a note naming the staff id (the case's history); the actions take a staff
id and role from the caller (the operator API authenticates the session).
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

from backoffice.aml.engine import Hit
from backoffice.db import Db
from backoffice.errors import (
    CASE_CLOSED,
    INVALID_OUTCOME,
    NOTE_REQUIRED,
    ROLE_REFUSED,
    UNKNOWN_CASE,
    ActionRefused,
)
from backoffice.roles import ACTIONS

CASE_ROLES: Final = frozenset(r.value for r in ACTIONS["aml.cases.work"].roles)
"""May assign, comment on and close cases (`backoffice.roles`, the one table of who may)."""
READ_ROLES: Final = frozenset(r.value for r in ACTIONS["aml.cases.view"].roles)
OUTCOMES: Final = ("cleared", "reported", "account_closed")
MAX_NOTE_CHARS: Final = 2000


class CaseStore:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def open_case(self, hit: Hit) -> bool:
        """Open the hit's case unless it exists; True if it was new."""
        n = await self.db.execute(
            "INSERT INTO bo_aml_cases (case_id, rule_id, kind, action, account_id, "
            "withdrawal_id, asset_id, amount_atoms, seq, opened_ns, detail, status, action_done) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (case_id) DO NOTHING",
            hit.case_id,
            hit.rule_id,
            hit.kind,
            hit.action,
            hit.account_id,
            hit.withdrawal_id,
            hit.asset_id,
            hit.amount_atoms,
            hit.seq,
            hit.ts_ns,
            hit.detail,
            "open",
            0 if hit.action == "freeze" else 1,
        )
        return n == 1

    async def action_done(self, case_id: str) -> None:
        await self.db.execute("UPDATE bo_aml_cases SET action_done = 1 WHERE case_id = $1", case_id)

    async def pending_actions(self) -> list[dict[str, Any]]:
        """Cases whose action (a freeze) has not been carried out yet, oldest first."""
        return await self.db.fetch(
            "SELECT * FROM bo_aml_cases WHERE action_done = 0 ORDER BY seq, case_id"
        )

    # ---- reading -----------------------------------------------------------------------------

    async def cases(self, role: str, status: str | None = None) -> list[dict[str, Any]]:
        _require(role, READ_ROLES, "read AML cases")
        if status is None:
            return await self.db.fetch("SELECT * FROM bo_aml_cases ORDER BY seq, case_id")
        return await self.db.fetch(
            "SELECT * FROM bo_aml_cases WHERE status = $1 ORDER BY seq, case_id", status
        )

    async def case(self, role: str, case_id: str) -> dict[str, Any]:
        _require(role, READ_ROLES, "read AML cases")
        row = await self._get(case_id)
        row["notes"] = await self.db.fetch(
            "SELECT staff_id, kind, body, at_ns FROM bo_aml_notes WHERE case_id = $1 "
            "ORDER BY at_ns, note_id",
            case_id,
        )
        return row

    # ---- staff actions -----------------------------------------------------------------------

    async def assign(self, case_id: str, staff_id: str, role: str, assignee: str) -> dict[str, Any]:
        _require(role, CASE_ROLES, "assign AML cases")
        assignee = _text(assignee, "the assignee's staff id")[:128]
        await self._open(case_id)
        await self.db.execute(
            "UPDATE bo_aml_cases SET assignee = $1 WHERE case_id = $2", assignee, case_id
        )
        await self._note(case_id, staff_id, "assign", assignee)
        return await self._get(case_id)

    async def comment(self, case_id: str, staff_id: str, role: str, body: str) -> dict[str, Any]:
        _require(role, CASE_ROLES, "comment on AML cases")
        body = _text(body, "a comment")
        await self._get(case_id)  # closed cases may still be commented on
        await self._note(case_id, staff_id, "comment", body)
        return await self.case(role, case_id)

    async def close(
        self, case_id: str, staff_id: str, role: str, outcome: str, note: str
    ) -> dict[str, Any]:
        _require(role, CASE_ROLES, "close AML cases")
        if outcome not in OUTCOMES:
            raise ActionRefused(INVALID_OUTCOME, f"outcome must be one of {', '.join(OUTCOMES)}")
        note = _text(note, "a closing note")
        await self._open(case_id)
        changed = await self.db.execute(
            "UPDATE bo_aml_cases SET status = 'closed', outcome = $1 "
            "WHERE case_id = $2 AND status = 'open'",
            outcome,
            case_id,
        )
        if changed != 1:  # closed meanwhile by someone else
            raise ActionRefused(CASE_CLOSED, f"case {case_id} is already closed")
        await self._note(case_id, staff_id, "close", f"{outcome}: {note}")
        return await self._get(case_id)

    # ---- plumbing ----------------------------------------------------------------------------

    async def _get(self, case_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow("SELECT * FROM bo_aml_cases WHERE case_id = $1", case_id)
        if row is None:
            raise ActionRefused(UNKNOWN_CASE, f"no AML case {case_id!r}")
        return row

    async def _open(self, case_id: str) -> dict[str, Any]:
        row = await self._get(case_id)
        if row["status"] != "open":
            raise ActionRefused(CASE_CLOSED, f"case {case_id} is closed ({row['outcome']})")
        return row

    async def _note(self, case_id: str, staff_id: str, kind: str, body: str) -> None:
        await self.db.execute(
            "INSERT INTO bo_aml_notes (note_id, case_id, staff_id, kind, body, at_ns) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            secrets.token_hex(12),
            case_id,
            staff_id,
            kind,
            body,
            time.time_ns(),
        )


def _require(role: str, allowed: frozenset[str], what: str) -> None:
    if role not in allowed:
        raise ActionRefused(
            ROLE_REFUSED, f"role {role!r} may not {what} (needs {', '.join(sorted(allowed))})"
        )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ActionRefused(NOTE_REQUIRED, f"{what} is required")
    return value.strip()[:MAX_NOTE_CHARS]
