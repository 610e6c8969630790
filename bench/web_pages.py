"""How fast the pages load with a 1,000-level book, and the README's screenshots of each page.

A gateway in this process (a temporary data directory, demo markets) gets a BTCUSDT book of
1,000 bid and 1,000 ask levels and a few trades, placed as journaled engine commands by two
funded accounts. Debian's Chromium (``/usr/bin/chromium``) driven by Playwright then opens the
trading page and the console ``--runs`` times each, in a fresh browser context (cold cache)
every time, and reports the median and worst of:

- ``load``: navigation start to the ``load`` event (HTML, scripts, styles);
- ``ready``: navigation start until the page's own mark: on the trading page the first book
  drawn in sync (stream connected, the ``limit=5000`` REST snapshot fetched and applied, rows
  and depth chart drawn: ``kootabase:book-drawn``), on the console the first health drawn
  (``kootabase:health-drawn``);
- renderer main-thread time (Chromium's ``TaskDuration`` up to ``ready``): the page's own CPU
  cost, less sensitive to other load on the machine than the wall-clock times.

``--screenshots DIR`` writes ``trade.png``, ``trade-phone.png`` and ``console.png`` there
(``make screenshots``: ``docs/img``). Figures depend on the machine's load: say so with them.

    python -m bench.web_pages [--runs 7] [--screenshots docs/img]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from engine.schema import OrderType, PlaceOrder, Side, TimeInForce
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
    # Two makers: an account may have at most 1,000 open orders (the engine's bound).
    bidder = await admin.create_account()
    asker = await admin.create_account()
    taker = await admin.create_account()
    for key in (bidder, asker, taker):
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
        qty = lot * (50 + (i * 37) % 500)
        commands.append(order(bidder.account_id, Side.BUY, mid - i * tick * 5, qty))
        commands.append(order(asker.account_id, Side.SELL, mid + i * tick * 5, qty))
    for i in range(0, len(commands), 200):
        await asyncio.gather(*(gw.trading.execute(c.account_id, c) for c in commands[i : i + 200]))
    for i, (side, price) in enumerate(
        [(Side.BUY, mid + tick * 5), (Side.SELL, mid - tick * 5)] * 3
    ):
        await gw.trading.execute(
            taker.account_id, order(taker.account_id, side, price, lot * (10 + i))
        )
    return asker.account_id, taker.account_id


async def traffic(gw: Gateway, taker: int, seconds: float) -> None:
    """Small crossing orders from the taker, alternately buying and selling one lot-ten."""
    market = gw.store.market("BTCUSDT")
    assert market is not None
    mid = 30_000 * 10**market.quote.decimals
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        side = Side.BUY if i % 2 == 0 else Side.SELL
        price = mid + market.tick * 50 if side == Side.BUY else mid - market.tick * 50
        await gw.trading.execute(
            taker,
            PlaceOrder(
                account_id=taker,
                market_id=market.market_id,
                side=int(side),
                order_type=int(OrderType.LIMIT),
                time_in_force=int(TimeInForce.IOC),
                price_atoms=price,
                qty_atoms=market.lot * 10,
            ),
        )
        i += 1
        await asyncio.sleep(0.02)


def measure(browser: Any, url: str, ready_js: str, mark: str, runs: int) -> dict[str, float]:
    loads, lives, tasks = [], [], []
    for _ in range(runs):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url)
        page.wait_for_function(ready_js, timeout=30_000)
        nav = page.evaluate(
            "m => [performance.getEntriesByType('navigation')[0].loadEventEnd,"
            " performance.getEntriesByName(m)[0].startTime]",
            mark,
        )
        loads.append(nav[0])
        lives.append(nav[1])
        got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        tasks.append(got["TaskDuration"] * 1000)
        ctx.close()
    return {
        "load_median_ms": statistics.median(loads),
        "load_max_ms": max(loads),
        "ready_median_ms": statistics.median(lives),
        "ready_max_ms": max(lives),
        "main_thread_median_ms": statistics.median(tasks),
    }


LIVE_JS = (
    "() => document.querySelector('#feed-state')?.dataset.state === 'live'"
    " && document.querySelectorAll('#bids tr').length >= 15"
    " && performance.getEntriesByName('kootabase:book-drawn').length > 0"
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
            _, taker = server.call(fill_book(server.gw))
            base = server.running.http
            with urllib.request.urlopen(f"{base}/api/v3/depth?symbol=BTCUSDT&limit=5000") as r:
                depth = json.load(r)
            with urllib.request.urlopen(f"{base}/api/v3/trades?symbol=BTCUSDT") as r:
                trades = json.load(r)
            # Each taker order ate part of one level: the book keeps its 1,000 levels a side.
            got = (len(depth["bids"]), len(depth["asks"]), len(trades))
            assert got == (LEVELS, LEVELS, 6), got
            print(
                f"book: {LEVELS} bids + {LEVELS} asks and 6 trades"
                f" in {time.perf_counter() - started:.1f} s"
            )
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
                for name, path, ready, mark in (
                    ("trading page", "/?symbol=BTCUSDT", LIVE_JS, "kootabase:book-drawn"),
                    ("console", "/console", CONSOLE_JS, "kootabase:health-drawn"),
                ):
                    r = measure(browser, base + path, ready, mark, args.runs)
                    print(
                        f"{name}: load event median {r['load_median_ms']:.0f} ms"
                        f" (max {r['load_max_ms']:.0f}); ready median"
                        f" {r['ready_median_ms']:.0f} ms (max {r['ready_max_ms']:.0f});"
                        f" renderer main-thread busy {r['main_thread_median_ms']:.0f} ms"
                        f" (median); {args.runs} cold loads"
                    )
                if args.screenshots:
                    # Some trading while the console samples its metrics (curves, not lines).
                    asyncio.run_coroutine_threadsafe(traffic(server.gw, taker, 14.0), server.loop)
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
    page.click("#c-tab-token")
    page.fill("#c-token", admin_token)
    page.click("#c-login button[type='submit']")
    page.wait_for_selector("#c-markets tr")
    page.wait_for_timeout(7_000)  # a few metric samples while the traffic runs
    page.screenshot(path=str(out / "console.png"))
    ctx.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
