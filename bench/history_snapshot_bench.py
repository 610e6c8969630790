"""What the history index costs a cluster snapshot point: the whole copy (before) against the
chain's delta (`gateway.histchain`, after), side by side in one process.

    .venv/bin/python -m bench.history_snapshot_bench [--held 200000] [--since 4096,40960]

An index is filled with ``--held`` closed orders and as many trades (rows as the history writer
writes them, spread over 1,000 accounts and 3 markets). Then, per snapshot point:

- before: `clustersnap.history_image` + zlib level 1, what every read-model object carried;
- after: ``--since`` more orders and trades are written (and kept by the chain, as the writer's
  ``on_rows`` hook does), and `HistoryChain.cut` ships them as one delta segment.

CPU is the thread's CPU time (``thread_time``: the writer thread's cost), median of
``--repeat`` points; bytes are the object sizes. Also: how often the chain cuts a new base (a
whole copy) at that rate, and what a cold start's `histchain.apply_deltas` costs per delta.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zlib
from pathlib import Path

from gateway import clustersnap, histchain
from gateway.history.index import HistoryIndex, order_row, trade_row
from gateway.records import FILLED, OrderRecord, TradeRecord

T0 = 1_767_225_600_000_000_000


def _rows(first_id: int, n: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    orders, trades = [], []
    for oid in range(first_id, first_id + n):
        account, market, ts = oid % 1_000 + 1, oid % 3, T0 + oid * 1_000_000
        o = OrderRecord(
            order_id=oid,
            account_id=account,
            market_id=market,
            client_order_id=oid % 11,
            side=oid & 1,
            order_type=0,
            time_in_force=0,
            price=100_000 + oid % 500,
            orig_qty=10 + oid % 7,
            orig_quote_qty=0,
            time_ns=ts,
            update_ns=ts + 1_000_000,
            status=FILLED,
            executed=10 + oid % 7,
        )
        t = TradeRecord(
            market_id=market,
            trade_id=oid,
            order_id=oid,
            price=o.price,
            qty=o.executed,
            quote=o.price * o.executed,
            commission=o.price * o.executed // 1_000,
            is_buyer=o.side == 0,
            is_maker=bool(oid & 2),
            time_ns=ts + 1_000_000,
        )
        orders.append(order_row(o))
        trades.append(trade_row(account, t))
    return orders, trades


def run(held: int, since: list[int], repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        index = HistoryIndex(Path(tmp) / "h.sqlite3")
        seq, next_id = 0, 1
        for start in range(0, held, 50_000):
            n = min(50_000, held - start)
            seq += 1
            index.write(seq, *_rows(next_id, n))
            next_id += n
        chain = histchain.HistoryChain([], seq)
        chain.cut(seq, lambda: clustersnap.history_image(index.db, seq))  # the first base
        base_bytes = chain.refs[0].size_bytes
        print(f"index: {held:,} closed orders + {held:,} trades, base segment {base_bytes:,} B")
        print("| per snapshot point | CPU (writer thread) | bytes to the Object Store |")
        print("|---|---|---|")
        cpu_s, size = [], []
        for _ in range(repeat):
            t0 = time.thread_time()
            data = zlib.compress(clustersnap.history_image(index.db, seq), 1)
            cpu_s.append(time.thread_time() - t0)
            size.append(len(data))
        print(
            f"| before: whole copy | {statistics.median(cpu_s):.3f} s | "
            f"{int(statistics.median(size)):,} |"
        )
        for n in since:
            cpu_s, size, deltas = [], [], []
            for _ in range(repeat):
                orders, trades = _rows(next_id, n)
                next_id += n
                seq += 1
                index.write(seq, orders, trades)
                chain.add(seq, orders, trades)
                chain.refs = chain.refs[:1]  # measure a delta, not the compaction
                t0 = time.thread_time()
                _refs, new = chain.cut(seq, lambda s=seq: clustersnap.history_image(index.db, s))
                cpu_s.append(time.thread_time() - t0)
                assert new[0][0].kind == histchain.DELTA
                size.append(new[0][0].size_bytes)
                deltas.append(new[0])
            per_base = max(
                1, base_bytes // (histchain.DELTAS_PER_BASE * max(1, int(statistics.median(size))))
            )
            print(
                f"| after: delta of {n:,} orders + {n:,} trades | "
                f"{statistics.median(cpu_s):.4f} s | {int(statistics.median(size)):,} "
                f"(a new base every ~{per_base} points) |"
            )
            image = clustersnap.history_image(index.db, seq)
            bodies = [(r, histchain.open_segment(r, d)) for r, d in deltas]
            t0 = time.thread_time()
            histchain.apply_deltas(image, bodies, seq)
            per_delta = (time.thread_time() - t0) / len(bodies)
            print(f"  cold start: apply one such delta {per_delta:.4f} s CPU")
        index.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--held", type=int, default=200_000)
    p.add_argument("--since", default="4096,40960")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    run(a.held, [int(x) for x in a.since.split(",")], a.repeat)


if __name__ == "__main__":
    main()
