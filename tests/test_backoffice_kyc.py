"""The KYC review queue on a real gateway (identity store SQLite in its data dir, then a real
PostgreSQL database): a signed-up user submits document metadata, support sees the queue but
may not decide, compliance approves a tier (the journaled SetAccountTier naming that staff
member, which the audit log shows and a replay reproduces) or rejects with a reason the user
reads; bad bodies and wrong roles change nothing. The operator routes are held to their
``/openapi.json`` description (``x-requires: kyc``: the 200 and every documented error).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import schemathesis

from backoffice import errors
from backoffice.errors import KYC_DECIDED, KYC_NOT_FOUND, KYC_PENDING
from backoffice.roles import Role
from engine.schema import SetAccountTier
from tests.backoffice_support import BACKENDS, backoffice_server
from tests.gateway_support import ServerThread, http, journal_replay
from tests.test_backoffice_ops import PASSWORD, login, make_staff, ops, refused

server = pytest.fixture(params=BACKENDS)(backoffice_server)
PASSPORT = {"type": "passport", "country": "FR", "sha256": "ab" * 32, "size_bytes": 812_345}
ADDRESS = {"type": "proof_of_address", "country": "FR", "sha256": "cd" * 32, "size_bytes": 90_001}


def user_call(srv: ServerThread, method: str, token: str, body: Any = None) -> tuple[int, Any]:
    status, _, data = http(
        method,
        f"{srv.http}/api/v1/me/kyc",
        body=None if body is None else json.dumps(body),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    return status, data


def sign_up(srv: ServerThread, email: str) -> tuple[int, str]:
    """(account id, access token) of a new user."""
    body = json.dumps({"email": email, "password": PASSWORD})
    headers = {"Content-Type": "application/json"}
    status, _, user = http("POST", f"{srv.http}/api/v1/auth/signup", body=body, headers=headers)
    assert status == 201, user
    status, _, out = http("POST", f"{srv.http}/api/v1/auth/login", body=body, headers=headers)
    assert status == 200, out
    return user["account_id"], out["access_token"]


def test_kyc_review(server: ServerThread) -> None:
    srv = server
    roles = (Role.ADMIN, Role.COMPLIANCE, Role.SUPPORT, Role.FINANCE, Role.AUDITOR)
    tokens = {
        r: login(
            srv, f"{r.value}@kyc.example.com", make_staff(srv, f"{r.value}@kyc.example.com", r)
        )
        for r in roles
    }
    staff_id = {r: ops(srv, "GET", "/me", t)[1]["staff_id"] for r, t in tokens.items()}
    account_id, user = sign_up(srv, "grace@users.example.com")

    # Bad submissions: stable 400s, nothing stored, nothing journaled.
    before = srv.seq_and_hash()
    for bad in (
        {"requested_tier": 1},
        {"requested_tier": 0, "documents": [PASSPORT]},
        {"requested_tier": 1, "documents": []},
        {"requested_tier": 1, "documents": [{**PASSPORT, "type": "selfie_video"}]},
        {"requested_tier": 1, "documents": [{**PASSPORT, "country": "fr"}]},
        {"requested_tier": 1, "documents": [{**PASSPORT, "sha256": "AB" * 32}]},
        {"requested_tier": 1, "documents": [{**PASSPORT, "size_bytes": 0}]},
        {"requested_tier": 1, "documents": [{**PASSPORT, "extra": 1}]},
        {"requested_tier": 1, "documents": [PASSPORT, PASSPORT]},
        {"requested_tier": True, "documents": [PASSPORT]},
    ):
        status, out = user_call(srv, "POST", user, bad)
        assert (status, out["error"]["code"]) == (400, errors.BAD_REQUEST), (bad, out)
    status, out = user_call(srv, "GET", "not-a-token")
    assert (status, out["error"]["code"]) == (401, errors.UNAUTHENTICATED)
    assert user_call(srv, "GET", user) == (200, [])
    assert srv.seq_and_hash() == before

    # A submission waits in the queue; a second one while it waits is refused.
    status, sub = user_call(
        srv, "POST", user, {"requested_tier": 2, "documents": [PASSPORT, ADDRESS]}
    )
    assert status == 201 and sub["status"] == "pending" and sub["account_id"] == account_id, sub
    assert sub["documents"] == [PASSPORT, ADDRESS] and sub["staff_id"] is None
    status, out = user_call(srv, "POST", user, {"requested_tier": 1, "documents": [PASSPORT]})
    assert (status, out["error"]["code"]) == (409, KYC_PENDING)
    sid = sub["submission_id"]

    # Support sees the queue (with the email) but may not decide; finance does not see it.
    status, queue = ops(srv, "GET", "/kyc", tokens[Role.SUPPORT])
    assert status == 200 and [s["submission_id"] for s in queue] == [sid]
    assert queue[0]["email"] == "grace@users.example.com"
    refused(ops(srv, "POST", f"/kyc/{sid}/approve", tokens[Role.SUPPORT], {"tier": 2}), 403,
            errors.ROLE_REFUSED)  # fmt: skip
    refused(ops(srv, "POST", f"/kyc/{sid}/reject", tokens[Role.AUDITOR], {"reason": "x"}), 403,
            errors.ROLE_REFUSED)  # fmt: skip
    refused(ops(srv, "GET", "/kyc", tokens[Role.FINANCE]), 403, errors.ROLE_REFUSED)
    refused(ops(srv, "POST", f"/kyc/{sid}/approve", tokens[Role.COMPLIANCE], {"tier": 4}), 400,
            errors.BAD_REQUEST)  # fmt: skip
    refused(ops(srv, "POST", "/kyc/nope/approve", tokens[Role.COMPLIANCE], {"tier": 1}), 404,
            KYC_NOT_FOUND)  # fmt: skip
    assert srv.seq_and_hash() == before

    # Compliance approves tier 2: journaled with its staff id, the account's tier is 2.
    status, done = ops(srv, "POST", f"/kyc/{sid}/approve", tokens[Role.COMPLIANCE], {"tier": 2})
    assert status == 200, done
    assert (done["status"], done["tier"], done["staff_id"]) == (
        "approved",
        2,
        staff_id[Role.COMPLIANCE],
    )
    assert done["seq"] > before[0] and done["decided_ms"] >= done["submitted_ms"]
    assert ops(srv, "GET", f"/accounts/{account_id}", tokens[Role.SUPPORT])[1]["tier"] == 2
    refused(ops(srv, "POST", f"/kyc/{sid}/approve", tokens[Role.ADMIN], {"tier": 3}), 409,
            KYC_DECIDED)  # fmt: skip
    refused(ops(srv, "POST", f"/kyc/{sid}/reject", tokens[Role.ADMIN], {"reason": "late"}), 409,
            KYC_DECIDED)  # fmt: skip
    assert ops(srv, "GET", "/kyc", tokens[Role.AUDITOR]) == (200, [])
    status, decided = ops(srv, "GET", "/kyc", tokens[Role.AUDITOR], status="approved")
    assert [s["submission_id"] for s in decided] == [sid]

    # The audit log reads the approval back from the journal, naming the reviewer.
    status, audit = ops(srv, "GET", "/audit", tokens[Role.AUDITOR], account_id=account_id)
    acts = [(e["action"], e["staff_id"], e.get("tier"), e["seq"]) for e in audit["entries"]]
    assert acts[-1] == ("set_tier", staff_id[Role.COMPLIANCE], 2, done["seq"]), acts

    # A new submission (tier 3) rejected with a reason: the user reads it, the tier stays 2.
    status, sub3 = user_call(srv, "POST", user, {"requested_tier": 3, "documents": [ADDRESS]})
    assert status == 201
    seq_before_reject = srv.seq_and_hash()
    refused(ops(srv, "POST", f"/kyc/{sub3['submission_id']}/reject", tokens[Role.ADMIN],
                {"reason": " "}), 400, errors.BAD_REQUEST)  # fmt: skip
    status, rej = ops(srv, "POST", f"/kyc/{sub3['submission_id']}/reject", tokens[Role.ADMIN],
                      {"reason": "proof of address older than 3 months"})  # fmt: skip
    assert status == 200 and rej["status"] == "rejected" and rej["staff_id"] == staff_id[Role.ADMIN]
    assert srv.seq_and_hash() == seq_before_reject
    status, mine = user_call(srv, "GET", user)
    assert [(s["status"], s["reason"]) for s in mine] == [
        ("rejected", "proof of address older than 3 months"),
        ("approved", None),
    ]
    assert ops(srv, "GET", f"/accounts/{account_id}", tokens[Role.SUPPORT])[1]["tier"] == 2

    # Replay: the journal alone has the tier and who granted it.
    srv.wait_idle()
    records, replayed_hash = journal_replay(srv.gw)
    assert replayed_hash == srv.seq_and_hash()[1]
    tiers = [
        (r.seq, r.command.account_id, r.command.tier, r.command.staff_id)
        for r in records
        if isinstance(r.command, SetAccountTier)
    ]
    assert tiers[-1] == (done["seq"], account_id, 2, staff_id[Role.COMPLIANCE]), tiers

    if srv.gw.config.backoffice_dsn is None:  # the description once is enough
        others = [sign_up(srv, f"{n}@users.example.com")[1] for n in ("hopper", "lovelace")]
        _answers_as_described(srv, tokens, *others)


def _answers_as_described(
    srv: ServerThread, tokens: dict[Role, str], user: str, other: str
) -> None:
    """Each KYC operator route (``x-requires: kyc``) answers 200 as ``/openapi.json`` says,
    and every error status it documents (503 excepted) is provoked as described."""
    spec = requests.get(srv.http + "/openapi.json", timeout=30).json()
    described = schemathesis.openapi.from_dict(spec).get_all_operations()
    by_label = {
        op.label: op
        for op in (r.ok() for r in described)
        if op.definition.raw.get("x-requires") == "kyc"
    }
    assert len(by_label) == 4, sorted(by_label)
    status, a = user_call(srv, "POST", user, {"requested_tier": 1, "documents": [PASSPORT]})
    assert status == 201
    a_id, k, kp = a["submission_id"], "/ops/v1/kyc", "/ops/v1/kyc/{submission_id}"
    c, s, r = Role.COMPLIANCE, Role.SUPPORT, Role.AUDITOR
    none: dict[str, Any] = {}
    plan: list[tuple[str, int, Role | None, dict[str, Any], Any, dict[str, Any]]] = [
        (f"GET {k}", 200, s, none, None, {"status": "pending", "limit": 5}),
        (f"GET {k}", 400, s, none, None, {"status": "lost"}),
        (f"GET {k}", 403, Role.FINANCE, none, None, none),
        (f"GET {kp}", 200, r, {"submission_id": a_id}, None, none),
        (f"GET {kp}", 400, r, {"submission_id": "é"}, None, none),
        (f"GET {kp}", 404, r, {"submission_id": "nope"}, None, none),
        (f"GET {kp}", 403, Role.FINANCE, {"submission_id": a_id}, None, none),
        (f"POST {kp}/reject", 400, c, {"submission_id": a_id}, {}, none),
        (f"POST {kp}/reject", 404, c, {"submission_id": "nope"}, {"reason": "x"}, none),
        (f"POST {kp}/reject", 403, s, {"submission_id": a_id}, {"reason": "x"}, none),
        (f"POST {kp}/approve", 400, c, {"submission_id": a_id}, {"tier": 0}, none),
        (f"POST {kp}/approve", 404, c, {"submission_id": "nope"}, {"tier": 1}, none),
        (f"POST {kp}/approve", 403, r, {"submission_id": a_id}, {"tier": 1}, none),
        (f"POST {kp}/approve", 200, c, {"submission_id": a_id}, {"tier": 1}, none),
        (f"POST {kp}/approve", 409, c, {"submission_id": a_id}, {"tier": 1}, none),
        (f"POST {kp}/reject", 409, c, {"submission_id": a_id}, {"reason": "x"}, none),
    ]  # fmt: skip
    plan += [(label, 401, None, {"submission_id": a_id}, None, {}) for label in by_label]
    status, b = user_call(srv, "POST", other, {"requested_tier": 2, "documents": [ADDRESS]})
    assert status == 201
    plan.append((f"POST {kp}/reject", 200, c, {"submission_id": b["submission_id"]},
                 {"reason": "blurred"}, none))  # fmt: skip
    given: dict[str, set[int]] = {}
    for label, want, who, path, body, query in plan:
        op = by_label[label]
        headers = {} if who is None else {"Authorization": f"Bearer {tokens[who]}"}
        response = requests.request(
            op.method.upper(),
            srv.http + op.path.format(**path),
            json=body,
            params=query,
            headers=headers,
            timeout=30,
        )
        assert response.status_code == want, (label, want, response.text)
        if want >= 400:
            assert set(response.json()) == {"code", "msg"}, (label, response.text)
        op.validate_response(response)
        given.setdefault(label, set()).add(want)
    for label, op in by_label.items():
        documented = {int(code) for code in op.definition.raw["responses"]} - {503}
        assert given[label] == documented, label
