"""Child process for the crash test: runs an engine node and reports every acknowledgement.

It bootstraps a market and funded accounts on first start, then submits random batches of
orders, cancels and amends forever, printing ``ack <last_seq>`` after each batch returns (that
is, after the batch is durable and processed). The parent kills it with SIGKILL at a random
moment, so the printed acknowledgements are exactly what a client could have been told.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from engine.logsetup import configure_logging
from engine.node import EngineNode, NodeConfig
from engine.schema import (
    AmendOrder,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from engine.service import BTC, DEMO_COMMANDS, USDT

ACCOUNTS = range(1, 21)


def _setup() -> list[Command]:
    commands: list[Command] = list(DEMO_COMMANDS)
    for account_id in ACCOUNTS:
        commands.append(CreateAccount(account_id=account_id))
        commands.append(
            Deposit(
                account_id=account_id,
                asset_id=USDT,
                amount_atoms=10**15,
                deposit_key=f"usdt-{account_id}",
            )
        )
        commands.append(
            Deposit(
                account_id=account_id,
                asset_id=BTC,
                amount_atoms=10**12,
                deposit_key=f"btc-{account_id}",
            )
        )
    return commands


def _random_command(rng: random.Random, next_seq: int) -> Command:
    account_id = rng.choice(ACCOUNTS)
    roll = rng.random()
    if roll < 0.6 or next_seq < 200:
        side = rng.choice((Side.BUY, Side.SELL))
        price_ticks = 3_000_000 + rng.randint(-300, 300)
        return PlaceOrder(
            account_id=account_id,
            market_id=0,
            side=side,
            order_type=OrderType.LIMIT,
            time_in_force=rng.choice((TimeInForce.GTC,) * 4 + (TimeInForce.IOC,)),
            price_atoms=price_ticks * 10_000,
            qty_atoms=rng.randint(1, 50) * 10_000,
        )
    target = rng.randint(max(1, next_seq - 500), next_seq - 1)
    if roll < 0.8:
        return CancelOrder(account_id=account_id, market_id=0, order_id=target)
    return AmendOrder(
        account_id=account_id,
        market_id=0,
        order_id=target,
        new_price_atoms=(3_000_000 + rng.randint(-300, 300)) * 10_000,
    )


def main() -> None:
    configure_logging("warning")  # logs go to stderr; stdout carries only acknowledgements
    data_dir, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    node = EngineNode(NodeConfig(data_dir=data_dir, snapshot_every=300))
    if node.last_seq == 0:
        node.submit(_setup())
    sys.stdout.write(f"ready {node.last_seq}\n")
    sys.stdout.flush()
    while True:
        batch = [_random_command(rng, node.last_seq + 1 + i) for i in range(rng.randint(1, 40))]
        node.submit(batch)
        sys.stdout.write(f"ack {node.last_seq}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
