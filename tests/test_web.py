"""The trading page and the operations console in a real browser (issue 16).

Debian's Chromium (``/usr/bin/chromium``, installed by ``scripts/install-nodes.sh``) driven by
Playwright, headless, against a real gateway on a real port with a real journal: nothing is
mocked. The tests fail, never skip, when Chromium or the built pages (``make web``) are
missing. One server and one browser for the module; the tests run in file order and build on
each other (the trade of the second is in the book the third resyncs to).

Screenshots of each page go to ``test-artifacts/web/`` (gitignored; ``KOOTABASE_ARTIFACTS``
moves it); every page's console errors and uncaught exceptions fail the test that opened it.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from gateway.admin import Admin
from tests.gateway_support import ServerThread, http, signed_query
from tests.web_support import (
    TIMEOUT_MS,
    Pages,
    Tamper,
    balances,
    browser_pages,
    make_staff,
    page_book,
    place,
    require_browser,
    server_depth,
    staff_console,
    ticket,
    wait_live,
)

PASSWORD = "correct horse battery"
BALANCE_SHOWN = """([asset, free, held]) => {
  const row = document.querySelector(`#balances tr[data-asset=${asset}]`);
  return row && row.children[1].textContent === free && row.children[2].textContent === held;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    require_browser()
    srv = ServerThread(tmp_path_factory.mktemp("web"), fixture_accounts=False)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pages(server: ServerThread) -> Iterator[Pages]:
    with browser_pages(server.http) as p:
        yield p


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    """What one test leaves for the next (the module is one story)."""
    return {}


def test_pages_are_served_with_a_strict_policy(server: ServerThread) -> None:
    for path in ("/", "/console"):
        with urllib.request.urlopen(server.http + path, timeout=10) as resp:
            html = resp.read().decode()
            headers = resp.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "Set-Cookie" not in headers
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
        asset = re.search(r'src="(/web/assets/[^"]+\.js)"', html)
        assert asset is not None
        with urllib.request.urlopen(server.http + asset.group(1), timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/javascript")
            assert "immutable" in resp.headers["Cache-Control"]
    for bad in ("/web/assets/nope.js", "/web/assets/..%2Findex.html", "/web/assets/x.exe"):
        status, _, _ = http("GET", server.http + bad)
        assert status == 404, bad


def test_market_state_endpoint_refuses_bad_input(server: ServerThread) -> None:
    """The console's halt/resume endpoint: loopback and token, then a clear refusal for a bad
    symbol, state or body, with nothing journaled."""
    url = f"{server.http}/admin/markets/state"
    token = {"X-Kootabase-Admin-Token": server.gw.admin_token, "Content-Type": "application/json"}
    before = server.seq_and_hash()
    cases = [
        ({"Content-Type": "application/json"}, {"symbol": "BTCUSDT", "state": "HALTED"}, 403),
        (token, {"symbol": "NOPE", "state": "HALTED"}, 400),
        (token, {"symbol": "BTCUSDT", "state": "CLOSED"}, 400),
        (token, {"symbol": "BTCUSDT"}, 400),
        (token, ["BTCUSDT"], 400),
    ]
    for headers, body, want in cases:
        status, _, answer = http("POST", url, body=json.dumps(body), headers=headers)
        assert status == want, (body, answer)
        if want == 400:
            assert isinstance(answer["code"], int) and answer["msg"], answer
    assert server.seq_and_hash() == before
    status, _, listing = http("GET", f"{server.http}/admin/markets", headers=token)
    assert status == 200
    assert {m["symbol"]: m["state"] for m in listing} == {
        "BTCUSDT": "OPEN",
        "ETHUSDT": "OPEN",
        "LTCUSDT": "OPEN",
    }


def test_admin_overview_needs_the_token_and_is_the_staff_overview(server: ServerThread) -> None:
    url = f"{server.http}/admin/health/overview"
    assert http("GET", url)[0] == 403
    assert http("GET", url, headers={"X-Kootabase-Admin-Token": "wrong"})[0] == 403
    status, _, body = http("GET", url, headers={"X-Kootabase-Admin-Token": server.gw.admin_token})
    assert status == 200, body
    o = body
    assert (o["mode"], o["agreement"], o["self"]["replica"]) == ("single", "single", "local")
    token = {"X-Kootabase-Admin-Token": server.gw.admin_token}
    assert http("POST", url, headers=token)[0] == 404  # read-only


def test_trade_between_two_users(server: ServerThread, pages: Pages, state: dict[str, Any]) -> None:
    # Seller: a back-office user who signs up here and is funded by an operator deposit.
    status, _, user = http(
        "POST",
        f"{server.http}/api/v1/auth/signup",
        body=json.dumps({"email": "ada@example.com", "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, user
    seller_id = user["account_id"]
    server.call(Admin(server.gw).deposit(seller_id, "BTC", "1.5"))
    server.call(Admin(server.gw).deposit(seller_id, "USDT", "100"))
    # Buyer: an operator-made API key, used through the page's API key form.
    buyer = server.new_account(USDT="20000")
    buyer_id = server.gw.keys.get(buyer.api_key).account_id  # type: ignore[union-attr]

    seller = pages.open("/?symbol=BTCUSDT")
    wait_live(seller)
    seller.fill("#email", "ada@example.com")
    seller.fill("#password", PASSWORD)
    seller.click("#do-login")
    seller.wait_for_selector("#ticket:not([hidden])")
    seller.wait_for_selector("#balances tr[data-asset='BTC']")
    seller.click("#side-sell")
    seller.select_option("#o-type", "LIMIT")
    seller.fill("#o-price", "25000.5")
    seller.fill("#o-qty", "0.5")
    assert seller.text_content("#o-total") == "Total 12500.25 USDT"
    seller.click("#o-submit")
    seller.wait_for_selector("#ticket-msg[data-kind='ok']")
    assert "NEW" in seller.text_content("#ticket-msg")
    ask = server_depth(server, "BTCUSDT")["asks"][0]
    assert ask == ["25000.500000", "0.50000000"]
    seller.wait_for_selector("#asks tr[data-price='25000.500000']")
    assert page_book(seller)["asks"][0] == ask
    seller.wait_for_selector("#open-orders tr[data-order-id]")
    cells = seller.eval_on_selector_all(
        "#open-orders tr[data-order-id] td", "tds => tds.map(t => t.textContent)"
    )
    assert cells[1:7] == ["SELL", "LIMIT", "25000.500000", "0.50000000", "0.00000000", "NEW"]
    pages.shot(seller, "trade-seller-resting")

    buyer_page = pages.open("/?symbol=BTCUSDT", viewport={"width": 1280, "height": 900})
    buyer_page.click("#tab-key")
    buyer_page.fill("#api-key", buyer.api_key)
    buyer_page.fill("#api-secret", buyer.secret)  # type: ignore[arg-type]
    buyer_page.click("#do-key-login")
    buyer_page.wait_for_selector("#balances tr[data-asset='USDT']")
    for page in (seller, buyer_page):  # each account's own events, live over the WS API
        page.wait_for_selector("#who[data-stream='live']")
    wait_live(buyer_page)
    buyer_page.select_option("#o-type", "LIMIT")
    buyer_page.fill("#o-price", "25000.50")
    buyer_page.fill("#o-qty", "0.2")
    buyer_page.select_option("#o-tif", "IOC")
    buyer_page.click("#o-submit")
    buyer_page.wait_for_selector("#ticket-msg[data-kind='ok']")
    assert "FILLED" in buyer_page.text_content("#ticket-msg")

    # The trade, the candle, the book and the balances, to the exact decimal, on both pages.
    for page in (seller, buyer_page):
        page.wait_for_function(
            "() => document.querySelector('#trades tr td')?.textContent === '25000.500000'"
        )
        page.wait_for_function(
            "() => document.querySelector('#last-candle').textContent.includes('C 25000.500000')"
        )
        page.wait_for_function(
            "() => document.querySelector('#asks tr[data-price=\"25000.500000\"] td:last-child')"
            "?.textContent === '0.30000000'"
        )
    klines = http("GET", f"{server.http}/api/v3/klines", query="symbol=BTCUSDT&interval=1m")[2]
    assert klines[-1][4] == "25000.500000" and klines[-1][5] == "0.20000000"
    # Seller (maker, SELL 0.2 at 25000.5): receives 5000.1 USDT less the 0.1 % fee 5.0001;
    # still holds 0.3 BTC for the rest of the order. Buyer pays 5000.1 + 5.0001 USDT.
    expect_seller = {"BTC": ("1.00000000", "0.30000000"), "USDT": ("5095.099900", "0.000000")}
    expect_buyer = {"BTC": ("0.20000000", "0.00000000"), "USDT": ("14994.899900", "0.000000")}
    assert Decimal("100") + Decimal("5000.1") - Decimal("5.0001") == Decimal("5095.0999")
    assert Decimal("20000") - Decimal("5000.1") - Decimal("5.0001") == Decimal("14994.8999")
    for page, account_id, expect in (
        (seller, seller_id, expect_seller),
        (buyer_page, buyer_id, expect_buyer),
    ):
        server_side = balances(server, account_id)
        for asset, (free, held) in expect.items():
            assert (server_side[asset]["free"], server_side[asset]["locked"]) == (free, held)
            page.wait_for_function(BALANCE_SHOWN, arg=[asset, free, held])
    seller.wait_for_function(
        "() => document.querySelector('#open-orders tr[data-order-id] td:nth-child(6)')"
        "?.textContent === '0.20000000'"
    )
    seller.click("[data-tab='fills']")
    fill = seller.eval_on_selector_all("#trade-history tr td", "tds => tds.map(t => t.textContent)")
    assert fill[1:7] == [
        "SELL",
        "25000.500000",
        "0.20000000",
        "5000.100000",
        "5.000100 USDT",
        "maker",
    ]
    pages.shot(seller, "trade-seller-after-fill")
    pages.shot(buyer_page, "trade-buyer")

    # Amend (keep priority, lower quantity) and cancel from the open orders table.
    seller.click("[data-tab='open']")
    seller.click("#open-orders tr[data-order-id] button:text('Amend')")
    seller.fill("#open-orders input[aria-label='New quantity']", "0.4")
    seller.click("#open-orders button:text('Save')")
    seller.wait_for_function(
        "() => document.querySelector('#asks tr[data-price=\"25000.500000\"] td:last-child')"
        "?.textContent === '0.20000000'"
    )
    # No custody on this server: the funds tab says so with the venue's code.
    seller.click("[data-tab='funds']")
    seller.wait_for_function(
        "() => document.querySelector('#f-address').textContent.includes('(-4008)')"
    )
    state.update(seller=seller, buyer=buyer_page, buyer_creds=buyer)
    pages.no_errors(400)


def test_resync_after_the_server_drops_the_stream(
    server: ServerThread, pages: Pages, state: dict[str, Any]
) -> None:
    page = state["seller"]
    wait_live(page)
    before = int(page.get_attribute("#feed-state", "data-resyncs") or 0)

    def drop() -> int:
        hub = server.gw.marketdata.hub
        subs = [s for g in list(hub._groups.values()) for s in g.members]
        for s in subs:
            s.transport.abort()
        return len(subs)

    async def drop_on_loop() -> int:
        return drop()

    # Change the book while the pages are cut off: they can only see it by resyncing.
    assert server.call(drop_on_loop()) >= 2
    buyer = state["buyer_creds"]
    q = signed_query(
        buyer,
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.0123",
            "price": "24000",
        },
    )
    status, _, body = http(
        "POST", f"{server.http}/api/v3/order", body=q, headers={"X-MBX-APIKEY": buyer.api_key}
    )
    assert status == 200, body
    page.wait_for_function(
        "n => Number(document.querySelector('#feed-state').dataset.resyncs) > n", arg=before
    )
    wait_live(page)
    page.wait_for_selector("#bids tr[data-price='24000.000000']")
    depth = server_depth(server, "BTCUSDT")
    shown = page_book(page)
    assert shown["bids"] == depth["bids"][: len(shown["bids"])]
    assert shown["asks"] == depth["asks"][: len(shown["asks"])]
    assert page.get_attribute("#spread", "data-last-update-id") == str(depth["lastUpdateId"])
    pages.no_errors()


def test_resync_after_a_lost_or_corrupted_diff(
    server: ServerThread, pages: Pages, state: dict[str, Any]
) -> None:
    ctx = pages.browser.new_context()
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: pages.errors.append(m.text) if m.type == "error" else None)
    tamper = Tamper()
    page.route_web_socket(re.compile(r".*/stream\?.*"), tamper.route)
    page.goto(f"{server.http}/?symbol=ETHUSDT")
    wait_live(page)
    buyer = state["buyer_creds"]
    price = 1000
    for what in ("drop", "corrupt"):
        resyncs = int(page.get_attribute("#feed-state", "data-resyncs") or 0)
        tamper.pending = what
        for _ in range(2):  # the tampered diff, then (a diff per 100 ms) one after the gap
            price += 1
            place(server, buyer, symbol="ETHUSDT", side="BUY", quantity="0.01", price=str(price))
            for _ in range(100):
                if tamper.pending is None:
                    break
                page.wait_for_timeout(50)  # Playwright runs the relay only while waiting
            assert tamper.pending is None, "the diff never came"
        page.wait_for_function(
            "n => Number(document.querySelector('#feed-state').dataset.resyncs) > n", arg=resyncs
        )
        wait_live(page)
        page.wait_for_selector(f"#bids tr[data-price='{price}.000000']")
        depth = server_depth(server, "ETHUSDT")
        assert page_book(page)["bids"] == depth["bids"][:15], what
        assert page.get_attribute("#spread", "data-last-update-id") == str(depth["lastUpdateId"])
    assert tamper.done == ["drop", "corrupt"]
    ctx.close()
    pages.no_errors()


def test_console_halts_a_market_and_the_page_refuses_orders(
    server: ServerThread, pages: Pages, state: dict[str, Any]
) -> None:
    console = pages.open("/console")
    console.click("#c-tab-token")
    console.fill("#c-token", "not the token")
    console.click("#c-login button[type='submit']")
    console.wait_for_selector("#c-login-msg[data-kind='error']")
    pages.no_errors(403)  # the refused token
    console.fill("#c-token", server.gw.admin_token)
    console.click("#c-login button[type='submit']")
    console.wait_for_selector("#c-markets tr[data-symbol='BTCUSDT']")
    console.wait_for_selector("#c-checks tr")
    assert console.text_content("#c-ready") == "ready"
    # Venue health, as the staff console shows it (it was missing with the admin token).
    console.wait_for_selector("#c-overview[data-agreement='single'] tr")
    assert "local (this)" in console.inner_text("#c-overview")
    console.click("#c-markets tr[data-symbol='BTCUSDT'] button[data-state='HALTED']")
    console.wait_for_selector("#c-markets tr[data-symbol='BTCUSDT'] .m-state:text('HALTED')")
    console.wait_for_function("() => document.querySelectorAll('#c-accounts tr').length >= 2")
    # Metrics over time, sampled from the server's /metrics: the halt's sequence shows.
    console.wait_for_function(
        "seq => document.querySelector('[data-metric=seq]').textContent === seq",
        arg=str(server.gw.last_seq),
    )
    assert console.text_content("[data-metric=history]").isdigit()
    pages.shot(console, "console")

    buyer = state["buyer"]
    buyer.fill("#o-price", "25000.5")
    buyer.fill("#o-qty", "0.01")
    buyer.click("#o-submit")
    buyer.wait_for_selector("#ticket-msg[data-kind='error']")
    assert buyer.text_content("#ticket-msg") == "Market is closed. (-2010)"
    pages.no_errors(400)  # the refused order

    console.click("#c-markets tr[data-symbol='BTCUSDT'] button[data-state='OPEN']")
    console.wait_for_selector("#c-markets tr[data-symbol='BTCUSDT'] .m-state:text('OPEN')")
    buyer.click("#o-submit")
    buyer.wait_for_selector("#ticket-msg[data-kind='ok']")
    # Market-data lag: the resting order's depth diff went out to the pages' streams; the
    # server times it from the engine's timestamp and the console draws the p99 (a bucket
    # bound, ms) from the samples around it.
    console.wait_for_function(
        "() => parseFloat(document.querySelector('[data-metric=mdlag]').textContent) > 0"
    )
    assert float(console.text_content("[data-metric=mdlag]")) <= 1500
    status, _, text = http("GET", server.http + "/metrics")
    assert status == 200
    (count,) = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("kootabase_marketdata_lag_seconds_count")
    ]
    assert count >= 1, text
    pages.no_errors()


def test_console_staff_session_halts_and_the_audit_names_them(
    server: ServerThread, pages: Pages, state: dict[str, Any]
) -> None:
    """Staff log in with password and TOTP (the operator API, roles checked there); the halt
    they make is journaled with their id and read back in the console's audit log."""
    from backoffice.routes import BACKOFFICE_KEY

    secret = make_staff(server, "ops@example.com", "admin")
    console = staff_console(pages, "ops@example.com", secret)
    console.wait_for_selector("#c-markets tr[data-symbol='ETHUSDT']")
    assert console.text_content("#c-who") == "ops@example.com (admin)"
    console.click("#c-markets tr[data-symbol='ETHUSDT'] button[data-state='CANCEL_ONLY']")
    console.wait_for_selector("#c-markets tr[data-symbol='ETHUSDT'] .m-state:text('CANCEL_ONLY')")
    console.wait_for_selector("#c-audit tr:first-child td:text('ETHUSDT CANCEL_ONLY')")
    entry = console.eval_on_selector_all(
        "#c-audit tr:first-child td", "t => t.map(x => x.textContent)"
    )
    bo = server.running.runner.app[BACKOFFICE_KEY]
    staff_id = server.call(bo.staff.store.by_email("ops@example.com")).staff_id
    assert entry[2:] == [staff_id, "set_market_state", "ETHUSDT CANCEL_ONLY"], entry
    # The earlier halt through the admin token is there too, named as such.
    assert console.is_visible("#c-audit td:text('(admin token)')")
    # Searched by staff id, only theirs remain.
    console.fill("#c-audit-staff", staff_id)
    console.click("#c-audit-search button")
    console.wait_for_selector("#c-audit td:text('(admin token)')", state="detached")
    staff_cells = console.eval_on_selector_all(
        "#c-audit tr td:nth-child(3)", "t => t.map(x => x.textContent)"
    )
    assert staff_cells and set(staff_cells) == {staff_id}, staff_cells
    # Freeze the seller's account from the console: their page's next order gets the venue's
    # refusal; unfrozen, it goes through.
    seller = state["seller"]
    acct = "#c-accounts tr[data-account-id='1']"
    console.wait_for_selector(f"{acct} td:text('ada@example.com')")
    console.click(f"{acct} button:text('Freeze')")
    console.wait_for_selector(f"{acct} td:text-matches('FROZEN')")
    ticket(seller, "SELL", "LIMIT", price="26000", qty="0.01", tif="GTC")
    assert seller.text_content("#ticket-msg") == (
        "This account is frozen: no new orders, amends that add exposure or withdrawals; "
        "cancels work. (-2010)"
    )
    console.click(f"{acct} button:text('Unfreeze')")
    console.wait_for_selector(f"{acct} button:text('Freeze')")
    assert "NEW" in ticket(seller, "SELL", "LIMIT", price="26000", qty="0.01", tif="GTC")
    console.click("#c-markets tr[data-symbol='ETHUSDT'] button[data-state='OPEN']")
    console.wait_for_selector("#c-markets tr[data-symbol='ETHUSDT'] .m-state:text('OPEN')")
    pages.shot(console, "console-staff")
    console.click("#c-logout")
    console.wait_for_selector("#c-staff-login:not([hidden])")
    # No custody on this server: the four-eyes panel says so (the operator API's 404); the
    # frozen account's order was refused (400).
    pages.no_errors(400, 404)


def test_ticket_order_types(server: ServerThread, pages: Pages, state: dict[str, Any]) -> None:
    """Every kind of order the ticket offers reaches the venue with the right parameters."""
    page, creds = state["buyer"], state["buyer_creds"]
    page.fill("#o-iceberg", "")
    assert ticket(page, "BUY", "LIMIT", price="25000.5", qty="0.001", post="yes").endswith(
        "(-2010)"
    )  # post-only that would take: the venue's refusal
    assert "NEW" in ticket(page, "BUY", "LIMIT", price="24500", qty="0.001", post="yes")
    assert "NEW" in ticket(
        page, "BUY", "LIMIT", price="24400", qty="0.01", iceberg="0.002", tif="GTC"
    )
    page.fill("#o-iceberg", "")
    assert "NEW" in ticket(
        page, "SELL", "STOP_LOSS_LIMIT", stop="20000", price="19999", qty="0.01", tif="GTC"
    )
    assert "NEW" in ticket(
        page, "SELL", "TAKE_PROFIT_LIMIT", stop="30000", price="30000", qty="0.01", tif="GTC"
    )
    assert "FILLED" in ticket(page, "BUY", "MARKET", by="quote", qty="100")
    assert "EXPIRED" in ticket(page, "BUY", "LIMIT", price="25000.5", qty="0.5", tif="FOK")
    pages.no_errors(400)  # the refused post-only order

    q = signed_query(creds, {"symbol": "BTCUSDT"})
    status, _, open_orders = http(
        "GET", f"{server.http}/api/v3/openOrders", query=q, headers={"X-MBX-APIKEY": creds.api_key}
    )
    assert status == 200, open_orders
    seen = {
        (o["type"], o["side"], o["price"], o["stopPrice"], o["origQty"], o["icebergQty"])
        for o in open_orders
    }
    assert {
        ("LIMIT_MAKER", "BUY", "24500.000000", "0.000000", "0.00100000", "0.00000000"),
        ("LIMIT", "BUY", "24400.000000", "0.000000", "0.01000000", "0.00200000"),
        ("STOP_LOSS_LIMIT", "SELL", "19999.000000", "20000.000000", "0.01000000", "0.00000000"),
        ("TAKE_PROFIT_LIMIT", "SELL", "30000.000000", "30000.000000", "0.01000000", "0.00000000"),
    } <= seen
    # The iceberg shows its visible slice only; the stops are on no book.
    page.wait_for_selector("#bids tr[data-price='24400.000000']")
    assert page_book(page)["bids"][:2] == [
        ["24500.000000", "0.00100000"],
        ["24400.000000", "0.00200000"],
    ]
    page.wait_for_selector("#open-orders tr[data-order-id] >> text=STOP_LOSS_LIMIT")
    pages.shot(page, "trade-order-types")
    # A book level picked with the keyboard fills the ticket's price.
    page.focus("#bids tr[data-price='24400.000000']")
    page.keyboard.press("Enter")
    assert page.input_value("#o-price") == "24400.000000"
    assert page.evaluate("() => document.activeElement.id") == "o-qty"


def test_phone_viewport_and_keyboard(server: ServerThread, pages: Pages) -> None:
    phone = pages.open("/?symbol=BTCUSDT", viewport={"width": 390, "height": 844}, is_mobile=True)
    wait_live(phone)
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the phone"

    def active() -> dict[str, str]:
        return phone.evaluate(  # type: ignore[no-any-return]
            "() => { const e = document.activeElement;"
            " return {id: e.id, cls: e.className, price: e.dataset.price || '',"
            " tab: String(e.tabIndex)}; }"
        )

    # The first Tab stop skips past the book and the charts to the account panel.
    phone.keyboard.press("Tab")
    assert active()["cls"] == "skip", active()
    phone.keyboard.press("Enter")
    phone.keyboard.press("Tab")
    assert active()["id"] == "tab-user", active()
    # Keyboard: the login form is reachable and submits with Enter.
    phone.focus("#email")
    phone.keyboard.type("nobody@example.com")
    phone.keyboard.press("Tab")
    phone.keyboard.type("wrong password!")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#login-msg[data-kind='error']")
    pages.no_errors(401)  # the refused login

    # The book is one Tab stop (after the market picker and the console link); the arrows
    # move between levels, asks (highest first) then bids, and the level keeps the focus
    # while the rows are redrawn.
    phone.focus("#market")
    phone.keyboard.press("Tab")
    phone.keyboard.press("Tab")
    rows = phone.eval_on_selector_all(
        "#asks tr[data-price], #bids tr[data-price]", "rs => rs.map(r => r.dataset.price)"
    )
    at = active()
    assert at["price"] in rows and at["tab"] == "0", (at, rows)
    phone.keyboard.press("ArrowUp")
    above = rows[max(0, rows.index(at["price"]) - 1)]
    assert active()["price"] == above, (active(), rows)
    # Log in with a key from the keyboard: the focus lands in the ticket, and back in the
    # login form after "Log out".
    creds = server.new_account(USDT="100")
    phone.focus("#tab-key")
    phone.keyboard.press("Enter")
    phone.keyboard.press("Tab")
    assert active()["id"] == "api-key", active()
    phone.keyboard.type(creds.api_key)
    phone.keyboard.press("Tab")
    phone.keyboard.type(creds.secret)
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#ticket:not([hidden])")
    assert active()["id"] == "o-price", active()
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the phone, logged in"
    pages.shot(phone, "trade-phone")
    phone.focus("#logout")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#login:not([hidden])")
    assert active()["id"] == "api-key", active()
    pages.no_errors()


def test_email_login_keys_end_with_their_session(
    server: ServerThread, pages: Pages, state: dict[str, Any]
) -> None:
    """An email login signs with a session key: a reload keeps it, a second tab gets its own,
    and "Log out" revokes the tab's key on the server (the other tab's stays)."""
    from backoffice.routes import BACKOFFICE_KEY

    seller = state["seller"]

    def key_of(page: Any) -> str:
        stored = page.evaluate("sessionStorage.getItem('kootabase.session')")
        return str(json.loads(stored)["apiKey"])

    first = key_of(seller)
    seller.reload()
    seller.wait_for_selector("#ticket:not([hidden])")
    assert key_of(seller) == first
    other = pages.open("/?symbol=BTCUSDT")
    other.fill("#email", "ada@example.com")
    other.fill("#password", PASSWORD)
    other.click("#do-login")
    other.wait_for_selector("#ticket:not([hidden])")
    second = key_of(other)
    assert second != first
    bo = server.running.runner.app[BACKOFFICE_KEY]
    bound = server.call(bo.store.db.fetch("SELECT api_key FROM bo_session_keys"))
    assert {first, second} <= {r["api_key"] for r in bound}
    assert server.gw.keys.get(first) is not None and server.gw.keys.get(second) is not None
    seller.click("#logout")
    seller.wait_for_selector("#login:not([hidden])")
    deadline = time.monotonic() + 10
    while server.gw.keys.get(first) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.gw.keys.get(first) is None, "the logged-out tab's key is still active"
    assert server.gw.keys.get(second) is not None
    other.wait_for_selector("#balances tr[data-asset='USDT']")
    pages.no_errors()
