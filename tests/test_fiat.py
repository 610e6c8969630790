"""The manual fiat rail on a real gateway (identity store SQLite in its data dir, then a real
PostgreSQL database): an admin creates USD (journaled CreateAsset), finance records a bank
transfer, which credits nothing until a different finance or admin staff member approves it;
then it is one journaled Deposit keyed by the bank reference and naming both, read back by the
audit log and reproduced by a replay. Wrong roles, the recorder approving, a reference twice, a
custodied or unknown asset, bad amounts and rejections journal nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis

from backoffice import errors
from backoffice.errors import ASSET_EXISTS, FIAT_DECIDED, NOT_FIAT, REFERENCE_TAKEN, SAME_STAFF
from backoffice.roles import Role
from engine.schema import Deposit
from tests.backoffice_support import BACKENDS, backoffice_server
from tests.gateway_support import ServerThread, journal_replay
from tests.test_backoffice_ops import login, make_staff, ops, refused

server = pytest.fixture(params=BACKENDS)(backoffice_server)


def usd(srv: ServerThread, token: str, account_id: int) -> str | None:
    balances = ops(srv, "GET", f"/accounts/{account_id}", token)[1]["balances"]
    return next((b["free"] for b in balances if b["asset"] == "USD"), None)


def test_fiat_deposits_take_two_people(server: ServerThread) -> None:
    srv = server
    people = {"admin": Role.ADMIN, "f1": Role.FINANCE, "f2": Role.FINANCE, "sup": Role.SUPPORT}
    token = {
        n: login(srv, f"{n}@fiat.example.com", make_staff(srv, f"{n}@fiat.example.com", r))
        for n, r in people.items()
    }
    staff_id = {n: ops(srv, "GET", "/me", t)[1]["staff_id"] for n, t in token.items()}
    creds = srv.new_account()
    account_id = srv.gw.keys.get(creds.api_key).account_id  # type: ignore[union-attr]

    status, made = ops(srv, "POST", "/assets", token["admin"], {"symbol": "USD", "decimals": 2})
    assert status == 200 and made["symbol"] == "USD", made
    refused(ops(srv, "POST", "/assets", token["admin"], {"symbol": "USD", "decimals": 2}), 409,
            ASSET_EXISTS)  # fmt: skip
    refused(ops(srv, "POST", "/assets", token["f1"], {"symbol": "EUR", "decimals": 2}), 403,
            errors.ROLE_REFUSED)  # fmt: skip

    transfer = {"account_id": account_id, "asset": "USD", "amount": "250.00",
                "bank_reference": "ACME-2026-0001"}  # fmt: skip
    before = srv.seq_and_hash()
    refused(ops(srv, "POST", "/fiat/deposits", token["sup"], transfer), 403, errors.ROLE_REFUSED)
    refused(ops(srv, "POST", "/fiat/deposits", token["admin"], transfer), 403,
            errors.ROLE_REFUSED)  # finance records; admin may only approve  # fmt: skip
    for bad, code in (
        ({**transfer, "asset": "USDT"}, NOT_FIAT),
        ({**transfer, "asset": "XYZ"}, NOT_FIAT),
        ({**transfer, "amount": "0.001"}, errors.BAD_REQUEST),
        ({**transfer, "amount": "0"}, errors.BAD_REQUEST),
        ({**transfer, "amount": 250}, errors.BAD_REQUEST),
        ({**transfer, "bank_reference": "x"}, errors.BAD_REQUEST),
    ):
        refused(ops(srv, "POST", "/fiat/deposits", token["f1"], bad), 400, code)
    refused(ops(srv, "POST", "/fiat/deposits", token["f1"], {**transfer, "account_id": 999_999}),
            404, errors.ACCOUNT_NOT_FOUND)  # fmt: skip

    # Recorded: nothing credited, nothing journaled.
    status, rec = ops(srv, "POST", "/fiat/deposits", token["f1"], transfer)
    assert status == 200 and rec["status"] == "pending" and rec["amount"] == "250.00", rec
    assert rec["recorded_by"] == staff_id["f1"]
    refused(ops(srv, "POST", "/fiat/deposits", token["f2"], transfer), 409, REFERENCE_TAKEN)
    assert srv.seq_and_hash() == before and usd(srv, token["admin"], account_id) is None
    did = rec["deposit_id"]
    refused(ops(srv, "POST", f"/fiat/deposits/{did}/approve", token["f1"], {}), 409, SAME_STAFF)
    refused(ops(srv, "POST", f"/fiat/deposits/{did}/approve", token["sup"], {}), 403,
            errors.ROLE_REFUSED)  # fmt: skip
    assert srv.seq_and_hash() == before

    # A second person approves: one journaled Deposit naming both.
    status, done = ops(srv, "POST", f"/fiat/deposits/{did}/approve", token["f2"], {})
    assert status == 200 and done["status"] == "approved", done
    assert done["decided_by"] == staff_id["f2"] and done["seq"] == before[0] + 1
    assert usd(srv, token["admin"], account_id) == "250.00"
    refused(ops(srv, "POST", f"/fiat/deposits/{did}/approve", token["admin"], {}), 409,
            FIAT_DECIDED)  # fmt: skip

    # A rejected one journals nothing; its reference may be recorded again.
    wrong = {**transfer, "amount": "99.99", "bank_reference": "ACME-2026-0002"}
    status, rec2 = ops(srv, "POST", "/fiat/deposits", token["f1"], wrong)
    assert status == 200
    mid = srv.seq_and_hash()
    status, rej = ops(srv, "POST", f"/fiat/deposits/{rec2['deposit_id']}/reject", token["admin"],
                      {"reason": "not on the statement"})  # fmt: skip
    assert (status, rej["status"], rej["reason"]) == (200, "rejected", "not on the statement")
    assert srv.seq_and_hash() == mid and usd(srv, token["admin"], account_id) == "250.00"
    assert ops(srv, "POST", "/fiat/deposits", token["f1"], wrong)[0] == 200
    status, waiting = ops(srv, "GET", "/fiat/deposits", token["f2"])
    assert [w["bank_reference"] for w in waiting] == ["ACME-2026-0002"]

    # The audit log and a replay name who created the asset and who credited what.
    status, audit = ops(srv, "GET", "/audit", token["admin"])
    acts = [(e["action"], e["staff_id"], e.get("recorded_by")) for e in audit["entries"]]
    assert acts == [
        ("create_asset", staff_id["admin"], None),
        ("fiat_deposit", staff_id["f2"], staff_id["f1"]),
    ]
    srv.wait_idle()
    records, replayed_hash = journal_replay(srv.gw)
    assert replayed_hash == srv.seq_and_hash()[1]
    (credit,) = [r.command for r in records if isinstance(r.command, Deposit)]
    assert (credit.deposit_key, credit.amount_atoms) == ("fiat:ACME-2026-0001", 25_000)
    assert (credit.recorded_by, credit.approved_by) == (staff_id["f1"], staff_id["f2"])

    if srv.gw.config.backoffice_dsn is None:  # the description once is enough
        _answers_as_described(srv, token, account_id)


def _answers_as_described(srv: ServerThread, token: dict[str, str], account_id: int) -> None:
    """The fiat routes and asset creation (``x-requires``) answer 200 as ``/openapi.json``
    says, and every error status they document (503 excepted)."""
    spec = requests.get(srv.http + "/openapi.json", timeout=30).json()
    by_label = {
        op.label: op
        for op in (r.ok() for r in schemathesis.openapi.from_dict(spec).get_all_operations())
        if op.definition.raw.get("x-requires") == "fiat" or op.path.endswith("/assets")
    }
    assert len(by_label) == 5, sorted(by_label)
    f, fp = "/ops/v1/fiat/deposits", "/ops/v1/fiat/deposits/{deposit_id}"
    body = {"account_id": account_id, "asset": "USD", "amount": "1.00", "bank_reference": "DOC-1"}
    status, one = ops(
        srv, "POST", "/fiat/deposits", token["f1"], {**body, "bank_reference": "DOC-2"}
    )
    assert status == 200
    two = one["deposit_id"]
    status, other = ops(
        srv, "POST", "/fiat/deposits", token["f1"], {**body, "bank_reference": "DOC-3"}
    )
    assert status == 200
    three = other["deposit_id"]
    none: dict[str, Any] = {}
    plan: list[tuple[str, int, str | None, dict[str, Any], Any, dict[str, Any]]] = [
        (f"GET {f}", 200, "admin", none, None, {"status": "approved"}),
        (f"GET {f}", 400, "admin", none, None, {"status": "lost"}),
        (f"GET {f}", 403, "sup", none, None, none),
        (f"POST {f}", 200, "f1", none, body, none),
        (f"POST {f}", 409, "f1", none, body, none),
        (f"POST {f}", 400, "f1", none, {**body, "amount": "x"}, none),
        (f"POST {f}", 404, "f1", none, {**body, "account_id": 999_999}, none),
        (f"POST {f}", 403, "sup", none, body, none),
        (f"POST {fp}/approve", 400, "f2", {"deposit_id": two}, {"x": 1}, none),
        (f"POST {fp}/approve", 404, "f2", {"deposit_id": "nope"}, {}, none),
        (f"POST {fp}/approve", 403, "sup", {"deposit_id": two}, {}, none),
        (f"POST {fp}/approve", 200, "f2", {"deposit_id": two}, {}, none),
        (f"POST {fp}/approve", 409, "f2", {"deposit_id": two}, {}, none),
        (f"POST {fp}/reject", 400, "f2", {"deposit_id": two}, {}, none),
        (f"POST {fp}/reject", 404, "f2", {"deposit_id": "nope"}, {"reason": "x"}, none),
        (f"POST {fp}/reject", 403, "sup", {"deposit_id": two}, {"reason": "x"}, none),
        (f"POST {fp}/reject", 200, "f2", {"deposit_id": three}, {"reason": "x"}, none),
        (f"POST {fp}/reject", 409, "f2", {"deposit_id": two}, {"reason": "x"}, none),
        ("POST /ops/v1/assets", 200, "admin", none, {"symbol": "EUR", "decimals": 2}, none),
        ("POST /ops/v1/assets", 409, "admin", none, {"symbol": "EUR", "decimals": 2}, none),
        ("POST /ops/v1/assets", 400, "admin", none, {"symbol": "eur", "decimals": 2}, none),
        ("POST /ops/v1/assets", 403, "f1", none, {"symbol": "GBP", "decimals": 2}, none),
    ]  # fmt: skip
    plan += [(label, 401, None, {"deposit_id": two}, None, none) for label in by_label]
    given: dict[str, set[int]] = {}
    for label, want, who, path, payload, query in plan:
        op = by_label[label]
        headers = {} if who is None else {"Authorization": f"Bearer {token[who]}"}
        response = requests.request(
            op.method.upper(),
            srv.http + op.path.format(**path),
            json=payload,
            params=query,
            headers=headers,
            timeout=30,
        )
        assert response.status_code == want, (label, want, response.text)
        op.validate_response(response)
        given.setdefault(label, set()).add(want)
    for label, op in by_label.items():
        documented = {int(code) for code in op.definition.raw["responses"]} - {503}
        assert given[label] == documented, label
