"""Gateway benchmark: N WS API clients on loopback against a real server process.

The server (node with fsync'd journal + gateway + market data) runs in its own process, the
clients in this one, so they do not share a GIL. Each client logs on once (session auth) and
places LIMIT GTC orders in BTCUSDT alternating BUY and SELL at the same price, so every other
order trades: the book stays small and every order is a full place + (often) match +
acknowledgement with fills.

- Fixed offered loads (open loop): sends are scheduled at the offered rate and the latency of an
  order is measured from its *scheduled* send time to its acknowledgement, so a stalled server is
  charged for the queue it causes (no coordinated omission).
- Saturation (closed loop): each client keeps ``window`` orders outstanding, refilled in one
  burst whenever acknowledgements arrive.

The clients are the lean raw-asyncio WebSocket connections of `bench.wsload` (one write per
connection per burst, replies scanned for id and status only): both processes share a small
machine, and client CPU is CPU the server does not get. So that a reader can tell which side was
the limit, every load also reports the CPU (user + system, from /proc) that the client process
and the server process spent per acknowledged order.

A load never hangs: a lost connection or ``stall_s`` seconds without any reply while orders are
outstanding raises. Non-200 replies are counted as errors.

Reports sustained orders/s, ack latency p50/p99/p99.9 and CPU per order for each load;
``--plot`` saves a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing as mp
import os
import queue
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import wsload
from bench.wsload import WsLoadConnection

LOADS = (1_000, 10_000, 20_000)
_PATH = "/ws-api/v3"


async def funded_gateway(
    data_dir: Path, fsync: bool, n_clients: int
) -> tuple[Any, int, list[tuple[str, str]]]:
    """A served gateway without rate limits, with ``n_clients`` funded trading accounts:
    ``(gateway, port, [(api key, secret), ...])`` (also `bench.gateway_front_bench`'s)."""
    from gateway.admin import Admin
    from gateway.app import Gateway, GatewayConfig
    from gateway.gctune import tune_for_serving
    from gateway.ratelimit import Limits
    from gateway.server import start

    limits = Limits(
        weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**12, ban_after=10**9
    )
    gw = Gateway(
        GatewayConfig(
            data_dir=data_dir, fsync=fsync, limits=limits, master_key_file=data_dir / "master.key"
        )
    )
    running = await start(gw, "127.0.0.1", 0)
    tune_for_serving()  # as `serve` does: this process serves this gateway until killed
    admin = Admin(gw)
    creds = []
    for _ in range(n_clients):
        new = await admin.create_account(("read", "trade"))
        await admin.deposit(new.account_id, "USDT", "100000000000")
        await admin.deposit(new.account_id, "BTC", "1000000")
        creds.append((new.api_key, new.secret))
    return gw, running.port, creds


def _serve(data_dir: str, fsync: bool, n_clients: int, ready: Any) -> None:
    """Child process: a gateway with funded bench accounts; reports (port, credentials)."""
    from engine.logsetup import configure_logging

    configure_logging("warning")

    async def main() -> None:
        _, port, creds = await funded_gateway(Path(data_dir), fsync, n_clients)
        ready.put((port, creds))
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
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def _client(host: str, port: int, key: str, secret: str) -> WsLoadConnection:
    """A lean connection logged on with ``session.logon`` (HMAC signature, as the SDK signs)."""
    from gateway.client.credentials import Credentials
    from gateway.client.ws import _payload

    conn = await wsload.connect(host, port, _PATH)
    params: dict[str, Any] = {"apiKey": key, "timestamp": time.time_ns() // 1_000_000}
    params["signature"] = Credentials.hmac(key, secret).sign(_payload(params))
    reply = json.loads(
        await conn.request(
            json.dumps({"id": 0, "method": "session.logon", "params": params}).encode()
        )
    )
    if reply.get("status") != 200:
        await conn.close()
        raise RuntimeError(f"session.logon failed: {reply}")
    return conn


_ORDER_TAIL = tuple(
    (
        f',"method":"order.place","params":{{"symbol":"BTCUSDT","side":"{side}","type":"LIMIT",'
        '"timeInForce":"GTC","quantity":"0.0010","price":"30000.00"}}'
    ).encode()
    for side in ("BUY", "SELL")
)
"""Everything after the id; by id parity, so each connection alternates BUY and SELL."""


OPEN_LOOP_TICK_S = 0.001
"""The open loop sleeps at least this long between sends: at 5,000 orders/s one wake-up (a
timer, a poll, a write per connection) per order cost the generator ~20 us of CPU per order;
the wait is inside every measured latency, since latency runs from the scheduled time."""


class _Load:
    """One load over all connections: what is outstanding since when, and what came back.

    Replies arrive through `WsLoadConnection.on_replies` (a plain callback per received chunk,
    no task per message). In closed loop that same callback refills the connection's window in
    one burst, so a refill costs one write however many acknowledgements the chunk held."""

    def __init__(
        self, conns: list[WsLoadConnection], ids: list[int], window: int, stall_s: float
    ) -> None:
        self.conns = conns
        self.ids = ids
        """Last request id used per connection (kept across loads, so ids never repeat)."""
        self.window = window
        self.stall_s = stall_s
        self.pending: list[dict[int, float]] = [{} for _ in conns]
        """Per connection: request id -> the time its latency is counted from."""
        self.latencies: list[float] = []
        self.errors = 0
        self.refill_until = 0.0
        self.draining = False
        self.last_reply = time.perf_counter()
        self.wake = asyncio.Event()
        self.send_late_s: list[float] = []
        """Open loop, per write: how late after its scheduled time the write's first order
        went out (the generator's own delays: CPU it did not get, its own work; counted in
        every latency, which runs from the scheduled time)."""
        for i, conn in enumerate(conns):
            conn.on_replies = functools.partial(self._replies, i)
            conn.on_failure = self.wake.set

    def _replies(self, i: int, ids: list[int], errors: int, now: float) -> None:
        pending = self.pending[i]
        latencies = self.latencies
        for rid in ids:
            start = pending.pop(rid, None)
            if start is not None:
                latencies.append(now - start)
        self.errors += errors
        self.last_reply = now
        if now < self.refill_until:
            self.send(i, self.window - len(pending), now)
        elif self.draining and not any(self.pending):
            self.wake.set()

    def send(self, i: int, k: int, since: float) -> None:
        """``k`` orders on connection ``i`` in one write, latency counted from ``since``."""
        if k <= 0:
            return
        pending = self.pending[i]
        first = self.ids[i] + 1
        self.ids[i] += k
        payloads = []
        for rid in range(first, first + k):
            pending[rid] = since
            payloads.append(b'{"id":%d' % rid + _ORDER_TAIL[rid & 1])
        self.conns[i].send_texts(payloads)

    def check(self, now: float) -> None:
        """Raise if a connection failed or the server stopped answering (no hanging)."""
        for conn in self.conns:
            if conn.failure is not None:
                raise RuntimeError(
                    f"connection failed during the load: {conn.failure!r}"
                ) from conn.failure
        if now - self.last_reply > self.stall_s:
            outstanding = sum(map(len, self.pending))
            if outstanding:
                raise TimeoutError(
                    f"server stopped answering: {outstanding} orders without "
                    f"a reply for {now - self.last_reply:.1f} s"
                )

    async def open_loop(self, offered: int, seconds: float) -> None:
        """Orders scheduled every 1/offered s; on each wake-up everything due is sent, one
        write per connection, each order's latency counted from its *scheduled* time (no
        coordinated omission: a late wake-up or a slow server counts against the server,
        and so does the tick's own wait)."""
        conns = range(len(self.conns))
        n_conns = len(self.conns)
        total = int(offered * seconds)
        interval = 1.0 / offered
        t0 = time.perf_counter()
        self.last_reply = t0
        n = 0
        while n < total:
            now = time.perf_counter()
            due = min(total, int((now - t0) * offered) + 1)
            if due > n:
                bursts: list[list[bytes]] = [[] for _ in conns]
                for k in range(n, due):
                    i = k % n_conns
                    rid = self.ids[i] = self.ids[i] + 1
                    self.pending[i][rid] = t0 + k * interval
                    bursts[i].append(b'{"id":%d' % rid + _ORDER_TAIL[rid & 1])
                for i in conns:
                    if bursts[i]:
                        self.conns[i].send_texts(bursts[i])
                self.send_late_s.append(now - (t0 + n * interval))
                n = due
            self.check(now)
            if n < total:  # at least OPEN_LOOP_TICK_S: fewer wake-ups and writes per order
                await asyncio.sleep(max(OPEN_LOOP_TICK_S, t0 + n * interval - time.perf_counter()))

    async def closed_loop(self, seconds: float) -> None:
        """Each connection keeps ``window`` orders outstanding until ``seconds`` have passed."""
        now = time.perf_counter()
        self.last_reply = now
        self.refill_until = now + seconds
        for i in range(len(self.conns)):
            self.send(i, self.window, now)
        while (now := time.perf_counter()) < self.refill_until:
            await self._nap(min(0.1, self.refill_until - now))
            self.check(time.perf_counter())
        self.refill_until = 0.0

    async def drain(self) -> None:
        """Wait for every outstanding reply; bounded by ``stall_s`` without progress."""
        self.draining = True
        while any(self.pending):
            await self._nap(0.1)
            self.check(time.perf_counter())

    async def _nap(self, timeout: float) -> None:
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)


async def drive(load: _Load, offered: int | None, seconds: float) -> float:
    """Run one load (open loop at ``offered``/s, or closed loop when None), wait for every
    reply, detach from the connections; returns the elapsed seconds."""
    began = time.perf_counter()
    try:
        if offered is None:
            await load.closed_loop(seconds)
        else:
            await load.open_loop(offered, seconds)
        await load.drain()
    finally:
        for conn in load.conns:
            conn.on_replies = None
            conn.on_failure = None
    return time.perf_counter() - began


async def _run_load(
    conns: list[WsLoadConnection],
    ids: list[int],
    offered: int | None,
    seconds: float,
    server_pid: int,
    window: int = 64,
    stall_s: float = 10.0,
) -> LoadResult:
    load = _Load(conns, ids, window, stall_s)
    cpu0 = _cpu_seconds(os.getpid()), _cpu_seconds(server_pid)
    elapsed = await drive(load, offered, seconds)
    client_cpu = _cpu_seconds(os.getpid()) - cpu0[0]
    server_cpu = _cpu_seconds(server_pid) - cpu0[1]
    latencies = load.latencies
    n = len(latencies)
    return LoadResult(
        offered,
        n,
        round(elapsed, 3),
        round(n / elapsed, 1),
        round(_pct(latencies, 0.5), 3),
        round(_pct(latencies, 0.99), 3),
        round(_pct(latencies, 0.999), 3),
        load.errors,
        round(client_cpu / max(n, 1) * 1e6, 1),
        round(server_cpu / max(n, 1) * 1e6, 1),
    )


async def _bench(
    port: int,
    creds: list[tuple[str, str]],
    seconds: float,
    loads: tuple[int, ...],
    server_pid: int,
    warmup: float,
) -> list[LoadResult]:
    conns = [await _client("127.0.0.1", port, k, s) for k, s in creds]
    ids = [0] * len(conns)
    try:
        if warmup > 0:
            await _run_load(conns, ids, 1_000, warmup, server_pid)
        return [
            await _run_load(conns, ids, offered, seconds, server_pid) for offered in (*loads, None)
        ]
    finally:
        for conn in conns:
            await conn.close()


@contextlib.contextmanager
def serving(clients: int, fsync: bool = True) -> Iterator[tuple[int, int, list[tuple[str, str]]]]:
    """A server in a child process with ``clients`` funded accounts: ``(pid, port, creds)``.

    Fails loudly if the child dies or does not come up in time instead of waiting on it."""
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="kootabase-gwbench-") as tmp:
        proc = ctx.Process(target=_serve, args=(tmp, fsync, clients, ready), daemon=True)
        proc.start()
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    port, creds = ready.get(timeout=0.5)
                    break
                except queue.Empty:
                    if not proc.is_alive():
                        raise RuntimeError(f"server exited ({proc.exitcode})") from None
                    if time.monotonic() > deadline:
                        raise TimeoutError("server did not start in 120 s") from None
            assert proc.pid is not None
            yield proc.pid, port, creds
        finally:
            proc.terminate()
            proc.join(10)


def run(
    clients: int = 8,
    seconds: float = 5.0,
    fsync: bool = True,
    loads: tuple[int, ...] = LOADS,
    warmup: float = 1.0,
) -> list[LoadResult]:
    """Each offered load in ``loads``, then saturation, after ``warmup`` s at 1,000/s."""
    with serving(clients, fsync) as (pid, port, creds):
        return asyncio.run(_bench(port, creds, seconds, loads, pid, warmup))


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
        ax.annotate(
            f"{r.orders_per_s:,.0f}/s",
            (i, r.p50_ms),
            textcoords="offset points",
            xytext=(0, -14),
            ha="center",
            fontsize=8,
        )
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
    sys.stdout.write(
        f"{'offered':>12} {'orders/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p99.9 ms':>9} {'errors':>7} {'client us/o':>12} {'server us/o':>12}\n"
    )
    for r in results:
        offered = f"{r.offered:,}" if r.offered else "saturation"
        sys.stdout.write(
            f"{offered:>12} {r.orders_per_s:>10,.0f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.p999_ms:>9.2f} {r.errors:>7} "
            f"{r.client_us_per_order:>12.1f} {r.server_us_per_order:>12.1f}\n"
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", default=None)
    raise SystemExit(run_cli(parser.parse_args()))
