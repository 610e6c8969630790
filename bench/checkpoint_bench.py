"""What one cross-check point costs the replica's thread: the image's state hash against the
checkpoint digest (`engine.core.digest`), on a book of N resting orders.

    .venv/bin/python -m bench.checkpoint_bench [--orders 100000] [--repeat 7]

Also the part of the digest a live replica pays on its loop (`engine.core.digest.capture`:
the copies of the checkpoint's state; `engine.crosscheck` hashes them on a thread).

Prints CPU milliseconds (process time, so the figure holds on a loaded machine) per call,
median of ``--repeat``, measured side by side in one run, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from engine.core.compiled import CompiledEngine
from engine.core.digest import capture, checkpoint_digest
from engine.schema import (
    Command,
    CreateAccount,
    Deposit,
    EngineConfig,
    OrderType,
    PlaceOrder,
    Side,
    state_hash,
)
from engine.service import DEMO_COMMANDS

ACCOUNTS = 100


def resting_book(orders: int) -> CompiledEngine:
    """Demo markets, ``ACCOUNTS`` funded accounts, ``orders`` non-crossing limit orders."""
    eng = CompiledEngine(EngineConfig())
    commands: list[Command] = list(DEMO_COMMANDS)
    for a in range(1, ACCOUNTS + 1):
        commands += [
            CreateAccount(account_id=a),
            Deposit(account_id=a, asset_id=0, amount_atoms=10**15, deposit_key=f"u{a}"),
            Deposit(account_id=a, asset_id=1, amount_atoms=10**13, deposit_key=f"b{a}"),
        ]
    for k in range(orders):
        buy = k % 2 == 0
        price_usdt = 20_000 - k % 500 if buy else 40_000 + k % 500
        commands.append(
            PlaceOrder(
                account_id=1 + k % ACCOUNTS,
                market_id=0,
                side=Side.BUY if buy else Side.SELL,
                order_type=OrderType.LIMIT,
                price_atoms=price_usdt * 1_000_000,
                qty_atoms=100_000,
            )
        )
    eng.process([(i + 1, 1, c) for i, c in enumerate(commands)])
    assert eng.open_orders == orders, eng.open_orders
    return eng


def cpu_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append((time.process_time() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    eng = resting_book(args.orders)
    full = cpu_ms(lambda: state_hash(eng.image()), args.repeat)
    digest = cpu_ms(lambda: checkpoint_digest(eng), args.repeat)
    loop_part = cpu_ms(lambda: capture(eng), args.repeat)
    print(
        f"{args.orders:,} resting orders: state hash (image + encode + BLAKE2b) {full:.1f} ms CPU, "
        f"checkpoint digest {digest:.1f} ms CPU (median of {args.repeat}); "
        f"ratio {full / digest:.1f}x; of the digest, the copies a live replica takes on its "
        f"loop (capture) {loop_part:.1f} ms, the rest runs on the digest thread"
    )


if __name__ == "__main__":
    main()
