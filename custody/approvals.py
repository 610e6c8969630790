"""Four eyes on withdrawals: staff approve or reject, the owner may cancel, while it waits.

A withdrawal that needs review (`custody.withdrawals`: threshold, new address, AML hold) is
held by the engine like any other, so its money is already out of the available balance and
the ledger stays exact, but its custody status is ``awaiting_approval``, which the signer never
picks up. From there:

- ``APPROVALS_NEEDED`` (2) *different* staff with a role in `APPROVE_ROLES` approve: the last
  approval moves it to ``held`` (the signer's queue) in the same store transaction;
- one staff member with a role in `REJECT_ROLES` rejects, with a reason, or the account's owner
  cancels: the status moves to ``rejecting``/``cancelling`` and the hold is released through
  the journal (``WithdrawResult(success=False)``), ending ``rejected``/``cancelled``; a crash in
  between is finished by `custody.withdrawals.WithdrawalDesk.recover`.

A staff decision is journaled (``WithdrawalDecision``, the audit log's record) and then
recorded in the store. A crash between the two would leave a journaled decision the store does
not know, and the staff member's retry would journal it a second time. So the store first keeps
an *intent* keyed by (withdrawal, staff member) with the journal position before it; the
record removes it in the same transaction. An intent still there (at start, `recover`, or when
the same person decides again) is settled by reading the journal back from that position
(`DecisionLog`): journaled means the decision is recorded now, exactly once; not journaled
means it is dropped and may be taken again.

Decisions live in the custody store beside the withdrawal they gate (one SQLite transaction
for the decision and the status change, so a second approval can never be lost between two
stores); each decision names the staff id. The actions take a staff id and role from the
caller (the operator API authenticates the staff session), so they are the same functions for
the API, the CLI and tests. Every refusal is `backoffice.errors.ActionRefused` with a stable
code.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from backoffice.errors import (
    ALREADY_DECIDED,
    NOT_AWAITING_APPROVAL,
    REASON_REQUIRED,
    ROLE_REFUSED,
    UNKNOWN_WITHDRAWAL,
    ActionRefused,
)
from custody.store import WithdrawalRow
from custody.withdrawals import (
    AWAITING,
    CANCELLED,
    CANCELLING,
    HELD,
    REJECTED,
    REJECTING,
    WithdrawalDesk,
)
from engine.schema import CommandRejected, Reject, WithdrawalDecision

log = structlog.get_logger(__name__)

APPROVALS_NEEDED: Final = 2
APPROVE_ROLES: Final = frozenset({"finance"})
REJECT_ROLES: Final = frozenset({"finance", "compliance"})
MAX_NOTE_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class Decision:
    """One recorded decision: a staff approval or rejection, or the owner's cancel."""

    withdrawal_id: int
    staff_id: str
    decision: str
    note: str
    created_ns: int


class DecisionLog(Protocol):
    """The journal, read back for decisions (the gateway: its journal, or in cluster mode the
    staff records its read model keeps from the stream)."""

    def last_seq(self) -> int:
        """The last sequence journaled (or applied) so far."""

    def journaled(self, withdrawal_id: int, staff_id: str, after_seq: int) -> bool:
        """Whether a `WithdrawalDecision` by ``staff_id`` on ``withdrawal_id`` is journaled
        after ``after_seq``."""


class Approvals:
    def __init__(self, desk: WithdrawalDesk, log: DecisionLog | None = None) -> None:
        """Without ``log`` (tests of the rules alone) no intent is kept: a crash between the
        journal and the store may then journal a decision twice."""
        self.desk = desk
        self.log = log
        self.store = desk.store
        self._deciding = asyncio.Lock()
        """Staff decisions one at a time: the check, the journaled `WithdrawalDecision` and
        the store's record happen together, so a journaled decision is never one the store
        then refuses (custody runs in one process)."""

    # ---- reading -----------------------------------------------------------------------------

    def awaiting(self) -> list[WithdrawalRow]:
        return self.store.withdrawals(AWAITING)

    def decisions(self, withdrawal_id: int) -> list[Decision]:
        rows = self.store.db.execute(
            "SELECT * FROM approvals WHERE withdrawal_id=? ORDER BY created_ns, staff_id",
            (withdrawal_id,),
        ).fetchall()
        return [
            Decision(r["withdrawal_id"], r["staff_id"], r["decision"], r["note"], r["created_ns"])
            for r in rows
        ]

    # ---- actions -----------------------------------------------------------------------------

    async def approve(self, withdrawal_id: int, staff_id: str, role: str) -> WithdrawalRow:
        """One approval, journaled with the staff id; the second by a different person
        releases it to the signer."""
        _require_role(role, APPROVE_ROLES, "approve withdrawals")
        async with self._deciding:
            await self._settle_intent(withdrawal_id, staff_id)
            await self._journal(withdrawal_id, staff_id, True, "")
            _, status = self._decide(withdrawal_id, staff_id, "approve", "")
        log.info("withdrawal_approved", withdrawal_id=withdrawal_id, staff=staff_id, status=status)
        return self._row(withdrawal_id)

    async def reject(
        self, withdrawal_id: int, staff_id: str, role: str, reason: str
    ) -> WithdrawalRow:
        """Reject with a reason: the hold is released (journaled), the status ends rejected."""
        _require_role(role, REJECT_ROLES, "reject withdrawals")
        reason = _note(reason)
        async with self._deciding:
            await self._settle_intent(withdrawal_id, staff_id)
            await self._journal(withdrawal_id, staff_id, False, reason)
            self._decide(withdrawal_id, staff_id, "reject", reason, releasing=REJECTING)
        await self.desk.release(withdrawal_id, REJECTED, f"by {staff_id}: {reason}")
        log.info("withdrawal_rejected_by_staff", withdrawal_id=withdrawal_id, staff=staff_id)
        return self._row(withdrawal_id)

    async def cancel(self, withdrawal_id: int, account_id: int) -> WithdrawalRow:
        """The owner cancels while it waits: the hold is released (journaled). Another
        account's withdrawal is `UNKNOWN_WITHDRAWAL`, as if it did not exist."""
        row = self.store.withdrawal(withdrawal_id)
        if row is None or row.account_id != account_id:
            raise ActionRefused(UNKNOWN_WITHDRAWAL, f"no withdrawal {withdrawal_id}")
        self._decide(withdrawal_id, f"account:{account_id}", "cancel", "", releasing=CANCELLING)
        await self.desk.release(withdrawal_id, CANCELLED, "by its owner")
        log.info("withdrawal_cancelled", withdrawal_id=withdrawal_id, account=account_id)
        return self._row(withdrawal_id)

    async def recover(self) -> None:
        """At start: settle every decision a crash left between the journal and the store."""
        rows = self.store.db.execute(
            "SELECT withdrawal_id, staff_id FROM decision_intents ORDER BY created_ns"
        ).fetchall()
        async with self._deciding:
            for r in rows:
                await self._settle_intent(r["withdrawal_id"], r["staff_id"])

    # ---- plumbing ----------------------------------------------------------------------------

    async def _settle_intent(self, withdrawal_id: int, staff_id: str) -> None:
        """Record the decision an interrupted action journaled, or forget it if it never
        reached the journal (see the module docstring); a recorded rejection is released."""
        intent = self.store.db.execute(
            "SELECT * FROM decision_intents WHERE withdrawal_id=? AND staff_id=?",
            (withdrawal_id, staff_id),
        ).fetchone()
        if intent is None:
            return
        assert self.log is not None, "intents are kept only with a decision log"
        if not self.log.journaled(withdrawal_id, staff_id, intent["after_seq"]):
            self._forget(withdrawal_id, staff_id)
            log.info("withdrawal_decision_not_journaled", withdrawal_id=withdrawal_id,
                     staff=staff_id)  # fmt: skip
            return
        decision, note = intent["decision"], intent["note"]
        try:
            self._decide(withdrawal_id, staff_id, decision, note, releasing=REJECTING)
        except ActionRefused:  # no longer awaiting (the owner cancelled): nothing to record
            self._forget(withdrawal_id, staff_id)
            return
        log.info("withdrawal_decision_recovered", withdrawal_id=withdrawal_id, staff=staff_id,
                 decision=decision)  # fmt: skip
        if decision == "reject":
            await self.desk.release(withdrawal_id, REJECTED, f"by {staff_id}: {note}")

    def _forget(self, withdrawal_id: int, staff_id: str) -> None:
        with self.store.tx() as db:
            db.execute(
                "DELETE FROM decision_intents WHERE withdrawal_id=? AND staff_id=?",
                (withdrawal_id, staff_id),
            )

    def _intend(self, withdrawal_id: int, staff_id: str, approve: bool, note: str) -> None:
        """Keep the intent (durably) before the journal write; see the module docstring."""
        if self.log is None:
            return
        with self.store.tx() as db:
            db.execute(
                "INSERT INTO decision_intents (withdrawal_id, staff_id, decision, note, "
                "after_seq, created_ns) VALUES (?,?,?,?,?,?)",
                (
                    withdrawal_id,
                    staff_id,
                    "approve" if approve else "reject",
                    note,
                    self.log.last_seq(),
                    self.desk.clock(),
                ),
            )

    def _row(self, withdrawal_id: int) -> WithdrawalRow:
        row = self.store.withdrawal(withdrawal_id)
        assert row is not None
        return row

    def _check(self, withdrawal_id: int, staff_id: str) -> WithdrawalRow:
        """What `_decide` would refuse, refused before anything is journaled."""
        if not staff_id:
            raise ActionRefused(ROLE_REFUSED, "a decision must name who takes it")
        row = self.store.withdrawal(withdrawal_id)
        if row is None:
            raise ActionRefused(UNKNOWN_WITHDRAWAL, f"no withdrawal {withdrawal_id}")
        if row.status != AWAITING:
            raise ActionRefused(
                NOT_AWAITING_APPROVAL, f"withdrawal {withdrawal_id} is {row.status}, not {AWAITING}"
            )
        if any(d.staff_id == staff_id for d in self.decisions(withdrawal_id)):
            raise ActionRefused(
                ALREADY_DECIDED,
                f"{staff_id} already decided on withdrawal {withdrawal_id}: four eyes need a "
                "second person",
            )
        return row

    async def _journal(self, withdrawal_id: int, staff_id: str, approve: bool, note: str) -> None:
        """The journaled `WithdrawalDecision` naming the staff member (the audit log's record
        of who approved or rejected what), after the same checks the store makes."""
        row = self._check(withdrawal_id, staff_id)
        command = WithdrawalDecision(
            withdrawal_id=withdrawal_id,
            account_id=row.account_id,
            staff_id=staff_id,
            approve=approve,
            note=note,
        )
        self._intend(withdrawal_id, staff_id, approve, note)
        events = await self.desk.submit(command)
        rejected = next((e for e in events if isinstance(e, CommandRejected)), None)
        if rejected is not None:  # awaiting approval means held by the engine: an invariant
            self._forget(withdrawal_id, staff_id)
            raise RuntimeError(
                f"WithdrawalDecision {withdrawal_id} refused: {Reject(rejected.reason).name}"
            )

    def _decide(
        self,
        withdrawal_id: int,
        staff_id: str,
        decision: str,
        note: str,
        *,
        releasing: str = "",
    ) -> tuple[int, str]:
        """Record the decision and its effect on the status in one store transaction."""
        if not staff_id:
            raise ActionRefused(ROLE_REFUSED, "a decision must name who takes it")
        now = self.desk.clock()
        with self.store.tx() as db:
            row = db.execute(
                "SELECT status FROM withdrawals WHERE withdrawal_id=?", (withdrawal_id,)
            ).fetchone()
            if row is None:
                raise ActionRefused(UNKNOWN_WITHDRAWAL, f"no withdrawal {withdrawal_id}")
            if row["status"] != AWAITING:
                raise ActionRefused(
                    NOT_AWAITING_APPROVAL,
                    f"withdrawal {withdrawal_id} is {row['status']}, not {AWAITING}",
                )
            try:
                db.execute(
                    "INSERT INTO approvals (withdrawal_id, staff_id, decision, note, created_ns) "
                    "VALUES (?,?,?,?,?)",
                    (withdrawal_id, staff_id, decision, note, now),
                )
            except sqlite3.IntegrityError:
                raise ActionRefused(
                    ALREADY_DECIDED,
                    f"{staff_id} already decided on withdrawal {withdrawal_id}: four eyes "
                    "need a second person",
                ) from None
            db.execute(  # the intent, if any, is settled by this record
                "DELETE FROM decision_intents WHERE withdrawal_id=? AND staff_id=?",
                (withdrawal_id, staff_id),
            )
            approvals = int(
                db.execute(
                    "SELECT COUNT(*) AS n FROM approvals WHERE withdrawal_id=? "
                    "AND decision='approve'",
                    (withdrawal_id,),
                ).fetchone()["n"]
            )
            status = AWAITING
            if decision != "approve":
                status = releasing
            elif approvals >= APPROVALS_NEEDED:
                status = HELD
            if status != AWAITING:
                db.execute(
                    "UPDATE withdrawals SET status=?, updated_ns=?, detail=? WHERE withdrawal_id=?",
                    (status, now, note, withdrawal_id),
                )
        return approvals, status


def _require_role(role: str, allowed: frozenset[str], what: str) -> None:
    if role not in allowed:
        raise ActionRefused(
            ROLE_REFUSED, f"role {role!r} may not {what} (needs {', '.join(sorted(allowed))})"
        )


def _note(reason: str) -> str:
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ActionRefused(REASON_REQUIRED, "a rejection needs a reason")
    return reason[:MAX_NOTE_CHARS]
