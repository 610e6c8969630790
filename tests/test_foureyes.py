"""Four eyes on withdrawals through a real gateway with custody on a real anvil (signer on),
staff sessions and cases in a real PostgreSQL database (`tests.foureyes_support`): new address
and threshold holds, two different finance approvals, refusals (wrong role, the same staff
twice), rejection and the owner's cancel releasing the hold through the journal, the start-up
recovery (the operator API: tests/test_foureyes_ops.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.foureyes_support import (
    CONFIRMATIONS,
    Anvil,
    ServerThread,
    account,
    address,
    anvil_node,
    approve,
    eth,
    foureyes_server,
    history,
    ok,
    on_loop,
    poll,
    refused,
    rest,
    row,
    run,
    withdraw,
)

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

    from custody.approvals import ApprovalRefused

    for staff, role, reason, code in (
        ("staff-s1", "support", "no", "ROLE_REFUSED"),
        ("staff-f1", "finance", "  ", "REASON_REQUIRED"),
    ):
        with pytest.raises(ApprovalRefused) as info:
            run(server, reject(staff, role, reason))
        assert info.value.code == code
    approve(server, wid, "staff-f1")
    with pytest.raises(ApprovalRefused) as info:  # the approver cannot also reject
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


def test_approval_roles_are_the_role_tables() -> None:
    """Custody's own role check (defence in depth) grants exactly what `backoffice.roles`,
    the one table of who may do what, grants."""
    from backoffice.roles import ACTIONS
    from custody.approvals import APPROVE_ROLES, REJECT_ROLES

    assert {r.value for r in ACTIONS["withdrawals.approve"].roles} == APPROVE_ROLES
    assert {r.value for r in ACTIONS["withdrawals.reject"].roles} == REJECT_ROLES
