"""The operator API's money routes (``/ops/v1/withdrawals``, ``/ops/v1/aml/cases``,
``/ops/v1/custody/alerts``): four eyes on withdrawals (`custody.approvals`), AML cases
(`backoffice.aml.cases`) and custody's open alerts (read-only).

Mounted on `backoffice.ops.Ops`, so the staff session and the role (`backoffice.roles.ACTIONS`)
are checked before a handler runs; the handlers then call the same functions tests and tools
call, with the session's staff id and role (those functions check the role again: defence in
depth, and one table says who may). Their refusals are `backoffice.errors.ActionRefused`, a
`BackofficeError`, so the route answers them in the ``{code, msg}`` envelope as they come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from backoffice import errors
from backoffice.errors import (
    AML_DISABLED,
    CUSTODY_CLAIM_NOT_HELD,
    CUSTODY_DISABLED,
    BackofficeError,
)
from backoffice.staff import StaffSession
from gateway.markets import atoms_to_decimal

if TYPE_CHECKING:
    from backoffice.ops import Ops
    from custody.store import WithdrawalRow

CASE_STATUSES: Final = ("open", "closed")
DEPOSIT_STATUSES: Final = ("over_limit", "pending", "credited", "orphaned", "dust", "rejected")
WITHDRAWAL_STATUSES: Final = (
    "awaiting_approval",
    "held",
    "signed",
    "broadcast",
    "mined",
    "settled",
    "failed",
    "rejected",
    "cancelled",
)


class MoneyRoutes:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    @property
    def gw(self) -> Any:
        return self.ops.gw

    def _custody(self, *, acting: bool = False) -> Any:
        """The gateway's custody; ``acting`` (a decision that writes): refused with 503
        ``CUSTODY_CLAIM_NOT_HELD`` while a cluster gateway lost its custody claim."""
        if self.gw.custody is None:
            raise BackofficeError(404, CUSTODY_DISABLED, "custody is not enabled on this server")
        refusal = self.gw.custody.claim_refusal() if acting else None
        if refusal is not None:
            raise BackofficeError(503, CUSTODY_CLAIM_NOT_HELD, refusal)
        return self.gw.custody

    def _cases(self) -> Any:
        aml = self.gw.aml
        if aml is None or aml.cases is None:
            raise BackofficeError(404, AML_DISABLED, "no AML rules are loaded on this server")
        return aml.cases

    def _withdrawal(self, w: WithdrawalRow) -> dict[str, Any]:
        custody = self._custody()
        asset = self.gw.store.assets[w.asset_id]
        return {
            "withdrawal_id": w.withdrawal_id,
            "account_id": w.account_id,
            "asset": asset.symbol,
            "amount": atoms_to_decimal(w.atoms, asset.decimals),
            "address": w.address,
            "network": w.chain,
            "status": w.status,
            "review": [r for r in w.review.split(",") if r],
            "detail": w.detail,
            "created_ns": w.created_ns,
            "decisions": [
                {"staff_id": d.staff_id, "decision": d.decision, "note": d.note}
                for d in custody.approvals.decisions(w.withdrawal_id)
            ],
        }

    def _withdrawal_id(self, request: web.Request) -> int:
        text = request.match_info["withdrawal_id"]
        if not (text.isascii() and text.isdecimal()) or len(text) > 18 or int(text) < 1:
            raise errors.bad_request("withdrawal_id must be a positive integer")
        return int(text)

    # ---- withdrawals -------------------------------------------------------------------------

    async def withdrawals(self, request: web.Request, session: StaffSession) -> Any:
        """``status`` (default ``awaiting_approval``): oldest first."""
        status = request.query.get("status", "awaiting_approval")
        if status not in WITHDRAWAL_STATUSES:
            raise errors.bad_request(f"status must be one of {', '.join(WITHDRAWAL_STATUSES)}")
        rows = self._custody().custody.store.withdrawals(status)
        return [self._withdrawal(w) for w in rows]

    async def withdrawal(self, request: web.Request, session: StaffSession) -> Any:
        w = self._custody().custody.store.withdrawal(self._withdrawal_id(request))
        if w is None:
            raise BackofficeError(404, "UNKNOWN_WITHDRAWAL", "no such withdrawal")
        return self._withdrawal(w)

    async def approve(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body

        custody = self._custody(acting=True)
        withdrawal_id = self._withdrawal_id(request)
        if await _body(request):
            raise errors.bad_request("this action takes no parameters")
        w = await custody.approvals.approve(withdrawal_id, session.staff.staff_id, session.role)
        return self._withdrawal(w)

    async def reject(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body

        custody = self._custody(acting=True)
        withdrawal_id = self._withdrawal_id(request)
        reason = (await _body(request)).get("reason")
        if not isinstance(reason, str):
            raise errors.bad_request("reason (a string) is required")
        w = await custody.approvals.reject(
            withdrawal_id, session.staff.staff_id, session.role, reason
        )
        return self._withdrawal(w)

    # ---- custody alerts ----------------------------------------------------------------------

    async def alerts(self, request: web.Request, session: StaffSession) -> Any:
        """Open operator alerts (deep reorgs): each halts its chain's watcher and signer until
        resolved. Read-only here: resolving rolls blocks back (``kootabase custody alerts
        resolve``), an act for a person at the node, not a button."""
        store = self._custody().custody.store
        return [
            {"alert_id": alert_id, "chain": chain, "kind": kind, "detail": detail}
            for alert_id, chain, kind, detail in store.open_alerts()
        ]

    async def deposits(self, request: web.Request, session: StaffSession) -> Any:
        """``status`` (default ``over_limit``: confirmed deposits waiting for room under the
        account tier's 24 h deposit limit, compliance's to look at), oldest first."""
        status = request.query.get("status", "over_limit")
        if status not in DEPOSIT_STATUSES:
            raise errors.bad_request(f"status must be one of {', '.join(DEPOSIT_STATUSES)}")
        custody = self._custody()
        out = []
        for d in custody.custody.store.deposits(None, status):
            asset = self.gw.store.assets[d.asset_id]
            out.append(
                {
                    "key": d.key,
                    "account_id": d.account_id,
                    "asset": asset.symbol,
                    "amount": atoms_to_decimal(d.atoms, asset.decimals),
                    "network": d.chain,
                    "height": d.height,
                    "status": d.status,
                    "detail": d.detail,
                    "seen_ns": d.seen_ns,
                }
            )
        return out

    # ---- AML cases ---------------------------------------------------------------------------

    async def cases(self, request: web.Request, session: StaffSession) -> Any:
        """``status``: ``open`` or ``closed``; every case when absent."""

        status = request.query.get("status") or None
        if status is not None and status not in CASE_STATUSES:
            raise errors.bad_request("status must be open or closed")
        return await self._cases().cases(session.role, status)

    async def case(self, request: web.Request, session: StaffSession) -> Any:
        return await self._case_action(request, session, "view")

    async def assign(self, request: web.Request, session: StaffSession) -> Any:
        return await self._case_action(request, session, "assign")

    async def comment(self, request: web.Request, session: StaffSession) -> Any:
        return await self._case_action(request, session, "comment")

    async def close(self, request: web.Request, session: StaffSession) -> Any:
        return await self._case_action(request, session, "close")

    async def _case_action(self, request: web.Request, session: StaffSession, what: str) -> Any:
        from backoffice.routes import _body

        store = self._cases()
        case_id = request.match_info["case_id"]
        if len(case_id) > 128:
            raise errors.bad_request("case_id is at most 128 characters")
        staff_id, role = session.staff.staff_id, session.role
        body = await _body(request) if what != "view" else {}
        if what == "view":
            return await store.case(role, case_id)
        if what == "assign":
            return await store.assign(case_id, staff_id, role, body.get("staff_id"))
        if what == "comment":
            return await store.comment(case_id, staff_id, role, body.get("body"))
        return await store.close(case_id, staff_id, role, body.get("outcome"), body.get("note"))


def setup(app: web.Application, ops: Ops) -> MoneyRoutes:
    from backoffice.ops import PREFIX

    m = MoneyRoutes(ops)
    r, add = ops.route, app.router.add_route
    w, c = f"{PREFIX}/withdrawals", f"{PREFIX}/aml/cases"
    add("GET", w, r("withdrawals.view", m.withdrawals, ("status",)))
    add("GET", f"{w}/{{withdrawal_id}}", r("withdrawals.view", m.withdrawal))
    add("POST", f"{w}/{{withdrawal_id}}/approve", r("withdrawals.approve", m.approve))
    add("POST", f"{w}/{{withdrawal_id}}/reject", r("withdrawals.reject", m.reject))
    add("GET", f"{PREFIX}/custody/alerts", r("custody.alerts.view", m.alerts))
    add("GET", f"{PREFIX}/custody/deposits", r("custody.deposits.view", m.deposits, ("status",)))
    add("GET", c, r("aml.cases.view", m.cases, ("status",)))
    add("GET", f"{c}/{{case_id}}", r("aml.cases.view", m.case))
    add("POST", f"{c}/{{case_id}}/assign", r("aml.cases.work", m.assign))
    add("POST", f"{c}/{{case_id}}/comment", r("aml.cases.work", m.comment))
    add("POST", f"{c}/{{case_id}}/close", r("aml.cases.work", m.close))
    return m
