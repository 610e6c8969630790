"""``kootabase bench ledger``: projection throughput into PostgreSQL, in postings per second.

What is timed, and why it is fair:

- Only the projection: turning engine events into rows and writing them (COPY of postings,
  transactions, trades; upserts of orders and balances; the checkpoint) in one database
  transaction per chunk, exactly as ``kootabase ledger sync`` does. The workload is generated,
  and run through the compiled engine into chunks of events, before the clock starts (replay has
  its own benchmark: ``kootabase replay`` prints its rate).
- The database is fresh (``kootabase_bench_<random>`` created through the ``postgres``
  database, dropped afterwards) and migrated before timing, so every run measures the same
  thing: inserts into empty tables with all their indexes and constraints.
- Workload (b) (bench/workloads.py: the crypto mix on a deep book) produces trades, holds,
  releases and fees, i.e. every posting shape except custody's. Deposits come from setup.
- After timing, the projection is checked: as many postings as events, and a zero trial
  balance per asset in SQL. A fast but wrong projection is not a result.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

from bench.engine_bench import machine_info
from bench.workloads import workload_b
from engine.core.compiled import CompiledEngine
from engine.schema import Posting
from ledger.pg.connect import connect as pg_connect
from ledger.pg.projector import Projector
from ledger.source import Chunk

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_COMMANDS = 200_000
CHUNK_COMMANDS = 32_768


@dataclass
class LedgerResult:
    workload: str
    seed: int
    commands: int
    chunk_commands: int
    postings: int
    transactions: int
    trades: int
    seconds: float
    postings_per_sec: float
    commands_per_sec: float
    server_version: str


def make_chunks(seed: int, commands: int, chunk_commands: int) -> tuple[list[Chunk], int]:
    """Workload (b) through the compiled engine, cut into chunks of events."""
    workload = workload_b(seed=seed, commands=commands, accounts=1_000, resting=10_000)
    records = [*workload.setup, *workload.prefill, *workload.stream]
    engine = CompiledEngine(workload.config)
    chunks = []
    for start in range(0, len(records), chunk_commands):
        batch = records[start : start + chunk_commands]
        events = engine.process(batch)
        chunks.append(Chunk(batch[0][0], batch[-1][0], {s: ts for s, ts, _ in batch}, events))
    return chunks, len(records)


async def _project(dsn: str, chunks: list[Chunk]) -> tuple[float, str, tuple[int, int, int]]:
    admin = await pg_connect(dsn)
    name = f"kootabase_bench_{secrets.token_hex(4)}"
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        target = dsn.rsplit("/", 1)[0] + "/" + name
        projector = await Projector.connect(target)
        try:
            version = str(await projector.conn.fetchval("SHOW server_version"))
            gc.collect()
            gc.disable()
            started = time.perf_counter()
            await projector.project(chunks)
            seconds = time.perf_counter() - started
            gc.enable()
            conn = projector.conn
            counts = (
                int(await conn.fetchval("SELECT count(*) FROM postings")),
                int(await conn.fetchval("SELECT count(*) FROM transactions")),
                int(await conn.fetchval("SELECT count(*) FROM trades")),
            )
            unbalanced = await conn.fetch(
                "SELECT asset_id FROM balances GROUP BY asset_id HAVING sum(amount_atoms) <> 0"
            )
            assert not unbalanced, f"trial balance not zero for {unbalanced}"
        finally:
            gc.enable()
            await projector.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    return seconds, version, counts


def run(
    dsn: str = DEFAULT_DSN,
    seed: int = 0,
    commands: int = DEFAULT_COMMANDS,
    chunk_commands: int = CHUNK_COMMANDS,
) -> LedgerResult:
    chunks, total_commands = make_chunks(seed, commands, chunk_commands)
    expected = sum(1 for c in chunks for e in c.events if type(e) is Posting)
    seconds, version, (postings, txns, trades) = asyncio.run(_project(dsn, chunks))
    assert postings == expected, (postings, expected)
    return LedgerResult(
        "b",
        seed,
        total_commands,
        chunk_commands,
        postings,
        txns,
        trades,
        round(seconds, 4),
        round(postings / seconds),
        round(total_commands / seconds),
        version,
    )


async def _check_dsn(dsn: str) -> None:
    await (await pg_connect(dsn)).close()


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``kootabase bench ledger`` (see gateway/clibench.py)."""
    asyncio.run(_check_dsn(args.dsn))  # a wrong DSN in one line, before the workload is built
    result = run(args.dsn, args.seed, args.commands or DEFAULT_COMMANDS, args.chunk)
    machine = machine_info()
    if args.json:
        sys.stdout.write(
            msgspec.json.encode({**asdict(result), "machine": machine}).decode() + "\n"
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ledger projection into PostgreSQL (workload b)")
    for column in (
        "commands",
        "postings",
        "transactions",
        "trades",
        "seconds",
        "postings/s",
        "commands/s",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        f"{result.commands:,}",
        f"{result.postings:,}",
        f"{result.transactions:,}",
        f"{result.trades:,}",
        f"{result.seconds:.3f}",
        f"{result.postings_per_sec:,}",
        f"{result.commands_per_sec:,}",
    )
    console = Console()
    console.print(table)
    console.print(
        f"PostgreSQL {result.server_version}; {machine['cpu']} x "
        f"{machine['cpu_count']}; chunk {result.chunk_commands:,} commands"
    )
    return 0


__all__: list[Any] = ["LedgerResult", "run", "run_cli"]
