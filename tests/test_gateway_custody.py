"""Custody through the gateway against a real anvil: deposit addresses (REST ``/sapi/v1/capital``
and WS ``capital.*``), withdrawal requests with their refusals (no hold leaked), the hold visible
in ``/api/v3/account``, and a deposit credited through the gateway's bridge."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from engine.service import ETH
from gateway.client import Credentials
from tests.custody_nodes import CONFIRMATIONS, Anvil, eth_custody_config, run_anvil
from tests.gateway_support import ServerThread, http, signed_query

ETHER = 10**18
DAILY_LIMIT = 200 * 10**9  # 200 ETH in engine atoms (gwei)


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with run_anvil() as node:
        yield node


def custody_config(tmp: Path, anvil: Anvil) -> Any:
    return eth_custody_config(
        tmp, anvil, "gateway-custody", min_withdrawal_atoms=1_000, daily_limit_atoms=DAILY_LIMIT
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, anvil: Anvil) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("gwc")
    s = ServerThread(tmp, custody=custody_config(tmp, anvil), custody_poll_s=0)
    yield s
    s.stop()


def rest(
    server: ServerThread, method: str, path: str, creds: Credentials, **params: Any
) -> tuple[int, Any]:
    status, _, data = http(
        method,
        server.http + path,
        query=signed_query(creds, params),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status, data


def ws(server: ServerThread, creds: Credentials, method: str, **params: Any) -> dict[str, Any]:
    from gateway.client.ws import _payload

    params = {**params, "apiKey": creds.api_key, "timestamp": int(time.time() * 1000)}
    params["signature"] = creds.sign(_payload(params))
    with ws_connect(server.ws_api) as conn:
        conn.send(json.dumps({"id": 1, "method": method, "params": params}))
        return dict(json.loads(conn.recv(timeout=10)))


def eth_balance(server: ServerThread, creds: Credentials) -> tuple[str, str]:
    status, data = rest(server, "GET", "/api/v3/account", creds)
    assert status == 200, data
    row = next(b for b in data["balances"] if b["asset"] == "ETH")
    return row["free"], row["locked"]


def destination(anvil: Anvil) -> str:
    from web3 import Web3

    return str(Web3.to_checksum_address(anvil.rpc("eth_accounts")[4]))


def test_deposit_address_stable_and_equal_to_custodys(server: ServerThread) -> None:
    acc = server.accounts
    status, first = rest(server, "GET", "/sapi/v1/capital/deposit/address", acc.demo, coin="ETH")
    assert status == 200, first
    assert first["coin"] == "ETH" and first["tag"] == "" and first["url"] == ""
    expected = server.gw.custody.custody.deposit_address(acc.demo_id, ETH).address
    assert first["address"] == expected
    _, again = rest(server, "GET", "/sapi/v1/capital/deposit/address", acc.demo, coin="ETH")
    assert again["address"] == expected
    # the WS API gives the same address; a read-only key may ask for it
    reply = ws(server, acc.reader, "capital.deposit.address", coin="ETH")
    assert reply["status"] == 200, reply
    assert reply["result"]["address"] == expected
    # another account gets another address
    _, other = rest(server, "GET", "/sapi/v1/capital/deposit/address", acc.maker, coin="ETH")
    assert other["address"] != expected
    assert other["address"] == server.gw.custody.custody.deposit_address(acc.maker_id, ETH).address
    # an asset custody does not handle
    status, err = rest(server, "GET", "/sapi/v1/capital/deposit/address", acc.demo, coin="BTC")
    assert status == 400 and err["code"] == -4007


@pytest.mark.parametrize(
    ("who", "address", "amount", "status", "code"),
    [
        ("demo", "0x1234", "1", 400, -4001),
        ("demo", "rltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "1", 400, -4001),
        ("demo", None, "0.000000001", 400, -4002),  # below the 1000-gwei minimum
        ("demo", None, "250", 400, -4003),  # over the 24 h limit
        ("demo", None, "150", 400, -4004),  # within the limit, more than the balance
        ("demo", None, "1.0000000001", 400, -1111),  # more decimals than the engine keeps
        ("maker", None, "1", 401, -2015),  # key without the withdraw permission
        ("reader", None, "1", 401, -2015),
    ],
)
def test_refused_withdrawals_leave_balances_unchanged(
    server: ServerThread,
    anvil: Anvil,
    who: str,
    address: str | None,
    amount: str,
    status: int,
    code: int,
) -> None:
    acc = server.accounts
    creds = getattr(acc, who)
    before = eth_balance(server, creds)
    got, err = rest(
        server,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        creds,
        coin="ETH",
        address=address or destination(anvil),
        amount=amount,
    )
    assert (got, err["code"]) == (status, code), err
    assert err["msg"]
    assert eth_balance(server, creds) == before  # no hold leaked


def test_ws_withdraw_refusals(server: ServerThread) -> None:
    acc = server.accounts
    before = eth_balance(server, acc.demo)
    reply = ws(server, acc.demo, "capital.withdraw.apply", coin="ETH", address="0xnope", amount="1")
    assert reply["status"] == 400 and reply["error"]["code"] == -4001, reply
    reply = ws(
        server, acc.maker, "capital.withdraw.apply", coin="ETH", address="0xnope", amount="1"
    )
    assert reply["status"] == 401 and reply["error"]["code"] == -2015, reply
    assert eth_balance(server, acc.demo) == before


def test_valid_withdrawal_holds_funds(server: ServerThread, anvil: Anvil) -> None:
    acc = server.accounts
    free0, locked0 = eth_balance(server, acc.demo)
    to = destination(anvil)
    status, data = rest(
        server,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        acc.demo,
        coin="ETH",
        address=to,
        amount="1.5",
        withdrawOrderId="777",
    )
    assert status == 200, data
    assert data == {"id": "777"}
    free1, locked1 = eth_balance(server, acc.demo)
    assert float(locked1) - float(locked0) == pytest.approx(1.5)
    assert float(free0) - float(free1) == pytest.approx(1.5)
    row = server.gw.custody.custody.withdrawal(777)
    assert row is not None and row.status == "held" and row.address == to
    # a retry with the same withdrawOrderId is refused, not executed twice
    status, err = rest(
        server,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        acc.demo,
        coin="ETH",
        address=to,
        amount="1.5",
        withdrawOrderId="777",
    )
    assert (status, err["code"]) == (400, -4006)
    assert eth_balance(server, acc.demo) == (free1, locked1)
    # WS API: same path, same hold
    reply = ws(server, acc.demo, "capital.withdraw.apply", coin="ETH", address=to, amount="0.5")
    assert reply["status"] == 200, reply
    _, locked2 = eth_balance(server, acc.demo)
    assert float(locked2) - float(locked1) == pytest.approx(0.5)
    status, hist = rest(server, "GET", "/sapi/v1/capital/withdraw/history", acc.demo)
    assert status == 200
    held = [h for h in hist if h["status"] == 4]
    assert {h["amount"] for h in held} == {"1.500000000", "0.500000000"}
    assert all(h["address"] == to and h["coin"] == "ETH" for h in held)


def test_deposit_credited_through_the_bridge(server: ServerThread, anvil: Anvil) -> None:
    acc = server.accounts
    _, addr = rest(server, "GET", "/sapi/v1/capital/deposit/address", acc.maker, coin="ETH")
    free0, _ = eth_balance(server, acc.maker)
    frm = anvil.rpc("eth_accounts")[1]
    anvil.rpc("eth_sendTransaction", {"from": frm, "to": addr["address"], "value": hex(2 * ETHER)})
    anvil.mine(CONFIRMATIONS)
    seq0 = server.gw.node.last_seq
    server.call(server.gw.custody.custody.poll())
    assert server.gw.node.last_seq > seq0  # the Deposit went through the journal
    free1, _ = eth_balance(server, acc.maker)
    assert float(free1) - float(free0) == pytest.approx(2.0)
    status, rows = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", acc.maker, coin="ETH")
    assert status == 200
    assert [(r["amount"], r["status"]) for r in rows] == [("2.000000000", 1)]


def test_custody_disabled(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, marketdata=False)
    try:
        status, err = rest(
            s, "GET", "/sapi/v1/capital/deposit/address", s.accounts.demo, coin="ETH"
        )
        assert (status, err["code"]) == (400, -4008)
    finally:
        s.stop()
