"""AML rules through real flows (deposits, trades, withdrawals on a real gateway with custody on
anvil; cases in a real PostgreSQL database, `tests.foureyes_support`): each rule, the deny-list
freeze, cases worked by compliance (the operator API: tests/test_foureyes.py), and the
replay: the journal gives the same cases, and the ledger re-derived from postings matches the
engine."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from tests.foureyes_support import (
    DENIED,
    GWEI,
    ServerThread,
    account,
    address,
    anvil_node,
    cases,
    deposit,
    foureyes_server,
    history,
    rest,
    row,
    withdraw,
)
from tests.gateway_support import journal_replay

anvil = pytest.fixture(scope="module")(anvil_node)
server = pytest.fixture(scope="module")(foureyes_server)

# ---- AML -------------------------------------------------------------------------------------


def test_large_withdrawal_is_held_and_large_deposit_opens_a_case(server: ServerThread) -> None:
    creds, account_id = account(server, eth="600")
    got = cases(server, account_id)
    assert got["big-in"]["withdrawal_id"] == 0 and got["big-in"]["action"] == "case"
    assert got["big-in"]["amount_atoms"] == 600 * GWEI
    wid = withdraw(server, creds, "45", address("payee-4"))
    assert "aml:big-out" in row(server, wid).review.split(",")
    assert row(server, wid).status == "awaiting_approval"
    got = cases(server, account_id)
    assert got["big-out"]["withdrawal_id"] == wid and got["big-out"]["status"] == "open"
    assert "fresh-address" in got and "in-and-out" not in got  # it traded after depositing
    assert history(server, creds, wid)["info"] == "awaiting_approval"  # no tipping off


def test_velocity_and_structuring(server: ServerThread) -> None:
    creds, account_id = account(server)
    to = address("payee-5")
    ids = [withdraw(server, creds, "0.5", to) for _ in range(3)]
    reviews = [row(server, i).review for i in ids]
    assert ["aml:fast-out" in r for r in reviews] == [False, False, True]
    assert cases(server, account_id)["fast-out"]["withdrawal_id"] == ids[2]

    creds, account_id = account(server)
    to = address("payee-6")
    a = withdraw(server, creds, "9.5", to)  # just under 10
    b = withdraw(server, creds, "8", to)  # not just under
    c = withdraw(server, creds, "9.9", to)  # the second just under
    assert ["aml:just-under" in row(server, i).review for i in (a, b, c)] == [False, False, True]
    assert cases(server, account_id)["just-under"]["withdrawal_id"] == c
    assert "fast-amount" not in cases(server, account_id)  # 27.4 ETH: under 30 in the hour
    d = withdraw(server, creds, "3", to)
    assert cases(server, account_id)["fast-amount"]["withdrawal_id"] == d
    assert "aml:fast-amount" not in row(server, d).review  # action "case": no hold


def test_structuring_deposits(server: ServerThread) -> None:
    _, account_id = account(server, eth="280")  # just under 300
    deposit(server, account_id, "250")  # not just under
    assert "just-under-in" not in cases(server, account_id)
    deposit(server, account_id, "299.5")  # the second just under
    case = cases(server, account_id)["just-under-in"]
    assert (case["withdrawal_id"], case["amount_atoms"]) == (0, 299_500_000_000)


def test_deposit_then_withdrawal_without_trading(server: ServerThread) -> None:
    creds, account_id = account(server, traded=False)
    wid = withdraw(server, creds, "1", address("payee-7"))
    assert "aml:in-and-out" in row(server, wid).review
    assert cases(server, account_id)["in-and-out"]["withdrawal_id"] == wid


def test_deny_list_freezes_and_new_address_opens_a_case(server: ServerThread) -> None:
    creds, account_id = account(server)
    clean = withdraw(server, creds, "1", address("payee-10"))
    assert "aml:fresh-address" not in row(server, clean).review  # action "case": no hold
    wid = withdraw(server, creds, "1", DENIED.lower())
    assert "aml:denied" in row(server, wid).review.split(",")
    got = cases(server, account_id)
    assert got["denied"]["withdrawal_id"] == wid and got["denied"]["action"] == "freeze"
    assert got["denied"]["action_done"] == 1
    every = server.call(server.gw.aml.cases.cases("compliance"))
    fresh = {c["withdrawal_id"] for c in every if c["account_id"] == account_id
             and c["rule_id"] == "fresh-address"}  # fmt: skip
    assert fresh == {clean, wid}
    # frozen through the journal: no withdrawal, no new order
    status, err = rest(
        server,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        creds,
        coin="ETH",
        address=DENIED,
        amount="1",
    )
    assert (status, err["code"]) == (400, -4011)
    status, err = rest(
        server,
        "POST",
        "/api/v3/order",
        creds,
        symbol="ETHUSDT",
        side="SELL",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.1",
        price="1000",
    )
    assert status == 400 and "frozen" in err["msg"]
    journaled, _ = journal_replay(server.gw)
    frozen = [j.command for j in journaled if type(j.command).__name__ == "SetAccountFrozen"]
    assert [(c.account_id, c.frozen, c.staff_id) for c in frozen][-1:] == [
        (account_id, True, f"aml:{got['denied']['case_id']}")
    ]


def test_new_address_is_new_once(server: ServerThread) -> None:
    creds, account_id = account(server)
    to = address("payee-11")
    wid = withdraw(server, creds, "1", to.lower())
    second = withdraw(server, creds, "1", to)
    ids = {
        c["withdrawal_id"]
        for c in server.call(server.gw.aml.cases.cases("compliance"))
        if c["account_id"] == account_id and c["rule_id"] == "fresh-address"
    }
    assert ids == {wid}, "the same address (any case) is not new the second time"
    assert second != wid


def test_cases_are_worked_by_compliance(server: ServerThread) -> None:
    from backoffice.errors import ActionRefused

    _, account_id = account(server, eth="700")
    case_id = cases(server, account_id)["big-in"]["case_id"]
    store = server.gw.aml.cases

    def code(coro: Coroutine[Any, Any, Any]) -> str:
        with pytest.raises(ActionRefused) as info:
            server.call(coro)
        return info.value.code

    assert code(store.cases("support")) == "ROLE_REFUSED"
    assert code(store.assign(case_id, "s1", "finance", "c2")) == "ROLE_REFUSED"
    assert code(store.assign("nope@1", "c1", "compliance", "c2")) == "UNKNOWN_CASE"
    assert server.call(store.assign(case_id, "c1", "compliance", "c2"))["assignee"] == "c2"
    assert code(store.comment(case_id, "c2", "compliance", " ")) == "NOTE_REQUIRED"
    server.call(store.comment(case_id, "c2", "compliance", "source of funds: salary"))
    assert code(store.close(case_id, "c2", "compliance", "fine", "ok")) == "INVALID_OUTCOME"
    closed = server.call(store.close(case_id, "c2", "compliance", "cleared", "documents ok"))
    assert (closed["status"], closed["outcome"]) == ("closed", "cleared")
    assert code(store.close(case_id, "c2", "compliance", "cleared", "again")) == "CASE_CLOSED"
    case = server.call(store.case("auditor", case_id))
    assert [(n["staff_id"], n["kind"]) for n in case["notes"]] == [
        ("c1", "assign"),
        ("c2", "comment"),
        ("c2", "close"),
    ]


def test_replay_gives_the_same_cases_and_exact_money(server: ServerThread) -> None:
    """Last in the module: the journal so far, replayed, gives every case the live gateway
    opened (no more, no fewer), the rebuild at start re-opens deleted cases, and the ledger
    re-derived from postings matches the engine (holds and releases moved no money)."""
    from backoffice.aml.engine import AmlEngine
    from tests.invariants import Ledger, check_invariants

    aml = server.gw.aml
    server.call(aml.idle())
    live = {c["case_id"] for c in server.call(aml.cases.cases("auditor"))}
    assert len(live) >= 10
    journaled, _ = journal_replay(server.gw)
    fresh = AmlEngine(aml.rules, aml._address_of)
    replayed = set()
    for j in journaled:
        replayed |= {h.case_id for h in fresh.feed(j.ts, j.events)}
    assert replayed == live

    async def wipe_and_rebuild() -> list[dict[str, Any]]:
        """Lose every case but the large deposits (one of them worked and closed)."""
        await aml.cases.db.execute("DELETE FROM bo_aml_cases WHERE kind <> 'large_deposit'")
        for hit in aml._rebuild():
            await aml.cases.open_case(hit)
        return await aml.cases.cases("auditor")

    engine_before = dict(aml.engine.holds)
    aml.engine = AmlEngine(aml.rules, aml._address_of)
    server.gw.custody.custody.desk.screen = aml.engine.screen
    rebuilt = server.call(wipe_and_rebuild())
    assert {c["case_id"] for c in rebuilt} == live
    assert "closed" in {c["status"] for c in rebuilt}, "an existing case is left as it is"
    assert aml.engine.holds == engine_before

    ledger = Ledger()
    for j in journaled:
        ledger.apply(j.events)

    async def image() -> Any:
        return server.gw.node.engine.image()

    check_invariants(server.call(image()), ledger)
