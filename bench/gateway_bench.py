"""Gateway benchmark: N WS API clients on loopback against a real server process.

The server (node with fsync'd journal + gateway + market data) runs in its own process, the
clients in this one, so they do not share a GIL. Each client logs on once (session auth) and
places LIMIT GTC orders in BTCUSDT alternating BUY and SELL at the same price, so every other
order trades: the book stays small and every order is a full place + (often) match +
acknowledgement with fills.

- Fixed offered loads (open loop): sends are scheduled at the offered rate and the latency of an
  order is measured from its *scheduled* send time to its acknowledgement, so a stalled server is
  charged for the queue it causes (no coordinated omission).
- Saturation (closed loop): each client keeps ``window`` orders outstanding.

Reports sustained orders/s and ack latency p50/p99/p99.9 per load; ``--plot`` saves a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOADS = (1_000, 10_000, 20_000)


def _serve(data_dir: str, fsync: bool, n_clients: int, queue: Any) -> None:
    """Child process: a gateway with funded bench accounts; reports (port, credentials)."""
    from engine.logsetup import configure_logging
    from gateway.admin import Admin
    from gateway.app import Gateway, GatewayConfig
    from gateway.ratelimit import Limits
    from gateway.server import start

    configure_logging("warning")

    async def main() -> None:
        limits = Limits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**12,
                        ban_after=10**9)
        gw = Gateway(GatewayConfig(data_dir=Path(data_dir), fsync=fsync, limits=limits,
                                   master_key_file=Path(data_dir) / "master.key"))
        running = await start(gw, "127.0.0.1", 0)
        admin = Admin(gw)
        creds = []
        for _ in range(n_clients):
            new = await admin.create_account(("read", "trade"))
            await admin.deposit(new.account_id, "USDT", "100000000000")
            await admin.deposit(new.account_id, "BTC", "1000000")
            creds.append((new.api_key, new.secret))
        queue.put((running.port, creds))
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass
class LoadResult:
    offered: int | None
    """Orders/s offered; None = saturation."""
    orders: int
    seconds: float
    orders_per_s: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int
    client_us_per_order: float = float("nan")
    """CPU (user + system) of the load-generating process per acknowledged order."""
    server_us_per_order: float = float("nan")
    """CPU of the server process (all its threads) per acknowledged order."""


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads) from /proc/<pid>/stat, in seconds.

    Read for both processes the same way, so the two CPU columns are comparable; resolution is
    one clock tick (usually 10 ms), fine over loads of thousands of orders."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def _client(url: str, key: str, secret: str) -> Any:
    import websockets

    from gateway.client.credentials import Credentials
    from gateway.client.ws import _payload

    ws = await websockets.connect(url, max_size=None, compression=None)
    creds = Credentials.hmac(key, secret)
    params: dict[str, Any] = {"apiKey": key, "timestamp": time.time_ns() // 1_000_000}
    params["signature"] = creds.sign(_payload(params))
    await ws.send(json.dumps({"id": 0, "method": "session.logon", "params": params}))
    reply = json.loads(await ws.recv())
    assert reply["status"] == 200, reply
    return ws


async def _run_load(clients: list[Any], offered: int | None, seconds: float,
                    server_pid: int, window: int = 64) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    sent_at: list[dict[int, float]] = [{} for _ in clients]
    done = asyncio.Event()
    stop_at = time.perf_counter() + seconds
    counter = [0] * len(clients)

    def frame(i: int, n: int) -> str:
        side = "BUY" if n % 2 == 0 else "SELL"
        return (f'{{"id":{n},"method":"order.place","params":{{"symbol":"BTCUSDT",'
                f'"side":"{side}","type":"LIMIT","timeInForce":"GTC","quantity":"0.0010",'
                '"price":"30000.00"}}')

    async def reader(i: int, ws: Any, credit: asyncio.Semaphore | None) -> None:
        nonlocal errors
        pending = sent_at[i]
        async for raw in ws:
            t = time.perf_counter()
            j = raw.find(',"status":')
            rid = int(raw[6:j])
            start = pending.pop(rid, None)
            if start is not None:
                latencies.append(t - start)
            if '"status":200' not in raw[j:j + 14]:
                errors += 1
            if credit is not None:
                credit.release()
            if done.is_set() and not pending:
                return

    async def open_loop() -> None:
        interval = 1.0 / offered  # type: ignore[operator]
        t0 = time.perf_counter()
        n = 0
        while True:
            target = t0 + n * interval
            now = time.perf_counter()
            if target > stop_at:
                break
            if target > now:
                await asyncio.sleep(target - now)
            # send everything due (catch up in bursts when the loop was late)
            now = time.perf_counter()
            while t0 + n * interval <= now and t0 + n * interval <= stop_at:
                i = n % len(clients)
                counter[i] += 1
                sent_at[i][counter[i]] = t0 + n * interval
                await clients[i].send(frame(i, counter[i]))
                n += 1

    async def closed_loop(i: int, credit: asyncio.Semaphore) -> None:
        ws = clients[i]
        while time.perf_counter() < stop_at:
            await credit.acquire()
            counter[i] += 1
            sent_at[i][counter[i]] = time.perf_counter()
            await ws.send(frame(i, counter[i]))

    credits = [asyncio.Semaphore(window) if offered is None else None for _ in clients]
    readers = [asyncio.ensure_future(reader(i, ws, credits[i])) for i, ws in enumerate(clients)]
    cpu0 = _cpu_seconds(os.getpid()), _cpu_seconds(server_pid)
    began = time.perf_counter()
    if offered is None:
        await asyncio.gather(*(closed_loop(i, c) for i, c in enumerate(credits) if c))
    else:
        await open_loop()
    done.set()
    deadline = time.perf_counter() + 30
    while any(sent_at) and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - began
    client_cpu = _cpu_seconds(os.getpid()) - cpu0[0]
    server_cpu = _cpu_seconds(server_pid) - cpu0[1]
    for r in readers:
        r.cancel()
    n = len(latencies)
    return LoadResult(offered, n, round(elapsed, 3), round(n / elapsed, 1),
                      round(_pct(latencies, 0.5), 3), round(_pct(latencies, 0.99), 3),
                      round(_pct(latencies, 0.999), 3), errors,
                      round(client_cpu / max(n, 1) * 1e6, 1),
                      round(server_cpu / max(n, 1) * 1e6, 1))


async def _bench(port: int, creds: list[tuple[str, str]], seconds: float,
                 loads: tuple[int, ...], server_pid: int) -> list[LoadResult]:
    url = f"ws://127.0.0.1:{port}/ws-api/v3"
    clients = [await _client(url, k, s) for k, s in creds]
    await _run_load(clients, 1_000, 1.0, server_pid)  # warm-up
    results = []
    for offered in (*loads, None):
        results.append(await _run_load(clients, offered, seconds, server_pid))
    for ws in clients:
        await ws.close()
    return results


def run(clients: int = 8, seconds: float = 5.0, fsync: bool = True,
        loads: tuple[int, ...] = LOADS) -> list[LoadResult]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="kootabase-gwbench-") as tmp:
        proc = ctx.Process(target=_serve, args=(tmp, fsync, clients, queue),
                           daemon=True)
        proc.start()
        try:
            port, creds = queue.get(timeout=120)
            assert proc.pid is not None
            return asyncio.run(_bench(port, creds, seconds, loads, proc.pid))
        finally:
            proc.terminate()
            proc.join(10)


def plot(results: list[LoadResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.offered:,}/s" if r.offered else "saturation" for r in results]
    x = range(len(results))
    fig, ax = plt.subplots(figsize=(7, 4))
    for attr, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        ax.plot(list(x), [getattr(r, attr) for r in results], marker="o", label=name)
    ax.set_xticks(list(x), labels)
    ax.set_yscale("log")
    ax.set_ylabel("ack latency (ms)")
    ax.set_title("Gateway: WS order entry ack latency by offered load (loopback)")
    for i, r in enumerate(results):
        ax.annotate(f"{r.orders_per_s:,.0f}/s", (i, r.p50_ms), textcoords="offset points",
                    xytext=(0, -14), ha="center", fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_cli(args: argparse.Namespace) -> int:
    import sys

    results = run(clients=args.clients, seconds=args.seconds, fsync=not args.no_fsync)
    if args.plot:
        plot(results, Path(args.plot))
    if args.json:
        sys.stdout.write(json.dumps([asdict(r) for r in results], indent=2) + "\n")
        return 0
    sys.stdout.write(f"{'offered':>12} {'orders/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
                     f"{'p99.9 ms':>9} {'errors':>7} {'client us/o':>12} {'server us/o':>12}\n")
    for r in results:
        offered = f"{r.offered:,}" if r.offered else "saturation"
        sys.stdout.write(f"{offered:>12} {r.orders_per_s:>10,.0f} {r.p50_ms:>8.2f} "
                         f"{r.p99_ms:>8.2f} {r.p999_ms:>9.2f} {r.errors:>7} "
                         f"{r.client_us_per_order:>12.1f} {r.server_us_per_order:>12.1f}\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", default=None)
    raise SystemExit(run_cli(parser.parse_args()))
