"""OpenAPI description of the operator API's money routes (`backoffice.opsmoney`), merged into
`backoffice.opsdoc.operations` so ``/openapi.json`` describes every ``/ops/v1`` route."""

from __future__ import annotations

from typing import Any

from backoffice.aml.cases import OUTCOMES
from backoffice.opsdoc import STR, _int, _json_body, _obj, _operation, _path, _query
from backoffice.opsmoney import CASE_STATUSES, DEPOSIT_STATUSES, WITHDRAWAL_STATUSES

DECISION = _obj(staff_id=STR, decision={"type": "string"}, note=STR)
WITHDRAWAL = _obj(
    withdrawal_id=_int(1),
    account_id=_int(1),
    asset=STR,
    amount=STR,
    address=STR,
    network=STR,
    status={"type": "string", "enum": list(WITHDRAWAL_STATUSES)},
    review={"type": "array", "items": STR},
    detail=STR,
    created_ns=_int(),
    decisions={"type": "array", "items": DECISION},
)
ALERT = _obj(alert_id=_int(1), chain=STR, kind=STR, detail=STR)
DEPOSIT = _obj(
    key=STR,
    account_id=_int(0),
    asset=STR,
    amount=STR,
    network=STR,
    height=_int(0),
    status={"type": "string", "enum": list(DEPOSIT_STATUSES)},
    detail=STR,
    seen_ns=_int(),
)
CASE = {
    "type": "object",
    "required": ["case_id", "rule_id", "kind", "action", "account_id", "status"],
    "properties": {
        "case_id": STR,
        "rule_id": STR,
        "kind": STR,
        "action": {"type": "string", "enum": ["case", "hold", "freeze"]},
        "account_id": _int(1),
        "withdrawal_id": _int(),
        "asset_id": _int(),
        "amount_atoms": _int(),
        "seq": _int(1),
        "opened_ns": _int(),
        "detail": STR,
        "status": {"type": "string", "enum": list(CASE_STATUSES)},
        "assignee": STR,
        "outcome": STR,
        "action_done": _int(0, 1),
    },
}


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    w, c = f"{p}/withdrawals", f"{p}/aml/cases"
    wid = _path("withdrawal_id", _int(1, (1 << 62) - 1))
    case_id = _path("case_id", {"type": "string", "maxLength": 128})
    case_with_notes = {
        **CASE,
        "properties": {
            **CASE["properties"],
            "notes": {
                "type": "array",
                "items": _obj(staff_id=STR, kind=STR, body=STR, at_ns=_int()),
            },
        },
    }

    def op(method: str, path: str, summary: str, action: str, result: Any, **kw: Any) -> Any:
        out = _operation(method, path, summary, action, result, **kw)
        # what the server must run; without it: 404 CUSTODY_DISABLED / AML_DISABLED
        out["x-requires"] = "aml" if "/aml/" in path else "custody"
        return out

    return {
        ("GET", w): op(
            "GET",
            w,
            "Withdrawals by status (default awaiting_approval), oldest first, with the reasons "
            "they wait and the decisions so far",
            "withdrawals.view",
            {"type": "array", "items": WITHDRAWAL},
            params=[
                _query(
                    "status",
                    {"type": "string", "enum": list(WITHDRAWAL_STATUSES)},
                    "default awaiting_approval",
                )
            ],
        ),
        ("GET", f"{w}/{{withdrawal_id}}"): op(
            "GET",
            f"{w}/{{withdrawal_id}}",
            "One withdrawal",
            "withdrawals.view",
            WITHDRAWAL,
            params=[wid],
        ),
        ("POST", f"{w}/{{withdrawal_id}}/approve"): op(
            "POST",
            f"{w}/{{withdrawal_id}}/approve",
            "Approve (four eyes: the second approval by a different staff member sends it to "
            "the signer; the same staff twice is ALREADY_DECIDED)",
            "withdrawals.approve",
            WITHDRAWAL,
            params=[wid],
            statuses={409},
        ),
        ("POST", f"{w}/{{withdrawal_id}}/reject"): op(
            "POST",
            f"{w}/{{withdrawal_id}}/reject",
            "Reject with a reason: the hold is released through the journal",
            "withdrawals.reject",
            WITHDRAWAL,
            params=[wid],
            body=_json_body(_obj(reason=STR), {"reason": "beneficiary not verified"}),
            statuses={409},
        ),
        ("GET", f"{p}/custody/alerts"): op(
            "GET",
            f"{p}/custody/alerts",
            "Open custody alerts (deep reorgs): each halts its chain's deposits and withdrawals "
            "until resolved with `kootabase custody alerts resolve`",
            "custody.alerts.view",
            {"type": "array", "items": ALERT},
        ),
        ("GET", f"{p}/custody/deposits"): op(
            "GET",
            f"{p}/custody/deposits",
            "Deposits by custody status, oldest first; over_limit (the default): confirmed, "
            "waiting for room under the account tier's 24 h deposit limit (compliance)",
            "custody.deposits.view",
            {"type": "array", "items": DEPOSIT},
            params=[
                _query("status", {"type": "string", "enum": list(DEPOSIT_STATUSES)}, "over_limit")
            ],
        ),
        ("GET", c): op(
            "GET",
            c,
            "AML cases (every case, or open/closed), in journal order",
            "aml.cases.view",
            {"type": "array", "items": CASE},
            params=[_query("status", {"type": "string", "enum": list(CASE_STATUSES)}, "")],
        ),
        ("GET", f"{c}/{{case_id}}"): op(
            "GET",
            f"{c}/{{case_id}}",
            "One AML case and its notes",
            "aml.cases.view",
            case_with_notes,
            params=[case_id],
        ),
        ("POST", f"{c}/{{case_id}}/assign"): op(
            "POST",
            f"{c}/{{case_id}}/assign",
            "Assign the case to a staff member",
            "aml.cases.work",
            CASE,
            params=[case_id],
            body=_json_body(_obj(staff_id=STR), {"staff_id": "s-..."}),
            statuses={409},
        ),
        ("POST", f"{c}/{{case_id}}/comment"): op(
            "POST",
            f"{c}/{{case_id}}/comment",
            "Add a note to the case",
            "aml.cases.work",
            case_with_notes,
            params=[case_id],
            body=_json_body(_obj(body=STR), {"body": "source of funds: salary"}),
        ),
        ("POST", f"{c}/{{case_id}}/close"): op(
            "POST",
            f"{c}/{{case_id}}/close",
            "Close with an outcome and a note (a held withdrawal still needs four eyes)",
            "aml.cases.work",
            CASE,
            params=[case_id],
            body=_json_body(
                _obj(outcome={"type": "string", "enum": list(OUTCOMES)}, note=STR),
                {"outcome": "cleared", "note": "documents checked"},
            ),
            statuses={409},
        ),
    }
