"""Market data over real sockets: a client syncing a local book from REST snapshot plus WS
diffs (checksums checked, gap and corruption injected), the L3 stream, slow consumers, and
clear errors for bad subscriptions and parameters. Server on 127.0.0.1, random port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from marketdata.app import create_app
from marketdata.book import BUY, SELL
from marketdata.client import DepthSyncClient
from marketdata.service import MarketDataService
from tests.marketdata_support import l2_of_image, l3_of_image, make_node, random_commands, start


@contextlib.asynccontextmanager
async def serve(service: MarketDataService) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(service, start_timers=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _wire_levels(service: MarketDataService, image: Any) -> tuple[list[Any], list[Any]]:
    info = service.state.markets[0].info
    bids, asks = l2_of_image(image, 0)
    return (
        [(info.price(p), info.qty(q)) for p, q in sorted(bids.items(), reverse=True)],
        [(info.price(p), info.qty(q)) for p, q in sorted(asks.items())],
    )


def test_client_keeps_an_exact_book_detects_gaps_and_resyncs(tmp_path: Path) -> None:
    async def run() -> None:
        service = MarketDataService()
        with make_node(tmp_path) as node:
            start(node, service)
            async with serve(service) as url, aiohttp.ClientSession() as session:
                client = DepthSyncClient(session, url, "BTCUSDT")
                task = asyncio.create_task(client.run())
                rng = random.Random(5)
                image = node.engine.image()
                injected_at = None  # resync count when a fault was injected
                for i in range(800):
                    service.feed_from_node(node, random_commands(rng, image, rng.randint(1, 30)))
                    image = node.engine.image()
                    if i == 300:
                        client.drop_next = True  # a diff lost on the way
                        injected_at = client.resyncs
                    service.tick(100)
                    if injected_at is not None:
                        # The fault shows only when the next diff arrives: until then the
                        # local book is knowingly stale or wrong.
                        await asyncio.sleep(0.005)  # let the client read
                        if client.resyncs == injected_at:
                            continue
                        injected_at = None
                    await client.wait_for(service.depth_update_id(0))
                    bids, asks = client.book.top(10_000)
                    assert (bids, asks) == _wire_levels(service, image), i
                    if i >= 500 and client.checksum_failures == 0 and client.book.bids:
                        # A local book gone wrong: a bid off the tick grid, which no diff
                        # will ever overwrite, only the checksum can reveal.
                        bogus = max(client.book.bids) + Decimal("0.000001")
                        client.book.bids[bogus] = (f"{bogus:f}", "123.00000000")
                        injected_at = client.resyncs
                assert client.gaps >= 1
                assert client.checksum_failures >= 1
                assert client.resyncs >= 2
                assert len(image.orders) > 50
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(run())


@pytest.mark.parametrize("issue3", [False, True])
def test_l3_stream_rebuilds_every_order(tmp_path: Path, issue3: bool) -> None:
    """The L3 ops (open, fill, amend, done) rebuild every resting order; with ``issue3`` the
    flow has icebergs (a refresh is a fill to 0 then an open at the back), triggered stops and
    STP decrements (an amend in place)."""

    async def run() -> None:
        service = MarketDataService()
        with make_node(tmp_path) as node:
            start(node, service)
            rng = random.Random(9)
            for _ in range(50):
                service.feed_from_node(
                    node, random_commands(rng, node.engine.image(), 20, issue3=issue3)
                )
            async with serve(service) as url, aiohttp.ClientSession() as session:
                ws = await session.ws_connect(f"{url}/stream?streams=btcusdt@l3")
                while service.hub.subscriber_count < 1:
                    await asyncio.sleep(0.01)
                async with session.get(f"{url}/api/v3/depthL3", params={"symbol": "BTCUSDT"}) as r:
                    snap = await r.json()
                last = snap["lastUpdateId"]
                orders: dict[str, list[Any]] = {}
                for side, rows in ((BUY, snap["bids"]), (SELL, snap["asks"])):
                    for oid, price, qty in rows:
                        orders[oid] = [side, price, qty]
                info = service.state.markets[0].info
                for _ in range(100):
                    before = service.l3_update_id(0)
                    service.feed_from_node(
                        node, random_commands(rng, node.engine.image(), 20, issue3=issue3)
                    )
                    if service.l3_update_id(0) != before:
                        msg = await ws.receive_json(timeout=5)
                        assert msg["stream"] == "btcusdt@l3"
                        data = msg["data"]
                        assert data["pu"] == data["U"] - 1
                        for op in data["o"]:
                            kind, seq, oid = op[0], op[1], op[2]
                            if seq <= last:
                                continue
                            if kind == "open":
                                orders[oid] = [BUY if op[3] == "buy" else SELL, op[4], op[5]]
                            elif kind in ("fill", "amend"):
                                orders[oid][2] = op[-1]
                                if kind == "fill" and op[-1] == info.qty(0):
                                    del orders[oid]
                            else:
                                del orders[oid]
                    image = node.engine.image()
                    expected = {
                        str(o.order_id): [
                            o.side,
                            info.price(o.price_atoms),
                            info.qty(o.visible_qty_atoms),
                        ]
                        for o in image.orders
                        if o.market_id == 0
                    }
                    assert orders == expected
                assert any(oid for oid, *_ in l3_of_image(image))
                await ws.close()

    asyncio.run(run())


def _read_frames(data: bytes) -> list[tuple[int, bytes]]:
    frames, i = [], 0
    while i + 2 <= len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, i)
            i += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, i)
            i += 8
        if i + n > len(data):
            break
        frames.append((opcode, data[i : i + n]))
        i += n
    return frames


def test_slow_consumer_is_disconnected_while_others_keep_receiving(tmp_path: Path) -> None:
    async def run() -> None:
        service = MarketDataService(max_buffer_bytes=256 << 10)
        with make_node(tmp_path) as node:
            start(node, service)
            async with serve(service) as url, aiohttp.ClientSession() as session:
                port = int(url.rsplit(":", 1)[1])
                # A subscriber that completes the handshake and then never reads.
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", port))
                sock.setblocking(False)
                reader, writer = await asyncio.open_connection(sock=sock)
                key = "dGhlIHNhbXBsZSBub25jZQ=="
                writer.write(
                    f"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101")
                good = [await session.ws_connect(f"{url}/ws/btcusdt@trade") for _ in range(3)]
                while service.hub.subscriber_count < 4:
                    await asyncio.sleep(0.01)
                payload = msgspec.json.encode({"e": "bulk", "pad": "x" * (64 << 10)})
                sent = 400  # 26 MB: beyond any loopback socket buffer
                received = [0] * len(good)

                async def drain(k: int) -> None:
                    while received[k] < sent:
                        msg = await good[k].receive(timeout=20)
                        assert msg.type == aiohttp.WSMsgType.TEXT
                        received[k] += 1

                async def read_slow_after_disconnect() -> bytes:
                    # The slow one starts reading once it has been dropped: the hub
                    # aborts a transport whose close frame has not drained within
                    # ABORT_GRACE_S, so reading only after the whole publish loop
                    # (which can outlast the grace on a loaded machine) would race it.
                    while service.hub.slow_disconnects == 0:
                        await asyncio.sleep(0.005)
                    data = bytearray()
                    with contextlib.suppress(ConnectionError):
                        while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
                            data += chunk
                    return bytes(data)

                slow = asyncio.create_task(read_slow_after_disconnect())
                readers = [asyncio.create_task(drain(k)) for k in range(len(good))]
                for _ in range(sent):
                    service.hub.publish("btcusdt@trade", payload)
                    await asyncio.sleep(0.002)
                await asyncio.gather(*readers)
                assert received == [sent] * len(good)
                assert service.hub.slow_disconnects == 1
                assert service.hub.subscriber_count == 3
                # The slow one, reading at last, finds the close frame with the reason.
                frames = _read_frames(await slow)
                assert frames and frames[-1][0] == 0x8
                code = struct.unpack("!H", frames[-1][1][:2])[0]
                assert code == 1008
                assert frames[-1][1][2:].startswith(b"slow consumer: send buffer exceeded")
                writer.close()
                for ws in good:
                    await ws.close()

    asyncio.run(run())


def test_subscription_messages_and_errors(tmp_path: Path) -> None:
    async def run() -> None:
        service = MarketDataService()
        with make_node(tmp_path) as node:
            start(node, service)
            async with serve(service) as url, aiohttp.ClientSession() as session:
                ws = await session.ws_connect(f"{url}/ws")

                async def ask(body: Any) -> Any:
                    await asyncio.sleep(0.11)  # stay under 10 messages per second
                    await (ws.send_str(body) if isinstance(body, str) else ws.send_json(body))
                    return await ws.receive_json(timeout=5)

                assert await ask(
                    {
                        "method": "SUBSCRIBE",
                        "params": ["btcusdt@trade", "ETHUSDT@depth@100ms"],
                        "id": 1,
                    }
                ) == {"result": None, "id": 1}
                assert await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
                    "result": ["btcusdt@trade", "ethusdt@depth@100ms"],
                    "id": 2,
                }
                r = await ask({"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 3})
                assert r["id"] == 3 and r["error"]["code"] == 2
                assert "unknown symbol 'dogeusdt'" in r["error"]["msg"]
                r = await ask({"method": "SUBSCRIBE", "params": ["btcusdt@kline_7m"], "id": 4})
                assert "unknown kline interval" in r["error"]["msg"]
                r = await ask({"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 5})
                assert r["error"]["code"] == 2 and "'params'" in r["error"]["msg"]
                r = await ask({"method": "FLY", "id": 6})
                assert r["error"]["code"] == 2 and "unknown method 'FLY'" in r["error"]["msg"]
                r = await ask("{not json")
                assert r["error"]["code"] == 3 and r["id"] is None
                r = await ask({"method": "LIST_SUBSCRIPTIONS", "id": -1})
                assert r["error"]["code"] == 2 and "request ID" in r["error"]["msg"]
                r = await ask({"method": "GET_PROPERTY", "params": ["colour"], "id": 7})
                assert r["error"] == {"code": 0, "msg": "Unknown property"}
                r = await ask({"method": "SET_PROPERTY", "params": ["combined", 1], "id": 8})
                assert r["error"]["code"] == 1
                assert await ask(
                    {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 9}
                ) == {"result": None, "id": 9}
                assert await ask({"method": "LIST_SUBSCRIPTIONS", "id": 10}) == {
                    "result": ["ethusdt@depth@100ms"],
                    "id": 10,
                }
                for i in range(15):  # a flood
                    await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 100 + i})
                while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    pass
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008
                assert "too many messages" in msg.extra
                await ws.close()
                async with session.get(f"{url}/ws/btcusdt@nonsense") as resp:
                    assert resp.status == 400
                    assert "unknown stream type 'nonsense'" in (await resp.json())["msg"]
                async with session.get(f"{url}/stream?streams=btcusdt@trade/xyz@trade") as resp:
                    assert resp.status == 400

    asyncio.run(run())


def test_streams_and_rest_carry_the_engine_values(tmp_path: Path) -> None:
    async def run() -> None:
        service = MarketDataService()
        with make_node(tmp_path) as node:
            start(node, service)
            async with serve(service) as url, aiohttp.ClientSession() as session:
                ws = await session.ws_connect(
                    f"{url}/stream?streams=btcusdt@trade/btcusdt@bookTicker/btcusdt@kline_1m/"
                    "btcusdt@depth5@100ms/heartbeat"
                )
                while service.hub.subscriber_count < 1:
                    await asyncio.sleep(0.01)
                rng = random.Random(2)
                events: list[Any] = []
                book = service.state.markets[0].book
                for i in range(400):
                    events += service.feed_from_node(
                        node, random_commands(rng, node.engine.image(), 10)
                    )
                    if i >= 40 and book.best(BUY) and book.best(SELL):
                        break
                service.tick(100)
                service.tick(1000)
                trades = [e for e in events if type(e).__name__ == "Trade" and e.market_id == 0]
                got: dict[str, list[Any]] = {}
                while "heartbeat" not in got:
                    msg = await ws.receive_json(timeout=5)
                    got.setdefault(msg["stream"], []).append(msg["data"])
                info = service.state.markets[0].info
                assert [(m["t"], m["p"], m["q"]) for m in got["btcusdt@trade"]] == [
                    (t.trade_id, info.price(t.price_atoms), info.qty(t.qty_atoms)) for t in trades
                ]
                image = node.engine.image()
                bids, asks = _wire_levels(service, image)
                top = got["btcusdt@bookTicker"][-1]
                assert [top["b"], top["B"], top["a"], top["A"]] == [*bids[0], *asks[0]]
                part = got["btcusdt@depth5@100ms"][-1]
                assert part["bids"] == [list(x) for x in bids[:5]]
                assert part["lastUpdateId"] == service.state.last_seq
                assert got["btcusdt@kline_1m"][-1]["k"]["L"] == trades[-1].trade_id
                assert got["heartbeat"][-1]["u"] == service.state.last_seq
                await ws.close()

                async def get(path: str, **params: str) -> tuple[int, Any]:
                    async with session.get(f"{url}{path}", params=params) as r:
                        return r.status, await r.json()

                status, depth = await get("/api/v3/depth", symbol="BTCUSDT", limit="3")
                assert status == 200 and depth["bids"] == [list(x) for x in bids[:3]]
                status, rows = await get("/api/v3/trades", symbol="BTCUSDT", limit="5")
                assert [r["id"] for r in rows] == [t.trade_id for t in trades[-5:]]
                status, price = await get("/api/v3/ticker/price", symbol="BTCUSDT")
                assert price == {"symbol": "BTCUSDT", "price": info.price(trades[-1].price_atoms)}
                status, rest_top = await get("/api/v3/ticker/bookTicker", symbol="btcusdt")
                assert [rest_top["bidPrice"], rest_top["askPrice"]] == [bids[0][0], asks[0][0]]
                status, every = await get("/api/v3/ticker/24hr")
                assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT", "LTCUSDT"]
                status, k = await get("/api/v3/klines", symbol="BTCUSDT", interval="1d")
                assert status == 200 and k[-1][8] == len(trades)
                for path, params, code in [
                    ("/api/v3/depth", {"symbol": "NOPE"}, -1121),
                    ("/api/v3/depth", {}, -1102),
                    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "-3"}, -1100),
                    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "2m"}, -1120),
                    ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT", "symbols": "[]"}, -1128),
                    ("/api/v3/ticker/price", {"symbols": "BTCUSDT"}, -1100),
                ]:
                    status, body = await get(path, **params)
                    assert (status, body["code"]) == (400, code), (path, params, body)
                    assert body["msg"]

    asyncio.run(run())


if os.environ.get("KOOTABASE_MD_DEBUG"):  # pragma: no cover - manual runs only
    import logging

    logging.basicConfig(level=logging.DEBUG)
