"""The operator's subcommands: ``accounts``, ``staff``, ``ledger`` and ``custody``.

Only their arguments live here; each implementation is imported when it runs
(`gateway.cliload.lazy`), in the module the subcommand names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cliargs import non_negative_int, positive_float, positive_int
from gateway.cliload import lazy
from gateway.clustercli import add_nats_options


def add_accounts_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase accounts ...``: operator actions (through a running server, if any)."""
    accounts = sub.add_parser("accounts", help="create accounts and API keys, credit deposits")
    acc_sub = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    handler = lazy("gateway.admin", "run_accounts_cli")

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
    deposit.add_argument("--account", type=positive_int, required=True, metavar="ID")
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


def add_staff_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
        p.set_defaults(handler=lazy("backoffice.staffcli", "run_cli"))

    create = staff_sub.add_parser("create", help="new staff member; prints the TOTP secret once")
    common(create)
    create.add_argument("--email", required=True)
    create.add_argument(
        "--role", required=True, help="admin, compliance, support, finance or auditor"
    )
    common(staff_sub.add_parser("list", help="every staff member and role"))


def add_ledger_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
        type=non_negative_int,
        metavar="SEQ",
        help="stop after this sequence (default: the journal's end)",
    )
    sync.add_argument(
        "--chunk",
        type=positive_int,
        default=32_768,
        metavar="N",
        help="commands per database transaction (default: 32768)",
    )
    sync.add_argument(
        "--follow",
        type=positive_float(3_600),
        metavar="S",
        help="keep following the journal, catching up every S seconds (until SIGTERM)",
    )
    add_nats_options(sync)
    sync.set_defaults(handler=lazy("ledger.cli", "run_sync_cli"))

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="read the PostgreSQL projection")
        p.add_argument("--journal", type=Path, metavar="DIR", help="replay this journal instead")
        p.add_argument(
            "--format",
            choices=("table", "csv", "json"),
            help="output format (default: a table on a terminal, CSV otherwise)",
        )
        p.add_argument("--csv", action="store_true", help="the same as --format csv")
        p.set_defaults(handler=lazy("ledger.cli", "run_report_cli"))

    balances = ledger_sub.add_parser("balances", help="balances as of a sequence")
    source(balances)
    balances.add_argument(
        "--as-of",
        type=non_negative_int,
        metavar="SEQ",
        help="after this sequence (default: the latest)",
    )
    balances.add_argument(
        "--account", type=non_negative_int, metavar="ID", help="only this account"
    )
    balances.add_argument("--asset", metavar="ASSET", help="only this asset (symbol or id)")
    trial = ledger_sub.add_parser("trial-balance", help="trial balance as of a sequence")
    source(trial)
    trial.add_argument(
        "--as-of",
        type=non_negative_int,
        metavar="SEQ",
        help="after this sequence (default: the latest)",
    )
    statement = ledger_sub.add_parser("statement", help="an account's statement")
    source(statement)
    statement.add_argument("--account", type=non_negative_int, required=True, metavar="ID")
    statement.add_argument("--asset", metavar="ASSET", help="only this asset (symbol or id)")
    statement.add_argument("--from", dest="from_seq", type=non_negative_int, metavar="SEQ")
    statement.add_argument("--to", dest="to_seq", type=non_negative_int, metavar="SEQ")
    statement.add_argument(
        "--from-time", metavar="T", help="journal time: ns since the epoch or ISO-8601 (UTC)"
    )
    statement.add_argument("--to-time", metavar="T", help="inclusive, like --from-time")


def _custody_paths(parser: argparse.ArgumentParser) -> None:
    """The data directory and config file every custody command reads."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="data directory holding custody.sqlite (default: ./data)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="custody TOML config (default: DATA_DIR/custody.toml)",
    )


def add_custody_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``kootabase custody reconcile|float|alerts``: reconciliation, the operator's float and
    the alerts that halt a chain."""
    custody = sub.add_parser("custody", help="custody operations: reconciliation, float")
    custody_sub = custody.add_subparsers(dest="custody_command", metavar="ACTION", required=True)
    rec = custody_sub.add_parser(
        "reconcile", help="per asset: ledger liabilities vs on-chain balances, explained"
    )
    _custody_paths(rec)
    rec.add_argument(
        "--journal", type=Path, metavar="DIR", help="journal directory (default: DATA_DIR/journal)"
    )
    rec.set_defaults(handler=lazy("custody.cli", "run_reconcile_cli"))
    alerts = custody_sub.add_parser(
        "alerts", help="operator alerts (deep reorgs) that halt a chain: list, resolve"
    )
    alerts_sub = alerts.add_subparsers(dest="alerts_command", metavar="ALERTS", required=True)
    for name, text in (
        ("list", "open alerts, one JSON object a line"),
        ("resolve", "accept the node's chain and resume the halted chain"),
    ):
        p = alerts_sub.add_parser(name, help=text)
        _custody_paths(p)
        p.set_defaults(handler=lazy("custody.alertscli", "run_alerts_cli"))
        if name == "resolve":
            p.add_argument("alert_id", type=positive_int, metavar="ID")
    flt = custody_sub.add_parser(
        "float", help="record the exchange's own coins moved into (or out of) its hot wallets"
    )
    _custody_paths(flt)
    flt.add_argument("--asset", required=True, help="asset symbol or id, e.g. ETH")
    flt.add_argument(
        "--amount",
        required=True,
        help="decimal amount in the asset's unit; negative = float taken out",
    )
    flt.add_argument("--note", required=True, help="why (e.g. the transaction id)")
    flt.set_defaults(handler=lazy("custody.cli", "run_float_cli"))
