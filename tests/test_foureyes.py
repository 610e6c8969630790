"""Four eyes on withdrawals through a real gateway with custody on a real anvil (signer on),
staff sessions and cases in a real PostgreSQL database (`tests.foureyes_support`): new address
and threshold holds, two different finance approvals, refusals (wrong role, the same staff
twice), rejection and the owner's cancel releasing the hold through the journal, the start-up
recovery, and the operator API (``/ops/v1``) with staff logged in for real (password + TOTP):
each role's refusals, the same staff approving twice, AML cases assigned, commented, closed."""

from __future__ import annotations

from typing import Any

import pytest

from engine.schema import WithdrawalDecision
from tests.custody_nodes import CONFIRMATIONS
from tests.foureyes_support import (
    Anvil,
    ServerThread,
    account,
    address,
    anvil_node,
    approve,
    cases,
    eth,
    foureyes_server,
    history,
    ok,
    on_loop,
    ops,
    poll,
    refused,
    refused_with,
    rest,
    row,
    run,
    staff_login,
    withdraw,
    ws_call,
)
from tests.gateway_support import journal_replay

anvil = pytest.fixture(scope="module")(anvil_node)
server = pytest.fixture(scope="module")(foureyes_server)

# ---- four eyes -------------------------------------------------------------------------------


def test_new_address_waits_for_two_different_finance_staff(
    server: ServerThread, anvil: Anvil
) -> None:
    creds, _ = account(server)
    to = address("payee-1")
    wid = withdraw(server, creds, "1", to)
    w = row(server, wid)
    assert (w.status, w.review) == ("awaiting_approval", "new_address")
    assert eth(server, creds) == ("98.900000000", "1.000000000")  # held, not gone
    assert history(server, creds, wid)["status"] == 2  # Awaiting Approval
    poll(server)  # the signer never sees it
    assert row(server, wid).status == "awaiting_approval"
    assert server.gw.custody.custody.store.attempts(wid) == []

    approvals = server.gw.custody.approvals
    assert refused(server, approvals.approve, wid, "staff-s1", "support") == "ROLE_REFUSED"
    assert refused(server, approvals.approve, wid, "staff-c1", "compliance") == "ROLE_REFUSED"
    assert approve(server, wid, "staff-f1").status == "awaiting_approval"
    assert refused(server, approvals.approve, wid, "staff-f1", "finance") == "ALREADY_DECIDED"
    assert row(server, wid).status == "awaiting_approval"
    assert approve(server, wid, "staff-f2").status == "held"
    assert refused(server, approvals.approve, wid, "staff-f3", "finance") == "NOT_AWAITING_APPROVAL"
    assert [d.staff_id for d in approvals.decisions(wid)] == ["staff-f1", "staff-f2"]

    poll(server)
    assert row(server, wid).status == "broadcast"
    anvil.mine(CONFIRMATIONS)
    poll(server)
    assert row(server, wid).status == "settled"
    assert eth(server, creds) == ("98.900000000", "0.000000000")

    # the address is known now: a small withdrawal to it goes straight to the signer
    again = withdraw(server, creds, "1", to)
    assert (row(server, again).status, row(server, again).review) == ("held", "")
    assert history(server, creds, again)["status"] == 4


def test_above_threshold_waits_and_a_rejection_releases_the_hold(server: ServerThread) -> None:
    creds, account_id = account(server)
    to = address("payee-2")
    first = withdraw(server, creds, "1", to)
    approve(server, first, "staff-f1")
    approve(server, first, "staff-f2")
    poll(server)  # sent: the address is known from now on
    free_before, locked_before = eth(server, creds)

    wid = withdraw(server, creds, "6", to)  # above the 5 ETH threshold
    assert (row(server, wid).status, row(server, wid).review) == ("awaiting_approval", "threshold")
    approvals = server.gw.custody.approvals
    assert refused(server, approvals.approve, wid, "", "finance") == "ROLE_REFUSED"

    async def reject(staff: str, role: str, reason: str) -> Any:
        return await approvals.reject(wid, staff, role, reason)

    from backoffice.errors import ActionRefused

    for staff, role, reason, code in (
        ("staff-s1", "support", "no", "ROLE_REFUSED"),
        ("staff-f1", "finance", "  ", "REASON_REQUIRED"),
    ):
        with pytest.raises(ActionRefused) as info:
            run(server, reject(staff, role, reason))
        assert info.value.code == code
    approve(server, wid, "staff-f1")
    with pytest.raises(ActionRefused) as info:  # the approver cannot also reject
        run(server, reject("staff-f1", "finance", "changed my mind"))
    assert info.value.code == "ALREADY_DECIDED"
    done = run(server, reject("staff-f2", "finance", "beneficiary unknown"))
    assert done.status == "rejected" and "beneficiary unknown" in done.detail
    assert eth(server, creds) == (free_before, locked_before), "the amount is available again"
    h = history(server, creds, wid)
    assert h["status"] == 3 and "completeTime" in h
    poll(server)
    assert row(server, wid).status == "rejected"  # never sent
    assert server.gw.custody.custody.store.attempts(wid) == []
    assert account_id > 0


def test_owner_cancels_while_it_waits(server: ServerThread) -> None:
    creds, _ = account(server)
    other, _ = account(server)
    wid = withdraw(server, creds, "2", address("payee-3"))
    before = eth(server, creds)
    assert before[1] == "2.000000000"
    status, err = rest(server, "POST", "/sapi/v1/capital/withdraw/cancel", other, id=wid)
    assert (status, err["code"]) == (400, -4010)  # another account's: as if it did not exist
    status, err = rest(server, "POST", "/sapi/v1/capital/withdraw/cancel", creds)
    assert (status, err["code"]) == (400, -1102)
    assert eth(server, creds) == before
    cancelled = ok(server, "POST", "/sapi/v1/capital/withdraw/cancel", creds, id=wid)
    assert (cancelled["status"], cancelled["custodyStatus"]) == (1, "cancelled")
    assert eth(server, creds)[1] == "0.000000000"
    status, err = rest(server, "POST", "/sapi/v1/capital/withdraw/cancel", creds, id=wid)
    assert (status, err["code"]) == (400, -4009)
    assert refused(server, server.gw.custody.approvals.approve, wid, "f1", "finance") == (
        "NOT_AWAITING_APPROVAL"
    )
    # a withdrawal already with the signer cannot be cancelled
    to = address("payee-3")
    held = withdraw(server, creds, "1", to)
    approve(server, held, "staff-f1")
    approve(server, held, "staff-f2")
    status, err = rest(server, "POST", "/sapi/v1/capital/withdraw/cancel", creds, id=held)
    assert (status, err["code"]) == (400, -4009)
    assert row(server, held).status == "held"
    # the WS API's capital.withdraw.cancel, the same rules
    wid = withdraw(server, creds, "1", address("payee-3b"))
    reply = ws_call(server, other, "capital.withdraw.cancel", id=wid)
    assert (reply["status"], reply["error"]["code"]) == (400, -4010)
    reply = ws_call(server, creds, "capital.withdraw.cancel", id=wid)
    assert reply["status"] == 200 and reply["result"]["custodyStatus"] == "cancelled", reply
    assert row(server, wid).status == "cancelled"


def test_start_finishes_an_interrupted_release_and_never_skips_review(
    server: ServerThread,
) -> None:
    """What a crash can leave behind, finished by the start-up recovery: a rejection recorded
    but not yet released through the journal, and an engine hold whose status was never
    written (it goes to review again, not to the signer)."""
    creds, _ = account(server)
    store = server.gw.custody.custody.store
    rejected = withdraw(server, creds, "2", address("payee-8"))
    interrupted = withdraw(server, creds, "1", address("payee-9"))
    assert eth(server, creds)[1] == "3.000000000"
    on_loop(server, store.update_withdrawal, rejected, 1, status="rejecting", detail="by f1: x")
    on_loop(server, store.update_withdrawal, interrupted, 1, status="requested")
    server.call(server.gw.custody.recover())
    assert row(server, rejected).status == "rejected"
    assert (row(server, interrupted).status, row(server, interrupted).review) == (
        "awaiting_approval",
        "new_address",
    )
    assert eth(server, creds)[1] == "1.000000000"
    server.call(server.gw.custody.recover())  # twice: nothing more happens
    assert eth(server, creds)[1] == "1.000000000"


class _Crash(Exception):
    """Stands for the process dying between the journal write and the store's record (a test
    double for a kill: the store and the journal are left exactly as a kill leaves them)."""


def _journaled_decisions(server: ServerThread, withdrawal_id: int, staff_id: str) -> int:
    records, _ = journal_replay(server.gw)
    return sum(
        isinstance(r.command, WithdrawalDecision)
        and (r.command.withdrawal_id, r.command.staff_id) == (withdrawal_id, staff_id)
        for r in records
    )


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_interrupted_after_the_journal_is_recorded_once(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:
    """Crash after the journaled ``WithdrawalDecision``, before the store's record: the
    retry journaled the same decision a second time. Now the start-up recovery reads the
    journal back, records the decision once, and the retry is refused (ALREADY_DECIDED)."""
    creds, _ = account(server)
    wid = withdraw(server, creds, "1", address(f"payee-crash-{decision}"))
    approvals = server.gw.custody.approvals
    act = (
        (lambda: approvals.approve(wid, "staff-f7", "finance"))
        if decision == "approve"
        else (lambda: approvals.reject(wid, "staff-f7", "finance", "looks odd"))
    )

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise _Crash

    with monkeypatch.context() as m:
        m.setattr(approvals, "_decide", crash)
        with pytest.raises(_Crash):
            on_loop(server, act)
    assert approvals.decisions(wid) == [] and row(server, wid).status == "awaiting_approval"
    assert _journaled_decisions(server, wid, "staff-f7") == 1
    server.call(server.gw.custody.recover())
    assert [(d.staff_id, d.decision) for d in approvals.decisions(wid)] == [("staff-f7", decision)]
    assert row(server, wid).status == ("awaiting_approval" if decision == "approve" else "rejected")
    expected = "ALREADY_DECIDED" if decision == "approve" else "NOT_AWAITING_APPROVAL"
    assert refused(server, act) == expected
    assert _journaled_decisions(server, wid, "staff-f7") == 1


def test_a_decision_interrupted_before_the_journal_may_be_taken_again(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash before the journal write: nothing was decided, so the retry goes through (the
    intent is settled as not journaled), once."""
    creds, _ = account(server)
    wid = withdraw(server, creds, "1", address("payee-crash-early"))
    approvals = server.gw.custody.approvals

    async def crash(command: Any) -> Any:
        raise _Crash

    with monkeypatch.context() as m:
        m.setattr(approvals.desk, "submit", crash)
        with pytest.raises(_Crash):
            approve(server, wid, "staff-f8")
    assert _journaled_decisions(server, wid, "staff-f8") == 0
    assert approve(server, wid, "staff-f8").status == "awaiting_approval"
    assert [d.staff_id for d in approvals.decisions(wid)] == ["staff-f8"]
    assert _journaled_decisions(server, wid, "staff-f8") == 1


# ---- the operator API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def team(server: ServerThread) -> dict[str, tuple[str, str]]:
    """The module's staff, logged in once (argon2 and TOTP cost time): name -> (id, token)."""
    roles = {
        "f1": "finance",
        "f2": "finance",
        "c1": "compliance",
        "support": "support",
        "auditor": "auditor",
    }
    return {name: staff_login(server, role) for name, role in roles.items()}


def test_operator_api_four_eyes(server: ServerThread, team: dict[str, tuple[str, str]]) -> None:
    (f1, f1_token), (f2, f2_token) = team["f1"], team["f2"]
    support, compliance, auditor = team["support"][1], team["c1"][1], team["auditor"][1]
    creds, account_id = account(server)
    wid = withdraw(server, creds, "1", address("payee-ops-1"))
    other = withdraw(server, creds, "1", address("payee-ops-2"))

    status, waiting = ops(server, "GET", "/withdrawals", f1_token)
    assert status == 200, waiting
    (mine,) = [w for w in waiting if w["withdrawal_id"] == wid]
    assert (mine["account_id"], mine["amount"], mine["review"]) == (
        account_id,
        "1.000000000",
        ["new_address"],
    )
    assert ops(server, "GET", f"/withdrawals/{wid}", auditor)[0] == 200
    refused_with(ops(server, "GET", "/withdrawals", support), 403, "ROLE_REFUSED")
    refused_with(ops(server, "POST", f"/withdrawals/{wid}/approve", support), 403, "ROLE_REFUSED")
    refused_with(ops(server, "POST", f"/withdrawals/{wid}/approve", auditor), 403, "ROLE_REFUSED")
    refused_with(ops(server, "POST", f"/withdrawals/{wid}/approve"), 401, "UNAUTHENTICATED")
    refused_with(ops(server, "POST", "/withdrawals/x1/approve", f1_token), 400, "BAD_REQUEST")
    refused_with(
        ops(server, "POST", "/withdrawals/999999/approve", f1_token), 404, "UNKNOWN_WITHDRAWAL"
    )
    status, out = ops(server, "POST", f"/withdrawals/{wid}/approve", f1_token)
    assert (status, out["status"]) == (200, "awaiting_approval"), out
    refused_with(
        ops(server, "POST", f"/withdrawals/{wid}/approve", f1_token), 409, "ALREADY_DECIDED"
    )
    status, out = ops(server, "POST", f"/withdrawals/{wid}/approve", f2_token)
    assert (status, out["status"]) == (200, "held"), out
    assert [(d["staff_id"], d["decision"]) for d in out["decisions"]] == [
        (f1, "approve"),
        (f2, "approve"),
    ]

    free_locked = eth(server, creds)
    refused_with(
        ops(server, "POST", f"/withdrawals/{other}/reject", compliance, {}), 400, "BAD_REQUEST"
    )
    status, out = ops(
        server, "POST", f"/withdrawals/{other}/reject", compliance, {"reason": "sanctions"}
    )
    assert (status, out["status"]) == (200, "rejected"), out
    assert eth(server, creds)[1] == "1.000000000" != free_locked[1]  # only the approved one
    assert history(server, creds, other)["status"] == 3

    # Each decision is a journaled WithdrawalDecision naming its staff member (refused
    # attempts journal nothing): the audit log reads them back, and a replay has them.
    c1 = team["c1"][0]
    status, audit = ops(server, "GET", f"/audit?account_id={account_id}", auditor)
    assert status == 200, audit
    decided = [
        (e["action"], e["staff_id"], e["withdrawal_id"], e.get("note"))
        for e in audit["entries"]
        if "withdrawal_id" in e
    ]
    assert decided == [
        ("approve_withdrawal", f1, wid, None),
        ("approve_withdrawal", f2, wid, None),
        ("reject_withdrawal", c1, other, "sanctions"),
    ]
    records, _ = journal_replay(server.gw)
    journaled = [
        (r.command.staff_id, r.command.withdrawal_id, r.command.approve, r.events)
        for r in records
        if isinstance(r.command, WithdrawalDecision) and r.command.account_id == account_id
    ]
    assert journaled == [(f1, wid, True, []), (f2, wid, True, []), (c1, other, False, [])]


def test_operator_api_aml_cases(server: ServerThread, team: dict[str, tuple[str, str]]) -> None:
    (c1, c1_token), c2 = team["c1"], team["f2"][0]  # any staff id may be the assignee
    finance, auditor = team["f1"][1], team["auditor"][1]
    _, account_id = account(server, eth="800")
    case_id = cases(server, account_id)["big-in"]["case_id"]

    status, listed = ops(server, "GET", "/aml/cases?status=open", auditor)
    assert status == 200 and case_id in {c["case_id"] for c in listed}, listed
    refused_with(ops(server, "GET", "/aml/cases", finance), 403, "ROLE_REFUSED")
    refused_with(ops(server, "GET", "/aml/cases?status=shut", auditor), 400, "BAD_REQUEST")
    refused_with(ops(server, "GET", "/aml/cases/nope@1", auditor), 404, "UNKNOWN_CASE")
    path = f"/aml/cases/{case_id}"
    refused_with(ops(server, "POST", f"{path}/assign", auditor, {"staff_id": c2}), 403,
                 "ROLE_REFUSED")  # fmt: skip
    status, out = ops(server, "POST", f"{path}/assign", c1_token, {"staff_id": c2})
    assert (status, out["assignee"]) == (200, c2), out
    refused_with(ops(server, "POST", f"{path}/comment", c1_token, {}), 400, "NOTE_REQUIRED")
    assert ops(server, "POST", f"{path}/comment", c1_token, {"body": "payslips"})[0] == 200
    refused_with(
        ops(server, "POST", f"{path}/close", c1_token, {"outcome": "meh", "note": "x"}),
        400,
        "INVALID_OUTCOME",
    )
    body = {"outcome": "reported", "note": "report filed"}
    status, out = ops(server, "POST", f"{path}/close", c1_token, body)
    assert (status, out["status"], out["outcome"]) == (200, "closed", "reported"), out
    refused_with(ops(server, "POST", f"{path}/close", c1_token, body), 409, "CASE_CLOSED")
    status, case = ops(server, "GET", path, auditor)
    assert [(n["staff_id"], n["kind"]) for n in case["notes"]] == [
        (c1, "assign"),
        (c1, "comment"),
        (c1, "close"),
    ]


# ---- replay ----------------------------------------------------------------------------------


def test_money_routes_answer_as_described(
    server: ServerThread, team: dict[str, tuple[str, str]]
) -> None:
    """The operations that need custody or AML (``x-requires``; tests/test_openapi_ops.py's server
    has neither): each answers 200 as described, and every error status it documents (503
    excepted) is provoked and answered with ``{code, msg}`` as described."""
    import requests
    import schemathesis

    spec = requests.get(server.http + "/openapi.json", timeout=30).json()
    described = [r.ok() for r in schemathesis.openapi.from_dict(spec).get_all_operations()]
    ops_by_label = {
        op.label: op
        for op in described
        if op.definition.raw.get("x-requires") in ("custody", "aml")
    }
    creds, account_id = account(server)
    a = withdraw(server, creds, "1", address("payee-doc-a"))
    b = withdraw(server, creds, "1", address("payee-doc-b"))
    case = cases(server, account_id)["fresh-address"]["case_id"]
    w, c = "/ops/v1/withdrawals", "/ops/v1/aml/cases"
    wp, cp = f"{w}/{{withdrawal_id}}", f"{c}/{{case_id}}"
    none: dict[str, Any] = {}
    overlong = {"pad": "x" * 9000}  # the HTTP parser's 400, answered before routing
    plan: list[tuple[str, int, str | None, dict[str, Any], Any, dict[str, Any]]] = [
        (f"GET {w}", 200, "f1", none, None, {"status": "awaiting_approval"}),
        (f"GET {w}", 400, "f1", none, None, {"status": "lost"}),
        (f"GET {w}", 403, "support", none, None, none),
        (f"GET {wp}", 200, "auditor", {"withdrawal_id": a}, None, none),
        (f"GET {wp}", 400, "auditor", {"withdrawal_id": "x1"}, None, none),
        (f"GET {wp}", 404, "auditor", {"withdrawal_id": 999_999}, None, none),
        (f"GET {wp}", 403, "support", {"withdrawal_id": a}, None, none),
        (f"POST {wp}/approve", 200, "f1", {"withdrawal_id": a}, {}, none),
        (f"POST {wp}/approve", 409, "f1", {"withdrawal_id": a}, {}, none),
        (f"POST {wp}/approve", 400, "f2", {"withdrawal_id": a}, {"note": "no such field"}, none),
        (f"POST {wp}/approve", 404, "f2", {"withdrawal_id": 999_999}, {}, none),
        (f"POST {wp}/approve", 403, "c1", {"withdrawal_id": a}, {}, none),
        (f"POST {wp}/reject", 400, "c1", {"withdrawal_id": b}, {}, none),
        (f"POST {wp}/reject", 200, "c1", {"withdrawal_id": b}, {"reason": "unverified"}, none),
        (f"POST {wp}/reject", 409, "f1", {"withdrawal_id": b}, {"reason": "again"}, none),
        (f"POST {wp}/reject", 404, "f1", {"withdrawal_id": 999_999}, {"reason": "x"}, none),
        (f"POST {wp}/reject", 403, "support", {"withdrawal_id": b}, {"reason": "x"}, none),
        ("GET /ops/v1/custody/alerts", 200, "auditor", none, None, none),
        ("GET /ops/v1/custody/alerts", 403, "support", none, None, none),
        ("GET /ops/v1/custody/deposits", 200, "auditor", none, None, none),
        ("GET /ops/v1/custody/deposits", 400, "c1", none, None, {"status": "lost"}),
        ("GET /ops/v1/custody/deposits", 403, "support", none, None, none),
        ("GET /ops/v1/custody/reconciliation", 200, "auditor", none, None, none),
        ("GET /ops/v1/custody/reconciliation", 403, "c1", none, None, none),
        ("GET /ops/v1/custody/alerts", 400, "auditor", none, None, overlong),
        ("GET /ops/v1/custody/reconciliation", 400, "auditor", none, None, overlong),
        (f"GET {c}", 200, "auditor", none, None, {"status": "open"}),
        (f"GET {c}", 400, "auditor", none, None, {"status": "shut"}),
        (f"GET {c}", 403, "f1", none, None, none),
        (f"GET {cp}", 200, "auditor", {"case_id": case}, None, none),
        (f"GET {cp}", 400, "auditor", {"case_id": "x" * 129}, None, none),
        (f"GET {cp}", 404, "auditor", {"case_id": "nope@1"}, None, none),
        (f"GET {cp}", 403, "support", {"case_id": case}, None, none),
        (f"POST {cp}/assign", 200, "c1", {"case_id": case}, {"staff_id": "s-1"}, none),
        (f"POST {cp}/assign", 400, "c1", {"case_id": case}, {}, none),
        (f"POST {cp}/assign", 404, "c1", {"case_id": "nope@1"}, {"staff_id": "s-1"}, none),
        (f"POST {cp}/assign", 403, "auditor", {"case_id": case}, {"staff_id": "s-1"}, none),
        (f"POST {cp}/comment", 200, "c1", {"case_id": case}, {"body": "checked"}, none),
        (f"POST {cp}/comment", 400, "c1", {"case_id": case}, {"body": ""}, none),
        (f"POST {cp}/comment", 404, "c1", {"case_id": "nope@1"}, {"body": "x"}, none),
        (f"POST {cp}/comment", 403, "f1", {"case_id": case}, {"body": "x"}, none),
        (f"POST {cp}/close", 400, "c1", {"case_id": case}, {"outcome": "meh", "note": "x"}, none),
        (f"POST {cp}/close", 200, "c1", {"case_id": case}, {"outcome": "cleared", "note": "x"},
         none),
        (f"POST {cp}/close", 409, "c1", {"case_id": case}, {"outcome": "cleared", "note": "x"},
         none),
        (f"POST {cp}/assign", 409, "c1", {"case_id": case}, {"staff_id": "s-2"}, none),
        (f"POST {cp}/close", 404, "c1", {"case_id": "nope@1"}, {"outcome": "cleared",
         "note": "x"}, none),
        (f"POST {cp}/close", 403, "f1", {"case_id": case}, {"outcome": "cleared", "note": "x"},
         none),
    ]  # fmt: skip
    plan += [(label, 401, None, {}, None, {}) for label in ops_by_label]
    given: dict[str, set[int]] = {}
    for label, status, who, path, body, query in plan:
        op = ops_by_label[label]
        headers = {} if who is None else {"Authorization": f"Bearer {team[who][1]}"}
        if status == 401:
            path = {k: 1 for k in ("withdrawal_id", "case_id") if "{" + k + "}" in op.path}
        response = requests.request(
            op.method.upper(),
            server.http + op.path.format(**path),
            json=body,
            params=query,
            headers=headers,
            timeout=30,
        )
        assert response.status_code == status, (label, status, response.text)
        if status >= 400:
            assert set(response.json()) == {"code", "msg"}, (label, response.text)
        op.validate_response(response)
        given.setdefault(label, set()).add(status)
    for label, op in ops_by_label.items():
        documented = {int(s) for s in op.definition.raw["responses"]} - {503}
        assert given[label] == documented, label


def test_approval_roles_are_the_role_tables() -> None:
    """Custody's own role check (defence in depth) grants exactly what `backoffice.roles`,
    the one table of who may do what, grants."""
    from backoffice.roles import ACTIONS
    from custody.approvals import APPROVE_ROLES, REJECT_ROLES

    assert {r.value for r in ACTIONS["withdrawals.approve"].roles} == APPROVE_ROLES
    assert {r.value for r in ACTIONS["withdrawals.reject"].roles} == REJECT_ROLES
