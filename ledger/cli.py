"""``kootabase ledger sync|statement|trial-balance|balances``: the back-office command line.

Reports read either PostgreSQL (``--dsn``, what `ledger sync` projected) or a journal replay
(``--journal``, the source of truth itself); both give the same figures, and asking past the
end of either is the same error. Output is a table on a terminal and CSV otherwise
(``--format table|csv|json`` chooses; ``--csv`` is ``--format csv``), see `ledger.tables`.
Assets are shown by symbol; amounts are exact decimals of the asset (``decimals`` from its
AssetCreated event) next to the integer atoms; ``--asset`` takes a symbol or an id.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.datadir import require_journal_dir
from engine.schema import PostingReason
from engine.usererror import UserError
from ledger.chart import bucket_name
from ledger.reports import BalanceRow, BeyondEnd, Statement, TrialBalance, Window
from ledger.tables import default_format, emit


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
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"not a time: {text!r}",
            hint="give nanoseconds since the epoch or ISO-8601, e.g. 2026-01-31T12:00",
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1_000


def _window(args: argparse.Namespace) -> Window:
    end = Window().high
    if args.from_time is not None or args.to_time is not None:
        if args.from_seq is not None or args.to_seq is not None:
            raise UserError(
                "give sequences (--from/--to) or times (--from-time/--to-time), not both"
            )
        by = "ts"
        low = parse_time_ns(args.from_time) if args.from_time else 0
        high = parse_time_ns(args.to_time) if args.to_time else end
    else:
        by, low, high = "seq", args.from_seq or 0, end if args.to_seq is None else args.to_seq
    if low > high:  # checked here: `Window` asserts it as an invariant (a traceback)
        given = (args.from_time, args.to_time) if by == "ts" else (low, high)
        raise UserError(f"the window is reversed: from {given[0]} is after to {given[1]}")
    return Window(by, low, high)


@dataclass(frozen=True, slots=True)
class AssetNames:
    """Symbols and decimals of the assets a report mentions (from AssetCreated events)."""

    symbols: dict[int, str]
    decimals: dict[int, int]

    def symbol(self, asset_id: int) -> str:
        return self.symbols.get(asset_id, str(asset_id))

    def amount(self, asset_id: int, atoms: int) -> str:
        return format_atoms(atoms, self.decimals.get(asset_id))

    def resolve(self, text: str | None) -> int | None:
        """``--asset``: an asset id or a symbol (any case)."""
        if text is None:
            return None
        if text.isdigit():
            if int(text) not in self.symbols:
                raise UserError(f"unknown asset id {text}", hint=self._known())
            return int(text)
        wanted = text.upper()
        for asset_id, symbol in self.symbols.items():
            if symbol.upper() == wanted:
                return asset_id
        raise UserError(f"unknown asset {text!r}", hint=self._known())

    def _known(self) -> str:
        listed = ", ".join(f"{s} ({a})" for a, s in sorted(self.symbols.items()))
        return f"known assets: {listed or 'none yet'}"


def require_known_account(known: bool, account: int) -> None:
    """The ledger knows an account by its postings (it records no account creations): an
    ``--account`` the ledger never posted to is a mistake to say so, not an empty report with
    exit 0, which reads the same as a real account with nothing in it."""
    if not known:
        raise UserError(
            f"account {account} is unknown to the ledger (no postings)",
            hint="`kootabase ledger balances` lists the accounts that hold balances",
        )


async def _from_pg(dsn: str, kind: str, args: argparse.Namespace) -> tuple[object, AssetNames]:
    import asyncpg

    from ledger.pg import queries
    from ledger.pg.connect import connect

    conn = await connect(dsn)
    try:
        try:
            rows = await conn.fetch("SELECT asset_id, symbol, decimals FROM assets")
        except asyncpg.UndefinedTableError:
            raise UserError(
                "this database holds no ledger projection yet",
                hint="run `kootabase ledger sync --dsn DSN --journal DATA_DIR/journal` first",
            ) from None
        names = AssetNames(
            {r["asset_id"]: r["symbol"] for r in rows}, {r["asset_id"]: r["decimals"] for r in rows}
        )
        asset = names.resolve(getattr(args, "asset", None))
        report: object
        if kind == "balances":
            report = await queries.balances(conn, args.as_of, args.account)
        elif kind == "trial-balance":
            return await queries.trial_balance(conn, args.as_of), names
        else:
            report = await queries.statement(conn, args.account, _window(args), asset)
        if args.account is not None:  # asked after the report: past-the-end errors come first
            as_of = args.as_of if kind == "balances" else None
            known = await queries.has_postings(conn, args.account, as_of)
            require_known_account(known, args.account)
        return report, names
    finally:
        await conn.close()


def _from_journal(journal: Path, kind: str, args: argparse.Namespace) -> tuple[object, AssetNames]:
    from ledger.reports import book_balances, book_statement, book_trial_balance, replay_book

    window = _window(args) if kind == "statement" else None
    asked = args.as_of if kind != "statement" else None
    book = replay_book(journal, to_seq=asked)
    if window is not None and window.by == "seq" and window.high != Window().high:
        asked = window.high
    if asked is not None and asked > book.last_seq:
        raise BeyondEnd(
            "the journal", book.last_seq, asked, hint="ask for a sequence at or before its end"
        )
    names = AssetNames(
        {a.asset_id: a.symbol for a in book.assets.values()},
        {a.asset_id: a.decimals for a in book.assets.values()},
    )
    asset = names.resolve(getattr(args, "asset", None))
    account = getattr(args, "account", None)
    if account is not None:
        require_known_account(any(acct.owner == account for acct in book.balances), account)
    if kind == "balances":
        return book_balances(book, args.as_of), names
    if kind == "trial-balance":
        return book_trial_balance(book, args.as_of), names
    assert window is not None
    return book_statement(book, args.account, window, asset), names


def run_report_cli(args: argparse.Namespace) -> int:
    kind: str = args.ledger_command
    if (args.dsn is None) == (args.journal is None):
        raise UserError("give exactly one of --dsn or --journal")
    fmt = "csv" if args.csv else (args.format or default_format())
    if args.dsn is not None:
        report, names = asyncio.run(_from_pg(args.dsn, kind, args))
    else:
        report, names = _from_journal(require_journal_dir(Path(args.journal)), kind, args)
    sym, amt = names.symbol, names.amount

    if kind == "balances":
        assert isinstance(report, tuple)
        asset = names.resolve(args.asset)
        rows: list[Sequence[object]] = [
            (r.owner, sym(r.asset), bucket_name(r.bucket), r.amount, amt(r.asset, r.amount))
            for r in report
            if isinstance(r, BalanceRow)
            and (args.account is None or r.owner == args.account)
            and (asset is None or r.asset == asset)
        ]
        emit("balances", ("account", "asset", "bucket", "atoms", "amount"), rows, fmt)
    elif kind == "trial-balance":
        assert isinstance(report, TrialBalance)
        rows = [
            (
                sym(r.asset),
                r.owner,
                bucket_name(r.bucket),
                r.debits,
                r.credits,
                r.balance,
                amt(r.asset, r.balance),
            )
            for r in report.rows
        ]
        for asset_id, (debits, credits, total) in report.totals().items():
            rows.append((sym(asset_id), "TOTAL", "", debits, credits, total, amt(asset_id, total)))
        for asset_id, demo in sorted(report.demo_atoms.items()):
            # the demo faucet's part of the CUSTODY balance: no chain backs it
            rows.append(
                (sym(asset_id), 0, "CUSTODY of which DEMO", "", "", -demo, amt(asset_id, -demo))
            )
        emit(
            f"trial balance as of seq {report.as_of_seq}",
            ("asset", "account", "bucket", "debits", "credits", "balance", "amount"),
            rows,
            fmt,
        )
        if not report.balanced:
            sys.stderr.write("kootabase: TRIAL BALANCE IS NOT ZERO\n")
            return 3
    else:
        assert isinstance(report, Statement)

        def balance_row(label: str, r: BalanceRow) -> tuple[object, ...]:
            return (
                "",
                "",
                "",
                label,
                sym(r.asset),
                bucket_name(r.bucket),
                "",
                "",
                "",
                "",
                r.amount,
                amt(r.asset, r.amount),
            )

        rows = [balance_row("opening", r) for r in report.opening]
        for line in report.lines:
            rows.append(
                (
                    line.seq,
                    line.ts_ns,
                    line.txn_id,
                    PostingReason(line.reason).name,
                    sym(line.asset),
                    bucket_name(line.bucket),
                    line.amount,
                    amt(line.asset, line.amount),
                    line.counter_owner,
                    bucket_name(line.counter_bucket),
                    line.balance_after,
                    amt(line.asset, line.balance_after),
                )
            )
        rows += [balance_row("closing", r) for r in report.closing]
        emit(
            f"statement of account {report.owner}, {report.window.by} "
            f"{report.window.low}.."
            f"{'end' if report.window.high == Window().high else report.window.high}",
            (
                "seq",
                "ts_ns",
                "txn",
                "reason",
                "asset",
                "bucket",
                "atoms",
                "amount",
                "counter_account",
                "counter_bucket",
                "balance_atoms",
                "balance",
            ),
            rows,
            fmt,
        )
    return 0


def run_sync_cli(args: argparse.Namespace) -> int:
    """Catch up once, or with ``--follow S`` keep catching up every S seconds until SIGTERM or
    SIGINT (how ``kootabase serve --ledger-dsn`` runs it, in its own process so replaying the
    journal never blocks the gateway's event loop)."""
    from ledger.pg.projector import sync

    follow_s: float | None = getattr(args, "follow", None)
    if (args.journal is None) == (getattr(args, "nats", None) is None):
        raise SystemExit("kootabase ledger sync: give exactly one of --journal or --nats")
    if args.nats is not None:
        return _run_stream_sync(args, follow_s)
    require_journal_dir(Path(args.journal))

    async def once() -> None:
        result = await sync(
            args.dsn, Path(args.journal), to_seq=args.to_seq, chunk_commands=args.chunk
        )
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
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        synced: tuple[tuple[str, int], ...] | None = None
        while not stop.is_set():
            seen = _journal_fingerprint(Path(args.journal))
            if seen != synced:  # idle journal: no replay, no database connection
                await once()
                synced = seen
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    if follow_s is None:
        asyncio.run(once())
    else:
        asyncio.run(follow(follow_s))
    return 0


def _journal_fingerprint(journal_dir: Path) -> tuple[tuple[str, int], ...]:
    """Segment names and sizes: changes whenever a record is appended (cheap: one stat each)."""
    return tuple((p.name, p.stat().st_size) for p in sorted(journal_dir.glob("*.seg")))


def _run_stream_sync(args: argparse.Namespace, follow_s: float | None) -> int:
    """``ledger sync --nats``: project from the cluster's stream (`ledger.streamsync`)."""
    from engine.streamlog import options_from_args
    from ledger.streamsync import sync_stream

    try:
        options, spec = options_from_args(args, "kootabase-ledger")
    except ValueError as exc:
        raise SystemExit(f"kootabase ledger sync: {exc}") from None
    result = asyncio.run(
        sync_stream(args.dsn, options, spec, follow_s=follow_s, chunk_commands=args.chunk)
    )
    sys.stdout.write(
        f"projected seq {result.from_seq}..{result.to_seq} from stream "
        f"{spec.name}: {result.commands} commands, {result.postings} postings in "
        f"{result.seconds:.3f} s\n"
    )
    return 0
