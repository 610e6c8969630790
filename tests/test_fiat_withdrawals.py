"""Fiat withdrawals on a real gateway (custody on a real anvil, the back office in a real
PostgreSQL database): a user withdraws USD to a bank account through the dialect's
``/sapi/v1/capital/withdraw/apply`` (network BANK); the engine holds it and it waits for the
same four eyes as a coin's (custody's approvals, ``/ops/v1/withdrawals/{id}/approve``: two
different finance staff, the journaled WithdrawalDecisions naming them); the signer never takes
it; finance marks it paid with the bank's reference, which settles the hold (journaled
WithdrawResult). Paying before the approvals, a rejection (the hold released), the owner's
cancel, a bad bank account and wrong roles are refused or change nothing; a replay of the
journal gives the same state.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis

from engine.schema import WithdrawalDecision, WithdrawResult
from tests.foureyes_support import (
    Anvil,
    ServerThread,
    account,
    anvil_node,
    foureyes_server,
    history,
    ok,
    ops,
    poll,
    refused_with,
    rest,
    row,
    staff_login,
)
from tests.gateway_support import journal_replay

anvil = pytest.fixture(scope="module")(anvil_node)
server = pytest.fixture(scope="module")(foureyes_server)
IBAN = "DE89 3704 0044 0532 0130 00"


def usd(server: ServerThread, creds: Any) -> tuple[str, str]:
    data = ok(server, "GET", "/api/v3/account", creds)
    b = next((b for b in data["balances"] if b["asset"] == "USD"), None)
    return (b["free"], b["locked"]) if b else ("0", "0")


def _fund(server: ServerThread, account_id: int, token: dict[str, str], ref: str) -> None:
    """1,000 USD through the fiat rail: recorded by one finance staff member, approved by
    another (the journaled Deposit)."""
    body = {"account_id": account_id, "asset": "USD", "amount": "1000.00", "bank_reference": ref}
    status, rec = ops(server, "POST", "/fiat/deposits", token["f1"], body)
    assert status == 200, rec
    status, done = ops(
        server, "POST", f"/fiat/deposits/{rec['deposit_id']}/approve", token["f2"], {}
    )
    assert status == 200 and done["status"] == "approved", done


def _apply(server: ServerThread, creds: Any, amount: str, **extra: str) -> tuple[int, Any]:
    params = {"coin": "USD", "network": "BANK", "address": IBAN, "amount": amount, **extra}
    return rest(server, "POST", "/sapi/v1/capital/withdraw/apply", creds, **params)


def test_fiat_withdrawal_takes_four_eyes_then_finance_pays_it(
    server: ServerThread, anvil: Anvil
) -> None:
    ids, token = {}, {}
    for name, role in (("admin", "admin"), ("f1", "finance"), ("f2", "finance"),
                       ("f3", "finance"), ("comp", "compliance"), ("sup", "support")):  # fmt: skip
        ids[name], token[name] = staff_login(server, role)
    status, made = ops(server, "POST", "/assets", token["admin"], {"symbol": "USD", "decimals": 2})
    assert status == 200, made
    creds, account_id = account(server, eth="1")
    _fund(server, account_id, token, "IN-FIAT-0001")
    assert usd(server, creds) == ("1000.00", "0.00")

    # Refused before anything is held: a bad bank account, another network.
    before = server.seq_and_hash()
    status, err = _apply(server, creds, "100", address="x!")
    assert status == 400 and err["code"] < 0 and "bank account" in err["msg"], err
    status, err = _apply(server, creds, "100", network="ETH")
    assert status == 400, err
    assert server.seq_and_hash() == before

    # Requested: held by the engine, awaiting four eyes, never the signer's.
    status, out = _apply(server, creds, "400.00")
    assert status == 200, out
    wid = int(out["id"])
    w = row(server, wid)
    assert (w.status, w.chain, w.address) == ("awaiting_approval", "BANK", IBAN)
    assert "fiat" in w.review.split(",")
    assert usd(server, creds) == ("600.00", "400.00")
    assert history(server, creds, wid)["status"] == 2
    poll(server)
    assert row(server, wid).status == "awaiting_approval"

    paid = f"/fiat/withdrawals/{wid}/paid"
    ref = {"bank_reference": "OUT-FIAT-0001"}
    refused_with(ops(server, "POST", paid, token["f1"], ref), 409, "NOT_APPROVED")
    refused_with(ops(server, "POST", paid, token["admin"], ref), 403, "ROLE_REFUSED")
    approve = f"/withdrawals/{wid}/approve"
    assert ops(server, "POST", approve, token["f1"], {})[0] == 200
    refused_with(ops(server, "POST", approve, token["f1"], {}), 409, "ALREADY_DECIDED")
    refused_with(ops(server, "POST", paid, token["f1"], ref), 409, "NOT_APPROVED")
    status, held = ops(server, "POST", approve, token["f2"], {})
    assert status == 200 and held["status"] == "held", held
    poll(server)  # no signer has the bank rail: it waits for finance
    assert row(server, wid).status == "held"
    refused_with(
        ops(server, "POST", paid, token["f3"], {"bank_reference": "x"}), 400, "BAD_REQUEST"
    )
    refused_with(
        ops(server, "POST", "/fiat/withdrawals/999999/paid", token["f3"], ref), 404,
        "UNKNOWN_WITHDRAWAL",
    )  # fmt: skip
    status, done = ops(server, "POST", paid, token["f3"], ref)
    assert status == 200 and done["status"] == "settled", done
    assert "OUT-FIAT-0001" in done["detail"] and ids["f3"] in done["detail"]
    assert usd(server, creds) == ("600.00", "0.00")
    assert history(server, creds, wid)["status"] == 6
    refused_with(ops(server, "POST", paid, token["f3"], ref), 409, "NOT_APPROVED")  # once

    # Rejected by compliance: the hold released. Cancelled by its owner: likewise.
    status, out = _apply(server, creds, "100")
    rejected = int(out["id"])
    status, r = ops(server, "POST", f"/withdrawals/{rejected}/reject", token["comp"],
                    {"reason": "name on the account does not match"})  # fmt: skip
    assert status == 200 and r["status"] == "rejected", r
    status, out = _apply(server, creds, "50")
    cancelled = int(out["id"])
    ok(server, "POST", "/sapi/v1/capital/withdraw/cancel", creds, id=str(cancelled))
    assert row(server, cancelled).status == "cancelled"
    assert usd(server, creds) == ("600.00", "0.00")

    # The journal names the deciders; the settlement and the releases are journaled.
    server.wait_idle()
    records, replayed = journal_replay(server.gw)
    assert replayed == server.seq_and_hash()[1]
    decisions = [(r.command.staff_id, r.command.approve) for r in records
                 if isinstance(r.command, WithdrawalDecision)
                 and r.command.withdrawal_id in (wid, rejected)]  # fmt: skip
    assert decisions == [(ids["f1"], True), (ids["f2"], True), (ids["comp"], False)]
    results = {r.command.withdrawal_id: r.command.success for r in records
               if isinstance(r.command, WithdrawResult)}  # fmt: skip
    assert (results[wid], results[rejected], results[cancelled]) == (True, False, False)
    _described(server, token, wid)


def _described(server: ServerThread, token: dict[str, str], settled: int) -> None:
    """``POST /ops/v1/fiat/withdrawals/{id}/paid`` (``x-requires: fiat-withdrawal``) answers
    as ``/openapi.json`` says: every documented status (503 excepted) given."""
    spec = requests.get(server.http + "/openapi.json", timeout=30).json()
    (op,) = [
        r.ok() for r in schemathesis.openapi.from_dict(spec).get_all_operations()
        if r.ok().definition.raw.get("x-requires") == "fiat-withdrawal"
    ]  # fmt: skip
    creds, account_id = account(server, eth="1", traded=False)
    _fund(server, account_id, token, "IN-FIAT-0002")
    wid = int(_apply(server, creds, "10")[1]["id"])
    for staff in ("f1", "f2"):
        assert ops(server, "POST", f"/withdrawals/{wid}/approve", token[staff], {})[0] == 200
    ref = {"bank_reference": "OUT-FIAT-0002"}
    plan = [
        (wid, None, ref, 401), (wid, "sup", ref, 403), (wid, "f1", {"x": 1}, 400),
        (999_999, "f1", ref, 404), (settled, "f1", ref, 409), (wid, "f1", ref, 200),
    ]  # fmt: skip
    given = set()
    for target, who, body, want in plan:
        headers = {} if who is None else {"Authorization": f"Bearer {token[who]}"}
        response = requests.post(
            server.http + op.path.format(withdrawal_id=target), json=body, headers=headers,
            timeout=30,
        )  # fmt: skip
        assert response.status_code == want, (want, response.text)
        op.validate_response(response)
        given.add(want)
    assert given == {int(c) for c in op.definition.raw["responses"]} - {503}
