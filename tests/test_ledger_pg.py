"""The PostgreSQL projection against the real server: it equals the replay-derived ledger, a
projector killed mid-COPY resumes with no duplicates and no gaps, re-syncing is a no-op, and
reports from PostgreSQL equal reports from a journal replay.

One fresh database per test session (``kootabase_test_<random>``, created through the
``postgres`` database and dropped at the end); each test projects into its own schema of it.
PostgreSQL unreachable means these tests fail: they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY

from bench.workloads import workload_b
from engine.schema import CreateAccount, Deposit, WithdrawRequest, WithdrawResult
from gateway.cli import main as cli_main
from ledger.book import Book
from ledger.pg import queries
from ledger.pg.migrations import migrate
from ledger.pg.projector import ProjectionConflict, Projector, sync
from ledger.reports import (
    Window,
    book_balances,
    book_statement,
    book_trial_balance,
    replay_book,
)
from ledger.source import journal_chunks, open_journal, write_journal

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("KOOTABASE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """DSN of a database created for this session (dropped afterwards)."""
    name = f"kootabase_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def dsn(pg_database: str) -> str:
    """A schema of its own for one test (asyncpg passes ``search_path`` as a setting)."""
    schema = f"t_{secrets.token_hex(4)}"

    async def create() -> None:
        conn = await asyncpg.connect(pg_database)
        try:
            await conn.execute(f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{pg_database}?search_path={schema}"


def _journal(path: Path, commands: int, seed: int = 3) -> Path:
    """Workload (b) plus withdrawals (held, settled, failed): every posting shape."""
    workload = workload_b(seed=seed, commands=commands, accounts=50, resting=400)
    records = [*workload.setup, *workload.prefill, *workload.stream]
    seq, ts = records[-1][0], records[-1][1]
    extra = []
    for i in range(1, 7):
        extra.append(
            WithdrawRequest(withdrawal_id=i, account_id=i, asset_id=1, amount_atoms=1_000 * i)
        )
    extra += [WithdrawResult(withdrawal_id=i, success=i % 2 == 0) for i in range(1, 6)]
    records += [(seq + k + 1, ts + 1_000 * (k + 1), c) for k, c in enumerate(extra)]
    journal = path / "journal"
    write_journal(journal, records)
    return journal


@pytest.fixture(scope="module")
def small_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _journal(tmp_path_factory.mktemp("ledger"), 3_000)


@pytest.fixture(scope="module")
def small_book(small_journal: Path) -> Book:
    return replay_book(small_journal)


async def _table_state(dsn: str) -> dict[str, object]:
    """Everything the projection holds, in a comparable form."""
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, object] = {}
        for table, key in (
            ("postings", "txn_id, posting_index"),
            ("transactions", "txn_id"),
            ("trades", "market_id, trade_id"),
            ("orders", "order_id"),
            ("assets", "asset_id"),
        ):
            out[table] = [
                tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
            ]
        out["balances"] = await queries.balances(conn)
        out["checkpoint"] = await queries.checkpoint(conn)
        return out
    finally:
        await conn.close()


def _expected_postings(book: Book) -> list[tuple[int, ...]]:
    return [
        (
            p.txn_id,
            p.index,
            p.seq,
            p.ts_ns,
            p.event_index,
            p.reason,
            p.asset,
            p.debit.owner,
            int(p.debit.bucket),
            p.credit.owner,
            int(p.credit.bucket),
            p.amount,
        )
        for p in book.postings
    ]


def _assert_equals_book(state: dict[str, object], book: Book) -> None:
    assert state["checkpoint"] == book.last_seq
    assert state["postings"] == _expected_postings(book)
    assert state["transactions"] == [
        (t.txn_id, t.seq, t.ts_ns, t.event_index, t.reason, len(t.postings))
        for t in book.transactions
    ]
    assert state["balances"] == book_balances(book)
    orders = {**book.orders.closed, **book.orders.open}
    assert state["orders"] == [orders[k].row() for k in sorted(orders)]
    assert len(state["trades"]) == len(book.trades)  # type: ignore[arg-type]
    assert [(t[0], t[1], t[2], t[3]) for t in state["trades"]] == sorted(  # type: ignore[attr-defined]
        (t.market_id, t.trade_id, t.seq, ts)
        for t, ts in zip(book.trades, book.trade_ts, strict=True)
    )


def test_projection_equals_replay_and_resync_is_a_no_op(
    dsn: str, small_journal: Path, small_book: Book
) -> None:
    assert small_book.trades and small_book.withdrawn  # the journal exercises every shape
    first = asyncio.run(sync(dsn, small_journal, chunk_commands=700))
    assert first.to_seq == small_book.last_seq and first.postings == len(small_book.postings)
    state = asyncio.run(_table_state(dsn))
    _assert_equals_book(state, small_book)
    assert REGISTRY.get_sample_value("kootabase_ledger_projection_lag_commands") == 0
    again = asyncio.run(sync(dsn, small_journal))
    assert (again.commands, again.postings) == (0, 0)
    assert asyncio.run(_table_state(dsn)) == state


def test_sync_in_steps_equals_one_sync(dsn: str, small_journal: Path, small_book: Book) -> None:
    for to_seq in (1, 7, 1_234, 1_235, 2_900, None):
        asyncio.run(sync(dsn, small_journal, to_seq=to_seq, chunk_commands=333))
    _assert_equals_book(asyncio.run(_table_state(dsn)), small_book)


def test_migrations_are_versioned_and_idempotent(dsn: str) -> None:
    async def run() -> tuple[list[int], list[int], list[int]]:
        conn = await asyncpg.connect(dsn)
        try:
            first = await migrate(conn)
            second = await migrate(conn)
            versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]
            return first, second, versions
        finally:
            await conn.close()

    first, second, versions = asyncio.run(run())
    assert first == [1, 2] and second == [] and versions == [1, 2]


def test_a_second_projector_cannot_write_twice(dsn: str, small_journal: Path) -> None:
    async def run() -> None:
        one = await Projector.connect(dsn)
        two = await Projector.connect(dsn)
        try:
            with open_journal(small_journal) as journal:
                chunk = next(journal_chunks(journal, chunk_commands=500))
            assert await one.write_chunk(chunk) > 0
            with pytest.raises(ProjectionConflict, match="another projector"):
                await two.write_chunk(chunk)
            with pytest.raises(RuntimeError, match="reconnect"):
                await two.write_chunk(chunk)
        finally:
            await one.close()
            await two.close()

    asyncio.run(run())


def _cli_csv(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["--log-level", "error", *argv]) == 0
    return out.getvalue()


def test_reports_agree_between_postgresql_and_replay(
    dsn: str, small_journal: Path, small_book: Book
) -> None:
    asyncio.run(sync(dsn, small_journal, chunk_commands=1_000))
    book = small_book
    last = book.last_seq
    mid_ts = book.postings[len(book.postings) // 2].ts_ns

    async def from_pg() -> list[object]:
        conn = await asyncpg.connect(dsn)
        try:
            out: list[object] = []
            for seq in (0, 1, 150, last // 2, last - 3, last):
                out.append(await queries.balances(conn, seq))
                out.append(await queries.trial_balance(conn, seq))
            for owner in (0, 1, 7):
                out.append(await queries.statement(conn, owner, Window("seq", 100, last // 2)))
                out.append(
                    await queries.statement(
                        conn, owner, Window("ts", mid_ts, mid_ts + 500_000), asset=1
                    )
                )
                out.append(await queries.statement(conn, owner, Window()))
            with pytest.raises(queries.NotProjected):
                await queries.balances(conn, last + 1)
            return out
        finally:
            await conn.close()

    expected: list[object] = []
    for seq in (0, 1, 150, last // 2, last - 3, last):
        expected.append(book_balances(book, seq))
        expected.append(book_trial_balance(book, seq))
    for owner in (0, 1, 7):
        expected.append(book_statement(book, owner, Window("seq", 100, last // 2)))
        expected.append(
            book_statement(book, owner, Window("ts", mid_ts, mid_ts + 500_000), asset=1)
        )
        expected.append(book_statement(book, owner, Window()))
    got = asyncio.run(from_pg())
    assert got == expected
    assert all(tb.balanced for tb in got[1:12:2])  # type: ignore[attr-defined]
    assert any(s.lines for s in got[12:])  # type: ignore[attr-defined]

    # the CLI prints the same CSV from either source
    for argv in (
        ["balances", "--as-of", str(last // 3)],
        ["trial-balance"],
        ["statement", "--account", "3", "--from", "50", "--to", str(last)],
        ["statement", "--account", "0", "--from-time", str(mid_ts)],
    ):
        pg = _cli_csv(["ledger", *argv, "--csv", "--dsn", dsn])
        replay = _cli_csv(["ledger", *argv, "--csv", "--journal", str(small_journal)])
        assert pg == replay and pg.count("\n") > 2


def test_projector_killed_mid_copy_resumes_without_duplicates_or_gaps(
    dsn: str, tmp_path: Path
) -> None:
    journal = _journal(tmp_path, 60_000, seed=11)
    book = replay_book(journal)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "--log-level",
            "error",
            "ledger",
            "sync",
            "--dsn",
            dsn,
            "--journal",
            str(journal),
            "--chunk",
            "2000",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    async def kill_during_copy() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and child.poll() is None:
                row = await conn.fetchrow(
                    "SELECT query FROM pg_stat_activity WHERE application_name = "
                    "'kootabase-ledger' AND state = 'active' AND query ILIKE 'COPY%'"
                )
                projected = (
                    await conn.fetchval("SELECT last_seq FROM projection_checkpoint") if row else 0
                )
                if row and projected:
                    child.send_signal(signal.SIGKILL)
                    return str(row["query"])
                await asyncio.sleep(0.001)
            raise AssertionError(f"never saw the projector inside a COPY (exit {child.poll()})")
        finally:
            await conn.close()

    try:
        query = asyncio.run(kill_during_copy())
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert query.upper().startswith("COPY")

    async def check_cut() -> int:
        # the server notices the dead client and rolls the chunk back; wait for that
        conn = await asyncpg.connect(dsn)
        try:
            while await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kootabase-ledger'"
            ):
                await asyncio.sleep(0.01)
            seq = await queries.checkpoint(conn)
            n, low, high = await conn.fetchrow(
                "SELECT count(*), min(txn_id), max(txn_id) FROM transactions"
            )
            postings = await conn.fetchval("SELECT count(*) FROM postings")
            assert 0 < seq < book.last_seq
            assert postings == book.postings_through(seq)
            assert (low, high) == (1, n)  # contiguous: no gap, no duplicate
            assert await conn.fetchval("SELECT max(seq) FROM postings") <= seq
            return seq
        finally:
            await conn.close()

    cut = asyncio.run(check_cut())
    resumed = asyncio.run(sync(dsn, journal, chunk_commands=5_000))
    assert resumed.from_seq == cut and resumed.to_seq == book.last_seq
    _assert_equals_book(asyncio.run(_table_state(dsn)), book)


def test_follower_projects_a_live_journal(dsn: str, tmp_path: Path) -> None:
    """`ledger sync --follow` (what `serve --ledger-dsn` starts) keeps PostgreSQL caught up with
    a journal that a running node is still writing: it opens the journal read-only."""
    from engine.node import EngineNode, NodeConfig
    from engine.service import bootstrap_demo

    async def checkpoint() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            try:
                return int(await conn.fetchval("SELECT last_seq FROM projection_checkpoint"))
            except asyncpg.UndefinedTableError:
                return -1
        finally:
            await conn.close()

    def wait_for(seq: int) -> None:
        deadline = time.monotonic() + 60
        while asyncio.run(checkpoint()) != seq:
            assert follower.poll() is None, "the follower died"
            assert time.monotonic() < deadline, f"projection never reached seq {seq}"
            time.sleep(0.2)

    with EngineNode(NodeConfig(data_dir=tmp_path, fsync=False)) as node:
        bootstrap_demo(node)
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "--log-level",
                "error",
                "ledger",
                "sync",
                "--dsn",
                dsn,
                "--journal",
                str(tmp_path / "journal"),
                "--follow",
                "0.2",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for(node.last_seq)
            node.submit(
                [
                    CreateAccount(account_id=9),
                    Deposit(account_id=9, asset_id=0, amount_atoms=12_345, deposit_key="live-1"),
                ]
            )
            wait_for(node.last_seq)
        finally:
            follower.terminate()
            assert follower.wait(timeout=30) == 0, "SIGTERM must stop the follower cleanly"
    _assert_equals_book(asyncio.run(_table_state(dsn)), replay_book(tmp_path / "journal"))
