"""``kootabase bench marketdata``: fan-out of depth and trades to many WebSocket subscribers.

Setup, and why it is honest on a 2-core machine:

- The server process runs everything an exchange node runs for this: an `EngineNode` (journal
  without fsync, in a temporary directory), the market-data service and the aiohttp server on
  127.0.0.1. A feeder task submits orders to the node every 10 ms at the offered rate
  (default 20,000 orders/s) and feeds the events to market data, in the same event loop as
  the fan-out, exactly like the gateway will.
- The subscribers run in a *separate process* (the other core), so their reading does not steal
  the server's CPU. They are raw asyncio buffered protocols (one reused receive buffer) that do
  the WebSocket handshake and then walk the frames; to keep one Python process able to read
  ~10^5-10^6 frames/s, every byte is counted, but frames are walked and lag sampled on every
  10th connection only (one Python process cannot parse ~500,000 frames/s next to a server on a
  2-core machine), by decoding the first frame of each received chunk: the oldest in the chunk,
  so the worst lag of its chunk. The sampled connections are spread over the whole connection
  order (the server writes to them in that order), so the distribution is representative.
- Messages delivered per second are the frames the server wrote to the sockets; that they
  all arrived is checked by comparing the bytes the subscribers received with the bytes the
  server wrote over the same window (``bytes_received_ratio``, ~1.0).
- Lag is receive wall time minus the message's ``E`` (event time: when the server encoded it),
  in ms; for trades also minus ``T`` (journal time of the command: sequencing -> engine ->
  market data -> subscriber). Same machine, same clock.
- Every subscriber takes ``/stream?streams=btcusdt@depth@100ms/btcusdt@trade``. Orders
  (seeded): 62 % passive limits on both sides of a moving mid, 37.5 % cancels, 0.45 % small
  crossing IOC and 0.05 % market orders, which make the trades (a few hundred per second).

Bounded: at most 5,000 subscribers and 120 s; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

MAX_SUBSCRIBERS = 5_000
MAX_SECONDS = 120.0
HOST = "127.0.0.1"
STREAMS = "btcusdt@depth@100ms/btcusdt@trade"
FEED_INTERVAL_S = 0.010
SAMPLE_EVERY = 10
"""Lag is sampled on every 10th connection (all chunks); frames are counted on all."""
_decode = msgspec.json.Decoder().decode


# ---- subscribers (own process) ------------------------------------------------------------


_READ_BYTES = 256 << 10
_scratch = memoryview(bytearray(_READ_BYTES))
"""One receive buffer for every connection (one thread; each chunk is used before the next
read). ``asyncio.Protocol`` would get a new ``recv(256 KiB)`` bytes object per read instead,
and allocating and freeing 256 KiB costs ~15 us per read here (glibc maps and unmaps it): 3-4
times the read itself, which saturated this process and so inflated the measured lag."""


class _Sub(asyncio.BufferedProtocol):
    def __init__(
        self, stats: dict[str, Any], handshake: asyncio.Future[None], sample: bool
    ) -> None:
        self.stats = stats
        self.sample = sample
        self.handshake = handshake
        self.buf = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["closed"] += 1
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed before the upgrade"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return _scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self.upgraded and not self.sample:
            self.stats["bytes"] += nbytes  # counted, not parsed: see the module docstring
            return
        self._received(bytes(_scratch[:nbytes]))

    def _received(self, data: bytes) -> None:
        now_ms = time.time_ns() / 1e6
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.handshake.set_exception(ConnectionError(buf[:200].decode(errors="replace")))
                return
            self.upgraded = True
            self.handshake.set_result(None)
            buf = buf[end + 4 :]
        i, n, frames, first = 0, len(buf), 0, None
        while i + 2 <= n:
            length = buf[i + 1] & 0x7F
            head = 2
            if length == 126:
                if i + 4 > n:
                    break
                length = struct.unpack_from("!H", buf, i + 2)[0]
                head = 4
            elif length == 127:
                if i + 10 > n:
                    break
                length = struct.unpack_from("!Q", buf, i + 2)[0]
                head = 10
            if i + head + length > n:
                break
            if first is None:
                first = (i + head, i + head + length)
            frames += 1
            i += head + length
        self.buf = buf[i:]
        if not frames:
            return
        stats = self.stats
        stats["frames"] += frames
        stats["bytes"] += i + (len(data) - len(buf))
        if stats["recording"] and first is not None:
            data_ = _decode(buf[first[0] : first[1]])["data"]
            stats["lag"].append(now_ms - data_["E"])
            if data_.get("e") == "trade":
                stats["trade_e2e"].append(now_ms - data_["T"])


async def _subscribe_main(port: int, n: int, conn: Any) -> None:
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {
        "frames": 0,
        "bytes": 0,
        "closed": 0,
        "recording": False,
        "lag": [],
        "trade_e2e": [],
    }
    request = (
        f"GET /stream?streams={STREAMS} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    transports = []
    for k in range(0, n, 100):
        futures = []
        for _ in range(min(100, n - k)):
            fut: asyncio.Future[None] = loop.create_future()
            sample = len(transports) % SAMPLE_EVERY == 0
            transport, _ = await loop.create_connection(
                lambda f=fut, s=sample: _Sub(stats, f, s), HOST, port
            )
            transport.write(request)
            transports.append(transport)
            futures.append(fut)
        await asyncio.gather(*futures)
    conn.send(("ready", n))
    while True:  # commands from the server process: record / report
        await loop.run_in_executor(None, conn.poll, None)
        command = conn.recv()
        if command == "record":
            stats["frames"] = stats["bytes"] = 0
            stats["recording"] = True
            started = time.perf_counter()
            cpu_started = time.process_time()
        elif command == "report":
            stats["recording"] = False
            elapsed = time.perf_counter() - started
            cpu = (time.process_time() - cpu_started) / elapsed
            conn.send(
                (
                    "report",
                    {
                        "frames": stats["frames"],
                        "bytes": stats["bytes"],
                        "cpu": cpu,
                        "seconds": elapsed,
                        "closed": stats["closed"],
                        "lag": stats["lag"],
                        "trade_e2e": stats["trade_e2e"],
                    },
                )
            )
            for t in transports:
                t.close()
            return


def _subscriber_process(port: int, n: int, conn: Any) -> None:
    asyncio.run(_subscribe_main(port, n, conn))


# ---- workload ----------------------------------------------------------------------------


def _orders(rng: random.Random, first_seq: int, count: int, accounts: int) -> list[Any]:
    """Seeded order flow on BTC-USDT (market 0); order ids are predicted from sequences."""
    from engine.schema import CancelOrder, OrderType, PlaceOrder, TimeInForce

    out: list[Any] = []
    resting: list[tuple[int, int]] = []
    mid = 3_000_000
    tick, lot = 10_000, 10_000
    for k in range(count):
        seq = first_seq + k
        r = rng.random()
        account = rng.randint(1, accounts)
        if k % 2_000 == 0:
            mid += rng.choice((-1, 0, 1))  # with offsets >= 2, passive orders never cross
        side = rng.randint(0, 1)
        if r < 0.62 or not resting:
            offset = 2 + int(rng.expovariate(0.15))
            price = (mid - offset if side == 0 else mid + offset) * tick
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=0,
                    side=side,
                    order_type=OrderType.LIMIT,
                    price_atoms=price,
                    qty_atoms=rng.randint(1, 50) * lot,
                )
            )
            resting.append((seq, account))
        elif r < 0.995:
            oid, owner = resting.pop(rng.randrange(len(resting)))
            out.append(CancelOrder(account_id=owner, market_id=0, order_id=oid))
        elif r < 0.9995:
            price = (mid + 3 if side == 0 else mid - 3) * tick
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=0,
                    side=side,
                    order_type=OrderType.LIMIT,
                    time_in_force=TimeInForce.IOC,
                    price_atoms=price,
                    qty_atoms=rng.randint(1, 5) * lot,
                )
            )
        else:
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=0,
                    side=side,
                    order_type=OrderType.MARKET,
                    qty_atoms=rng.randint(1, 5) * lot,
                )
            )
    return out


def _funding(accounts: int) -> list[Any]:
    from engine.schema import CreateAccount, Deposit
    from engine.service import BTC, USDT

    out: list[Any] = []
    for a in range(1, accounts + 1):
        out += [
            CreateAccount(account_id=a),
            Deposit(account_id=a, asset_id=USDT, amount_atoms=10**17, deposit_key=f"u{a}"),
            Deposit(account_id=a, asset_id=BTC, amount_atoms=10**15, deposit_key=f"b{a}"),
        ]
    return out


# ---- server (this process) ---------------------------------------------------------------


def _time_flushes(hub: Any, out: list[float]) -> None:
    """Record the wall time of each fan-out flush in ms (its writes to every subscriber: the
    server's share of the lag spread, apart from the subscriber process's reading)."""
    flush = hub.flush

    def timed() -> None:
        t0 = time.perf_counter()
        flush()
        out.append((time.perf_counter() - t0) * 1e3)

    hub.flush = timed  # an instance attribute: `Hub.publish` schedules ``self.flush``


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _server_main(
    subscribers: int,
    rate: int,
    seconds: float,
    warmup: float,
    seed: int,
    data_dir: Path,
    flush_interval_s: float,
) -> dict[str, Any]:
    from aiohttp import web

    from engine.node import EngineNode, NodeConfig
    from engine.service import DEMO_COMMANDS
    from marketdata.app import create_app
    from marketdata.service import MarketDataService

    accounts = 200
    node = EngineNode(NodeConfig(data_dir=data_dir, fsync=False, snapshot_every=0))
    service = MarketDataService(max_buffer_bytes=4 << 20, flush_interval_s=flush_interval_s)
    service.feed_from_node(node, list(DEMO_COMMANDS))
    service.feed_from_node(node, _funding(accounts))
    total = int(rate * (warmup + seconds)) + rate
    orders = _orders(random.Random(seed), node.last_seq + 1, total, accounts)
    runner = web.AppRunner(create_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(
        target=_subscriber_process, args=(port, subscribers, child), daemon=True
    )
    proc.start()
    loop = asyncio.get_running_loop()
    kind, _ = await loop.run_in_executor(None, parent.recv)
    assert kind == "ready"
    while service.hub.subscriber_count < subscribers:
        await asyncio.sleep(0.05)
    flush_ms: list[float] = []
    _time_flushes(service.hub, flush_ms)

    submitted = 0
    trades_before = trades_at_record = 0
    feed_seconds = 0.0
    start = loop.time()
    recording_at = start + warmup
    stop_at = recording_at + seconds
    recording = False
    published_at_record = 0
    while True:
        now = loop.time()
        if not recording and now >= recording_at:
            recording = True
            parent.send("record")
            submitted_at_record, trades_at_record = submitted, trades_before
            published_at_record = service.hub.messages_published
            frames_at_record = service.hub.frames_written
            bytes_at_record = service.hub.bytes_written
            feed_seconds = 0.0
            cpu_at_record = time.process_time()
            flush_ms.clear()
        if now >= stop_at:
            break
        due = min(int((now - start) * rate) - submitted, 4 * int(rate * FEED_INTERVAL_S))
        if due > 0:
            t0 = time.perf_counter()
            batch = orders[submitted : submitted + due]
            events = service.feed_from_node(node, batch)
            feed_seconds += time.perf_counter() - t0
            trades_before += sum(1 for e in events if type(e).__name__ == "Trade")
            submitted += len(batch)
        await asyncio.sleep(max(0.0, start + (submitted / rate) + FEED_INTERVAL_S - loop.time()))
    measured = loop.time() - recording_at
    flushes = list(flush_ms)
    frames_written = service.hub.frames_written - frames_at_record
    bytes_written = service.hub.bytes_written - bytes_at_record
    server_cpu = (time.process_time() - cpu_at_record) / measured
    parent.send("report")
    _, report = await loop.run_in_executor(None, parent.recv)
    proc.join(timeout=10)
    await runner.cleanup()
    node.close(snapshot=False)
    lag, e2e = report["lag"], report["trade_e2e"]
    return {
        "benchmark": "marketdata",
        "subscribers": subscribers,
        "streams": STREAMS,
        "offered_orders_per_s": rate,
        "orders_per_s": round((submitted - submitted_at_record) / measured),
        "trades_per_s": round((trades_before - trades_at_record) / measured),
        "messages_published_per_s": round(
            (service.hub.messages_published - published_at_record) / measured
        ),
        "messages_delivered_per_s": round(frames_written / measured),
        "mbytes_delivered_per_s": round(report["bytes"] / report["seconds"] / 1e6, 1),
        "bytes_received_ratio": round(report["bytes"] / bytes_written, 3)
        if bytes_written
        else None,
        "lag_ms_p50": round(_pct(lag, 0.50), 1),
        "lag_ms_p99": round(_pct(lag, 0.99), 1),
        "lag_ms_max": round(max(lag), 1) if lag else None,
        "trade_e2e_ms_p50": round(_pct(e2e, 0.50), 1),
        "trade_e2e_ms_p99": round(_pct(e2e, 0.99), 1),
        "lag_samples": len(lag),
        "flushes_per_s": round(len(flushes) / measured),
        "flush_ms_p50": round(_pct(flushes, 0.50), 2),
        "flush_ms_p99": round(_pct(flushes, 0.99), 2),
        "server_cpu_us_per_message": round(server_cpu * measured / frames_written * 1e6, 2)
        if frames_written
        else None,
        "engine_and_feed_cpu_share": round(feed_seconds / measured, 3),
        "server_process_cpu_share": round(server_cpu, 3),
        "subscriber_process_cpu_share": round(report["cpu"], 3),
        "slow_disconnects": service.hub.slow_disconnects,
        "subscribers_closed": report["closed"],
        "flush_interval_ms": flush_interval_s * 1000,
        "seconds": round(measured, 2),
        "seed": seed,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }


def run(
    subscribers: int = 1_000,
    rate: int = 20_000,
    seconds: float = 10.0,
    warmup: float = 3.0,
    seed: int = 0,
    flush_ms: float = 5.0,
) -> dict[str, Any]:
    if not 1 <= subscribers <= MAX_SUBSCRIBERS:
        raise ValueError(f"subscribers must be 1..{MAX_SUBSCRIBERS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}]")
    with tempfile.TemporaryDirectory(prefix="kootabase-mdbench-") as tmp:
        return asyncio.run(
            _server_main(subscribers, rate, seconds, warmup, seed, Path(tmp), flush_ms / 1000)
        )


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``kootabase bench marketdata`` (see gateway/clibench.py)."""
    result = run(
        subscribers=args.subscribers,
        rate=args.rate,
        seconds=args.seconds,
        seed=args.seed,
        flush_ms=args.flush_ms,
    )
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            sys.stdout.write(f"{key:<{width}}  {value}\n")
    target = result["lag_ms_p99"] <= 50
    sys.stdout.write("" if args.json else f"target p99 <= 50 ms: {'met' if target else 'MISSED'}\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flush-ms", type=float, default=5.0)
    sys.exit(run_cli(parser.parse_args()))
