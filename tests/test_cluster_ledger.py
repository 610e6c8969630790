"""``kootabase ledger sync --nats``: the PostgreSQL projection fed by the command stream.

Real NATS (127.0.0.1:4222, a unique stream) and real PostgreSQL (a schema per test). The
projection from the stream must equal the projection of the same history as a local journal,
also when it resumes from a checkpoint by way of a verified Object Store snapshot.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg

from engine.crosscheck import CHECKPOINT_EVERY
from engine.follower import Follower
from engine.streamjournal import export_stream
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from ledger.pg.projector import sync
from ledger.streamsync import sync_stream
from tests.cluster_support import LOCAL_NATS, kootabase, stream_on
from tests.test_cluster_checks import _batches, _publish, _wait
from tests.test_ledger_pg import _table_state, pg_database  # noqa: F401 (a fixture)

N = 2 * CHECKPOINT_EVERY + 40


async def _schema(database_dsn: str) -> str:
    """A DSN on a fresh schema of the session's test database."""
    name = f"t_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
    finally:
        await conn.close()
    return f"{database_dsn}?search_path={name}"


FIRST = 300


def test_projection_from_stream_equals_journal_and_resumes_from_snapshot(
    tmp_path: Path,
    pg_database: str,  # noqa: F811
) -> None:
    dsns = [asyncio.run(_schema(pg_database)) for _ in range(3)]
    resumed, from_cli, from_journal = dsns

    async def body(spec: StreamSpec) -> list[int]:
        opts = NatsOptions()
        writer = await StreamLog.connect(opts, spec)
        warm = Follower(None, "warm", "test", lambda a: None)
        await warm.attach(await StreamLog.connect(opts, spec), snapshot_every=1)
        batches = _batches(N)
        await _publish(writer, batches[:FIRST])
        first = await sync_stream(resumed, opts, spec)
        await _publish(writer, batches[FIRST:])
        await _wait(lambda: warm.replica.stream_seq == N)
        await _wait(lambda: not warm.checker._work)
        second = await sync_stream(resumed, opts, spec)  # from snapshot 256 + stream 257..
        await export_stream(writer, tmp_path / "journal")
        await warm.close()
        await writer.close()
        return [first.to_seq, second.from_seq, second.to_seq]

    with stream_on() as spec:
        first_to, second_from, second_to = asyncio.run(body(spec))
        assert first_to == second_from > 0 and second_to > second_from
        res = kootabase(
            "ledger", "sync", "--nats", LOCAL_NATS, "--stream", spec.name, "--dsn", from_cli
        )
        assert res.returncode == 0, res.stderr
        assert f"..{second_to} from stream" in res.stdout
    asyncio.run(sync(from_journal, tmp_path / "journal"))
    states = [asyncio.run(_table_state(d)) for d in dsns]
    assert states[0]["checkpoint"] == second_to
    assert states[0] == states[1] == states[2]
    assert states[0]["postings"], "the history moved money"
