"""What the three NATS nodes of an R3 stream spend per message, one nats-server against another.

    .venv/bin/python -m bench.nats_server_bench [--nats-server PATH ...] [--messages-per-s 250]
        [--bytes 1500] [--seconds 10] [--rounds 2]

The server's side of ``bench cluster`` without the gateways: a 3-node cluster
(tests/nats_cluster.py) of each binary, the command stream as a gateway creates it
(`StreamLog.ensure_stream`: R3, file storage, dedup window), two followers as two gateways'
replicas (`StreamLog.follow`: ephemeral push consumers into direct subscriptions) and paced
`StreamLog.publish` calls, 16 in flight at most, of ``bytes`` each (a batch of ~20 orders at
5,000 orders/s). The result is the nodes' CPU (user + system from /proc, all three together)
per published message, which does not grow when the machine is busy the way latencies do;
the binaries alternate per round. Why: docs/scaling.md (nats-server 2.9 against 2.15).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.gateway_bench import _cpu_seconds
from engine.replica import StreamMessage
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from tests.nats_cluster import NatsCluster, nats_server_bin, nats_server_version

IN_FLIGHT = 16


async def _drive(
    urls: str, rate_per_s: int, size_bytes: int, seconds: float, pids: list[int]
) -> tuple[float, float]:
    options = NatsOptions.parse(urls)
    spec = StreamSpec(f"NB{uuid.uuid4().hex[:10]}", replicas=3)
    for attempt in range(40):  # the meta group may not know every peer yet: "no suitable peers"
        try:
            pub = await StreamLog.connect(options, spec)
            break
        except Exception:
            if attempt == 39:
                raise
            await asyncio.sleep(0.25)
    followers = [await StreamLog.connect(options, spec, create=False) for _ in range(2)]
    got = [0, 0]

    def counter(i: int) -> Callable[[StreamMessage], None]:
        def on_message(_: StreamMessage) -> None:
            got[i] += 1

        return on_message

    for i, f in enumerate(followers):
        await f.follow(1, counter(i))
    body = b"x" * size_bytes
    slots = asyncio.Semaphore(IN_FLIGHT)
    sent = 0

    async def one(n: int) -> None:
        try:
            await pub.publish(body, f"m{n}", fmt="bench")
        finally:
            slots.release()

    await pub.publish(body, "warm", fmt="bench")  # leaders elected, consumers placed
    cpu0 = [_cpu_seconds(p) for p in pids]
    began = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    while (now := time.perf_counter() - began) < seconds:
        due = int(now * rate_per_s)
        while sent < due:
            await slots.acquire()
            tasks.append(asyncio.create_task(one(sent)))
            sent += 1
        await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    while min(got) < sent + 1 and time.perf_counter() - began < seconds + 10:
        await asyncio.sleep(0.01)
    cpu = sum(_cpu_seconds(p) for p in pids) - sum(cpu0)
    for sl in (pub, *followers):
        await sl.close()
    return cpu / sent * 1e6, sent / seconds


def run_one(binary: str, rate_per_s: int, size_bytes: int, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="kootabase-natsbench-") as tmp:
        cluster = NatsCluster(Path(tmp), binary=binary)
        cluster.start()
        try:
            cluster.wait_ready()
            pids = [n.proc.pid for n in cluster.nodes if n.proc is not None]
            return asyncio.run(_drive(cluster.urls, rate_per_s, size_bytes, seconds, pids))
        finally:
            cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nats-server", action="append", metavar="PATH")
    ap.add_argument("--messages-per-s", type=int, default=250)
    ap.add_argument("--bytes", type=int, default=1500)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    binaries = [nats_server_bin(b) for b in args.nats_server or [None]]
    results: dict[str, list[float]] = {b: [] for b in binaries}
    for r in range(args.rounds):
        for b in binaries if r % 2 == 0 else binaries[::-1]:
            us, rate = run_one(b, args.messages_per_s, args.bytes, args.seconds)
            results[b].append(us)
            print(f"{nats_server_version(b)}: {us:.0f} us CPU per message (3 nodes), {rate:.0f}/s")
    for b, us in results.items():
        print(f"{nats_server_version(b)} {b}: median {statistics.median(us):.0f} us/message")


if __name__ == "__main__":
    main()
