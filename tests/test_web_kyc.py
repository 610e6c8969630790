"""The console's KYC review queue in a real browser (Chromium through Playwright, a real
gateway, SQLite identity store): two users submit document metadata through ``/api/v1/me/kyc``;
a compliance officer logged in with password and TOTP approves one at the tier picked in the
row (the account's tier changes, journaled with their staff id) and rejects the other with a
reason the user reads; an auditor's console shows the queue but its decisions are refused by
the server and the refusal is shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway_support import ServerThread, http
from tests.web_support import Pages, browser_pages, make_staff, require_browser, staff_console

PASSWORD = "correct horse battery"
DOC = {"type": "passport", "country": "DE", "size_bytes": 1_234_567}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    require_browser()
    srv = ServerThread(tmp_path_factory.mktemp("webkyc"), fixture_accounts=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pages(server: ServerThread) -> Iterator[Pages]:
    with browser_pages(server.http) as p:
        yield p


def _user(server: ServerThread, email: str, digest: str) -> tuple[int, str]:
    """(account id, bearer) of a signed-up user who has asked for tier 2."""
    headers = {"Content-Type": "application/json"}
    body = json.dumps({"email": email, "password": PASSWORD})
    status, _, user = http("POST", f"{server.http}/api/v1/auth/signup", body=body, headers=headers)
    assert status == 201, user
    status, _, out = http("POST", f"{server.http}/api/v1/auth/login", body=body, headers=headers)
    bearer = {**headers, "Authorization": f"Bearer {out['access_token']}"}
    kyc = json.dumps({"requested_tier": 2, "documents": [{**DOC, "sha256": digest * 64}]})
    status, _, sub = http("POST", f"{server.http}/api/v1/me/kyc", body=kyc, headers=bearer)
    assert status == 201, sub
    return user["account_id"], out["access_token"]


def _mine(server: ServerThread, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    return http("GET", f"{server.http}/api/v1/me/kyc", headers=headers)[2]


def test_console_kyc_queue(server: ServerThread, pages: Pages) -> None:
    grace, grace_token = _user(server, "grace@example.com", "a")
    alan, alan_token = _user(server, "alan@example.com", "b")

    auditor = staff_console(
        pages, "aud@example.com", make_staff(server, "aud@example.com", "auditor")
    )
    row = "#c-kyc tr:has(td:text-is('grace@example.com'))"
    auditor.wait_for_selector(row)
    auditor.click(f"{row} button:text('Approve')")
    auditor.wait_for_selector("#c-kyc-msg[data-kind='error']:text-matches('ROLE_REFUSED')")
    auditor.close()

    officer = staff_console(
        pages, "kyc@example.com", make_staff(server, "kyc@example.com", "compliance")
    )
    officer.wait_for_selector(row)
    assert "passport DE 1.2 MiB aaaaaaaaaaaa" in officer.text_content(row)
    officer.select_option(f"{row} select", "1")  # grants less than asked
    officer.click(f"{row} button:text('Approve')")
    officer.wait_for_selector("#c-kyc-msg[data-kind='ok']:text-matches('tier 1 granted')")
    officer.wait_for_selector(row, state="detached")
    assert server.gw.store.tier(grace) == 1
    [approved] = _mine(server, grace_token)
    assert (approved["status"], approved["tier"]) == ("approved", 1) and approved["staff_id"]

    other = "#c-kyc tr:has(td:text-is('alan@example.com'))"
    officer.fill(f"{other} input", "the passport photo is blurred")
    officer.click(f"{other} button:text('Reject')")
    officer.wait_for_selector("#c-kyc-msg[data-kind='ok']:text-matches('rejected')")
    officer.wait_for_selector("#c-kyc td:text('no KYC submission is waiting')")
    [rejected] = _mine(server, alan_token)
    assert (rejected["status"], rejected["reason"]) == ("rejected", "the passport photo is blurred")
    assert server.gw.store.tier(alan) == 0
    pages.shot(officer, "console-kyc")
    # The auditor's refused approval (403); no custody or AML here, so those panels' 404s.
    pages.no_errors(403, 404)
