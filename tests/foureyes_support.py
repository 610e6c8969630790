"""Shared by tests/test_foureyes.py and tests/test_aml.py: a real gateway with custody on a real
anvil (signer on), AML rules from a TOML file, the back office (staff, cases) in a real
PostgreSQL database, and helpers that drive withdrawals, staff decisions and the operator API.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.client import Credentials
from tests.backoffice_support import pg_database
from tests.custody_nodes import ETH_CHAIN, Anvil, eth_custody_config, run_anvil, seed_for
from tests.gateway_support import ServerThread, http, signed_query

T = TypeVar("T")
ETHER = 10**18
GWEI = 10**9
THRESHOLD_ATOMS = 5 * GWEI  # four eyes above 5 ETH

RULES = """
deny_list = "deny.txt"

[[rule]]
id = "big-out"
kind = "large_withdrawal"
asset = "ETH"
amount = "40"
action = "hold"

[[rule]]
id = "big-in"
kind = "large_deposit"
asset = "ETH"
amount = "500"
action = "case"

[[rule]]
id = "fast-out"
kind = "velocity"
window_s = 3600
count = 3
action = "hold"

[[rule]]
id = "fast-amount"
kind = "velocity"
window_s = 3600
asset = "ETH"
amount = "30"
action = "case"

[[rule]]
id = "just-under-in"
kind = "structuring"
flow = "deposit"
asset = "ETH"
amount = "300"
count = 2
window_s = 3600
action = "case"

[[rule]]
id = "just-under"
kind = "structuring"
asset = "ETH"
amount = "10"
margin_pct = 10
count = 2
window_s = 3600
action = "hold"

[[rule]]
id = "in-and-out"
kind = "deposit_withdraw_no_trade"
window_s = 3600
action = "hold"

[[rule]]
id = "denied"
kind = "deny_list"
action = "freeze"

[[rule]]
id = "fresh-address"
kind = "new_address"
action = "case"
"""


def address(tag: str) -> str:
    from web3 import Web3

    return str(Web3.to_checksum_address("0x" + seed_for(tag).hex()[:40]))


DENIED = address("denied")


def anvil_node() -> Iterator[Anvil]:
    """The module's anvil (a test module makes it a fixture)."""
    with run_anvil() as node:
        yield node


def custody_config(tmp: Path, anvil: Anvil) -> Any:
    return eth_custody_config(
        tmp,
        anvil,
        "four-eyes",
        hot_key=True,
        stuck_after_s=3600,
        min_withdrawal_atoms=1_000,
        approval_threshold_atoms=THRESHOLD_ATOMS,
        approve_new_address=True,
    )


def foureyes_server(
    tmp_path_factory: pytest.TempPathFactory, anvil: Anvil
) -> Iterator[ServerThread]:
    """The module's gateway: custody (signer on) on ``anvil``, the AML rules above, the back
    office in a new PostgreSQL database (dropped afterwards)."""
    tmp = tmp_path_factory.mktemp("foureyes")
    (tmp / "aml.toml").write_text(RULES)
    (tmp / "deny.txt").write_text(f"# sanctioned\n{DENIED.lower()}\n")
    with pg_database() as dsn:
        s = ServerThread(
            tmp,
            custody=custody_config(tmp, anvil),
            custody_signer=True,
            custody_poll_s=0,
            backoffice_dsn=dsn,
            aml_rules=tmp / "aml.toml",
        )
        hot = s.gw.custody.custody.signers[ETH_CHAIN].address
        funder = anvil.rpc("eth_accounts")[3]
        anvil.rpc("eth_sendTransaction", {"from": funder, "to": hot, "value": hex(500 * ETHER)})
        try:
            yield s
        finally:
            s.stop()


# ---- helpers ---------------------------------------------------------------------------------


def run(server: ServerThread, coro: Coroutine[Any, Any, T]) -> T:
    return server.call(coro)


def on_loop(server: ServerThread, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a custody function (synchronous or a coroutine function) on the server's loop
    (its store's only user)."""

    async def call() -> Any:
        out = fn(*args, **kwargs)
        return await out if inspect.isawaitable(out) else out

    return server.call(call())


def deposit(server: ServerThread, account_id: int, eth: str) -> None:
    """An operator credit (journaled ``Deposit`` with a unique key)."""
    from gateway.admin import Admin

    server.call(Admin(server.gw).deposit(account_id, "ETH", eth))


def account(server: ServerThread, eth: str = "100", *, traded: bool = True) -> tuple[Any, int]:
    """A new account with a withdraw key, ``eth`` deposited (journaled, operator credit); it
    trades once after the deposit unless ``traded`` is False."""
    from gateway.admin import Admin

    async def make() -> tuple[Any, int]:
        admin = Admin(server.gw)
        key = await admin.create_account(("read", "trade", "withdraw"))
        assert key.secret is not None
        await admin.deposit(key.account_id, "ETH", eth)
        await admin.deposit(key.account_id, "USDT", "1000")
        return Credentials.hmac(key.api_key, key.secret), key.account_id

    creds, account_id = server.call(make())
    if traded:
        maker = server.accounts.maker
        ok(
            server,
            "POST",
            "/api/v3/order",
            maker,
            symbol="ETHUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.1",
            price="100",
        )
        ok(
            server,
            "POST",
            "/api/v3/order",
            creds,
            symbol="ETHUSDT",
            side="SELL",
            type="MARKET",
            quantity="0.1",
        )
    return creds, account_id


def rest(server: ServerThread, method: str, path: str, creds: Any, **params: Any) -> Any:
    status, _, data = http(
        method,
        server.http + path,
        query=signed_query(creds, params),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status, data


def ok(server: ServerThread, method: str, path: str, creds: Any, **params: Any) -> Any:
    status, data = rest(server, method, path, creds, **params)
    assert status == 200, (path, data)
    return data


def ws_call(server: ServerThread, creds: Any, method: str, **params: Any) -> dict[str, Any]:
    """One signed WS API request on a new connection; the reply."""
    from websockets.sync.client import connect

    from gateway.client.ws import _payload

    params = {**params, "apiKey": creds.api_key, "timestamp": int(time.time() * 1000)}
    params["signature"] = creds.sign(_payload(params))
    with connect(server.ws_api) as conn:
        conn.send(json.dumps({"id": 1, "method": method, "params": params}))
        return dict(json.loads(conn.recv(timeout=10)))


def withdraw(server: ServerThread, creds: Any, amount: str, to: str) -> int:
    data = ok(
        server,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        creds,
        coin="ETH",
        address=to,
        amount=amount,
    )
    return int(data["id"])


def history(server: ServerThread, creds: Any, withdrawal_id: int) -> dict[str, Any]:
    rows = ok(server, "GET", "/sapi/v1/capital/withdraw/history", creds)
    (row,) = [r for r in rows if r["id"] == str(withdrawal_id)]
    return dict(row)


def eth(server: ServerThread, creds: Any) -> tuple[str, str]:
    data = ok(server, "GET", "/api/v3/account", creds)
    row = next(b for b in data["balances"] if b["asset"] == "ETH")
    return row["free"], row["locked"]


def row(server: ServerThread, withdrawal_id: int) -> Any:
    return on_loop(server, server.gw.custody.custody.store.withdrawal, withdrawal_id)


def approve(server: ServerThread, withdrawal_id: int, staff: str, role: str = "finance") -> Any:
    return on_loop(server, server.gw.custody.approvals.approve, withdrawal_id, staff, role)


def refused(server: ServerThread, fn: Any, *args: Any) -> str:
    """The stable code of a refused decision (taken on the server's loop)."""
    from backoffice.errors import ActionRefused

    with pytest.raises(ActionRefused) as info:
        on_loop(server, fn, *args)
    return info.value.code


def poll(server: ServerThread) -> None:
    server.call(server.gw.custody.custody.poll())


def cases(server: ServerThread, account_id: int) -> dict[str, dict[str, Any]]:
    """The account's AML cases by rule id (after the AML queue is written)."""
    server.call(server.gw.aml.idle())
    rows = server.call(server.gw.aml.cases.cases("compliance"))
    return {r["rule_id"]: r for r in rows if r["account_id"] == account_id}


PASSWORD = "correct horse battery staple"


def ops(
    server: ServerThread, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    status, _, data = http(
        method,
        f"{server.http}/ops/v1{path}",
        body=None if body is None else json.dumps(body),
        headers=headers,
    )
    return status, data


def staff_login(server: ServerThread, role: str) -> tuple[str, str]:
    """A new staff member with ``role``, logged in through ``/ops/v1/auth/login`` with a TOTP
    code: (staff id, bearer token)."""
    import pyotp

    from backoffice.roles import Role
    from backoffice.routes import BACKOFFICE_KEY

    bo = server.running.runner.app[BACKOFFICE_KEY]
    email = f"{role}-{time.time_ns()}@ops.example.com"
    _, secret, _ = server.call(bo.staff.create(email, PASSWORD, Role(role)))
    body = {"email": email, "password": PASSWORD, "totp": pyotp.TOTP(secret).now()}
    status, out = ops(server, "POST", "/auth/login", body=body)
    assert status == 200, out
    token = out["access_token"]
    status, me = ops(server, "GET", "/me", token)
    assert status == 200, me
    return me["staff_id"], token


def refused_with(answer: tuple[int, Any], status: int, code: str) -> None:
    got, body = answer
    assert (got, body.get("code")) == (status, code), body
