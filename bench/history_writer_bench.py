"""CPU per order of the history index writer thread, as a cluster gateway pays it at saturation.

    .venv/bin/python -m bench.history_writer_bench [--held 200000] [--orders 60000]
        [--rate 15000] [--accounts 8] [--repeat 3]

What runs: the gateway's own `HistoryWriter` (its thread, its commit grouping, its rows) on an
index that already holds ``--held`` closed orders; the main thread then hands it ``--orders``
more closed orders (and their trades) in batches of ``BATCH_ORDERS`` (one stream message's
worth at saturation), paced at ``--rate`` orders/s so each commit groups what a gateway's would,
and waits for the last commit. Measured: the writer thread's CPU time (its
``/proc/self/task/<tid>/schedstat``: user + system, nanoseconds) divided by the orders handed
over, median of ``--repeat`` runs (each on a fresh index).

The workload is the cluster bench's (``bench cluster``: 8 accounts, 3 markets) by default:
every order closes, half of them filled by one trade (a row for each side's account), 1 in 8
with a client order id. ``--accounts 1000`` spreads the same rows over many accounts (more
B-tree leaves touched per commit).

The script imports only ``gateway``, so an A/B is the same file run against two checkouts
(``PYTHONPATH=<checkout> python bench/history_writer_bench.py``), interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Final

from gateway.history.writer import COMMIT_INTERVAL_S, HistoryWriter
from gateway.records import CANCELED, FILLED, OrderRecord, TradeRecord

BATCH_ORDERS: Final = 60
MARKETS: Final = 3
T0_NS: Final = 1_767_225_600_000_000_000


def closed_orders(
    first_id: int, n: int, accounts: int
) -> tuple[list[OrderRecord], list[tuple[int, TradeRecord]]]:
    """``n`` closed orders from ``first_id`` (one per journal millisecond) and their trades."""
    orders: list[OrderRecord] = []
    trades: list[tuple[int, TradeRecord]] = []
    for oid in range(first_id, first_id + n):
        account, market, ts_ns = oid % accounts + 1, oid % MARKETS, T0_NS + oid * 1_000_000
        filled = oid % 2 == 1
        o = OrderRecord(
            order_id=oid,
            account_id=account,
            market_id=market,
            client_order_id=oid % 1_000 + 1 if oid % 8 == 0 else 0,
            side=oid & 1,
            order_type=0,
            time_in_force=0,
            price=100_000 + oid % 500,
            orig_qty=10,
            orig_quote_qty=0,
            time_ns=ts_ns,
            update_ns=ts_ns + 1_000_000,
            status=FILLED if filled else CANCELED,
            executed=10 if filled else 0,
        )
        orders.append(o)
        if filled:
            for acct, maker in ((account, True), ((account + 1) % accounts + 1, False)):
                trades.append(
                    (
                        acct,
                        TradeRecord(
                            market_id=market,
                            trade_id=oid,
                            order_id=oid if maker else oid + 1,
                            price=o.price,
                            qty=10,
                            quote=10 * o.price,
                            commission=o.price // 100,
                            is_buyer=not maker,
                            is_maker=maker,
                            time_ns=ts_ns + 1_000_000,
                        ),
                    )
                )
    return orders, trades


def _thread_cpu_ns(native_id: int) -> int:
    with open(f"/proc/self/task/{native_id}/schedstat", encoding="ascii") as fh:
        return int(fh.read().split()[0])


def one_run(
    held: int, orders: int, rate: float, accounts: int, commit_interval_s: float = COMMIT_INTERVAL_S
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        writer = HistoryWriter(
            Path(tmp) / "h.sqlite3", retention_days=0, commit_interval_s=commit_interval_s
        )
        next_id = 1
        while next_id <= held:  # fill: large groups, not measured
            n = min(50_000, held - next_id + 1)
            o, t = closed_orders(next_id, n, accounts)
            next_id += n
            writer.submit(next_id - 1, 0, o, t)
            assert writer.flush(next_id - 1, timeout_s=600)
        batches = []
        for lo in range(next_id, next_id + orders, BATCH_ORDERS):
            n = min(BATCH_ORDERS, next_id + orders - lo)
            batches.append((lo + n - 1, *closed_orders(lo, n, accounts)))
        native_id = writer._thread.native_id
        assert native_id is not None
        commits0, cpu0 = writer.commits, _thread_cpu_ns(native_id)
        started = time.perf_counter()
        for i, (last, o, t) in enumerate(batches):
            due = started + i * BATCH_ORDERS / rate
            left = due - time.perf_counter()
            if left > 0:
                time.sleep(left)
            writer.submit(last, T0_NS + last * 1_000_000, o, t)
        assert writer.flush(batches[-1][0], timeout_s=600)
        cpu_ns = _thread_cpu_ns(native_id) - cpu0
        commits = writer.commits - commits0
        rows = orders + sum(len(t) for _last, _o, t in batches)
        writer.close()
        return {
            "writer_us_per_order": cpu_ns / orders / 1_000,
            "writer_us_per_row": cpu_ns / rows / 1_000,
            "commits": commits,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--held", type=int, default=200_000)
    p.add_argument("--orders", type=int, default=60_000)
    p.add_argument("--rate", type=float, default=15_000.0)
    p.add_argument("--accounts", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--commit-interval-s",
        type=float,
        default=COMMIT_INTERVAL_S,
        help="the writer's commit interval (serve's history-commit-interval-s)",
    )
    a = p.parse_args()
    runs = [
        one_run(a.held, a.orders, a.rate, a.accounts, a.commit_interval_s) for _ in range(a.repeat)
    ]
    print(
        json.dumps(
            {
                "held": a.held,
                "orders": a.orders,
                "rate": a.rate,
                "accounts": a.accounts,
                "commit_interval_s": a.commit_interval_s,
                **{
                    k: round(statistics.median(r[k] for r in runs), 2)
                    for k in ("writer_us_per_order", "writer_us_per_row", "commits")
                },
                "runs_us_per_order": [round(r["writer_us_per_order"], 2) for r in runs],
            }
        )
    )


if __name__ == "__main__":
    main()
