"""The ``kootabase`` command line.

Subcommands import their implementation lazily, so ``kootabase --help`` and
``--version`` start fast and do not load the engine, numba or aiohttp:

- ``serve``        -> ``gateway.server:run_serve_cli(args)``
- ``accounts create|list|deposit|keys`` -> ``gateway.admin:run_accounts_cli(args)``
- ``replay``       -> ``gateway.clustercli:run_replay_cli(args)`` (journal or stream)
- ``bench engine`` -> ``bench.engine_bench:run_cli(args)`` (repository checkout only)
- ``bench ledger`` -> ``bench.ledger_bench:run_cli(args)`` (repository checkout only)
- ``bench marketdata`` -> ``bench.marketdata_bench:run_cli(args)`` (repository checkout only)
- ``bench gateway`` -> ``bench.gateway_bench:run_cli(args)`` (repository checkout only)
- ``bench cluster`` -> ``bench.cluster_bench:run_cli(args)`` (repository checkout only)
- ``marketdata``   -> ``marketdata.replica:run_cli(args)`` (cluster mode)
- ``bench history`` -> ``bench.history_bench:run_cli(args)`` (repository checkout only)
- ``staff create|list`` -> ``backoffice.staffcli:run_cli(args)``
- ``ledger sync``  -> ``ledger.cli:run_sync_cli(args)``
- ``ledger statement|trial-balance|balances`` -> ``ledger.cli:run_report_cli(args)``
- ``custody reconcile`` -> ``custody.cli:run_reconcile_cli(args)``
- ``custody float`` -> ``custody.cli:run_float_cli(args)``
- ``audit verify|anchor|liabilities|verify-proof`` -> ``gateway.auditcli`` (chain, proofs)

This module holds the parser's top (``serve``, ``replay``, ``marketdata``) and the entry point;
the other rooms add their own subcommands: `gateway.clibench` (``bench``),
`gateway.clioperator` (``accounts``, ``staff``, ``ledger``, ``custody``), `gateway.clustercli`,
`gateway.auditcli`; `gateway.cliload` imports an implementation when its subcommand runs.

Each implementation takes the parsed ``argparse.Namespace`` and returns an exit code. Errors
end through one handler (`gateway.cliexit.run_command`): an ordinary mistake is one line on
stderr and a non-zero exit, never a traceback. Global options (``--log-level``) are accepted
before or after the subcommand.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from engine.usererror import UserError
from gateway.auditcli import add_audit_commands
from gateway.cliargs import Parser as _Parser
from gateway.cliargs import add_globals_to_subcommands as _add_globals_to_subcommands
from gateway.cliargs import add_log_level as _add_log_level
from gateway.cliargs import default_log_level, non_negative_float
from gateway.cliargs import non_negative_int as _non_negative_int
from gateway.cliargs import port as _port
from gateway.cliargs import positive_int as _positive_int
from gateway.clibench import add_bench_commands
from gateway.cliexit import fail, run_command
from gateway.cliload import Handler
from gateway.cliload import lazy as _lazy
from gateway.clioperator import (
    add_accounts_commands,
    add_custody_commands,
    add_ledger_commands,
    add_staff_commands,
)
from gateway.clustercli import (
    PUBLISH_INTERVAL_MS,
    PUBLISH_LINGER_MS,
    add_cluster_commands,
    add_nats_options,
)
from gateway.limits import add_limit_options
from gateway.memorybounds import HELD_ROWS, MEMORY_ORDERS
from gateway.serveconfig import effective, parse_with_config


def _version() -> str:
    try:
        return metadata.version("kootabase")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for tests and docs)."""
    parser = _Parser(
        prog="kootabase",
        description="Kootabase: a matching-engine-centric crypto exchange core.",
        epilog="examples:\n"
        "  kootabase serve --demo                  # 127.0.0.1:8080, data in ./data, demo money\n"
        "  kootabase accounts create --data-dir ./data\n"
        "  kootabase accounts deposit --data-dir ./data --account 2 --asset USDT --amount 100\n"
        "  kootabase COMMAND --help                # each command's options and defaults\n"
        "docs: README.md, docs/operations.md (flags, config file, exit codes), docs/api.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_log_level(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the exchange on the embedded defaults")
    serve.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML file with a key for every flag (docs/operations.md); flags override it",
    )
    serve.add_argument(
        "--data-dir", type=Path, default=Path("./data"), help="data directory (default: ./data)"
    )
    serve.add_argument(
        "--no-fsync",
        action="store_true",
        help="do not fsync the journal: for benchmarks only, loses acknowledged orders on crash",
    )
    serve.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="no per-key request/order limits: for load tests and benchmarks only",
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="listen port (default: 8080)")
    serve.add_argument(
        "--master-key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="key encrypting HMAC secrets, kept outside the data dir "
        "(default: $XDG_CONFIG_HOME/kootabase/master.key)",
    )
    serve.add_argument(
        "--custody-config",
        type=Path,
        default=None,
        metavar="FILE",
        help="custody TOML config: enables deposit addresses and withdrawals "
        "(/sapi/v1/capital/..., WS capital.*) and chain polling",
    )
    serve.add_argument(
        "--custody-signer",
        action="store_true",
        help="also run the withdrawal signer in this process (reads hot keys)",
    )
    serve.add_argument(
        "--ledger-dsn",
        metavar="DSN",
        help="project the journal into this PostgreSQL continuously "
        "(a follower process beside the server), and read older order history from it; "
        "checked at start: a server down or a missing database stops serve",
    )
    serve.add_argument(
        "--history-memory-orders",
        type=_non_negative_int,
        default=MEMORY_ORDERS,
        metavar="N",
        help=f"recently closed orders cached in memory, all accounts (default: {MEMORY_ORDERS}; "
        "docs/history.md)",
    )
    serve.add_argument(
        "--history-retention-days",
        type=_non_negative_int,
        default=90,
        metavar="DAYS",
        help="drop cancelled/expired orders that never traded this long after they closed "
        "(default: 90; 0 = keep forever)",
    )
    serve.add_argument(
        "--history",
        choices=("local", "pg"),
        default="local",
        help="where order history (order.status of old orders, allOrders, myTrades) comes "
        "from: local = a history index in this gateway (default); pg = cluster mode only, no "
        "local index: answered from the PostgreSQL projection of --ledger-dsn, which "
        "`kootabase ledger sync --nats ... --follow` keeps; refused (-1008) while it cannot "
        "answer completely or without --ledger-dsn (docs/history.md)",
    )
    serve.add_argument(
        "--history-held-rows",
        type=_non_negative_int,
        default=HELD_ROWS,
        metavar="N",
        help="--history pg: closed orders and trades held in memory until PostgreSQL has them, "
        f"at most (default: {HELD_ROWS}, ~{HELD_ROWS // 2_000} MB); past it the oldest are "
        "shed (counted: kootabase_history_rows_shed, logged: pg_history_rows_shed) and history "
        "queries needing them are refused (-1008) until the projection passes them",
    )
    add_nats_options(serve)
    serve.add_argument(
        "--publish-linger-ms",
        type=non_negative_float(1_000),
        default=PUBLISH_LINGER_MS,
        metavar="MS",
        help="cluster mode: while a batch is in flight, how long the next may wait for more "
        f"orders before it is published (default: {PUBLISH_LINGER_MS:g}; 0 = at once)",
    )
    serve.add_argument(
        "--publish-interval-ms",
        type=non_negative_float(100),
        default=PUBLISH_INTERVAL_MS,
        metavar="MS",
        help="cluster mode: at least this long between two command batches this gateway "
        "publishes; orders arriving meanwhile go out together, the first order of an idle "
        f"gateway at once (default: {PUBLISH_INTERVAL_MS:g}; 0 = no floor)",
    )
    add_limit_options(serve)
    _add_serve_security(serve)
    serve.set_defaults(handler=_lazy("gateway.server", "run_serve_cli"))
    add_accounts_commands(sub)
    add_staff_commands(sub)

    replay = sub.add_parser("replay", help="replay a journal or the stream through the engine")
    replay.add_argument("--journal", type=Path, metavar="DIR", help="journal dir")
    replay.add_argument(
        "--from",
        dest="from_seq",
        type=_positive_int,
        metavar="SEQ",
        help="start from the newest valid snapshot at or before SEQ-1 instead of genesis "
        "(with none, the replay starts at 1: state needs every earlier command)",
    )
    replay.add_argument(
        "--to",
        dest="to_seq",
        type=_positive_int,
        metavar="SEQ",
        help="the last command replayed: the state after SEQ (default: the journal's end)",
    )
    replay.add_argument(
        "--verify",
        action="store_true",
        help="check the state hash at every snapshot passed; an error if there is none",
    )
    replay.add_argument(
        "--snapshots", type=Path, metavar="DIR", help="snapshot directory (optional)"
    )
    add_nats_options(replay)
    replay.set_defaults(handler=_lazy("gateway.clustercli", "run_replay_cli"))
    add_cluster_commands(sub)
    md = sub.add_parser("marketdata", help="a market-data-only replica of the cluster's stream")
    md.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    md.add_argument("--port", type=_port, default=8090, help="listen port (default: 8090)")
    add_nats_options(md, required=True)
    md.set_defaults(handler=_lazy("marketdata.replica", "run_cli"))

    add_bench_commands(sub)

    add_ledger_commands(sub)
    add_custody_commands(sub)
    add_audit_commands(sub)
    _add_globals_to_subcommands(parser)
    return parser


def _add_serve_security(serve: argparse.ArgumentParser) -> None:
    """``serve`` flags of issue 11 (money safety and security), kept together: see
    docs/security.md."""
    group = serve.add_argument_group("security")
    group.add_argument(
        "--demo",
        action="store_true",
        help="on a data dir without API keys, create a demo account funded with "
        "demo money (journaled, reported apart; read/trade only, never "
        "withdraw); refused with custody",
    )
    group.add_argument(
        "--metrics-host",
        metavar="HOST",
        help="serve /metrics and /health on this address instead of the API "
        "port (with --metrics-port)",
    )
    group.add_argument(
        "--metrics-port", type=_port, metavar="PORT", help="port of the separate metrics listener"
    )
    group.add_argument(
        "--metrics-token-file",
        type=Path,
        metavar="FILE",
        help="require 'Authorization: Bearer <token>' on /metrics, the token "
        "read from FILE (keep it 0600)",
    )
    group.add_argument(
        "--backoffice-dsn",
        metavar="DSN",
        help="keep users and sessions (docs/backoffice.md) in this PostgreSQL "
        "database instead of SQLite in the data dir",
    )
    group.add_argument(
        "--aml-rules",
        type=Path,
        metavar="FILE",
        help="AML rules (TOML, docs/aml.example.toml): open cases in the back-office "
        "store, hold withdrawals for review (docs/operations.md)",
    )
    check = group.add_mutually_exclusive_group()
    check.add_argument(
        "--trust-snapshots",
        action="store_true",
        help="start from the newest snapshot without checking that it belongs "
        "to the journal's history (a snapshot from another history goes "
        "unnoticed)",
    )
    check.add_argument(
        "--verify-snapshots-full",
        action="store_true",
        help="at start also replay the journal from genesis to the newest "
        "snapshot and require its state hash (start grows with history)",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kootabase`` console script; returns the exit code.

    Bad usage exits with code 2 and argparse's message (via ``SystemExit``).
    """
    parser = build_parser()
    try:
        args = parse_with_config(parser, argv)
    except UserError as exc:  # a bad --config file, before any command runs
        return fail("kootabase serve", exc)
    if args.log_level is None:
        args.log_level = default_log_level(args)
    if args.command == "serve":
        args.effective_config = effective(parser, args)
    # imported here so --help/--version never load the engine package
    from engine.logsetup import configure_logging

    configure_logging(args.log_level)
    handler: Handler = args.handler
    return run_command(handler, args)


if __name__ == "__main__":
    sys.exit(main())
