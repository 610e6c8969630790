"""Reports from PostgreSQL: the same `ledger.reports` types, computed by SQL.

A report can only speak for what was projected: asking for a point past the checkpoint is an
error (run ``kootabase ledger sync`` first), never a silently partial answer. Sums of ``bigint``
come back as ``numeric`` (a turnover may exceed int64) and are converted to exact ints.
"""

from __future__ import annotations

import asyncpg

from ledger.book import LedgerPosting
from ledger.chart import LedgerAccount, LedgerBucket
from ledger.reports import (
    BalanceRow,
    BeyondEnd,
    Statement,
    TrialBalance,
    TrialBalanceRow,
    Window,
    build_statement,
)


class NotProjected(BeyondEnd):
    """The report asks about sequences the projection has not reached."""

    def __init__(self, projected: int, asked: int) -> None:
        super().__init__("PostgreSQL", projected, asked, hint="run `kootabase ledger sync` first")


async def checkpoint(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT last_seq FROM projection_checkpoint WHERE id = 1"))


async def _as_of(conn: asyncpg.Connection, as_of: int | None) -> int:
    projected = await checkpoint(conn)
    if as_of is None:
        return projected
    if as_of > projected:
        raise NotProjected(projected, as_of)
    return as_of


async def has_postings(conn: asyncpg.Connection, owner: int, as_of: int | None = None) -> bool:
    """Whether any projected posting (up to ``as_of``, when given) moves ``owner``'s money."""
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM postings WHERE debit_account = $1 AND seq <= $2) "
        "OR EXISTS (SELECT 1 FROM postings WHERE credit_account = $1 AND seq <= $2)",
        owner,
        as_of if as_of is not None else 2**63 - 1,
    )
    return bool(found)


async def balances(
    conn: asyncpg.Connection, as_of: int | None = None, owner: int | None = None
) -> tuple[BalanceRow, ...]:
    """Non-zero balances after ``as_of``; at the checkpoint the maintained ``balances`` table
    answers, earlier points re-sum the postings."""
    projected = await checkpoint(conn)
    seq = await _as_of(conn, as_of)
    if seq == projected:
        rows = await conn.fetch(
            "SELECT account_id, asset_id, bucket, amount_atoms FROM balances "
            "WHERE amount_atoms <> 0 AND ($1::bigint IS NULL OR account_id = $1) "
            "ORDER BY 1, 2, 3",
            owner,
        )
    else:
        rows = await conn.fetch(
            """
            SELECT a, asset_id, b, sum(v)::numeric FROM (
                SELECT credit_account AS a, asset_id, credit_bucket AS b, amount_atoms AS v
                  FROM postings WHERE seq <= $1
                UNION ALL
                SELECT debit_account, asset_id, debit_bucket, -amount_atoms
                  FROM postings WHERE seq <= $1
            ) x WHERE ($2::bigint IS NULL OR a = $2)
            GROUP BY 1, 2, 3 HAVING sum(v) <> 0 ORDER BY 1, 2, 3
            """,
            seq,
            owner,
        )
    return tuple(BalanceRow(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows)


async def trial_balance(conn: asyncpg.Connection, as_of: int | None = None) -> TrialBalance:
    seq = await _as_of(conn, as_of)
    rows = await conn.fetch(
        """
        SELECT asset_id, a, b, sum(d)::numeric, sum(c)::numeric FROM (
            SELECT asset_id, debit_account AS a, debit_bucket AS b, amount_atoms AS d, 0 AS c
              FROM postings WHERE seq <= $1
            UNION ALL
            SELECT asset_id, credit_account, credit_bucket, 0, amount_atoms
              FROM postings WHERE seq <= $1
        ) x GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        seq,
    )
    out = tuple(
        TrialBalanceRow(
            int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[4]) - int(r[3])
        )
        for r in rows
    )
    return TrialBalance(seq, out)


def _posting(r: asyncpg.Record) -> LedgerPosting:
    return LedgerPosting(
        r["txn_id"],
        r["posting_index"],
        r["seq"],
        r["ts_ns"],
        r["event_index"],
        r["reason"],
        r["asset_id"],
        LedgerAccount(r["debit_account"], r["asset_id"], LedgerBucket(r["debit_bucket"])),
        LedgerAccount(r["credit_account"], r["asset_id"], LedgerBucket(r["credit_bucket"])),
        r["amount_atoms"],
    )


async def statement(
    conn: asyncpg.Connection, owner: int, window: Window, asset: int | None = None
) -> Statement:
    """The owner's postings in the window, with opening balances re-summed in SQL."""
    col = "seq" if window.by == "seq" else "ts_ns"
    projected = await checkpoint(conn)
    if window.by == "seq" and window.high != Window().high and window.high > projected:
        raise NotProjected(projected, window.high)
    opening = await conn.fetch(
        f"""
        SELECT asset_id, b, sum(v)::numeric FROM (
            SELECT asset_id, credit_bucket AS b, amount_atoms AS v FROM postings
             WHERE credit_account = $1 AND {col} < $2
            UNION ALL
            SELECT asset_id, debit_bucket, -amount_atoms FROM postings
             WHERE debit_account = $1 AND {col} < $2
        ) x WHERE ($3::integer IS NULL OR asset_id = $3) GROUP BY 1, 2
        """,
        owner,
        window.low,
        asset,
    )
    lines = await conn.fetch(
        f"""
        SELECT * FROM postings
         WHERE (debit_account = $1 OR credit_account = $1) AND {col} BETWEEN $2 AND $3
           AND ($4::integer IS NULL OR asset_id = $4)
         ORDER BY txn_id, posting_index
        """,
        owner,
        window.low,
        window.high,
        asset,
    )
    # Opening balances enter as synthetic postings so that the running balances and the
    # closing figures come from the same code as the replay source's.
    seed = [
        LedgerPosting(
            0,
            0,
            0,
            0,
            0,
            0,
            int(r[0]),
            LedgerAccount(-1, int(r[0]), LedgerBucket(0)),
            LedgerAccount(owner, int(r[0]), LedgerBucket(int(r[1]))),
            int(r[2]),
        )
        for r in opening
        if int(r[2]) != 0
    ]
    return build_statement(owner, window, seed, [_posting(r) for r in lines], asset)
