"""Tier trade limits through the operator API on a real gateway (SQLite identity store, then
PostgreSQL): compliance sets tier 0's limit in USDT (a journaled SetTierTradeLimit naming the
staff id), a signed-up user (tier 0) is refused an order above it on REST with the venue's
-2010 and a stable message while an order at the limit goes through, a user raised to tier 1 is
not limited, wrong roles and bad bodies change nothing, the audit log names the act, and after
a restart (the journal replayed) the limit is listed and enforced the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backoffice import errors
from backoffice.roles import Role
from gateway.admin import Admin
from gateway.client import Credentials
from tests.backoffice_support import BACKENDS, identity_dsn, start_server
from tests.gateway_support import ServerThread, http, journal_replay
from tests.test_backoffice_ops import login, make_staff, ops, refused, rest_order

PASSWORD = "correct horse battery staple"


def _user(srv: ServerThread) -> tuple[int, Credentials]:
    """A signed-up user (tier 0) with 5,000 USDT and a trading key."""
    status, _, user = http(
        "POST",
        f"{srv.http}/api/v1/auth/signup",
        body=json.dumps({"email": "tia@users.example.com", "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, user
    account = user["account_id"]
    srv.call(Admin(srv.gw).deposit(account, "USDT", "5000"))
    key = srv.gw.keys.create(account, ("read", "trade"))
    assert key.secret is not None
    return account, Credentials.hmac(key.api_key, key.secret)


OVER = "Order notional is above this account's KYC tier limit; verify to a higher tier."


@pytest.mark.parametrize("backend", BACKENDS)
def test_tier_trade_limit_set_enforced_audited_and_replayed(backend: str, tmp_path: Path) -> None:
    with identity_dsn(backend) as dsn:
        srv = start_server(tmp_path, dsn)
        try:
            secrets = {r: make_staff(srv, f"{r.value}@ops.example.com", r) for r in Role}
            tokens = {r: login(srv, f"{r.value}@ops.example.com", s) for r, s in secrets.items()}
            account, user = _user(srv)
            comp = tokens[Role.COMPLIANCE]
            status, listed = ops(srv, "GET", "/tier-limits", tokens[Role.SUPPORT])
            assert (status, listed) == (200, {"limits": []})

            # Refusals change nothing: wrong role, bad bodies, unknown asset.
            before = srv.seq_and_hash()
            body = {"tier": 0, "asset": "USDT", "max_order_notional": "250"}
            for role in (Role.SUPPORT, Role.FINANCE, Role.AUDITOR):
                refused(ops(srv, "POST", "/tier-limits", tokens[role], body), 403, "ROLE_REFUSED")
            for bad in (
                {**body, "tier": 4},
                {**body, "tier": "0"},
                {**body, "max_order_notional": "-1"},
                {**body, "max_order_notional": "1.0000001"},  # USDT has 6 decimals
                {**body, "max_order_notional": 250.0},
                {"tier": 0, "asset": "USDT"},
                {**body, "extra": 1},
            ):
                refused(ops(srv, "POST", "/tier-limits", comp, bad), 400, errors.BAD_REQUEST)
            refused(
                ops(srv, "POST", "/tier-limits", comp, {**body, "asset": "NOPE"}),
                404,
                "UNKNOWN_ASSET",
            )
            assert srv.seq_and_hash() == before

            # Set: journaled, listed; tier 0 refused above it, at it accepted.
            status, out = ops(srv, "POST", "/tier-limits", comp, body)
            assert status == 200 and out["seq"] > before[0], out
            assert out | {"seq": 0} == {**body, "seq": 0, "max_order_notional": "250.000000"}
            status, listed = ops(srv, "GET", "/tier-limits", tokens[Role.AUDITOR])
            assert listed == {"limits": [{**body, "max_order_notional": "250.000000"}]}
            status, err = rest_order(srv, user, quantity="0.0126", price="20000")  # 252 USDT
            assert (status, err) == (400, {"code": -2010, "msg": OVER}), err
            status, placed = rest_order(srv, user, quantity="0.0125", price="20000")  # 250
            assert status == 200 and placed["status"] == "NEW", placed
            # An operator-made account (no tier) is not limited.
            trader = srv.new_account(USDT="5000")
            assert rest_order(srv, trader, quantity="0.1", price="20000")[0] == 200
            # Tier 1 is not limited; back at tier 0 it is again.
            ops(srv, "POST", f"/accounts/{account}/tier", comp, {"tier": 1})
            assert rest_order(srv, user, quantity="0.1", price="20000")[0] == 200
            ops(srv, "POST", f"/accounts/{account}/tier", comp, {"tier": 0})
            assert rest_order(srv, user, quantity="0.1", price="20000")[1]["code"] == -2010

            staff_id = ops(srv, "GET", "/me", comp)[1]["staff_id"]
            status, audit = ops(srv, "GET", "/audit", tokens[Role.AUDITOR])
            (act,) = [e for e in audit["entries"] if e["action"] == "set_tier_limit"]
            assert act["staff_id"] == staff_id and act["tier"] == 0
            assert act["max_order_notional_atoms"] == 250 * 10**6
            srv.wait_idle()
            _, replayed = journal_replay(srv.gw)
            assert replayed == srv.seq_and_hash()[1]
        finally:
            srv.stop()

        # A restart replays the journal: the limit is listed and enforced the same.
        srv = start_server(tmp_path, dsn)
        try:
            # (a new staff member: the others' TOTP codes of this 30 s step are spent)
            late = make_staff(srv, "late@ops.example.com", Role.COMPLIANCE)
            token = login(srv, "late@ops.example.com", late)
            status, listed = ops(srv, "GET", "/tier-limits", token)
            assert listed == {"limits": [{**body, "max_order_notional": "250.000000"}]}
            status, err = rest_order(srv, user, quantity="0.0126", price="20000")
            assert (status, err) == (400, {"code": -2010, "msg": OVER}), err
            lifted = {**body, "max_order_notional": "0"}
            assert ops(srv, "POST", "/tier-limits", token, lifted)[0] == 200
            assert ops(srv, "GET", "/tier-limits", token)[1] == {"limits": []}
            assert rest_order(srv, user, quantity="0.0126", price="20000")[0] == 200
        finally:
            srv.stop()
