"""How long a cold cluster gateway takes to start, against the stream's length.

    .venv/bin/python -m bench.cluster_start_bench [--messages 2000,8000,32000,128000] [--nats URL]

For each length: a fresh stream on the machine's NATS (R1) gets the demo markets, two funded
accounts and N-2 messages of one limit order each (a resting book of ~N/2 orders). Then:

* a gateway (`gateway.app.Gateway` in cluster mode, the whole start-up: connect, replay, serve)
  with an empty data directory and snapshots off replays the *whole* stream: the start-up
  before Object Store read-model snapshots. It stays up until it has stored the engine and
  read-model snapshots of every snapshot point it passed (`gateway.clustersnap`), as the
  gateways of a running cluster do;
* a second gateway with an empty data directory starts from the newest snapshot pair and the
  stream's tail (at most 4,096 messages): what a new or restarted replica does now;
* the engine-only replica's catch-up (`engine.follower.Follower`, no read model) from message 1.

Prints wall and CPU seconds of each. The streams are deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from pathlib import Path

from engine.follower import Follower
from engine.replica import BATCH_FORMAT, CommandBatch, encode_batch, msg_id
from engine.schema import CreateAccount, Deposit, OrderType, PlaceOrder, Side
from engine.service import DEMO_COMMANDS
from engine.streamlog import NatsOptions, StreamLog, StreamSpec

ORIGIN = 0x5EED


def batches(n: int) -> list[CommandBatch]:
    out = [
        CommandBatch(0, 1, list(DEMO_COMMANDS)),
        CommandBatch(
            ORIGIN,
            1,
            [
                CreateAccount(account_id=1),
                CreateAccount(account_id=2),
                Deposit(account_id=1, asset_id=0, amount_atoms=10**15, deposit_key="u1"),
                Deposit(account_id=2, asset_id=1, amount_atoms=10**13, deposit_key="b2"),
            ],
        ),
    ]
    for k in range(2, n):
        buy = k % 2 == 0
        out.append(
            CommandBatch(
                ORIGIN,
                k,
                [
                    PlaceOrder(
                        account_id=1 if buy else 2,
                        market_id=0,
                        side=Side.BUY if buy else Side.SELL,
                        order_type=OrderType.LIMIT,
                        price_atoms=(20_000 - k % 400 if buy else 40_000 + k % 400) * 1_000_000,
                        qty_atoms=100_000,
                    )
                ],
            )
        )
    return out


async def fill(options: NatsOptions, spec: StreamSpec, n: int) -> None:
    sl = await StreamLog.connect(options, spec)
    pending: list[asyncio.Task[object]] = []
    for b in batches(n):
        data = encode_batch(b)
        pending.append(
            asyncio.ensure_future(
                sl.publish(data, msg_id(b.origin, b.batch_no), fmt=BATCH_FORMAT, timeout_s=10.0)
            )
        )
        if len(pending) >= 256:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await sl.close()


async def engine_catch_up(options: NatsOptions, spec: StreamSpec) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    f = Follower(None, "bench", "bench", lambda a: None)
    await f.attach(await StreamLog.connect(options, spec, create=False), snapshot_every=0)
    out = time.perf_counter() - wall, time.process_time() - cpu
    await f.close()
    return out


def gateway_starts(
    options: NatsOptions, spec: StreamSpec, root: Path, messages: int, backoffice: bool = True
) -> tuple[tuple[float, float], tuple[float, float], int]:
    """(full replay wall/CPU, snapshot start wall/CPU, stream seq the second started from)."""
    from engine.crosscheck import CHECKPOINT_EVERY
    from engine.snapstore import SNAPSHOT_EVERY_CHECKPOINTS
    from gateway.app import Gateway, GatewayConfig
    from gateway.cluster import ClusterConfig
    from gateway.server import start

    every = CHECKPOINT_EVERY * SNAPSHOT_EVERY_CHECKPOINTS
    points = set(range(every, messages + 1, every))
    """Snapshot points; the warm gateway stays up until the newest is stored."""

    async def timed(name: str, **cluster: object) -> tuple[Gateway, object, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        gw = Gateway(
            GatewayConfig(
                data_dir=root / name,
                master_key_file=root / "secrets" / "master.key",
                backoffice=backoffice,
                cluster=ClusterConfig(nats=options, stream=spec, **cluster),  # type: ignore[arg-type]
            )
        )
        running = await start(gw, "127.0.0.1", 0)
        return gw, running, time.perf_counter() - wall, time.process_time() - cpu

    async def body() -> tuple[tuple[float, float], tuple[float, float], int]:
        warm, running, w_wall, w_cpu = await timed("full", start_from_snapshot=False)
        deadline = time.monotonic() + 120
        newest = {max(points)} if points else set()
        while not warm.bridge.stored_readmodels >= newest or warm.bridge.checker._work:
            assert time.monotonic() < deadline, "snapshots not stored in time"
            await asyncio.sleep(0.05)
        await running.runner.cleanup()  # type: ignore[attr-defined]
        cold, running, c_wall, c_cpu = await timed("cold")
        from_seq = cold.bridge.follower.snapshot_stream_seq
        await running.runner.cleanup()  # type: ignore[attr-defined]
        return (w_wall, w_cpu), (c_wall, c_cpu), from_seq

    return asyncio.run(body())


async def delete(options: NatsOptions, spec: StreamSpec) -> None:
    sl = await StreamLog.connect(options, spec, create=False)
    for name in (spec.name, f"KV_KB_{spec.name}_HASH", f"OBJ_KB_{spec.name}_SNAP"):
        with contextlib.suppress(Exception):
            await sl.js.delete_stream(name)
    await sl.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", default="2000,8000,32000,128000")
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument(
        "--no-backoffice",
        action="store_true",
        help="gateways without the back office (its start-up hashes two passwords: ~2.4 s)",
    )
    args = p.parse_args()
    options = NatsOptions.parse(args.nats)
    for n in (int(x) for x in args.messages.split(",")):
        spec = StreamSpec(name=f"BENCHSTART{uuid.uuid4().hex[:8]}")
        try:
            asyncio.run(fill(options, spec, n))
            e_wall, e_cpu = asyncio.run(engine_catch_up(options, spec))
            with tempfile.TemporaryDirectory() as tmp:
                (f_wall, f_cpu), (s_wall, s_cpu), from_seq = gateway_starts(
                    options, spec, Path(tmp), n, backoffice=not args.no_backoffice
                )
            print(
                f"{n:>7} messages: cold gateway start, whole stream replayed {f_wall:.2f} s wall "
                f"/ {f_cpu:.2f} s CPU; from the snapshot at {from_seq} + tail {s_wall:.2f} s "
                f"wall / {s_cpu:.2f} s CPU; engine-only replica catch-up {e_wall:.2f} s wall / "
                f"{e_cpu:.2f} s CPU",
                flush=True,
            )
        finally:
            asyncio.run(delete(options, spec))


if __name__ == "__main__":
    main()
