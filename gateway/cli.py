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

Each implementation takes the parsed ``argparse.Namespace`` and returns an exit code. Errors
end through one handler (`gateway.cliexit.run_command`): an ordinary mistake is one line on
stderr and a non-zero exit, never a traceback. Global options (``--log-level``) are accepted
before or after the subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType

from engine.usererror import UserError
from gateway.auditcli import add_audit_commands
from gateway.cliargs import Parser as _Parser
from gateway.cliargs import add_globals_to_subcommands as _add_globals_to_subcommands
from gateway.cliargs import add_log_level as _add_log_level
from gateway.cliargs import default_log_level
from gateway.cliargs import non_negative_int as _non_negative_int
from gateway.cliargs import port as _port
from gateway.cliargs import positive_float as _positive_float
from gateway.cliargs import positive_int as _positive_int
from gateway.cliexit import fail, run_command
from gateway.clustercli import add_cluster_commands, add_nats_options
from gateway.limits import add_limit_options
from gateway.serveconfig import effective, parse_with_config

Handler = Callable[[argparse.Namespace], int]

# repo root when running from a checkout (gateway/cli.py -> repo root)
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    try:
        return metadata.version("kootabase")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _import_bench(module: str) -> ModuleType:
    """Import a module from the ``bench`` folder, which is not an installed package.

    From a checkout (including an editable install) the repository root is added to
    ``sys.path``; from a wheel there is no ``bench`` and a clear error is raised.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", module):
            raise
    if (_REPO_ROOT / "bench" / "__init__.py").is_file():
        root = str(_REPO_ROOT)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name not in ("bench", module):
                raise
    raise UserError(
        f"benchmarks are not available: cannot import {module!r} (they live in the "
        "repository's bench/ folder and are not part of an installed wheel)",
        hint="run them from a checkout (e.g. `make bench`)",
    )


def _lazy(module: str, func: str, *, bench: bool = False) -> Handler:
    """Return a handler that imports ``module`` and calls ``module.func(args)`` when run."""

    def handler(args: argparse.Namespace) -> int:
        if bench:
            mod = _import_bench(module)
        else:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                raise UserError(
                    f"not available in this build (module {module!r} not found)"
                ) from None
        return int(getattr(mod, func)(args))

    return handler


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for tests and docs)."""
    parser = _Parser(
        prog="kootabase",
        description="Kootabase: a matching-engine-centric crypto exchange core.",
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
        "(a follower process beside the server)",
    )
    serve.add_argument(
        "--history-memory-orders",
        type=_non_negative_int,
        default=50_000,
        metavar="N",
        help="recently closed orders cached in memory, all accounts (default: 50000; "
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
    add_nats_options(serve)
    add_limit_options(serve)
    _add_serve_security(serve)
    serve.set_defaults(handler=_lazy("gateway.server", "run_serve_cli"))
    _add_accounts(sub)
    _add_staff(sub)

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

    bench = sub.add_parser("bench", help="run benchmarks (from a repository checkout)")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    bench_engine = bench_sub.add_parser("engine", help="benchmark the matching engine")
    bench_engine.add_argument("--json", action="store_true", help="print results as JSON")
    bench_engine.add_argument(
        "--seed", type=int, help="workload seed (default: 0 for a and b, 3 for c)"
    )
    bench_engine.add_argument(
        "--commands", type=_positive_int, metavar="N", help="number of commands per workload"
    )
    bench_engine.add_argument(
        "--workload", choices=["a", "b", "c", "all"], default="all", help="workload (default: all)"
    )
    bench_engine.set_defaults(handler=_lazy("bench.engine_bench", "run_cli", bench=True))
    bench_replay = bench_sub.add_parser(
        "replay", help="benchmark journal replay through the engine (commands/s)"
    )
    bench_replay.add_argument("--json", action="store_true", help="print results as JSON")
    bench_replay.add_argument("--seed", type=int, default=0, help="workload seed (default: 0)")
    bench_replay.add_argument(
        "--commands", type=_positive_int, metavar="N", help="stream commands (default: 500000)"
    )
    bench_replay.add_argument(
        "--journal", type=Path, metavar="DIR", help="replay this journal instead of workload (b)"
    )
    bench_replay.set_defaults(handler=_lazy("bench.replay_bench", "run_cli", bench=True))
    bench_ledger = bench_sub.add_parser(
        "ledger", help="benchmark the ledger projection into PostgreSQL (postings/s)"
    )
    bench_ledger.add_argument("--json", action="store_true", help="print results as JSON")
    bench_ledger.add_argument("--seed", type=int, default=0, help="workload seed (default: 0)")
    bench_ledger.add_argument(
        "--commands", type=_positive_int, metavar="N", help="stream commands (default: 200000)"
    )
    bench_ledger.add_argument(
        "--chunk",
        type=_positive_int,
        default=32_768,
        metavar="N",
        help="commands per projected chunk (default: 32768)",
    )
    bench_ledger.add_argument(
        "--dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server to benchmark; a scratch database is created and dropped there",
    )
    bench_ledger.set_defaults(handler=_lazy("bench.ledger_bench", "run_cli", bench=True))
    bench_md = bench_sub.add_parser(
        "marketdata", help="benchmark WebSocket market-data fan-out (loopback, 2 processes)"
    )
    bench_md.add_argument("--json", action="store_true", help="print results as JSON")
    bench_md.add_argument("--seed", type=int, default=0, help="workload seed (default: 0)")
    bench_md.add_argument(
        "--subscribers",
        type=_positive_int,
        default=1_000,
        metavar="N",
        help="WebSocket subscribers, at most 5000 (default: 1000)",
    )
    bench_md.add_argument(
        "--rate",
        type=_positive_int,
        default=20_000,
        metavar="N",
        help="offered orders per second (default: 20000)",
    )
    bench_md.add_argument(
        "--seconds",
        type=_positive_float(120),
        default=10.0,
        metavar="S",
        help="measured seconds, at most 120 (default: 10)",
    )
    bench_md.add_argument(
        "--flush-ms",
        type=_positive_float(1_000),
        default=5.0,
        metavar="MS",
        help="fan-out flush interval (default: 5)",
    )
    bench_md.set_defaults(handler=_lazy("bench.marketdata_bench", "run_cli", bench=True))
    bench_gw = bench_sub.add_parser(
        "gateway", help="benchmark WS order entry: orders/s and ack latency (loopback)"
    )
    bench_gw.add_argument("--json", action="store_true", help="print results as JSON")
    bench_gw.add_argument(
        "--clients",
        type=_positive_int,
        default=8,
        metavar="N",
        help="WebSocket order-entry clients (default: 8)",
    )
    bench_gw.add_argument(
        "--seconds",
        type=_positive_float(600),
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
    bench_gw.set_defaults(handler=_lazy("bench.gateway_bench", "run_cli", bench=True))
    bench_cl = bench_sub.add_parser(
        "cluster", help="order entry in cluster mode: 3 NATS nodes (R3, R1), 2 gateways"
    )
    bench_cl.add_argument("--json", action="store_true", help="print results as JSON")
    bench_cl.add_argument(
        "--seconds",
        type=_positive_float(600),
        default=5.0,
        metavar="S",
        help="seconds per load (default: 5)",
    )
    bench_cl.add_argument(
        "--clients",
        type=_positive_int,
        default=8,
        metavar="N",
        help="WS connections, spread over both gateways (default: 8)",
    )
    bench_cl.set_defaults(handler=_lazy("bench.cluster_bench", "run_cli", bench=True))
    bench_hist = bench_sub.add_parser(
        "history", help="benchmark the order/trade history index: build rate, query latency"
    )
    bench_hist.add_argument("--json", action="store_true", help="print results as JSON")
    bench_hist.add_argument("--seed", type=int, default=0, help="workload seed (default: 0)")
    bench_hist.add_argument(
        "--orders",
        type=_positive_int,
        default=10_000_000,
        metavar="N",
        help="historical orders over 1,000 accounts (default: 10000000)",
    )
    bench_hist.set_defaults(handler=_lazy("bench.history_bench", "run_cli", bench=True))

    _add_ledger(sub)
    _add_custody(sub)
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


def _add_accounts(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase accounts ...``: operator actions (through a running server, if any)."""
    accounts = sub.add_parser("accounts", help="create accounts and API keys, credit deposits")
    acc_sub = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    handler = _lazy("gateway.admin", "run_accounts_cli")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir", type=Path, default=Path("./data"), help="data directory (default: ./data)"
        )
        p.add_argument(
            "--master-key-file",
            type=Path,
            default=None,
            metavar="FILE",
            help="as for serve (used when the server is not running)",
        )
        p.set_defaults(handler=handler)

    create = acc_sub.add_parser("create", help="new account with an API key (shown once)")
    common(create)
    create.add_argument(
        "--permissions",
        default="read,trade",
        help="comma-separated: read,trade,withdraw (default: read,trade)",
    )
    create.add_argument(
        "--ed25519-public-key",
        metavar="PEM|FILE",
        help="register this Ed25519 public key (PEM text or a .pem file) instead of an HMAC secret",
    )
    common(acc_sub.add_parser("list", help="accounts, their keys and balances"))
    deposit = acc_sub.add_parser("deposit", help="admin credit through the journal")
    common(deposit)
    deposit.add_argument("--account", type=_positive_int, required=True, metavar="ID")
    deposit.add_argument("--asset", required=True, help="asset symbol, e.g. USDT")
    deposit.add_argument("--amount", required=True, help="decimal amount, e.g. 1000.5")
    deposit.add_argument("--deposit-key", help="unique key (default: a fresh admin:<uuid>)")
    keys = acc_sub.add_parser("keys", help="list, rotate or revoke API keys (persisted)")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="KEYS", required=True)
    common(keys_sub.add_parser("list", help="every key: account, permissions, revoked or not"))
    rotate = keys_sub.add_parser(
        "rotate", help="new key (secret shown once) for the same account; the old one revoked"
    )
    common(rotate)
    rotate.add_argument("api_key", metavar="API_KEY")
    rotate.add_argument(
        "--ed25519-public-key",
        metavar="PEM",
        help="the new public key (required to rotate an Ed25519 key)",
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key for good (survives restarts)")
    common(revoke)
    revoke.add_argument("api_key", metavar="API_KEY")


def _add_staff(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase staff ...``: operator staff (the first admin is made here)."""
    staff = sub.add_parser("staff", help="operator staff: create (TOTP shown once), list")
    staff_sub = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir", type=Path, default=Path("./data"), help="data directory (default: ./data)"
        )
        p.add_argument(
            "--backoffice-dsn",
            default=None,
            metavar="DSN",
            help="the identity store's PostgreSQL DSN, as given to serve (default: SQLite in "
            "the data dir)",
        )
        p.add_argument(
            "--master-key-file",
            type=Path,
            default=None,
            metavar="FILE",
            help="as for serve (seals the TOTP seed)",
        )
        p.set_defaults(handler=_lazy("backoffice.staffcli", "run_cli"))

    create = staff_sub.add_parser("create", help="new staff member; prints the TOTP secret once")
    common(create)
    create.add_argument("--email", required=True)
    create.add_argument(
        "--role", required=True, help="admin, compliance, support, finance or auditor"
    )
    common(staff_sub.add_parser("list", help="every staff member and role"))


def _add_ledger(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase ledger ...``: the PostgreSQL projection and back-office reports."""
    ledger = sub.add_parser("ledger", help="book of record: projection and reports")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="LEDGER", required=True)

    sync = ledger_sub.add_parser("sync", help="project the journal into PostgreSQL (catch up)")
    sync.add_argument("--dsn", required=True, help="PostgreSQL DSN (postgresql://...)")
    sync.add_argument(
        "--journal",
        type=Path,
        metavar="DIR",
        help="journal dir (or --nats: follow the cluster's stream)",
    )
    sync.add_argument(
        "--to",
        dest="to_seq",
        type=_non_negative_int,
        metavar="SEQ",
        help="stop after this sequence (default: the journal's end)",
    )
    sync.add_argument(
        "--chunk",
        type=_positive_int,
        default=32_768,
        metavar="N",
        help="commands per database transaction (default: 32768)",
    )
    sync.add_argument(
        "--follow",
        type=_positive_float(3_600),
        metavar="S",
        help="keep following the journal, catching up every S seconds (until SIGTERM)",
    )
    add_nats_options(sync)
    sync.set_defaults(handler=_lazy("ledger.cli", "run_sync_cli"))

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="read the PostgreSQL projection")
        p.add_argument("--journal", type=Path, metavar="DIR", help="replay this journal instead")
        p.add_argument(
            "--format",
            choices=("table", "csv", "json"),
            help="output format (default: a table on a terminal, CSV otherwise)",
        )
        p.add_argument("--csv", action="store_true", help="the same as --format csv")
        p.set_defaults(handler=_lazy("ledger.cli", "run_report_cli"))

    balances = ledger_sub.add_parser("balances", help="balances as of a sequence")
    source(balances)
    balances.add_argument(
        "--as-of",
        type=_non_negative_int,
        metavar="SEQ",
        help="after this sequence (default: the latest)",
    )
    balances.add_argument(
        "--account", type=_non_negative_int, metavar="ID", help="only this account"
    )
    balances.add_argument("--asset", metavar="ASSET", help="only this asset (symbol or id)")
    trial = ledger_sub.add_parser("trial-balance", help="trial balance as of a sequence")
    source(trial)
    trial.add_argument(
        "--as-of",
        type=_non_negative_int,
        metavar="SEQ",
        help="after this sequence (default: the latest)",
    )
    statement = ledger_sub.add_parser("statement", help="an account's statement")
    source(statement)
    statement.add_argument("--account", type=_non_negative_int, required=True, metavar="ID")
    statement.add_argument("--asset", metavar="ASSET", help="only this asset (symbol or id)")
    statement.add_argument("--from", dest="from_seq", type=_non_negative_int, metavar="SEQ")
    statement.add_argument("--to", dest="to_seq", type=_non_negative_int, metavar="SEQ")
    statement.add_argument(
        "--from-time", metavar="T", help="journal time: ns since the epoch or ISO-8601 (UTC)"
    )
    statement.add_argument("--to-time", metavar="T", help="inclusive, like --from-time")


def _add_custody(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase custody reconcile|float|alerts``: reconciliation, the operator's float and
    the alerts that halt a chain."""
    custody = sub.add_parser("custody", help="custody operations: reconciliation, float")
    custody_sub = custody.add_subparsers(dest="custody_command", metavar="ACTION", required=True)
    rec = custody_sub.add_parser(
        "reconcile", help="per asset: ledger liabilities vs on-chain balances, explained"
    )
    rec.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="data directory holding custody.sqlite (default: ./data)",
    )
    rec.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="custody TOML config (default: DATA_DIR/custody.toml)",
    )
    rec.add_argument(
        "--journal", type=Path, metavar="DIR", help="journal directory (default: DATA_DIR/journal)"
    )
    rec.set_defaults(handler=_lazy("custody.cli", "run_reconcile_cli"))
    alerts = custody_sub.add_parser(
        "alerts", help="operator alerts (deep reorgs) that halt a chain: list, resolve"
    )
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="ALERTS", required=True)
    for name, text in (
        ("list", "open alerts, one JSON object a line"),
        ("resolve", "accept the node's chain and resume the halted chain"),
    ):
        p = alerts_sub.add_parser(name, help=text)
        p.add_argument(
            "--data-dir",
            type=Path,
            default=Path("./data"),
            help="data directory holding custody.sqlite (default: ./data)",
        )
        p.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            help="custody TOML config (default: DATA_DIR/custody.toml)",
        )
        p.set_defaults(handler=_lazy("custody.alertscli", "run_alerts_cli"))
        if name == "resolve":
            p.add_argument("alert_id", type=_positive_int, metavar="ID")
    flt = custody_sub.add_parser(
        "float", help="record the exchange's own coins moved into (or out of) its hot wallets"
    )
    flt.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="data directory holding custody.sqlite (default: ./data)",
    )
    flt.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="custody TOML config (default: DATA_DIR/custody.toml)",
    )
    flt.add_argument("--asset", required=True, help="asset symbol or id, e.g. ETH")
    flt.add_argument(
        "--amount",
        required=True,
        help="decimal amount in the asset's unit; negative = float taken out",
    )
    flt.add_argument("--note", required=True, help="why (e.g. the transaction id)")
    flt.set_defaults(handler=_lazy("custody.cli", "run_float_cli"))


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
