"""OpenAPI description of the fiat rail (`backoffice.opsfiat`), merged into
`backoffice.opsdoc.operations`. ``x-requires: fiat``: the operations need a fiat asset, which
tests/test_openapi_ops.py's server has not, so tests/test_fiat.py holds them to this description
(200 as described, every documented error status provoked)."""

from __future__ import annotations

from typing import Any

from backoffice.fiat import MAX_REASON_CHARS, STATUSES
from backoffice.opsdoc import STR, _int, _json_body, _obj, _operation, _path, _query
from backoffice.opsfiat import LIST_STATUSES, MAX_LIST
from backoffice.opsmoneydoc import WITHDRAWAL

NULL_STR = {"type": ["string", "null"]}
FIAT_DEPOSIT = _obj(
    deposit_id=STR,
    account_id=_int(0),
    asset=STR,
    amount=STR,
    bank_reference=STR,
    status={"type": "string", "enum": list(STATUSES)},
    recorded_by=STR,
    recorded_ms=_int(),
    decided_by=NULL_STR,
    decided_ms={"type": ["integer", "null"]},
    reason=NULL_STR,
    seq={"type": ["integer", "null"], "minimum": 1},
)


REFERENCE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9./_-]{3,63}$"


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    base = f"{p}/fiat/deposits"
    paid = f"{p}/fiat/withdrawals/{{withdrawal_id}}/paid"
    did = _path("deposit_id", {"type": "string", "minLength": 1, "maxLength": 64})
    record_body = _obj(
        account_id=_int(0),
        asset={"type": "string", "description": "a fiat asset (ISO 4217 code, not custodied)"},
        amount={"type": "string", "description": "decimal, in the asset's units"},
        bank_reference={"type": "string", "pattern": REFERENCE_PATTERN},
    )
    ops = {
        ("GET", base): _operation(
            "GET",
            base,
            "Fiat deposits recorded by finance: waiting for a second approval (pending, oldest "
            "first) or decided",
            "fiat.view",
            {"type": "array", "items": FIAT_DEPOSIT},
            params=[
                _query("status", {"type": "string", "enum": list(LIST_STATUSES)}, "pending"),
                _query("limit", _int(1, MAX_LIST), "default 50"),
            ],
        ),
        ("POST", base): _operation(
            "POST",
            base,
            "Record a bank transfer in (credits nothing until another person approves it)",
            "fiat.record",
            FIAT_DEPOSIT,
            body=_json_body(
                record_body,
                {"account_id": 1, "asset": "USD", "amount": "250.00", "bank_reference": "REF-1"},
            ),
            statuses={404, 409},
        ),
        ("POST", f"{base}/{{deposit_id}}/approve"): _operation(
            "POST",
            f"{base}/{{deposit_id}}/approve",
            "Second pair of eyes: the journaled Deposit keyed fiat:<bank reference>, naming "
            "both staff members (the recorder may not approve: SAME_STAFF)",
            "fiat.approve",
            FIAT_DEPOSIT,
            params=[did],
            body=_json_body({"type": "object", "maxProperties": 0}),
            statuses={409},
        ),
        ("POST", f"{base}/{{deposit_id}}/reject"): _operation(
            "POST",
            f"{base}/{{deposit_id}}/reject",
            "Reject with a reason (nothing is journaled)",
            "fiat.approve",
            FIAT_DEPOSIT,
            params=[did],
            body=_json_body(
                _obj(reason={"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS}),
                {"reason": "no such transfer on the statement"},
            ),
            statuses={409},
        ),
        ("POST", paid): _operation(
            "POST",
            paid,
            "A fiat withdrawal approved by two finance staff (status held) was paid by bank "
            "transfer: its hold is settled, journaled (WithdrawResult) naming the staff member "
            "and the bank reference; NOT_APPROVED before the approvals",
            "fiat.pay",
            WITHDRAWAL,
            params=[_path("withdrawal_id", _int(1))],
            body=_json_body(
                _obj(bank_reference={"type": "string", "pattern": REFERENCE_PATTERN}),
                {"bank_reference": "OUT-2026-0001"},
            ),
            statuses={404, 409},
        ),
    }
    for op in ops.values():
        op["x-requires"] = "fiat"
    # needs custody and a fiat asset: tests/test_fiat_withdrawals.py holds it to this
    ops["POST", paid]["x-requires"] = "fiat-withdrawal"
    return ops
