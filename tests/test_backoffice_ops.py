"""The operator's day through the operator API (``/ops/v1``), on a real gateway whose identity
store is SQLite in its data dir, then a real PostgreSQL database: staff log in (TOTP
mandatory), a wrong role is refused, an account is found, frozen (its REST and WebSocket orders
refused with the venue's message, its cancels still work) and unfrozen, its tier changed, a
market halted and resumed; the audit log shows each act with its staff id, read from the
journal, and a replay of the journal gives the same state, tier and flags included.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher

from backoffice import errors
from backoffice.passwords import Passwords
from backoffice.roles import Role
from backoffice.routes import BACKOFFICE_KEY
from engine.core.compiled import CompiledEngine
from engine.schema import AccountFlagsImage, SetAccountTier
from gateway.admin import Admin
from gateway.client import Credentials
from gateway.client.ws import ClientError, WsApiClient
from tests.backoffice_support import BACKENDS, backoffice_server
from tests.gateway_support import ServerThread, http, journal_replay, signed_query

server = pytest.fixture(params=BACKENDS)(backoffice_server)
PASSWORD = "correct horse battery staple"
OPS = "/ops/v1"


def ops(
    srv: ServerThread, method: str, path: str, token: str | None = None, body: Any = None, **q: Any
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    query = "&".join(f"{k}={v}" for k, v in q.items())
    status, _, data = http(
        method,
        f"{srv.http}{OPS}{path}",
        query=query,
        body=None if body is None else json.dumps(body),
        headers=headers,
    )
    return status, data


def refused(answer: tuple[int, Any], status: int, code: str) -> None:
    got, body = answer
    assert (got, body.get("code")) == (status, code), body
    assert set(body) == {"code", "msg"} and body["msg"], body


FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1))
"""Cheaper argon2id parameters for the staff made here (the rules do not depend on them)."""


def make_staff(srv: ServerThread, email: str, role: Role) -> str:
    bo = srv.running.runner.app[BACKOFFICE_KEY]
    assert bo.staff is not None
    bo.staff.passwords = FAST
    _, secret, _ = srv.call(bo.staff.create(email, PASSWORD, role))
    return secret


def login(srv: ServerThread, email: str, secret: str) -> str:
    status, out = ops(
        srv,
        "POST",
        "/auth/login",
        body={"email": email, "password": PASSWORD, "totp": pyotp.TOTP(secret).now()},
    )
    assert status == 200, out
    return out["access_token"]


def rest_order(srv: ServerThread, creds: Credentials, **extra: str) -> tuple[int, Any]:
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    params |= {"quantity": "0.01", "price": "20000", **extra}
    status, _, data = http(
        "POST",
        f"{srv.http}/api/v3/order",
        body=signed_query(creds, params),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status, data


def ws_order(srv: ServerThread, creds: Credentials) -> Any:
    async def go() -> Any:
        async with WsApiClient.connect(srv.ws_api, creds) as ws:
            try:
                return await ws.place_order(
                    "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="20000", time_in_force="GTC"
                )
            except ClientError as exc:
                return exc

    return asyncio.run(go())


def test_operator_day(server: ServerThread) -> None:
    srv = server
    secrets = {
        role: make_staff(srv, f"{role.value}@ops.example.com", role)
        for role in (Role.ADMIN, Role.COMPLIANCE, Role.SUPPORT, Role.AUDITOR)
    }
    email = {role: f"{role.value}@ops.example.com" for role in secrets}

    # Logging in: the TOTP code is mandatory, a staff member without a seed cannot log in.
    creds = {"email": email[Role.ADMIN], "password": PASSWORD}
    refused(ops(srv, "POST", "/auth/login", body=creds), 401, errors.TOTP_REQUIRED)
    refused(ops(srv, "POST", "/auth/login", body=[1]), 400, errors.BAD_REQUEST)
    tokens = {role: login(srv, email[role], secret) for role, secret in secrets.items()}
    bo = srv.running.runner.app[BACKOFFICE_KEY]
    make_staff(srv, "noseed@ops.example.com", Role.FINANCE)
    srv.call(
        bo.store.db.execute(
            "UPDATE bo_staff SET totp_secret = NULL WHERE email = $1", "noseed@ops.example.com"
        )
    )
    no_seed = {"email": "noseed@ops.example.com", "password": PASSWORD, "totp": "123456"}
    refused(ops(srv, "POST", "/auth/login", body=no_seed), 403, errors.STAFF_TOTP_MISSING)
    refused(ops(srv, "GET", "/me"), 401, errors.UNAUTHENTICATED)
    refused(ops(srv, "GET", "/me", "not-a-token"), 401, errors.UNAUTHENTICATED)
    status, me = ops(srv, "GET", "/me", tokens[Role.SUPPORT])
    assert status == 200 and me["role"] == "support" and me["email"] == email[Role.SUPPORT]

    # A signed-up user (tier 0) and a trader with an API key and a resting order.
    status, _, user = http(
        "POST",
        f"{srv.http}/api/v1/auth/signup",
        body=json.dumps({"email": "ada@users.example.com", "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, user
    user_account = user["account_id"]
    srv.call(Admin(srv.gw).deposit(user_account, "USDT", "1000"))
    trader = srv.new_account(USDT="50000")
    trader_id = srv.gw.keys.get(trader.api_key).account_id  # type: ignore[union-attr]
    status, resting = rest_order(srv, trader)
    assert status == 200, resting

    status, found = ops(srv, "GET", "/accounts", tokens[Role.SUPPORT], q="ADA@users")
    assert status == 200 and [a["account_id"] for a in found] == [user_account], found
    assert found[0] == {
        "account_id": user_account,
        "email": "ada@users.example.com",
        "frozen": False,
        "tier": 0,
        "open_orders": 0,
    }
    status, view = ops(srv, "GET", f"/accounts/{trader_id}", tokens[Role.AUDITOR])
    assert status == 200 and view["open_orders"] == 1 and view["tier"] is None
    usdt = next(b for b in view["balances"] if b["asset"] == "USDT")
    assert usdt["locked"].startswith("200.2") and view["email"] is None
    refused(ops(srv, "GET", "/accounts/999999", tokens[Role.SUPPORT]), 404, "ACCOUNT_NOT_FOUND")

    # Wrong roles are refused before anything happens.
    seq_before, hash_before = srv.seq_and_hash()
    refused(
        ops(srv, "POST", f"/accounts/{trader_id}/freeze", tokens[Role.SUPPORT], {}),
        403,
        errors.ROLE_REFUSED,
    )
    refused(
        ops(srv, "POST", "/markets/BTCUSDT/state", tokens[Role.AUDITOR], {"state": "HALTED"}),
        403,
        errors.ROLE_REFUSED,
    )
    refused(
        ops(srv, "POST", f"/accounts/{trader_id}/tier", tokens[Role.AUDITOR], {"tier": 3}),
        403,
        errors.ROLE_REFUSED,
    )
    refused(ops(srv, "GET", "/audit", tokens[Role.SUPPORT]), 403, errors.ROLE_REFUSED)
    assert srv.seq_and_hash() == (seq_before, hash_before)

    # Freeze: new orders refused on REST and WebSocket with the venue's message; cancels work.
    status, frozen = ops(srv, "POST", f"/accounts/{trader_id}/freeze", tokens[Role.COMPLIANCE], {})
    assert status == 200 and frozen["frozen"] is True and frozen["seq"] > seq_before
    status, err = rest_order(srv, trader)
    assert (status, err["code"]) == (400, -2010) and "frozen" in err["msg"], err
    ws_err = ws_order(srv, trader)
    assert isinstance(ws_err, ClientError) and ws_err.code == -2010 and "frozen" in ws_err.msg
    status, _, cancelled = http(
        "DELETE",
        f"{srv.http}/api/v3/order",
        query=signed_query(trader, {"symbol": "BTCUSDT", "orderId": resting["orderId"]}),
        headers={"X-MBX-APIKEY": trader.api_key},
    )
    assert status == 200 and cancelled["status"] == "CANCELED", cancelled
    status, view = ops(srv, "GET", f"/accounts/{trader_id}", tokens[Role.SUPPORT])
    assert view["frozen"] is True and view["open_orders"] == 0

    # Unfreeze restores trading.
    status, _ = ops(srv, "POST", f"/accounts/{trader_id}/unfreeze", tokens[Role.ADMIN], {})
    assert status == 200
    status, placed = rest_order(srv, trader)
    assert status == 200 and placed["status"] == "NEW", placed
    assert not isinstance(ws_order(srv, trader), ClientError)

    # Tier: checked, journaled with the staff id.
    refused(
        ops(srv, "POST", f"/accounts/{user_account}/tier", tokens[Role.COMPLIANCE], {"tier": 4}),
        400,
        errors.BAD_REQUEST,
    )
    status, tier = ops(
        srv, "POST", f"/accounts/{user_account}/tier", tokens[Role.COMPLIANCE], {"tier": 2}
    )
    assert status == 200 and tier["tier"] == 2
    compliance_id = ops(srv, "GET", "/me", tokens[Role.COMPLIANCE])[1]["staff_id"]
    admin_id = ops(srv, "GET", "/me", tokens[Role.ADMIN])[1]["staff_id"]

    # Halt: orders refused with the venue's message, then open again.
    status, halted = ops(
        srv, "POST", "/markets/BTCUSDT/state", tokens[Role.ADMIN], {"state": "HALTED"}
    )
    assert status == 200 and halted["state"] == "HALTED"
    status, markets = ops(srv, "GET", "/markets", tokens[Role.AUDITOR])
    assert {"symbol": "BTCUSDT", "state": "HALTED"} in markets
    status, err = rest_order(srv, trader)
    assert (status, err) == (400, {"code": -2010, "msg": "Market is closed."})
    ws_err = ws_order(srv, trader)
    assert isinstance(ws_err, ClientError) and ws_err.msg == "Market is closed."
    refused(
        ops(srv, "POST", "/markets/BTCUSDT/state", tokens[Role.ADMIN], {"state": "SHUT"}),
        400,
        errors.BAD_REQUEST,
    )
    refused(
        ops(srv, "POST", "/markets/NOPE/state", tokens[Role.ADMIN], {"state": "OPEN"}),
        404,
        "MARKET_NOT_FOUND",
    )
    status, _ = ops(srv, "POST", "/markets/BTCUSDT/state", tokens[Role.ADMIN], {"state": "OPEN"})
    assert status == 200 and rest_order(srv, trader)[0] == 200

    # The audit log: each act with its staff id, from the journal, filterable and paged.
    status, audit = ops(srv, "GET", "/audit", tokens[Role.AUDITOR])
    assert status == 200
    acts = [
        (e["action"], e["staff_id"], e.get("account_id"), e.get("state")) for e in audit["entries"]
    ]
    assert acts == [
        ("set_tier", "signup", user_account, None),
        ("freeze", compliance_id, trader_id, None),
        ("unfreeze", admin_id, trader_id, None),
        ("set_tier", compliance_id, user_account, None),
        ("set_market_state", admin_id, None, "HALTED"),
        ("set_market_state", admin_id, None, "OPEN"),
    ]
    status, mine = ops(srv, "GET", "/audit", tokens[Role.ADMIN], account_id=trader_id, limit=1)
    assert [e["action"] for e in mine["entries"]] == ["freeze"]
    status, rest = ops(
        srv, "GET", "/audit", tokens[Role.ADMIN], from_seq=mine["next_seq"], account_id=trader_id
    )
    assert [e["action"] for e in rest["entries"]] == ["unfreeze"]
    refused(ops(srv, "GET", "/audit", tokens[Role.ADMIN], limit=0), 400, errors.BAD_REQUEST)

    # Replay: the journal alone gives the same state, with the tier and the staff ids.
    srv.wait_idle()
    records, replayed_hash = journal_replay(srv.gw)
    assert replayed_hash == srv.seq_and_hash()[1]
    tiers = [r.command for r in records if isinstance(r.command, SetAccountTier)]
    assert [(c.account_id, c.tier, c.staff_id) for c in tiers] == [
        (user_account, 0, "signup"),
        (user_account, 2, compliance_id),
    ]
    engine = CompiledEngine(srv.gw.node.engine.config)
    engine.process([(r.seq, r.ts, r.command) for r in records])
    assert AccountFlagsImage(user_account, False, 2) in engine.image().account_flags

    # Routing refusals and logout, in the operator envelope.
    refused(ops(srv, "GET", "/nothing", tokens[Role.ADMIN]), 404, "NOT_FOUND")
    refused(ops(srv, "DELETE", "/markets", tokens[Role.ADMIN]), 405, "METHOD_NOT_ALLOWED")
    status, out = ops(srv, "POST", "/auth/logout", tokens[Role.SUPPORT])
    assert (status, out) == (200, {"revoked_sessions": 1})
    refused(ops(srv, "GET", "/me", tokens[Role.SUPPORT]), 401, errors.UNAUTHENTICATED)
