"""The order flow of the history tests, and the checks that page the whole history back.

One account (the load account) places orders of several kinds over the WS API, pipelined:
limits that rest and are cancelled, IOC limits that expire, LIMIT_MAKER orders, market
buys by quote amount, and bids and IOC buys that a second account fills or feeds (trades).
Every order carries a client order id ``h<n>``; every twelfth (an IOC) reuses ``again`` (so
"the latest order that used it" has many candidates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.client import ClientError, WsApiClient

SYMBOL = "BTCUSDT"
WINDOW = 64
"""Requests in flight per connection."""


@dataclass
class Acked:
    orders: dict[int, str] = field(default_factory=dict)
    """order id -> client order id of every acknowledged order.place."""
    first_id: int = 0
    first_cid: str = ""
    again_latest: int = 0
    """The newest acknowledged order that used client id ``again``."""


def client_id(n: int, tag: str) -> str:
    return "again" if n % 12 == 1 else f"{tag}{n}"  # only IOC orders (never open when reused)


KINDS: list[dict[str, str]] = [
    # 0: rests, then cancelled
    {"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "1000", "timeInForce": "GTC"},
    # 1: IOC with nothing to match: expired
    {"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "1000", "timeInForce": "IOC"},
    # 2: a bid that rests as maker; the taker sells into it: a trade
    {"side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "70000", "timeInForce": "GTC"},
    # 3: LIMIT_MAKER far away, cancelled
    {"side": "SELL", "type": "LIMIT_MAKER", "quantity": "0.001", "price": "200000"},
    # 4: market buy by quote: fills what rests (or expires with nothing)
    {"side": "BUY", "type": "MARKET", "quoteOrderQty": "10"},
    # 5: takes liquidity the taker account rests first: filled as taker
    {"side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "80000", "timeInForce": "IOC"},
]


async def _one(n: int, c: WsApiClient, taker: WsApiClient, acked: Acked, tag: str) -> None:
    kind = n % len(KINDS)
    cid = client_id(n, tag)
    if kind == 5:
        await taker.request(
            "order.place",
            {
                "symbol": SYMBOL,
                "side": "SELL",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": "80000",
                "timeInForce": "GTC",
            },
            signed=True,
        )
    params = {"symbol": SYMBOL, **KINDS[kind], "newClientOrderId": cid}
    r = await c.request("order.place", params, signed=True)
    _ack(acked, r["orderId"], cid)
    if kind in (0, 3):
        await c.cancel_order(SYMBOL, order_id=r["orderId"])
    elif kind == 2:
        await taker.request(
            "order.place",
            {
                "symbol": SYMBOL,
                "side": "SELL",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": "70000",
                "timeInForce": "IOC",
            },
            signed=True,
        )


def _ack(acked: Acked, order_id: int, cid: str) -> None:
    acked.orders[order_id] = cid
    if not acked.first_id or order_id < acked.first_id:
        acked.first_id, acked.first_cid = order_id, cid
    if cid == "again" and order_id > acked.again_latest:
        acked.again_latest = order_id


async def place_many(
    ws_url: str,
    creds: Any,
    taker_creds: Any,
    count: int,
    acked: Acked,
    on_progress: Callable[[int], None] | None = None,
    tag: str = "h",
) -> None:
    """Place ``count`` orders (numbered from ``len(acked.orders)``), ``WINDOW`` at a time.
    Orders of one kind stay in one sequence so a cancel follows its own placement."""
    async with (
        WsApiClient.connect(ws_url, creds) as c,
        WsApiClient.connect(ws_url, taker_creds) as t,
    ):
        await c.logon()
        await t.logon()
        start = len(acked.orders)
        sem = asyncio.Semaphore(WINDOW)

        async def task(n: int) -> None:
            async with sem:
                await _one(n, c, t, acked, tag)
                if on_progress is not None:
                    on_progress(len(acked.orders))

        await asyncio.gather(*(task(n) for n in range(start, start + count)))


async def page_all_orders(c: WsApiClient, *, by: str) -> list[dict[str, Any]]:
    """The whole allOrders history, oldest first, by ``orderId`` or by ``startTime``."""
    out: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    params: dict[str, Any] = {"symbol": SYMBOL, "limit": 1000}
    params["orderId" if by == "orderId" else "startTime"] = 0
    while True:
        page = await c.request("allOrders", params, signed=True)
        new = [o for o in page if o["orderId"] not in out]
        assert [o["orderId"] for o in page] == sorted(o["orderId"] for o in page)
        for o in new:
            out[o["orderId"]] = o
            order.append(o["orderId"])
        if len(page) < 1000:
            break
        assert new, "a full page with nothing new: paging does not advance"
        if by == "orderId":
            params["orderId"] = page[-1]["orderId"] + 1
        else:
            params["startTime"] = page[-1]["time"]
    assert order == sorted(order)
    return [out[i] for i in order]


async def page_my_trades(c: WsApiClient, *, by: str) -> list[dict[str, Any]]:
    """The whole myTrades history, oldest first, by ``fromId`` or by ``startTime``."""
    out: dict[tuple[int, int], dict[str, Any]] = {}
    params: dict[str, Any] = {"symbol": SYMBOL, "limit": 1000}
    params["fromId" if by == "fromId" else "startTime"] = 0
    while True:
        page = await c.request("myTrades", params, signed=True)
        keys = [(t["id"], t["orderId"]) for t in page]
        assert keys == sorted(keys)
        new = [k for k in keys if k not in out]
        for t in page:
            out[(t["id"], t["orderId"])] = t
        if len(page) < 1000:
            break
        assert new, "a full page with nothing new: paging does not advance"
        if by == "fromId":
            params["fromId"] = page[-1]["id"] + 1
        else:
            params["startTime"] = page[-1]["time"]
    return [out[k] for k in sorted(out)]


async def check_history(
    ws_url: str, creds: Any, acked: Acked, expected_trades: int | None = None
) -> dict[str, Any]:
    """Every acknowledged order is found, by id and client id, and both paging modes give
    the same complete history with nothing duplicated. Returns a summary."""
    async with WsApiClient.connect(ws_url, creds) as c:
        await c.logon()
        first = await c.order_status(SYMBOL, order_id=acked.first_id)
        assert first["orderId"] == acked.first_id
        assert first["clientOrderId"] == acked.first_cid
        by_cid = await c.order_status(SYMBOL, client_order_id=acked.first_cid)
        assert by_cid["orderId"] == acked.first_id
        latest = await c.order_status(SYMBOL, client_order_id="again")
        assert latest["orderId"] >= acked.again_latest
        by_id = await page_all_orders(c, by="orderId")
        by_time = await page_all_orders(c, by="startTime")
        ids = [o["orderId"] for o in by_id]
        assert len(ids) == len(set(ids)), "an order listed twice"
        assert ids == [o["orderId"] for o in by_time]
        missing = set(acked.orders) - set(ids)
        assert not missing, f"{len(missing)} acknowledged orders missing: {sorted(missing)[:5]}"
        statuses: dict[str, int] = {}
        for o in by_id:
            statuses[o["status"]] = statuses.get(o["status"], 0) + 1
            if o["orderId"] in acked.orders:
                assert o["clientOrderId"] == acked.orders[o["orderId"]]
        trades_id = await page_my_trades(c, by="fromId")
        trades_time = await page_my_trades(c, by="startTime")
        assert trades_id == trades_time
        if expected_trades is not None:
            assert len(trades_id) == expected_trades
        filled = {o["orderId"] for o in by_id if o["status"] == "FILLED"}
        traded = {t["orderId"] for t in trades_id}
        assert traded <= set(ids) and filled <= traded
        one = min(filled)
        of_order = await c.request("myTrades", {"symbol": SYMBOL, "orderId": one}, signed=True)
        assert of_order == [t for t in trades_id if t["orderId"] == one] and of_order
        newest = await c.request("allOrders", {"symbol": SYMBOL, "limit": 5}, signed=True)
        assert [o["orderId"] for o in newest] == ids[-5:]
        try:
            await c.order_status(SYMBOL, order_id=max(ids) + 10_000_000)
            raise AssertionError("an unknown order was found")
        except ClientError as exc:
            assert exc.code == -2013
        return {"orders": len(ids), "trades": len(trades_id), "statuses": statuses}
