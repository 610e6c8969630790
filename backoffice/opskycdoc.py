"""OpenAPI description of the operator API's KYC review queue (`backoffice.opskyc`), merged
into `backoffice.opsdoc.operations`. The operations carry ``x-requires: kyc`` (they need a
user's submission to answer 200), so tests/test_backoffice_kyc.py, which makes one, holds them
to this description (200 as described, every documented error status provoked) rather than
tests/test_openapi_ops.py's server without users."""

from __future__ import annotations

from typing import Any

from backoffice.kyc import DOC_TYPES, MAX_DOCUMENT_BYTES, MAX_REASON_CHARS, STATUSES
from backoffice.kycfiles import SNIFF
from backoffice.opsdoc import STR, _int, _json_body, _obj, _operation, _path, _query
from backoffice.opskyc import MAX_LIST, QUEUE_STATUSES
from engine.schema import MAX_TIER

DOCUMENT = _obj(
    type={"type": "string", "enum": list(DOC_TYPES)},
    country={"type": "string", "pattern": "^[A-Z]{2}$"},
    sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
    size_bytes=_int(1, MAX_DOCUMENT_BYTES),
)
NULL_STR = {"type": ["string", "null"]}
SUBMISSION = _obj(
    submission_id=STR,
    account_id=_int(1),
    email=STR,
    requested_tier=_int(1, MAX_TIER),
    documents={"type": "array", "items": DOCUMENT},
    status={"type": "string", "enum": list(STATUSES)},
    submitted_ms=_int(),
    decided_ms={"type": ["integer", "null"]},
    staff_id=NULL_STR,
    tier={"type": ["integer", "null"], "minimum": 0, "maximum": MAX_TIER},
    reason=NULL_STR,
    seq={"type": ["integer", "null"], "minimum": 1},
)


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    k = f"{p}/kyc"
    sid = _path("submission_id", {"type": "string", "minLength": 1, "maxLength": 64})

    def op(method: str, path: str, summary: str, action: str, **kw: Any) -> Any:
        out = _operation(method, path, summary, action, SUBMISSION, **kw)
        out["x-requires"] = "kyc"
        return out

    listing = _operation(
        "GET",
        k,
        "KYC submissions: the queue (status pending, oldest first) or decided ones",
        "kyc.view",
        {"type": "array", "items": SUBMISSION},
        params=[
            _query("status", {"type": "string", "enum": list(QUEUE_STATUSES)}, "default pending"),
            _query("limit", _int(1, MAX_LIST), "default 50"),
        ],
    )
    listing["x-requires"] = "kyc"
    files = f"{k}/{{submission_id}}/files/{{sha256}}"
    files_op = _operation(
        "GET",
        files,
        "A document's file (compliance only): one the submission lists and its user uploaded, "
        "as an attachment of its sniffed type (JPEG, PNG or PDF)",
        "kyc.files",
        {"type": "string", "format": "binary"},
        params=[sid, _path("sha256", {"type": "string", "pattern": "^[0-9a-f]{64}$"})],
    )
    binary = {"schema": {"type": "string", "format": "binary"}}
    files_op["responses"]["200"]["content"] = {kind: binary for _, kind in SNIFF}
    files_op["x-requires"] = "kyc-files"  # needs an upload: tests/test_kyc_files.py
    return {
        ("GET", k): listing,
        ("GET", f"{k}/{{submission_id}}"): op(
            "GET", f"{k}/{{submission_id}}", "One KYC submission", "kyc.view", params=[sid]
        ),
        ("POST", f"{k}/{{submission_id}}/approve"): op(
            "POST",
            f"{k}/{{submission_id}}/approve",
            "Approve: the account gets this tier (journaled SetAccountTier naming the staff id)",
            "kyc.review",
            params=[sid],
            body=_json_body(_obj(tier=_int(1, MAX_TIER)), {"tier": 1}),
            statuses={409},
        ),
        ("POST", f"{k}/{{submission_id}}/reject"): op(
            "POST",
            f"{k}/{{submission_id}}/reject",
            "Reject with a reason the user sees (the tier is unchanged)",
            "kyc.review",
            params=[sid],
            body=_json_body(
                _obj(reason={"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS}),
                {"reason": "the photo is unreadable"},
            ),
            statuses={409},
        ),
        ("GET", files): files_op,
    }
