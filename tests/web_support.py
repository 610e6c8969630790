"""Chromium driven by Playwright for the web tests (tests/test_web*.py): Debian's
``/usr/bin/chromium`` (``scripts/install-nodes.sh``), never a browser Playwright downloads.
A missing browser or build fails the tests (never skips)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.admin import Admin
from gateway.webui import WEB_DIST
from tests.gateway_support import ServerThread, http, signed_query

CHROMIUM = os.environ.get("KOOTABASE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("KOOTABASE_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")
)
TIMEOUT_MS = 10_000


def require_browser() -> None:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} missing: run `make nodes` (scripts/install-nodes.sh)")
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"{WEB_DIST} not built: run `make web`")


class Pages:
    """One browser; a context per user (sessionStorage is per tab); console errors kept."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base
        self.errors: list[str] = []
        self.shots = ARTIFACTS / "web"
        self.shots.mkdir(parents=True, exist_ok=True)

    def open(self, path: str, **context: Any) -> Any:
        ctx = self.browser.new_context(**context)
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on(
            "console",
            lambda m: self.errors.append(f"{path}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"{path}: {e}"))
        page.goto(self.base + path)
        return page

    def shot(self, page: Any, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def no_errors(self, *refused: int) -> None:
        """No console errors or uncaught exceptions since the last call, except Chromium's
        line for each answer with a status in ``refused`` (a refusal the test provoked and the
        page showed)."""
        errors, self.errors[:] = list(self.errors), []
        expected = tuple(f"the server responded with a status of {s} " for s in refused)
        errors = [e for e in errors if not any(x in e for x in expected)]
        assert errors == [], errors


@contextmanager
def browser_pages(base: str) -> Iterator[Pages]:
    """Headless Chromium for one test module."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield Pages(browser, base)
        finally:
            browser.close()


STAFF_PASSWORD = "correct horse battery staple"


def make_staff(server: Any, email: str, role: str) -> str:
    """A staff member made through the back office's own service (cheap argon2 parameters:
    the rules do not depend on them); returns the TOTP secret."""
    from argon2 import PasswordHasher

    from backoffice.passwords import Passwords
    from backoffice.roles import Role
    from backoffice.routes import BACKOFFICE_KEY

    bo = server.running.runner.app[BACKOFFICE_KEY]
    bo.staff.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8_192, parallelism=1))
    _, secret, _ = server.call(bo.staff.create(email, STAFF_PASSWORD, Role(role)))
    return str(secret)


def staff_console(pages: Pages, email: str, secret: str) -> Any:
    """A console page with this staff member logged in (password and a fresh TOTP code)."""
    import pyotp

    console = pages.open("/console")
    console.fill("#c-email", email)
    console.fill("#c-password", STAFF_PASSWORD)
    console.fill("#c-totp", pyotp.TOTP(secret).now())
    console.click("#c-staff-login button[type='submit']")
    console.wait_for_selector("#c-logout:not([hidden])")
    return console


# ---- what the web tests read and do (the server's truth, the page's view) -------------------


def balances(server: ServerThread, account_id: int) -> dict[str, dict[str, str]]:
    rows = server.call(account_list(server))
    return next(a["balances"] for a in rows if a["account_id"] == account_id)


async def account_list(server: ServerThread) -> list[dict[str, Any]]:
    return Admin(server.gw).list()


def server_depth(server: ServerThread, symbol: str) -> dict[str, Any]:
    status, _, body = http("GET", f"{server.http}/api/v3/depth", query=f"symbol={symbol}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def page_book(page: Any) -> dict[str, list[list[str]]]:
    def side(tbody: str) -> list[list[str]]:
        return page.eval_on_selector_all(
            f"#{tbody} tr",
            "rows => rows.map(r => [...r.children].map(td => td.textContent))",
        )

    return {"asks": list(reversed(side("asks"))), "bids": side("bids")}


def wait_live(page: Any) -> None:
    page.wait_for_selector("#feed-state[data-state='live']")


class Tamper:
    """Between the page and the real server, on the page's market-data socket: drops the
    next depth diff (a gap) or flips a bit of the next one's checksum (a corrupted book), as a
    lost or damaged message would, so the page must notice and resync by itself."""

    def __init__(self) -> None:
        self.pending: str | None = None
        self.done: list[str] = []

    def route(self, ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(lambda message: self.relay(ws, message))

    def relay(self, ws: Any, message: str | bytes) -> None:
        if self.pending and isinstance(message, str) and "@depth" in message[:40]:
            what, self.pending = self.pending, None
            self.done.append(what)
            if what == "drop":
                return
            msg = json.loads(message)
            msg["data"]["cs"] ^= 1
            message = json.dumps(msg)
        ws.send(message)


def place(server: ServerThread, creds: Any, **params: str) -> None:
    q = signed_query(creds, {"type": "LIMIT", "timeInForce": "GTC", **params})
    status, _, body = http(
        "POST", f"{server.http}/api/v3/order", body=q, headers={"X-MBX-APIKEY": creds.api_key}
    )
    assert status == 200, body


def ticket(page: Any, side: str, kind: str, **fields: str) -> str:
    """Fill the ticket as a person would, send it, and return what the page answered."""
    page.click("#side-buy" if side == "BUY" else "#side-sell")
    page.select_option("#o-type", kind)
    page.set_checked("#o-post", fields.pop("post", "") == "yes")
    for name, value in fields.items():
        if name in ("by", "tif"):
            page.select_option(f"#o-{name}", value)
        else:
            page.fill(f"#o-{name}", value)
    page.eval_on_selector("#ticket-msg", "e => { e.textContent = ''; e.dataset.kind = ''; }")
    page.click("#o-submit")
    page.wait_for_selector("#ticket-msg[data-kind='ok'], #ticket-msg[data-kind='error']")
    return page.text_content("#ticket-msg")  # type: ignore[no-any-return]
