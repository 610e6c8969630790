"""``kootabase bench history``: the durable order/trade history at 10M orders (issue 17).

What is built, and how (say it plainly): the history index is built *directly from generated
closed orders and trades*, through the gateway's own `HistoryWriter` (the same thread, rows and
transactions as a running gateway, batches of ``BATCH_ORDERS`` closed orders as one engine batch
would hand over), not by running 10M orders through the engine and the read model, which would
measure the engine and the fold rather than the index. The accounts, markets and a short journal
are real (an engine node creates them), so the query phase runs a real `Gateway` on the data
directory.

Workload: ``--orders`` orders (default 10,000,000) over 1,000 accounts and the three demo
markets, one order every ``SPACING_MS`` of journal time (10M orders span ~35 days): a quarter of
them from ``BUSY_ACCOUNTS`` busy accounts on market 0 (market makers: 250,000 orders each at
10M), the rest spread evenly;
40 % cancelled, 20 % expired without a fill, 40 % filled by one trade (a row for each side's
account), 1 in 8 with a client order id that is reused by later orders of the account.

Measured:

- index build rate (orders per second, writer thread, trades included) and bytes per order on
  disk (the SQLite file with its WAL checkpointed, divided by the number of orders);
- in a fresh process that starts a real `Gateway` on the data directory (as ``serve`` would,
  minus the socket): p50/p99 of ``order.status`` for orders from the first hour, by order id and
  by client id, and of a 500-row ``allOrders`` and ``myTrades`` page of a busy account from a
  random ``startTime`` in the first 90 % of the history, each through
  `Trading` (parameter parsing, the store, the index, rendering the dialect's JSON; pages are
  timed up to the encoded bytes; no WebSocket framing or signature check, which are the same
  for every request);
- that process's resident memory (VmRSS, and VmHWM, its peak) right after start and after the
  queries (most of it is the interpreter, numba's compiled engine and the libraries: compare
  with ``--orders`` small).

Latencies are wall-clock; the page's CPU time (``thread_time``) is reported too, because on a
shared machine the wall-clock tail mostly measures the other processes.

Targets (issue 17): order.status p99 <= 5 ms, allOrders page p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench import history_pg

ACCOUNTS: Final = 1_000
BUSY_ACCOUNTS: Final = 10
MARKETS: Final = 3
SPACING_MS: Final = 300
BATCH_ORDERS: Final = 2_000
T0_NS: Final = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
STATUS_QUERIES: Final = 2_000
PAGE_QUERIES: Final = 1_000
ROOT: Final = Path(__file__).resolve().parent.parent


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _rss_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    rss = hwm = 0
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def _setup_node(data_dir: Path) -> int:
    """Demo markets and ``ACCOUNTS`` accounts in a real journal; returns the first account id."""
    from engine.node import EngineNode, NodeConfig
    from engine.schema import CreateAccount
    from engine.service import bootstrap_demo

    with EngineNode(NodeConfig(data_dir=data_dir)) as node:
        bootstrap_demo(node)
        first = 1
        node.submit([CreateAccount(account_id=first + i) for i in range(ACCOUNTS)])
    return first


def build(data_dir: Path, orders: int, seed: int, dsn: str | None = None) -> dict[str, Any]:
    """Generate ``orders`` closed orders and their trades into the data dir's history index
    (and with ``dsn`` into PostgreSQL's ledger tables, `bench.history_pg`)."""
    from gateway.history.writer import HistoryWriter
    from gateway.records import CANCELED, EXPIRED, FILLED, OrderRecord, TradeRecord

    first_account = _setup_node(data_dir)
    rng = random.Random(seed)
    path = data_dir / "gateway" / "history.sqlite3"
    writer = HistoryWriter(path, retention_days=0)
    base_id = 1_000_000  # above the setup journal's sequences
    trade_ids = [0] * MARKETS
    pg_orders: list[tuple[object, ...]] = []
    pg_trades: list[tuple[object, ...]] = []
    n_trades = 0
    gen_s = 0.0
    started = time.perf_counter()
    for lo in range(0, orders, BATCH_ORDERS):
        g0 = time.perf_counter()
        closed: list[OrderRecord] = []
        trades: list[tuple[int, TradeRecord]] = []
        for i in range(lo, min(orders, lo + BATCH_ORDERS)):
            oid = base_id + i
            if i % 4 == 0:  # a busy account on market 0
                account, market = first_account + rng.randrange(BUSY_ACCOUNTS), 0
            else:
                account, market = first_account + rng.randrange(ACCOUNTS), rng.randrange(MARKETS)
            ts = T0_NS + i * SPACING_MS * 1_000_000
            roll = rng.random()
            cid = (1_000 + account * 64 + i % 50) if i % 8 == 0 else 0  # short, reversible
            price = 3_000_000_000 + rng.randrange(-5_000, 5_000) * 10_000
            qty = rng.randrange(1, 100) * 10_000
            o = OrderRecord(
                order_id=oid,
                account_id=account,
                market_id=market,
                client_order_id=cid,
                side=i & 1,
                order_type=0,
                time_in_force=0,
                price=price,
                orig_qty=qty,
                orig_quote_qty=0,
                time_ns=ts,
                update_ns=ts + 1_000_000,
            )
            if roll < 0.4:
                o.status = CANCELED
            elif roll < 0.6:
                o.status = EXPIRED
            else:
                o.status = FILLED
                o.executed = qty
                o.cum_quote = qty * price // 100_000_000
                tid = trade_ids[market]
                trade_ids[market] = tid + 1
                other = first_account + rng.randrange(ACCOUNTS)
                for acct, is_maker, order_id in ((account, True, oid), (other, False, oid + 1)):
                    trades.append(
                        (
                            acct,
                            TradeRecord(
                                market_id=market,
                                trade_id=tid,
                                order_id=order_id,
                                price=price,
                                qty=qty,
                                quote=o.cum_quote,
                                commission=o.cum_quote // 1_000,
                                is_buyer=(o.side == 0) == is_maker,
                                is_maker=is_maker,
                                time_ns=ts + 1_000_000,
                            ),
                        )
                    )
                n_trades += 1
            closed.append(o)
        gen_s += time.perf_counter() - g0
        if dsn is not None:
            o_rows, t_rows = history_pg.rows_of(closed, trades)
            pg_orders += o_rows
            pg_trades += t_rows
        last = base_id + min(orders, lo + BATCH_ORDERS)
        writer.submit(last, T0_NS + lo * SPACING_MS * 1_000_000, closed, trades)
        if writer.queued_rows() > 200_000:  # like a replay: wait rather than queue unbounded
            writer.flush(writer.submitted_seq, timeout_s=600)
    assert writer.flush(writer.submitted_seq, timeout_s=3_600)
    seconds = time.perf_counter() - started
    writer.index.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored, trade_rows = writer.index.counts()
    writer.close()
    assert stored == orders, (stored, orders)
    size = sum(p.stat().st_size for p in path.parent.glob("history.sqlite3*"))
    pg: dict[str, Any] = {}
    if dsn is not None:
        import asyncio

        p0 = time.perf_counter()
        asyncio.run(history_pg.load(dsn, pg_orders, pg_trades))
        pg["pg_load_seconds"] = round(time.perf_counter() - p0, 2)
    return {
        **pg,
        "orders": orders,
        "trades": n_trades,
        "trade_rows": trade_rows,
        "build_seconds": round(seconds, 2),
        "generate_seconds": round(gen_s, 2),
        "build_orders_per_s": round(orders / seconds),
        "index_bytes": size,
        "bytes_per_order": round(size / orders, 1),
        "span_days": round(orders * SPACING_MS / 86_400_000, 1),
    }


def query(data_dir: Path, orders: int, seed: int, dsn: str | None = None) -> dict[str, Any]:
    """In this (fresh) process: start a Gateway on ``data_dir`` and time the queries (with
    ``dsn``: through the local index, then through PostgreSQL, the same queries)."""
    import asyncio

    from gateway.app import Gateway, GatewayConfig
    from gateway.gctune import tune_for_serving

    # The generated rows did not come from this data dir's (short, setup-only) journal: their
    # batch sequences run past its end, which a gateway takes for an index ahead of a restored
    # journal and rebuilds. Say the index covers none of the journal (the start then replays
    # the setup journal, which closes no order, and keeps every generated row).
    with sqlite3.connect(data_dir / "gateway" / "history.sqlite3") as db:
        db.execute("UPDATE meta SET value = 0 WHERE key = 'last_seq'")
    t0 = time.perf_counter()
    gw = Gateway(
        GatewayConfig(
            data_dir=data_dir,
            master_key_file=data_dir / "master.key",
            demo=False,
            # the generated history is dated 2026-01-01 on, the journal's clock today: keep it
            # all, as the index was built (retention 0), on both paths
            history_retention_days=0,
        )
    )
    start_s = time.perf_counter() - t0
    tune_for_serving()  # as `serve` does once the read model is built
    rss_start_kb = _rss_kb()[0]

    async def both() -> dict[str, Any]:
        out = await _timed(gw, orders, seed)
        if dsn is not None:
            await history_pg.set_checkpoint(dsn, gw.last_seq)
            pg = await gw.start_pg_history(dsn)
            while not pg.serves():
                await asyncio.sleep(0.05)
            timed = await _timed(gw, orders, seed, await history_pg.backend_cpu(dsn))
            assert pg.queries > 0 and pg.fallbacks == 0
            out.update({f"pg_{k}": v for k, v in timed.items()})
        rss_kb, hwm_kb = _rss_kb()
        await gw.close()
        return {
            "gateway_start_s": round(start_s, 3),
            **out,
            "gateway_rss_at_start_mb": round(rss_start_kb / 1024, 1),
            "gateway_rss_mb": round(rss_kb / 1024, 1),
            "gateway_peak_rss_mb": round(hwm_kb / 1024, 1),
        }

    return asyncio.run(both())


async def _timed(
    gw: Any, orders: int, seed: int, server_cpu: Callable[[], float] | None = None
) -> dict[str, Any]:
    """order.status and 500-row pages through `Trading`, whichever source it reads; with
    ``server_cpu``, PostgreSQL's CPU per query too (read outside the timed windows)."""
    import msgspec

    from gateway.clientids import decode_short

    rng = random.Random(seed + 1)
    tr = gw.trading
    _encode = msgspec.json.Encoder().encode
    symbols = {m.market_id: m.wire for m in gw.store.markets.values()}
    first_hour = min(orders, 3_600_000 // SPACING_MS)
    index = gw.store.history
    assert index is not None
    sample = [index.order(1_000_000 + rng.randrange(first_hour)) for _ in range(STATUS_QUERIES)]
    by_id, by_cid, pages, pages_cpu = [], [], [], []
    server = {"status": 0.0, "all_orders": 0.0, "my_trades": 0.0}
    cpu = server_cpu or (lambda: 0.0)
    s0 = cpu()
    for o in sample:
        assert o is not None
        params = {"symbol": symbols[o.market_id], "orderId": str(o.order_id)}
        q0 = time.perf_counter()
        got = await tr.order_status(o.account_id, params)
        by_id.append(time.perf_counter() - q0)
        assert got["orderId"] == o.order_id
    server["status"] = cpu() - s0
    cid_sample = [o for o in sample if o.client_order_id][:STATUS_QUERIES]
    for o in cid_sample:
        cid = decode_short(o.client_order_id)
        assert cid is not None
        params = {"symbol": symbols[o.market_id], "origClientOrderId": cid}
        q0 = time.perf_counter()
        got = await tr.order_status(o.account_id, params)
        by_cid.append(time.perf_counter() - q0)
        assert got["orderId"] >= o.order_id
    span_ms = orders * SPACING_MS
    rows = trade_rows = 0
    trade_pages: list[float] = []
    trade_pages_cpu: list[float] = []
    for _ in range(PAGE_QUERIES):
        account, market = 1 + rng.randrange(BUSY_ACCOUNTS), 0
        start_ms = T0_NS // 1_000_000 + rng.randrange(max(1, span_ms * 9 // 10))
        params = {"symbol": symbols[market], "startTime": str(start_ms), "limit": "500"}
        # Timed up to the JSON bytes the transport sends (`gateway.rest` encodes the answer
        # with msgspec): the page's cost is the index, the rendering and the encoding.
        s0 = cpu()
        q0, c0 = time.perf_counter(), time.thread_time()
        body = _encode(await tr.all_orders(account, params))
        pages.append(time.perf_counter() - q0)
        pages_cpu.append(time.thread_time() - c0)
        server["all_orders"] += cpu() - s0
        rows += len(msgspec.json.decode(body))
        s0 = cpu()
        q0, c0 = time.perf_counter(), time.thread_time()
        body = _encode(await tr.my_trades(account, params))
        trade_pages.append(time.perf_counter() - q0)
        trade_pages_cpu.append(time.thread_time() - c0)
        server["my_trades"] += cpu() - s0
        trade_rows += len(msgspec.json.decode(body))

    def ms(values: list[float], q: float) -> float:
        return round(_percentile(values, q) * 1_000, 3)

    return {
        "status_by_id_p50_ms": ms(by_id, 0.5),
        "status_by_id_p99_ms": ms(by_id, 0.99),
        "status_by_client_id_p50_ms": ms(by_cid, 0.5) if by_cid else None,
        "status_by_client_id_p99_ms": ms(by_cid, 0.99) if by_cid else None,
        "all_orders_500_p50_ms": ms(pages, 0.5),
        "all_orders_500_p90_ms": ms(pages, 0.9),
        "all_orders_500_p99_ms": ms(pages, 0.99),
        "all_orders_500_max_ms": ms(pages, 1.0),
        "all_orders_500_cpu_p50_ms": ms(pages_cpu, 0.5),
        "all_orders_500_cpu_p99_ms": ms(pages_cpu, 0.99),
        "all_orders_mean_rows": round(rows / PAGE_QUERIES, 1),
        "my_trades_500_p50_ms": ms(trade_pages, 0.5),
        "my_trades_500_p99_ms": ms(trade_pages, 0.99),
        "my_trades_500_cpu_p50_ms": ms(trade_pages_cpu, 0.5),
        "my_trades_500_cpu_p99_ms": ms(trade_pages_cpu, 0.99),
        "my_trades_mean_rows": round(trade_rows / PAGE_QUERIES, 1),
        **(
            {
                "server_cpu_per_status_ms": round(server["status"] * 1e3 / len(by_id), 3),
                "server_cpu_per_all_orders_ms": round(server["all_orders"] * 1e3 / PAGE_QUERIES, 3),
                "server_cpu_per_my_trades_ms": round(server["my_trades"] * 1e3 / PAGE_QUERIES, 3),
            }
            if server_cpu is not None
            else {}
        ),
        "status_queries": len(by_id),
        "client_id_queries": len(by_cid),
        "page_queries": PAGE_QUERIES,
    }


def run(orders: int, seed: int, keep: Path | None = None, dsn: str | None = None) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="kootabase-history-bench-")) if keep is None else keep
    try:
        built = build(data_dir, orders, seed, dsn)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.history_bench",
                "--query-phase",
                str(data_dir),
                "--orders",
                str(orders),
                "--seed",
                str(seed),
                *(["--dsn", dsn] if dsn else []),
            ],
            cwd=ROOT,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(f"query phase failed: {out.stderr[-3000:]}")
        queried = json.loads(out.stdout.strip().splitlines()[-1])
        return {
            "workload": "history",
            "seed": seed,
            "accounts": ACCOUNTS,
            **built,
            **queried,
            "targets": {"status_p99_ms": 5, "all_orders_500_p99_ms": 20},
        }
    finally:
        if keep is None:
            shutil.rmtree(data_dir, ignore_errors=True)


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``kootabase bench history`` (see gateway/clibench.py)."""
    from bench.engine_bench import machine_info

    result = run(args.orders, args.seed, dsn=getattr(args, "dsn", None))
    result["machine"] = machine_info()
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    width = max(len(k) for k in result)
    for k, v in result.items():
        if k != "machine":
            sys.stdout.write(f"{k:<{width}}  {v}\n")
    return 0


def _main() -> int:
    """``python -m bench.history_bench --query-phase DIR``: the fresh gateway process."""
    from engine.logsetup import configure_logging

    p = argparse.ArgumentParser()
    p.add_argument("--query-phase", type=Path, required=True)
    p.add_argument("--orders", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dsn")
    a = p.parse_args()
    configure_logging("warning")
    sys.stdout.write(json.dumps(query(a.query_phase, a.orders, a.seed, a.dsn)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
