"""``kootabase bench ...``: the benchmark subcommands' arguments.

Each benchmark's implementation lives in the repository's ``bench/`` folder (not in the
wheel) and is imported only when run (`gateway.cliload.lazy` with ``bench=True``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cliargs import positive_float, positive_int
from gateway.cliload import lazy


def _bench(
    bench_sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    text: str,
    module: str,
    *,
    seed: bool = True,
) -> argparse.ArgumentParser:
    """One benchmark's parser, run by ``bench.<module>.run_cli``, with the options every
    benchmark takes: ``--json``, and ``--seed`` (default 0) unless its seed is its own."""
    parser = bench_sub.add_parser(name, help=text)
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="workload seed (default: 0)")
    parser.set_defaults(handler=lazy(f"bench.{module}", "run_cli", bench=True))
    return parser


def add_bench_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase bench engine|replay|restart|ledger|marketdata|gateway|cluster|history``."""
    bench = sub.add_parser("bench", help="run benchmarks (from a repository checkout)")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    bench_engine = _bench(
        bench_sub, "engine", "benchmark the matching engine", "engine_bench", seed=False
    )
    bench_engine.add_argument(
        "--seed", type=int, help="workload seed (default: 0 for a and b, 3 for c)"
    )
    bench_engine.add_argument(
        "--commands", type=positive_int, metavar="N", help="number of commands per workload"
    )
    bench_engine.add_argument(
        "--workload", choices=["a", "b", "c", "all"], default="all", help="workload (default: all)"
    )
    bench_replay = _bench(
        bench_sub,
        "replay",
        "benchmark journal replay through the engine (commands/s)",
        "replay_bench",
    )
    bench_replay.add_argument(
        "--commands", type=positive_int, metavar="N", help="stream commands (default: 500000)"
    )
    bench_replay.add_argument(
        "--journal", type=Path, metavar="DIR", help="replay this journal instead of workload (b)"
    )
    bench_restart = _bench(
        bench_sub,
        "restart",
        "benchmark an engine node's start-up on a long history (seconds)",
        "restart_bench",
    )
    bench_restart.add_argument(
        "--commands",
        type=positive_int,
        default=10_000_000,
        metavar="N",
        help="journal records in the history (default: 10000000)",
    )
    bench_restart.add_argument(
        "--tail",
        type=positive_int,
        default=99_999,
        metavar="N",
        help="records after the newest snapshot (default: 99999)",
    )
    bench_restart.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="build the history here and keep it"
    )
    bench_ledger = _bench(
        bench_sub,
        "ledger",
        "benchmark the ledger projection into PostgreSQL (postings/s)",
        "ledger_bench",
    )
    bench_ledger.add_argument(
        "--commands", type=positive_int, metavar="N", help="stream commands (default: 200000)"
    )
    bench_ledger.add_argument(
        "--chunk",
        type=positive_int,
        default=32_768,
        metavar="N",
        help="commands per projected chunk (default: 32768)",
    )
    bench_ledger.add_argument(
        "--dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server to benchmark; a scratch database is created and dropped there",
    )
    bench_md = _bench(
        bench_sub,
        "marketdata",
        "benchmark WebSocket market-data fan-out (loopback, 2 processes)",
        "marketdata_bench",
    )
    bench_md.add_argument(
        "--subscribers",
        type=positive_int,
        default=1_000,
        metavar="N",
        help="WebSocket subscribers, at most 5000 (default: 1000)",
    )
    bench_md.add_argument(
        "--rate",
        type=positive_int,
        default=20_000,
        metavar="N",
        help="offered orders per second (default: 20000)",
    )
    bench_md.add_argument(
        "--seconds",
        type=positive_float(120),
        default=10.0,
        metavar="S",
        help="measured seconds, at most 120 (default: 10)",
    )
    bench_md.add_argument(
        "--flush-ms",
        type=positive_float(1_000),
        default=5.0,
        metavar="MS",
        help="fan-out flush interval (default: 5)",
    )
    bench_gw = _bench(
        bench_sub,
        "gateway",
        "benchmark WS order entry: orders/s and ack latency (loopback)",
        "gateway_bench",
        seed=False,
    )
    bench_gw.add_argument(
        "--clients",
        type=positive_int,
        default=8,
        metavar="N",
        help="WebSocket order-entry clients (default: 8)",
    )
    bench_gw.add_argument(
        "--seconds",
        type=positive_float(600),
        default=5.0,
        metavar="S",
        help="seconds per offered load (default: 5)",
    )
    bench_gw.add_argument(
        "--no-fsync",
        action="store_true",
        help="journal without fsync (says so; not the product's setting)",
    )
    bench_gw.add_argument("--plot", metavar="PNG", help="save the latency plot here")
    bench_cl = _bench(
        bench_sub,
        "cluster",
        "order entry in cluster mode: 3 NATS nodes (R3, R1), 2 gateways",
        "cluster_bench",
        seed=False,
    )
    bench_cl.add_argument(
        "--seconds",
        type=positive_float(600),
        default=5.0,
        metavar="S",
        help="seconds per load (default: 5)",
    )
    bench_cl.add_argument(
        "--clients",
        type=positive_int,
        default=8,
        metavar="N",
        help="WS connections, spread over both gateways (default: 8)",
    )
    bench_cl.add_argument(
        "--replicas",
        type=int,
        choices=(1, 3),
        action="append",
        help="stream replicas of a setup to run (repeat; default: 3 then 1)",
    )
    bench_cl.add_argument(
        "--offered",
        type=positive_int,
        default=5_000,
        metavar="N",
        help="orders/s of the open-loop load (default: 5000, the issue's latency point)",
    )
    bench_cl.add_argument(
        "--gateway-arg",
        action="append",
        metavar="ARG",
        help="extra argument of both gateways' `serve` (repeat; an A/B of a setting, e.g. "
        "--gateway-arg=--publish-linger-ms=0)",
    )
    bench_cl.add_argument(
        "--nats-server",
        metavar="PATH",
        help="the nats-server binary of the three nodes (default: $NATS_SERVER_BIN, else "
        "PATH's, else /usr/sbin/nats-server); an A/B of server versions",
    )
    bench_cl.add_argument(
        "--probe",
        metavar="DIR",
        help="record each gateway's loop lag and stall suspects into DIR (bench/tailprobe; "
        "read with python -m bench.tailprobe_report DIR); the last setup's files stay",
    )
    bench_hist = _bench(
        bench_sub,
        "history",
        "benchmark the order/trade history index: build rate, query latency",
        "history_bench",
    )
    bench_hist.add_argument(
        "--orders",
        type=positive_int,
        default=10_000_000,
        metavar="N",
        help="historical orders over 1,000 accounts (default: 10000000)",
    )
    bench_hist.add_argument(
        "--dsn",
        metavar="DSN",
        help="also load the history into this (empty) PostgreSQL database as the ledger "
        "projection holds it, and time the PostgreSQL path beside the local index",
    )
