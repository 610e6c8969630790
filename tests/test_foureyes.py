"""Four eyes on withdrawals and the AML rules, through a real gateway with custody on a real
anvil (signer on), cases in a real PostgreSQL database.

Withdrawals are requested over the dialect's REST API; staff decisions go through
`custody.approvals.Approvals` (the functions the operator API calls) with a staff id and role;
AML rules are a TOML file and every rule is driven by real deposits, trades and withdrawals.
The module ends by replaying the journal: the AML engine gives the same cases, and the ledger
re-derived from postings matches the engine (no money created or lost by holds and releases).
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.service import ETH
from gateway.client import Credentials
from tests.backoffice_support import pg_database
from tests.custody_nodes import CONFIRMATIONS, ETH_CHAIN, Anvil, _hd, run_anvil, seed_for
from tests.gateway_support import ServerThread, http, journal_replay, signed_query

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


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with run_anvil() as node:
        yield node


def custody_config(tmp: Path, anvil: Anvil) -> Any:
    from custody.assets import ChainKind, ChainSpec, CustodyAsset
    from custody.config import CustodyConfig, NodeConfig

    seed = seed_for("four-eyes")
    hot = _hd(seed, "bitcoin", [-44, -60, -1, 0, 0])
    (tmp / "eth.key").write_text("0x" + hot.private_hex)
    node = NodeConfig(
        ChainSpec(ETH_CHAIN, ChainKind.ETHEREUM, CONFIRMATIONS, bip44_coin=60),
        anvil.url,
        xpub=_hd(seed, "bitcoin", [-44, -60, -0]).wif_public(),
        hot_key_file=str(tmp / "eth.key"),
        start_height=anvil.height() + 1,
        stuck_after_s=3600,
        bitcoinlib_network="bitcoin",
    )
    asset = CustodyAsset(
        ETH,
        "ETH",
        ETH_CHAIN,
        18,
        9,
        min_withdrawal_atoms=1_000,
        approval_threshold_atoms=THRESHOLD_ATOMS,
        approve_new_address=True,
    )
    return CustodyConfig(tmp / "custody.sqlite", {ETH_CHAIN: node}, [asset])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, anvil: Anvil) -> Iterator[ServerThread]:
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
    """Call a synchronous custody function on the server's loop (its store's only user)."""

    async def call() -> Any:
        return fn(*args, **kwargs)

    return server.call(call())


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
    from custody.approvals import ApprovalRefused

    with pytest.raises(ApprovalRefused) as info:
        on_loop(server, fn, *args)
    return info.value.code


def poll(server: ServerThread) -> None:
    server.call(server.gw.custody.custody.poll())


def cases(server: ServerThread, account_id: int) -> dict[str, dict[str, Any]]:
    """The account's AML cases by rule id (after the AML queue is written)."""
    server.call(server.gw.aml.idle())
    rows = server.call(server.gw.aml.cases.cases("compliance"))
    return {r["rule_id"]: r for r in rows if r["account_id"] == account_id}


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
    from backoffice.aml.cases import CaseRefused

    _, account_id = account(server, eth="700")
    case_id = cases(server, account_id)["big-in"]["case_id"]
    store = server.gw.aml.cases

    def code(coro: Coroutine[Any, Any, Any]) -> str:
        with pytest.raises(CaseRefused) as info:
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


# ---- replay ----------------------------------------------------------------------------------


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


def test_approval_roles_are_the_role_tables() -> None:
    """Custody's own role check (defence in depth) grants exactly what `backoffice.roles`,
    the one table of who may do what, grants."""
    from backoffice.roles import ACTIONS
    from custody.approvals import APPROVE_ROLES, REJECT_ROLES

    assert {r.value for r in ACTIONS["withdrawals.approve"].roles} == APPROVE_ROLES
    assert {r.value for r in ACTIONS["withdrawals.reject"].roles} == REJECT_ROLES
