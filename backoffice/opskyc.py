"""The operator API's KYC review queue (``/ops/v1/kyc``), over `backoffice.kyc.KycQueue`.

Mounted on `backoffice.ops.Ops`, so the staff session and the role are checked before a
handler runs: ``kyc.view`` (admin, compliance, support, auditor) lists and reads submissions,
``kyc.review`` (admin, compliance) approves a tier (the journaled ``SetAccountTier`` naming the
staff id) or rejects with a reason. Described in ``/openapi.json`` by `backoffice.opskycdoc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from backoffice import errors
from backoffice.kyc import STATUSES, KycQueue, parse_tier
from backoffice.staff import StaffSession
from engine.schema import SetAccountTier

if TYPE_CHECKING:
    from backoffice.ops import Ops

QUEUE_STATUSES: Final = tuple(s for s in STATUSES if s != "approving")
"""What ``GET /ops/v1/kyc?status=`` takes (``pending`` lists ``approving`` ones too)."""
MAX_LIST: Final = 200


class KycRoutes:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def _queue(self) -> KycQueue:
        assert self.ops.bo.store is not None
        return KycQueue(self.ops.bo.store.db)

    @staticmethod
    def _id(request: web.Request) -> str:
        submission_id = request.match_info["submission_id"]
        if not 1 <= len(submission_id) <= 64 or not submission_id.isascii():
            raise errors.bad_request("submission_id is 1..64 ASCII characters")
        return submission_id

    async def listing(self, request: web.Request, session: StaffSession) -> Any:
        """``status`` (default ``pending``: the queue, oldest first), ``limit`` (default 50)."""
        from backoffice.ops import _query_int

        status = request.query.get("status", "pending")
        if status not in QUEUE_STATUSES:
            raise errors.bad_request(f"status must be one of {', '.join(QUEUE_STATUSES)}")
        limit = _query_int(request, "limit", 1, MAX_LIST, 50)
        assert limit is not None
        return await self._queue().queue(status, limit)

    async def view(self, request: web.Request, session: StaffSession) -> Any:
        return await self._queue().get(self._id(request))

    async def approve(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body

        submission_id = self._id(request)
        body = await _body(request)
        if set(body) != {"tier"}:
            raise errors.bad_request('the body is {"tier": 1..3}')
        tier = parse_tier(body["tier"])

        async def journal(account_id: int, tier: int, staff_id: str) -> int:
            command = SetAccountTier(account_id=account_id, tier=tier, staff_id=staff_id)
            return await self.ops._journal(command)

        return await self._queue().approve(submission_id, session.staff.staff_id, tier, journal)

    async def file(self, request: web.Request, session: StaffSession) -> Any:
        """A document's file (compliance only): one the submission lists, its user uploaded."""
        submission = await self._queue().get(self._id(request))
        sha256 = request.match_info["sha256"]
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise errors.bad_request("sha256 is 64 lowercase hex digits")
        return await self.ops.bo.kyc_files().for_staff(submission, sha256)

    async def reject(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body

        submission_id = self._id(request)
        body = await _body(request)
        if set(body) != {"reason"}:
            raise errors.bad_request('the body is {"reason": text}')
        return await self._queue().reject(submission_id, session.staff.staff_id, body["reason"])


def setup(app: web.Application, ops: Ops) -> KycRoutes:
    from backoffice.ops import PREFIX

    k = KycRoutes(ops)
    r, add = ops.route, app.router.add_route
    base = f"{PREFIX}/kyc"
    add("GET", base, r("kyc.view", k.listing, ("status", "limit")))
    add("GET", f"{base}/{{submission_id}}", r("kyc.view", k.view))
    add("POST", f"{base}/{{submission_id}}/approve", r("kyc.review", k.approve))
    add("POST", f"{base}/{{submission_id}}/reject", r("kyc.review", k.reject))
    add("GET", f"{base}/{{submission_id}}/files/{{sha256}}", r("kyc.files", k.file))
    return k
