"""Markets created through the operator API on a real gateway: an admin creates LTC/BTC
(journaled CreateMarket naming them, then SetMarketState HALTED); the new market is in the
venue's exchangeInfo at once, refuses orders while halted, trades once resumed; the audit log
names the creator, a replay of the journal reaches the same state, and bad input or a wrong role
changes nothing. The route is held to its ``/openapi.json`` description."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis

from backoffice import errors
from backoffice.errors import MARKET_EXISTS, UNKNOWN_ASSET
from backoffice.roles import Role
from engine.schema import CreateMarket
from gateway.client import Credentials
from tests.gateway_support import ServerThread, http, journal_replay, signed_query
from tests.test_backoffice_ops import login, make_staff, ops, refused

LTCBTC = {
    "base": "LTC",
    "quote": "BTC",
    "tick_size": "0.000001",
    "lot_size": "0.01",
    "min_notional": "0.0001",
    "taker_fee_ppm": 2_000,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(tmp_path, fixture_accounts=False)  # market data on: it learns the market
    yield srv
    srv.stop()


def order(srv: ServerThread, creds: Credentials) -> tuple[int, Any]:
    params = {"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    params |= {"quantity": "1.5", "price": "0.001234"}
    status, _, data = http(
        "POST",
        f"{srv.http}/api/v3/order",
        body=signed_query(creds, params),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    return status, data


def test_admin_creates_a_market(server: ServerThread) -> None:
    srv = server
    tokens = {
        r: login(srv, f"{r.value}@m.example.com", make_staff(srv, f"{r.value}@m.example.com", r))
        for r in (Role.ADMIN, Role.COMPLIANCE)
    }
    admin = tokens[Role.ADMIN]
    admin_id = ops(srv, "GET", "/me", admin)[1]["staff_id"]
    before = srv.seq_and_hash()

    # Refusals first: nothing journaled.
    refused(ops(srv, "POST", "/markets", tokens[Role.COMPLIANCE], LTCBTC), 403, errors.ROLE_REFUSED)
    for bad in (
        {k: v for k, v in LTCBTC.items() if k != "lot_size"},
        {**LTCBTC, "tick_size": "0.000000001"},  # finer than BTC's 8 decimals
        {**LTCBTC, "tick_size": 0.000001},  # a float: never exact
        {**LTCBTC, "lot_size": "0"},
        {**LTCBTC, "base": "BTC"},
        {**LTCBTC, "base": ["LTC"]},
        {**LTCBTC, "maker_fee_ppm": -1},
        {**LTCBTC, "state": "SHUT"},
        {**LTCBTC, "colour": "red"},
    ):
        refused(ops(srv, "POST", "/markets", admin, bad), 400, errors.BAD_REQUEST)
    refused(ops(srv, "POST", "/markets", admin, {**LTCBTC, "base": "DOGE"}), 404, UNKNOWN_ASSET)
    refused(ops(srv, "POST", "/markets", admin, {**LTCBTC, "base": "BTC", "quote": "USDT"}),
            409, MARKET_EXISTS)  # fmt: skip
    assert srv.seq_and_hash() == before

    # Created halted: listed, in exchangeInfo with its filters, refusing orders.
    status, made = ops(srv, "POST", "/markets", admin, LTCBTC)
    assert status == 200, made
    assert (made["symbol"], made["market_id"], made["state"]) == ("LTCBTC", 3, "HALTED")
    assert made["seq"] == before[0] + 2
    assert {"symbol": "LTCBTC", "state": "HALTED"} in ops(srv, "GET", "/markets", admin)[1]
    _, _, info = http("GET", f"{srv.http}/api/v3/exchangeInfo", query="symbol=LTCBTC")
    (sym,) = info["symbols"]
    filters = {f["filterType"]: f for f in sym["filters"]}
    assert (sym["baseAsset"], sym["quoteAsset"]) == ("LTC", "BTC")
    assert filters["PRICE_FILTER"]["tickSize"] == "0.00000100"
    assert filters["LOT_SIZE"]["stepSize"] == "0.01000000"
    buyer = srv.new_account(BTC="1")
    status, err = order(srv, buyer)
    assert (status, err) == (400, {"code": -2010, "msg": "Market is closed."})
    refused(ops(srv, "POST", "/markets", admin, LTCBTC), 409, MARKET_EXISTS)

    # Resumed, it trades like any market.
    status, _ = ops(srv, "POST", "/markets/LTCBTC/state", admin, {"state": "OPEN"})
    assert status == 200
    status, placed = order(srv, buyer)
    assert status == 200 and placed["status"] == "NEW", placed
    srv.wait_idle()
    _, _, depth = http("GET", f"{srv.http}/api/v3/depth", query="symbol=LTCBTC")
    assert depth["bids"] == [["0.00123400", "1.50000000"]], depth

    # The audit log names the creator; the journal alone gives the same state.
    status, audit = ops(srv, "GET", "/audit", admin)
    acts = [(e["action"], e["staff_id"], e.get("symbol"), e.get("state")) for e in audit["entries"]]
    assert acts == [
        ("create_market", admin_id, "LTCBTC", None),
        ("set_market_state", admin_id, "LTCBTC", "HALTED"),
        ("set_market_state", admin_id, "LTCBTC", "OPEN"),
    ]
    srv.wait_idle()
    records, replayed_hash = journal_replay(srv.gw)
    assert replayed_hash == srv.seq_and_hash()[1]
    created = [r.command for r in records if isinstance(r.command, CreateMarket)]
    assert created[-1].symbol == "LTC-BTC" and created[-1].staff_id == admin_id
    assert (created[-1].tick_size_atoms, created[-1].lot_size_atoms) == (100, 1_000_000)
    assert created[-1].taker_fee_ppm == 2_000 and [c.staff_id for c in created[:-1]] == [""] * 3

    _answers_as_described(srv, tokens)


def _answers_as_described(srv: ServerThread, tokens: dict[Role, str]) -> None:
    """``POST /ops/v1/markets`` (``x-requires: market-creation``) answers 200 as described and
    every error status it documents (503 excepted)."""
    spec = requests.get(srv.http + "/openapi.json", timeout=30).json()
    (op,) = [
        r.ok()
        for r in schemathesis.openapi.from_dict(spec).get_all_operations()
        if r.ok().definition.raw.get("x-requires") == "market-creation"
        and r.ok().path.endswith("/markets")
    ]
    example = op.definition.raw["requestBody"]["content"]["application/json"]["example"]
    eth_btc = {**example, "base": "ETH"}
    plan: list[tuple[int, Role | None, Any]] = [
        (200, Role.ADMIN, eth_btc),
        (409, Role.ADMIN, eth_btc),
        (400, Role.ADMIN, {**example, "lot_size": "x"}),
        (404, Role.ADMIN, {**example, "quote": "EUR"}),
        (403, Role.COMPLIANCE, example),
        (401, None, example),
    ]
    for want, who, body in plan:
        headers = {} if who is None else {"Authorization": f"Bearer {tokens[who]}"}
        response = requests.post(srv.http + op.path, json=body, headers=headers, timeout=30)
        assert response.status_code == want, (want, response.text)
        op.validate_response(response)
    documented = {int(code) for code in op.definition.raw["responses"]} - {503}
    assert documented == {want for want, _, _ in plan}
