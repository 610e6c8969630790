"""CPU of the NATS client per stream message delivered and per PubAck, nats-py's way and direct.

    .venv/bin/python -m bench.nats_dispatch_bench [--messages 10000] [--repeat 3]

One process, the machine's NATS, a fresh R1 stream. *Delivery*: the stream holds ``messages``
batches-sized messages; each way consumes all of them through a push consumer (no acks, as
the replica's), the callback turning each into a `StreamMessage`: nats-py's JetStream
subscription (header dict, `Msg`, queue, subscription task: the replica's path before
`engine.natsdirect`) against `StreamLog.follow`'s direct subscription. *Publish*: 64 publishes
in flight at a time, ``js.publish`` against `StreamLog.publish` (`engine.natsdirect.DirectAcks`).
Process CPU (``time.process_time``) per message, the two ways alternating, median of
``repeat``; the server's work is in another process and not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

from nats.js import api

from engine.replica import FORMAT_HEADER, StreamMessage
from engine.streamlog import HEARTBEAT_S, NatsOptions, StreamLog, StreamSpec, to_stream_message

BODY = b"x" * 600


async def _deliver_nats_py(sl: StreamLog, n: int) -> float:
    got: list[StreamMessage] = []
    done = asyncio.Event()

    async def cb(msg: object) -> None:
        got.append(to_stream_message(msg))  # type: ignore[arg-type]
        if len(got) >= n:
            done.set()

    t0 = time.process_time()
    sub = await sl.js.subscribe(
        sl.spec.subject,
        stream=sl.spec.name,
        cb=cb,
        manual_ack=True,
        idle_heartbeat=HEARTBEAT_S,
        config=api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.NONE,
            max_deliver=1,
            mem_storage=True,
            num_replicas=1,
        ),
        pending_msgs_limit=1 << 20,
        pending_bytes_limit=1 << 30,
    )
    await done.wait()
    cpu = time.process_time() - t0
    await sub.unsubscribe()
    return cpu


async def _deliver_direct(sl: StreamLog, n: int) -> float:
    got: list[StreamMessage] = []
    done = asyncio.Event()

    def on_message(msg: StreamMessage) -> None:
        got.append(msg)
        if len(got) >= n:
            done.set()

    t0 = time.process_time()
    sub = await sl.follow(1, on_message)
    await done.wait()
    cpu = time.process_time() - t0
    await sl.unfollow(sub)
    return cpu


async def _publish(sl: StreamLog, n: int, direct: bool, tag: str) -> float:
    sem = asyncio.Semaphore(64)
    headers = {FORMAT_HEADER: "1"}

    async def one(i: int) -> None:
        async with sem:
            if direct:
                await sl.publish(BODY, f"{tag}{i}", fmt="1", timeout_s=10.0)
            else:
                await sl.js.publish(
                    sl.spec.subject,
                    BODY,
                    timeout=10.0,
                    stream=sl.spec.name,
                    headers={"Nats-Msg-Id": f"{tag}{i}", **headers},
                )

    t0 = time.process_time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.process_time() - t0


async def _run(args: argparse.Namespace) -> None:
    spec = StreamSpec(name=f"BENCHDISP{uuid.uuid4().hex[:8]}")
    sl = await StreamLog.connect(NatsOptions.parse(args.nats), spec)
    n = args.messages
    results: dict[str, list[float]] = {}
    try:
        for rnd in range(args.repeat):
            for way, direct in (("nats-py", False), ("direct", True)):
                cpu = await _publish(sl, n, direct, f"{way}{rnd}-")
                results.setdefault(f"publish {way}", []).append(cpu / n * 1e6)
        total = await sl.last_sequence()
        for _ in range(args.repeat):
            for way, fn in (("nats-py", _deliver_nats_py), ("direct", _deliver_direct)):
                cpu = await fn(sl, total)
                results.setdefault(f"deliver {way}", []).append(cpu / total * 1e6)
        for name, values in results.items():
            runs = " / ".join(f"{v:.1f}" for v in values)
            print(f"{name:16} {statistics.median(values):6.1f} us per message ({runs})")
    finally:
        await sl.js.delete_stream(spec.name)
        for name in (f"KV_KB_{spec.name}_HASH", f"OBJ_KB_{spec.name}_SNAP"):
            with contextlib.suppress(Exception):
                await sl.js.delete_stream(name)
        await sl.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    asyncio.run(_run(p.parse_args()))


if __name__ == "__main__":
    main()
