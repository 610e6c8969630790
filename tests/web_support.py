"""Chromium driven by Playwright for the web tests (tests/test_web*.py): Debian's
``/usr/bin/chromium`` (``scripts/install-nodes.sh``), never a browser Playwright downloads.
A missing browser or build fails the tests (never skips)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.webui import WEB_DIST

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
