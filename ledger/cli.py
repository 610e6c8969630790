"""``kootabase ledger sync|statement|trial-balance|balances``: the back-office command line.

Reports read either PostgreSQL (``--dsn``, what `ledger sync` projected) or a journal replay
(``--journal``, the source of truth itself); both give the same figures. Output is a table
(rich) by default and CSV with ``--csv``. Amounts are printed as exact decimals of the asset
(``decimals`` from its AssetCreated event) next to the integer atoms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.schema import PostingReason
from ledger.chart import bucket_name
from ledger.reports import BalanceRow, Statement, TrialBalance, Window


def format_atoms(atoms: int, decimals: int | None) -> str:
    """Exact decimal string of an integer amount (no float ever touches money)."""
    if decimals is None or decimals == 0:
        return str(atoms)
    sign = "-" if atoms < 0 else ""
    whole, frac = divmod(abs(atoms), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def parse_time_ns(text: str) -> int:
    """Journal time bound: integer nanoseconds, or ISO-8601 (naive = UTC)."""
    if text.lstrip("-").isdigit():
        return int(text)
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1_000


def _window(args: argparse.Namespace) -> Window:
    if args.from_time is not None or args.to_time is not None:
        if args.from_seq is not None or args.to_seq is not None:
            raise SystemExit("kootabase ledger statement: give sequences or times, not both")
        return Window(
            "ts",
            parse_time_ns(args.from_time) if args.from_time else 0,
            parse_time_ns(args.to_time) if args.to_time else Window().high,
        )
    return Window(
        "seq", args.from_seq or 0, args.to_seq if args.to_seq is not None else Window().high
    )


def _emit(title: str, header: Sequence[str], rows: list[Sequence[object]], as_csv: bool) -> None:
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in header:
        table.add_column(column, justify="left" if column in ("bucket", "reason") else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)


async def _from_pg(dsn: str, kind: str, args: argparse.Namespace) -> tuple[object, dict]:
    import asyncpg

    from ledger.pg import queries

    conn = await asyncpg.connect(dsn)
    try:
        decimals = {
            r["asset_id"]: r["decimals"]
            for r in await conn.fetch("SELECT asset_id, decimals FROM assets")
        }
        if kind == "balances":
            return await queries.balances(conn, args.as_of, args.account), decimals
        if kind == "trial-balance":
            return await queries.trial_balance(conn, args.as_of), decimals
        return await queries.statement(conn, args.account, _window(args), args.asset), decimals
    finally:
        await conn.close()


def _from_journal(journal: Path, kind: str, args: argparse.Namespace) -> tuple[object, dict]:
    from ledger.reports import book_balances, book_statement, book_trial_balance, replay_book

    to_seq = args.as_of if kind != "statement" else None
    book = replay_book(journal, to_seq=to_seq)
    decimals = {a.asset_id: a.decimals for a in book.assets.values()}
    if kind == "balances":
        rows = book_balances(book, args.as_of)
        if args.account is not None:
            rows = tuple(r for r in rows if r.owner == args.account)
        return rows, decimals
    if kind == "trial-balance":
        return book_trial_balance(book, args.as_of), decimals
    return book_statement(book, args.account, _window(args), args.asset), decimals


def run_report_cli(args: argparse.Namespace) -> int:
    kind: str = args.ledger_command
    if (args.dsn is None) == (args.journal is None):
        raise SystemExit(f"kootabase ledger {kind}: give exactly one of --dsn or --journal")
    if args.dsn is not None:
        report, decimals = asyncio.run(_from_pg(args.dsn, kind, args))
    else:
        report, decimals = _from_journal(Path(args.journal), kind, args)

    def amt(asset: int, atoms: int) -> str:
        return format_atoms(atoms, decimals.get(asset))

    if kind == "balances":
        assert isinstance(report, tuple)
        rows: list[Sequence[object]] = [
            (r.owner, r.asset, bucket_name(r.bucket), r.amount, amt(r.asset, r.amount))
            for r in report
            if isinstance(r, BalanceRow)
        ]
        _emit("balances", ("account", "asset", "bucket", "atoms", "amount"), rows, args.csv)
    elif kind == "trial-balance":
        assert isinstance(report, TrialBalance)
        rows = [
            (
                r.asset,
                r.owner,
                bucket_name(r.bucket),
                r.debits,
                r.credits,
                r.balance,
                amt(r.asset, r.balance),
            )
            for r in report.rows
        ]
        for asset, (debits, credits, total) in report.totals().items():
            rows.append((asset, "TOTAL", "", debits, credits, total, amt(asset, total)))
        _emit(
            f"trial balance as of seq {report.as_of_seq}",
            ("asset", "account", "bucket", "debits", "credits", "balance", "amount"),
            rows,
            args.csv,
        )
        if not report.balanced:
            sys.stderr.write("kootabase: TRIAL BALANCE IS NOT ZERO\n")
            return 3
    else:
        assert isinstance(report, Statement)

        def balance_row(label: str, r: BalanceRow) -> tuple[object, ...]:
            return ("", "", "", label, r.asset, bucket_name(r.bucket), "", "", "", r.amount,
                    amt(r.asset, r.amount))

        rows = [balance_row("opening", r) for r in report.opening]
        for line in report.lines:
            rows.append(
                (
                    line.seq,
                    line.ts_ns,
                    line.txn_id,
                    PostingReason(line.reason).name,
                    line.asset,
                    bucket_name(line.bucket),
                    line.amount,
                    line.counter_owner,
                    bucket_name(line.counter_bucket),
                    line.balance_after,
                    amt(line.asset, line.balance_after),
                )
            )
        rows += [balance_row("closing", r) for r in report.closing]
        _emit(
            f"statement of account {report.owner}, {report.window.by} "
            f"{report.window.low}..{report.window.high}",
            (
                "seq",
                "ts_ns",
                "txn",
                "reason",
                "asset",
                "bucket",
                "atoms",
                "counter_account",
                "counter_bucket",
                "balance",
                "balance_amount",
            ),
            rows,
            args.csv,
        )
    return 0


def run_sync_cli(args: argparse.Namespace) -> int:
    """Catch up once, or with ``--follow S`` keep catching up every S seconds until SIGTERM or
    SIGINT (how ``kootabase serve --ledger-dsn`` runs it, in its own process so replaying the
    journal never blocks the gateway's event loop)."""
    from ledger.pg.projector import sync

    follow_s: float | None = getattr(args, "follow", None)

    async def once() -> None:
        result = await sync(args.dsn, Path(args.journal), to_seq=args.to_seq,
                            chunk_commands=args.chunk)
        if follow_s is not None and result.commands == 0:
            return
        rate = result.postings / result.seconds if result.seconds > 0 else 0.0
        sys.stdout.write(
            f"projected seq {result.from_seq}..{result.to_seq}: {result.commands} "
            f"commands, {result.postings} postings in {result.seconds:.3f} s "
            f"({rate:,.0f} postings/s)\n"
        )
        sys.stdout.flush()

    async def follow(interval_s: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        while not stop.is_set():
            await once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    if follow_s is None:
        asyncio.run(once())
    else:
        asyncio.run(follow(follow_s))
    return 0
