"""How fast the pages load with a 1,000-level book, and the README's screenshots of each page.

A gateway in this process (a temporary data directory, demo markets) gets a BTCUSDT book of
1,000 bid and 1,000 ask levels and a few trades, placed as journaled engine commands by two
funded accounts. Debian's Chromium (``/usr/bin/chromium``) driven by Playwright then opens the
trading page and the console ``--runs`` times each, in a fresh browser context (cold cache)
every time, and reports the median and worst of:

- ``load``: navigation start to the ``load`` event (HTML, scripts, styles);
- ``live``: navigation start until the book is in sync (the feed says ``live`` and the rows
  are drawn: the WebSocket connected, the 5,000-level REST snapshot fetched and applied).

``--screenshots DIR`` writes ``trade.png``, ``trade-phone.png`` and ``console.png`` there
(``make screenshots``: ``docs/img``). Figures depend on the machine's load: say so with them.

    python -m bench.web_pages [--runs 7] [--screenshots docs/img]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from engine.schema import OrderType, PlaceOrder, Side
from gateway.admin import Admin
from gateway.app import Gateway, GatewayConfig
from gateway.server import start

CHROMIUM = "/usr/bin/chromium"
LEVELS = 1_000


class Server:
    """The gateway on its own thread and loop (Playwright's sync API owns this thread)."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.gw = Gateway(
            GatewayConfig(data_dir=tmp / "data", master_key_file=tmp / "master.key", fsync=False)
        )
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.running = self.call(start(self.gw, "127.0.0.1", 0))

    def call(self, coro: Any, timeout: float = 300) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.call(self.running.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)


async def fill_book(gw: Gateway) -> tuple[int, int]:
    """1,000 bid levels below 30,000 and 1,000 ask levels above, then two trades."""
    admin = Admin(gw)
    maker = await admin.create_account()
    taker = await admin.create_account()
    for key in (maker, taker):
        await admin.deposit(key.account_id, "USDT", "100000000")
        await admin.deposit(key.account_id, "BTC", "1000")
    market = gw.store.market("BTCUSDT")
    assert market is not None
    tick, lot = market.tick, market.lot
    mid = 30_000 * 10**market.quote.decimals

    def order(account: int, side: Side, price: int, qty: int) -> PlaceOrder:
        return PlaceOrder(
            account_id=account,
            market_id=market.market_id,
            side=int(side),
            order_type=int(OrderType.LIMIT),
            price_atoms=price,
            qty_atoms=qty,
        )

    commands = []
    for i in range(1, LEVELS + 1):
        qty = lot * (1 + (i * 37) % 500)
        commands.append(order(maker.account_id, Side.BUY, mid - i * tick * 5, qty))
        commands.append(order(maker.account_id, Side.SELL, mid + i * tick * 5, qty))
    for i in range(0, len(commands), 200):
        await asyncio.gather(*(gw.trading.execute(c.account_id, c) for c in commands[i : i + 200]))
    for side, price in ((Side.BUY, mid + tick * 5), (Side.SELL, mid - tick * 5)):
        await gw.trading.execute(taker.account_id, order(taker.account_id, side, price, lot))
    return maker.account_id, taker.account_id


def measure(browser: Any, url: str, ready_js: str, runs: int) -> dict[str, float]:
    loads, lives = [], []
    for _ in range(runs):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_function(ready_js, timeout=30_000)
        nav = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return [n.loadEventEnd, performance.now()]; }"
        )
        loads.append(nav[0])
        lives.append(nav[1])
        ctx.close()
    return {
        "load_median_ms": statistics.median(loads),
        "load_max_ms": max(loads),
        "ready_median_ms": statistics.median(lives),
        "ready_max_ms": max(lives),
    }


LIVE_JS = (
    "() => document.querySelector('#feed-state')?.dataset.state === 'live'"
    " && document.querySelectorAll('#bids tr').length >= 15"
)
CONSOLE_JS = "() => document.querySelector('#c-checks tr') !== null"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, choices=range(1, 101), metavar="1..100")
    parser.add_argument("--screenshots", type=Path, help="write the README's screenshots here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            started = time.perf_counter()
            server.call(fill_book(server.gw))
            print(f"book: {LEVELS} bids + {LEVELS} asks in {time.perf_counter() - started:.1f} s")
            base = server.running.http
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
                for name, path, ready in (
                    ("trading page", "/?symbol=BTCUSDT", LIVE_JS),
                    ("console", "/console", CONSOLE_JS),
                ):
                    r = measure(browser, base + path, ready, args.runs)
                    print(
                        f"{name}: load event median {r['load_median_ms']:.0f} ms"
                        f" (max {r['load_max_ms']:.0f}); ready median"
                        f" {r['ready_median_ms']:.0f} ms (max {r['ready_max_ms']:.0f}),"
                        f" {args.runs} cold loads"
                    )
                if args.screenshots:
                    shots(browser, base, server.gw.admin_token, args.screenshots)
                browser.close()
        finally:
            server.stop()


def shots(browser: Any, base: str, admin_token: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("trade", (1440, 1000)), ("trade-phone", (390, 844))):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        page = ctx.new_page()
        page.goto(base + "/?symbol=BTCUSDT")
        page.wait_for_function(LIVE_JS, timeout=30_000)
        page.wait_for_timeout(500)  # charts draw on the next frames
        page.screenshot(path=str(out / f"{name}.png"))
        ctx.close()
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(base + "/console")
    page.fill("#c-token", admin_token)
    page.click("#c-login button[type='submit']")
    page.wait_for_selector("#c-markets tr")
    page.wait_for_timeout(4_500)  # two metric samples
    page.screenshot(path=str(out / "console.png"))
    ctx.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
