"""The trading page's deposit and withdrawal tab against real custody (issue 16).

A gateway with custody for ETH on a real anvil node, and Debian's Chromium driven by
Playwright (`tests.web_support`): the page shows the account's deposit address, the same as
the REST answer, with a QR code drawn from it; a withdrawal sent from the form is held by the
engine (available to held, to the exact decimal) and listed with its fee and custody status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.custody_nodes import ETH_CHAIN, Anvil, eth_custody_config, run_anvil
from tests.gateway_support import ServerThread, http, signed_query
from tests.web_support import (
    Pages,
    account_list,
    browser_pages,
    make_staff,
    require_browser,
    staff_console,
)

THRESHOLD_ATOMS = 10**9
"""Withdrawals above 1 ETH (engine atoms: gwei) wait for two finance approvals."""


AML_RULES = """
[[rule]]
id = "big-out"
kind = "large_withdrawal"
asset = "ETH"
amount = "1.5"
action = "case"
"""
"""A withdrawal over 1.5 ETH opens an AML case (and nothing more)."""


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with run_anvil() as node:
        yield node


def _custody(tmp: Path, anvil: Anvil) -> Any:
    return eth_custody_config(
        tmp,
        anvil,
        "web-custody",
        min_withdrawal_atoms=1_000,
        daily_limit_atoms=10**12,
        approval_threshold_atoms=THRESHOLD_ATOMS,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, anvil: Anvil) -> Iterator[ServerThread]:
    require_browser()
    tmp = tmp_path_factory.mktemp("webc")
    (tmp / "aml.toml").write_text(AML_RULES)
    srv = ServerThread(
        tmp, custody=_custody(tmp, anvil), custody_poll_s=0, aml_rules=tmp / "aml.toml"
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pages(server: ServerThread) -> Iterator[Pages]:
    with browser_pages(server.http) as p:
        yield p


def _rest(server: ServerThread, path: str, creds: Any, **params: str) -> Any:
    status, _, body = http(
        "GET",
        server.http + path,
        query=signed_query(creds, params),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 200, body
    return body


def _ops(server: ServerThread, page: Any, path: str) -> Any:
    """The operator API as the page's staff session sees it (its bearer, from the page)."""
    token = page.evaluate("sessionStorage.getItem('kootabase.staff')")
    status, _, body = http(
        "GET", f"{server.http}/ops/v1/{path}", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, body
    return body


def test_deposit_address_qr_and_withdrawal(
    server: ServerThread, pages: Pages, anvil: Anvil
) -> None:
    from web3 import Web3

    creds = server.accounts.demo  # read, trade and withdraw; funded with ETH by the fixture
    expected = _rest(server, "/sapi/v1/capital/deposit/address", creds, coin="ETH")["address"]
    before = next(
        b for b in _rest(server, "/api/v3/account", creds)["balances"] if b["asset"] == "ETH"
    )
    page = pages.open("/?symbol=ETHUSDT")
    page.click("#tab-key")
    page.fill("#api-key", creds.api_key)
    page.fill("#api-secret", creds.secret)
    page.click("#do-key-login")
    page.wait_for_selector("#balances tr[data-asset='ETH']")
    page.click("[data-tab='funds']")
    page.select_option("#f-coin", "ETH")
    page.wait_for_function(
        "a => document.querySelector('#f-address').textContent.startsWith(a + ' ')", arg=expected
    )
    # The QR code: a square of modules with a quiet zone, about half of them dark.
    size, dark = page.eval_on_selector(
        "#f-qr",
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
                 return [[c.width, c.height], n / (c.width * c.height)]; }""",
    )
    assert size[0] == size[1] >= 25 * 4 and 0.2 < dark < 0.6, (size, dark)

    to = Web3.to_checksum_address(anvil.rpc("eth_accounts")[5])
    page.fill("#w-address", to)
    page.fill("#w-amount", "0.25")
    page.click("#withdraw button[type='submit']")
    page.wait_for_selector("#w-msg[data-kind='ok']")
    page.wait_for_selector("#w-history tr td >> text=0.250000000")
    row = page.eval_on_selector_all("#w-history tr td", "tds => tds.map(t => t.textContent)")
    assert row[1:4] == ["ETH", "0.250000000", "0"] and row[4].startswith("processing"), row
    free = str(Decimal(before["free"]) - Decimal("0.250000000"))
    held = str(Decimal(before["locked"]) + Decimal("0.250000000"))
    page.wait_for_function(
        """([f, h]) => { const r = document.querySelector('#balances tr[data-asset=ETH]');
             return r && r.children[1].textContent === f && r.children[2].textContent === h; }""",
        arg=[free, held],
    )
    # A refused withdrawal shows custody's code; nothing moves.
    page.fill("#w-address", "not-an-address")
    page.click("#withdraw button[type='submit']")
    page.wait_for_selector("#w-msg[data-kind='error']")
    assert page.text_content("#w-msg").endswith("(-4001)")
    pages.shot(page, "trade-funds")
    pages.no_errors(400)


def test_four_eyes_from_the_console(server: ServerThread, pages: Pages, anvil: Anvil) -> None:
    """A withdrawal above the threshold waits; two different finance staff approve it from
    their own console sessions (the same one twice is refused); then it goes to the signer."""
    from web3 import Web3

    creds = server.accounts.demo
    page = pages.open("/?symbol=ETHUSDT")
    page.click("#tab-key")
    page.fill("#api-key", creds.api_key)
    page.fill("#api-secret", creds.secret)
    page.click("#do-key-login")
    page.click("[data-tab='funds']")
    page.select_option("#f-coin", "ETH")
    page.fill("#w-address", Web3.to_checksum_address(anvil.rpc("eth_accounts")[6]))
    page.fill("#w-amount", "2")
    page.click("#withdraw button[type='submit']")
    page.wait_for_selector("#w-msg[data-kind='ok']")
    wid = page.text_content("#w-msg").split()[1]
    page.wait_for_selector("#w-history td:text-is('awaiting approval')")

    staff = {}
    for name in ("fin1", "fin2"):
        secret = make_staff(server, f"{name}@example.com", "finance")
        staff[name] = staff_console(pages, f"{name}@example.com", secret)
    row = f"#c-withdrawals tr[data-withdrawal-id='{wid}']"
    first, second = staff["fin1"], staff["fin2"]
    first.wait_for_selector(row)
    assert "threshold" in first.text_content(row)
    first.click(f"{row} button:text('Approve')")
    first.wait_for_selector("#c-withdrawals-msg[data-kind='ok']")
    first.wait_for_selector(f"{row} td:text-matches('approve by staff-')")
    first.click(f"{row} button:text('Approve')")  # the same staff again: refused
    first.wait_for_selector("#c-withdrawals-msg[data-kind='error']")
    second.wait_for_selector(row)
    second.click(f"{row} button:text('Approve')")
    second.wait_for_selector("#c-withdrawals-msg[data-kind='ok']")
    second.wait_for_selector(f"{row}", state="detached")  # no longer waiting
    assert server.gw.custody.custody.withdrawal(int(wid)).status == "held"
    page.click("[data-tab='funds']")
    page.wait_for_selector("#w-history td:text('processing (held)')")
    pages.shot(first, "console-four-eyes")
    assert first.is_hidden("#c-audit-box")  # finance may not read the audit log: not shown
    assert first.is_hidden("#c-aml-box")  # nor AML cases

    # The same withdrawal opened an AML case (over 1.5 ETH); compliance closes it.
    compliance = staff_console(
        pages, "aml@example.com", make_staff(server, "aml@example.com", "compliance")
    )
    case = f"#c-aml tr:has(td:text-is('{wid}'))"
    compliance.wait_for_selector(case)
    assert "big-out (large_withdrawal)" in compliance.text_content(case)
    case_id = compliance.get_attribute(case, "data-case-id")
    # Assign it (an empty assignee: oneself) and comment; the operator API keeps both.
    compliance.click(f"{case} button:text-is('Assign')")
    compliance.wait_for_selector("#c-aml-msg[data-kind='ok']")
    me = _ops(server, compliance, "me")["staff_id"]
    compliance.wait_for_selector(f"{case} .c-case-assignee:text-is('{me}')")
    compliance.fill(f"{case} .c-comment", "asked for the source of funds")
    compliance.click(f"{case} button:text-is('Comment')")
    compliance.wait_for_selector("#c-aml-msg:text-matches('comment added')")
    seen = _ops(server, compliance, f"aml/cases/{case_id}")
    assert seen["assignee"] == me, seen
    notes = [(n["staff_id"], n["kind"], n["body"]) for n in seen["notes"]]
    assert notes[-2:] == [(me, "assign", me), (me, "comment", "asked for the source of funds")]
    compliance.fill(f"{case} .c-comment", "")  # an empty comment: refused, nothing kept
    compliance.click(f"{case} button:text-is('Comment')")
    compliance.wait_for_selector("#c-aml-msg[data-kind='error']")
    assert len(_ops(server, compliance, f"aml/cases/{case_id}")["notes"]) == len(notes)
    compliance.select_option(f"{case} select", "cleared")
    compliance.fill(f"{case} .c-note", "known payee, documented")
    compliance.click(f"{case} button:text('Close case')")
    compliance.wait_for_selector("#c-aml-msg[data-kind='ok']")
    compliance.wait_for_selector(case, state="detached")
    pages.shot(compliance, "console-aml")
    pages.no_errors(400, 403, 409)


def test_reconciliation_in_the_console(server: ServerThread, pages: Pages, anvil: Anvil) -> None:
    """The reconciliation panel (finance) and ``GET /ops/v1/custody/reconciliation`` against
    figures taken apart from it: the ledger side is every account's ETH in the read model, the
    chain side anvil's balance of every exchange address. This server's accounts were funded by
    operator deposits with no coins on chain behind them, so the whole ledger figure is
    unexplained, exactly; a float recorded without coins behind it (what a mistyped
    ``kootabase custody float`` does) shows as hot float and moves the unexplained figure by
    exactly its amount, until it is taken back. Support may not see the panel (403)."""
    from web3 import Web3

    custody = server.gw.custody.custody
    (asset,) = custody.registry.assets.values()
    store = custody.store
    users_atoms = sum(
        int(Decimal(b["ETH"]["free"]) * 10**9) + int(Decimal(b["ETH"]["locked"]) * 10**9)
        for b in (a["balances"] for a in server.call(account_list(server)))
        if "ETH" in b
    )
    hot = [a for addrs in custody.hot_addresses().values() for a in addrs]
    wei = sum(
        int(anvil.rpc("eth_getBalance", Web3.to_checksum_address(a), "latest"), 16)
        for a in store.addresses(ETH_CHAIN) + hot
    )
    finance = staff_console(
        pages, "recon@example.com", make_staff(server, "recon@example.com", "finance")
    )
    (eth,) = _ops(server, finance, "custody/reconciliation")["assets"]
    assert Decimal(eth["users"]) * 10**9 == users_atoms > 0, (eth, users_atoms)
    assert Decimal(eth["ledger_owes"]) == Decimal(eth["users"]) + Decimal(eth["fees"]), eth
    assert Decimal(eth["on_chain"]) * 10**18 == wei, (eth, wei)
    explained = sum(Decimal(e["amount"]) for e in eth["explanations"])
    unexplained = Decimal(eth["on_chain"]) - Decimal(eth["ledger_owes"]) - explained
    assert Decimal(eth["unexplained"]) == unexplained != 0 and eth["status"] == "unexplained"

    def cells() -> list[str]:
        return finance.eval_on_selector_all(  # type: ignore[no-any-return]
            "#c-recon tr td", "tds => tds.map(t => t.textContent)"
        )

    finance.wait_for_selector("#c-recon span:text-is('unexplained')")
    assert cells() == [
        f"ETH ({ETH_CHAIN})",
        "unexplained",
        eth["ledger_owes"],
        eth["on_chain"],
        "0.000000000000000000",
        "-",
        eth["unexplained"],
    ], cells()
    store.add_treasury(ETH_CHAIN, asset.asset_id, 5 * 10**17, "test: no coins", time.time_ns())
    try:
        finance.click("#c-recon-refresh")
        finance.wait_for_selector("#c-recon span:text-is('0.500000000000000000')")
        after = unexplained - Decimal("0.5")
        assert Decimal(cells()[6]) == after, cells()
        assert cells()[5] == "operator float in hot wallets: 0.500000000000000000", cells()
        assert finance.text_content("#c-recon-msg").endswith("1 asset(s) need attention")
        pages.shot(finance, "console-reconciliation")
    finally:
        store.add_treasury(ETH_CHAIN, asset.asset_id, -(5 * 10**17), "test: undo", time.time_ns())
    (eth,) = _ops(server, finance, "custody/reconciliation")["assets"]
    assert Decimal(eth["unexplained"]) == unexplained and eth["hot_float"] == "0." + "0" * 18
    support = staff_console(
        pages, "recon-help@example.com", make_staff(server, "recon-help@example.com", "support")
    )
    support.wait_for_selector("#c-markets tr")
    support.wait_for_selector("#c-recon-box", state="hidden")
    pages.no_errors(403)


def test_custody_alerts_in_the_console(server: ServerThread, pages: Pages) -> None:
    """A deep reorg's alert halts the chain; the console lists it for the roles that may read
    it (compliance here) and hides the panel from support (403).

    The alert is recorded the way the scanner records a deep reorg (`CustodyStore.add_alert`
    on the real custody store): making anvil reorg deeper than the confirmation policy costs
    far more than this panel is worth. Resolved (acknowledged) at the end: this test runs last.
    """
    compliance = staff_console(
        pages, "alerts@example.com", make_staff(server, "alerts@example.com", "compliance")
    )
    compliance.wait_for_selector("#c-alerts td:text-matches('no open alerts')")
    assert _ops(server, compliance, "custody/alerts") == []
    store = server.gw.custody.custody.store
    store.add_alert(ETH_CHAIN, "deep_reorg", "block 7 replaced 9 deep", time.time_ns())
    try:
        ((alert_id, *_),) = store.open_alerts()
        row = f"#c-alerts tr:has(td:text-is('{alert_id}'))"
        compliance.wait_for_selector(row)
        cells = compliance.eval_on_selector_all(f"{row} td", "tds => tds.map(t => t.textContent)")
        assert cells == [
            str(alert_id),
            ETH_CHAIN,
            "deep_reorg: chain halted",
            "block 7 replaced 9 deep",
        ], cells
        assert _ops(server, compliance, "custody/alerts") == [
            {
                "alert_id": alert_id,
                "chain": ETH_CHAIN,
                "kind": "deep_reorg",
                "detail": "block 7 replaced 9 deep",
            }
        ]
        support = staff_console(
            pages, "help@example.com", make_staff(server, "help@example.com", "support")
        )
        support.wait_for_selector("#c-markets tr")
        for box in ("#c-alerts-box", "#c-aml-box"):  # shown at login, hidden on the 403
            support.wait_for_selector(box, state="hidden")
        pages.shot(compliance, "console-alerts")
    finally:
        for alert_id, *_ in store.open_alerts():
            store.acknowledge_alert(alert_id)
    compliance.wait_for_selector("#c-alerts td:text-matches('no open alerts')")
    pages.no_errors(403)
