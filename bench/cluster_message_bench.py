"""What a cluster gateway spends per stream message it replicates, and per order in it.

    .venv/bin/python -m bench.cluster_message_bench [--orders-per-message 1,16]
        [--messages-per-s 500] [--seconds 8] [--nats URL] [--gateway-arg=ARG ...]

One ``kootabase serve --nats`` gateway (a real process, as in ``bench cluster``) follows a
fresh R1 stream on the machine's NATS; this process publishes paced batches of ``k`` limit
orders each (two funded accounts, BUY and SELL alternating at one price, so every second order
trades, like ``bench cluster``'s load) under another origin, i.e. the replication path every
gateway pays for every message: NATS delivery, replica decode, engine, read model (store,
market data, history index), no WS front and no acks. The gateway's CPU (user + system, all its
threads, from /proc) over the load and a settle second, divided by messages and by orders, is
the result; two values of ``k`` at one message rate give the per-message and per-order parts
(a straight line through the two). Load-independent enough to compare code side by side on a
busy machine (CPU, not latency); the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from pathlib import Path

from engine.replica import BATCH_FORMAT, CommandBatch, encode_batch, msg_id
from engine.schema import CreateAccount, Deposit, OrderType, PlaceOrder, Side
from engine.streamlog import NatsOptions, StreamLog, StreamSpec

ORIGIN = 0xB3AC4
BUYER, SELLER = 900_001, 900_002


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _order(n: int) -> PlaceOrder:
    buy = n % 2 == 0
    return PlaceOrder(
        account_id=BUYER if buy else SELLER,
        market_id=0,
        side=Side.BUY if buy else Side.SELL,
        order_type=OrderType.LIMIT,
        price_atoms=30_000 * 1_000_000,
        qty_atoms=100_000,
    )


async def _load(
    sl: StreamLog, batch_no: int, k: int, per_s: int, seconds: float
) -> tuple[int, int]:
    """Publish ``per_s`` messages of ``k`` orders a second for ``seconds``; (messages, next)."""
    total = int(per_s * seconds)
    t0 = time.perf_counter()
    pending: set[asyncio.Task[object]] = set()
    for i in range(total):
        delay = t0 + i / per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        batch_no += 1
        data = encode_batch(CommandBatch(ORIGIN, batch_no, [_order(i * k + j) for j in range(k)]))
        task = asyncio.ensure_future(
            sl.publish(data, msg_id(ORIGIN, batch_no), fmt=BATCH_FORMAT, timeout_s=10.0)
        )
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return total, batch_no


async def _caught_up(port: int, stream_seq: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                body = await r.json()
            if body.get("checks", {}).get("cluster", {}).get("streamSeq", 0) >= stream_seq:
                return
            await asyncio.sleep(0.05)


async def _run(args: argparse.Namespace, root: Path) -> None:
    from tests.cluster_procs import GatewayProc

    options = NatsOptions.parse(args.nats)
    spec = StreamSpec(name=f"BENCHMSG{uuid.uuid4().hex[:8]}", replicas=1)
    sl = await StreamLog.connect(options, spec)
    gw = GatewayProc(root / "g", args.nats, spec.name, replicas=1, extra=list(args.gateway_arg))
    try:
        await asyncio.to_thread(gw.start)
        assert gw.proc is not None
        setup = [
            CreateAccount(account_id=BUYER),
            CreateAccount(account_id=SELLER),
            Deposit(account_id=BUYER, asset_id=0, amount_atoms=10**17, deposit_key="mb1"),
            Deposit(account_id=SELLER, asset_id=1, amount_atoms=10**15, deposit_key="mb2"),
        ]
        await sl.publish(encode_batch(CommandBatch(ORIGIN, 1, setup)), msg_id(ORIGIN, 1), fmt="1")
        batch_no = 1
        ks = [int(x) for x in args.orders_per_message.split(",")]
        _, batch_no = await _load(sl, batch_no, 4, args.messages_per_s, 2.0)  # warm-up
        for rnd in range(args.rounds):
            for k in ks:
                await _caught_up(gw.port, await sl.last_sequence())
                cpu0 = _cpu_s(gw.proc.pid)
                n, batch_no = await _load(sl, batch_no, k, args.messages_per_s, args.seconds)
                await _caught_up(gw.port, await sl.last_sequence())
                cpu = _cpu_s(gw.proc.pid) - cpu0
                print(
                    f"round {rnd + 1} k={k:>3}: {n} messages, {n * k} orders: gateway CPU "
                    f"{cpu:.2f} s = {cpu / n * 1e6:.0f} us/message, {cpu / (n * k) * 1e6:.1f} "
                    f"us/order; load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        gw.stop()
        with contextlib.suppress(Exception):
            await sl.js.delete_stream(spec.name)
            for name in (f"KV_KB_{spec.name}_HASH", f"OBJ_KB_{spec.name}_SNAP"):
                await sl.js.delete_stream(name)
        await sl.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders-per-message", default="1,16")
    p.add_argument("--messages-per-s", type=int, default=500)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--gateway-arg", action="append", default=[])
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="kootabase-msgbench-") as tmp:
        asyncio.run(_run(args, Path(tmp)))


if __name__ == "__main__":
    main()
