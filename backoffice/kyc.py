"""KYC submissions and their review: users send document metadata, compliance decides.

A user asks for a tier (1-3) with the metadata of the documents that back it (kind, issuing
country, SHA-256 and size of the file); the file bytes stay with the document vendor or the
user's upload bucket, so identity data held here is only what a reviewer needs to find and
check them. Submissions wait in a queue (``bo_kyc_submissions``, PostgreSQL or SQLite like the
rest of the identity store); staff with ``kyc.review`` approve a tier or reject with a reason.

An approval is the journaled ``SetAccountTier`` naming the reviewing staff id, so the tier, who
granted it and when are in the journal (replay reproduces it, the audit log reads it); the
queue row only points at that command's sequence. A rejection changes nothing an account may
do, so it stays in the identity store (staff id, reason, time).

One open submission per user (a partial unique index on both backends): a second one while
the first waits is ``KYC_PENDING``. Deciding claims the row first (``pending`` ->
``approving``, one statement), so two reviewers deciding at once cannot both act; a journal
failure puts it back to ``pending``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from backoffice import errors
from backoffice.db import Db, UniqueViolation
from backoffice.errors import KYC_DECIDED, KYC_NOT_FOUND, KYC_PENDING, BackofficeError
from backoffice.store import new_id, now_ms
from engine.schema import MAX_TIER

DOC_TYPES: Final = ("passport", "id_card", "driving_licence", "proof_of_address", "selfie")
MAX_DOCUMENTS: Final = 8
MAX_DOCUMENT_BYTES: Final = 50 * 1024 * 1024
"""Largest file a document may describe (a phone photo or a scanned PDF fits easily)."""
MAX_REASON_CHARS: Final = 500
STATUSES: Final = ("pending", "approving", "approved", "rejected")
OPEN_STATUSES: Final = ("pending", "approving")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_COUNTRY: Final = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class Document:
    doc_type: str
    country: str
    sha256: str
    size_bytes: int

    def public(self) -> dict[str, Any]:
        return {
            "type": self.doc_type,
            "country": self.country,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
        }


def parse_documents(raw: object) -> list[Document]:
    """The submitted documents' metadata, each field checked (a stable 400 otherwise)."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_DOCUMENTS:
        raise errors.bad_request(f"documents must be a list of 1..{MAX_DOCUMENTS} objects")
    out: list[Document] = []
    for i, doc in enumerate(raw):
        if not isinstance(doc, dict) or set(doc) != {"type", "country", "sha256", "size_bytes"}:
            raise errors.bad_request(
                f"documents[{i}] must be an object with type, country, sha256 and size_bytes"
            )
        doc_type, country, digest, size = (
            doc[k] for k in ("type", "country", "sha256", "size_bytes")
        )
        if doc_type not in DOC_TYPES:
            raise errors.bad_request(f"documents[{i}].type must be one of {', '.join(DOC_TYPES)}")
        if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
            raise errors.bad_request(
                f"documents[{i}].country must be an ISO 3166-1 alpha-2 code (two capitals)"
            )
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise errors.bad_request(f"documents[{i}].sha256 must be 64 lowercase hex digits")
        if type(size) is not int or not 1 <= size <= MAX_DOCUMENT_BYTES:
            raise errors.bad_request(f"documents[{i}].size_bytes must be 1..{MAX_DOCUMENT_BYTES}")
        out.append(Document(doc_type, country, digest, size))
    if len({d.sha256 for d in out}) != len(out):
        raise errors.bad_request("the same file (sha256) is listed twice")
    return out


def parse_tier(raw: object, name: str = "tier") -> int:
    if type(raw) is not int or not 1 <= raw <= MAX_TIER:
        raise errors.bad_request(f"{name} must be an integer 1..{MAX_TIER}")
    return raw


def public(row: dict[str, Any], email: str | None = None) -> dict[str, Any]:
    """A submission as the APIs show it (the user sees the reason of a rejection too)."""
    docs = [Document(**d).public() for d in json.loads(row["documents"])]
    out = {
        "submission_id": row["submission_id"],
        "account_id": row["account_id"],
        "requested_tier": row["requested_tier"],
        "documents": docs,
        "status": row["status"],
        "submitted_ms": row["submitted_ms"],
        "decided_ms": row["decided_ms"] or None,
        "staff_id": row["staff_id"] or None,
        "tier": None if row["tier"] < 0 else row["tier"],
        "reason": row["reason"] or None,
        "seq": row["seq"] or None,
    }
    if email is not None:
        out["email"] = email
    return out


JournalTier = Callable[[int, int, str], Awaitable[int]]
"""(account_id, tier, staff_id) -> the sequence of the journaled SetAccountTier."""


class KycQueue:
    def __init__(self, db: Db) -> None:
        self.db = db

    async def submit(
        self, user_id: str, account_id: int | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        if account_id is None:
            raise BackofficeError(409, errors.NO_TRADING_ACCOUNT, "this user has no account yet")
        if set(body) != {"requested_tier", "documents"}:
            raise errors.bad_request("the body is requested_tier and documents")
        tier = parse_tier(body["requested_tier"], "requested_tier")
        docs = parse_documents(body["documents"])
        submission_id = new_id()
        encoded = json.dumps(
            [
                {"doc_type": d.doc_type, "country": d.country, "sha256": d.sha256,
                 "size_bytes": d.size_bytes}
                for d in docs
            ]
        )  # fmt: skip
        try:
            await self.db.execute(
                "INSERT INTO bo_kyc_submissions (submission_id, user_id, account_id, "
                "requested_tier, documents, status, submitted_ms) "
                "VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
                submission_id,
                user_id,
                account_id,
                tier,
                encoded,
                now_ms(),
            )
        except UniqueViolation:
            raise BackofficeError(
                409, KYC_PENDING, "a KYC submission of yours is already waiting for review"
            ) from None
        row = await self.db.fetchrow(
            "SELECT * FROM bo_kyc_submissions WHERE submission_id = $1", submission_id
        )
        assert row is not None
        return public(row)

    async def mine(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT * FROM bo_kyc_submissions WHERE user_id = $1 "
            "ORDER BY submitted_ms DESC, submission_id LIMIT 100",
            user_id,
        )
        return [public(r) for r in rows]

    async def queue(self, status: str, limit: int) -> list[dict[str, Any]]:
        """``pending`` lists the open ones (``approving`` too) oldest first: the queue;
        decided ones newest first."""
        if status == "pending":
            where = "s.status IN ('pending', 'approving')"
            order = "s.submitted_ms, s.submission_id"
        else:
            where, order = "s.status = $1", "s.decided_ms DESC, s.submission_id"
        sql = (
            "SELECT s.*, u.email FROM bo_kyc_submissions s LEFT JOIN bo_users u "
            f"ON u.user_id = s.user_id WHERE {where} ORDER BY {order} "
            + ("LIMIT $1" if status == "pending" else "LIMIT $2")
        )  # placeholders numbered in order of appearance: SQLite binds them by position
        args: tuple[Any, ...] = (limit,) if status == "pending" else (status, limit)
        rows = await self.db.fetch(sql, *args)
        return [public(r, r["email"] or "") for r in rows]

    async def get(self, submission_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "SELECT s.*, u.email FROM bo_kyc_submissions s LEFT JOIN bo_users u "
            "ON u.user_id = s.user_id WHERE s.submission_id = $1",
            submission_id,
        )
        if row is None:
            raise BackofficeError(404, KYC_NOT_FOUND, "no such KYC submission")
        return public(row, row["email"] or "")

    async def _claim(self, submission_id: str, staff_id: str) -> dict[str, Any]:
        """pending -> approving in one statement: of two reviewers, one wins."""
        changed = await self.db.execute(
            "UPDATE bo_kyc_submissions SET status = 'approving', staff_id = $1 "
            "WHERE submission_id = $2 AND status = 'pending'",
            staff_id,
            submission_id,
        )
        if changed != 1:
            current = await self.get(submission_id)  # 404 when there is none
            raise BackofficeError(
                409, KYC_DECIDED, f"this submission is {current['status']}, not pending"
            )
        row = await self.db.fetchrow(
            "SELECT * FROM bo_kyc_submissions WHERE submission_id = $1", submission_id
        )
        assert row is not None and row["status"] == "approving"
        return row

    async def approve(
        self, submission_id: str, staff_id: str, tier: int, journal: JournalTier
    ) -> dict[str, Any]:
        """Journal ``SetAccountTier(tier, staff_id)`` for the submission's account, then mark
        it approved with that sequence. A refused or failed journal leaves it pending."""
        assert staff_id
        row = await self._claim(submission_id, staff_id)
        try:
            seq = await journal(row["account_id"], tier, staff_id)
        except BaseException:
            await self.db.execute(
                "UPDATE bo_kyc_submissions SET status = 'pending', staff_id = '' "
                "WHERE submission_id = $1 AND status = 'approving'",
                submission_id,
            )
            raise
        await self.db.execute(
            "UPDATE bo_kyc_submissions SET status = 'approved', tier = $1, seq = $2, "
            "decided_ms = $3 WHERE submission_id = $4 AND status = 'approving'",
            tier,
            seq,
            now_ms(),
            submission_id,
        )
        return await self.get(submission_id)

    async def reject(self, submission_id: str, staff_id: str, reason: object) -> dict[str, Any]:
        if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= MAX_REASON_CHARS:
            raise errors.bad_request(f"reason must be 1..{MAX_REASON_CHARS} characters")
        changed = await self.db.execute(
            "UPDATE bo_kyc_submissions SET status = 'rejected', staff_id = $1, reason = $2, "
            "decided_ms = $3 WHERE submission_id = $4 AND status = 'pending'",
            staff_id,
            reason.strip(),
            now_ms(),
            submission_id,
        )
        if changed != 1:
            current = await self.get(submission_id)
            raise BackofficeError(
                409, KYC_DECIDED, f"this submission is {current['status']}, not pending"
            )
        return await self.get(submission_id)
