"""Replay's journal batches with their command rows: checked and parsed in one compiled call.

Replay read a batch (`engine.journalscan.scan_records`: CRC32C and sequence of every record),
then parsed its hot payloads (`engine.core.cmdrows`) and its CreateAccount/Deposit payloads
(`engine.core.adminrows`) in two more njit calls, each with its own Python wrapper, arrays
and argument unboxing, and a second and third walk over bytes already read. `row_step` does
all three in one call per batch (`scan_rows`): the same functions, the same checks in the
same order (a corrupt record stops the scan before anything after it is parsed), the same
rows. Kept apart from `engine.journalscan`, which every journal opening imports (the parsers
pull in the engine's schema), and inside `engine.core`: numba caches `scan_rows` with the
parsers and the scan compiled in, and only the package's cache guard (`engine.core`'s
``__init__``, which also hashes `engine.journalscan` and `engine.journalformat` for this
module) recompiles it when one of them changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from engine.core.adminrows import ADMIN_TAGS, parse_admin_rows
from engine.core.cmdrows import HOT_TABLES, parse_hot_rows
from engine.core.layout import R_W
from engine.journalscan import CRC_TABLES, RecordBatch, Stretch, scan_records


@dataclass(frozen=True, slots=True)
class RowBatch:
    """A `RecordBatch` and its command rows: ``rows[i]`` is record ``i``'s row where
    ``fast[i]`` (else the record is left to the slow path); ``admin_rows``: how many of them
    are parsed CreateAccount/Deposit rows (0: no deposit keys to collect)."""

    records: RecordBatch
    rows: np.ndarray
    fast: np.ndarray
    admin_rows: int

    def __len__(self) -> int:
        return len(self.records)


@njit(cache=True, nogil=True)
def scan_rows(
    buf,
    offset,
    seq,
    start,
    end,
    payload_at,
    out_seq,
    out_ts,
    out_start,
    out_end,
    rows,
    fast,
    t,
    final,
    parse_tables,
):  # pragma: no cover - njit
    """`scan_records`, then the records it wrote parsed into ``rows``/``fast`` as
    `cmdrows.buffer_rows` and `adminrows.parse_admin` parse them. Returns scan_records'
    answer and the number of admin rows parsed."""
    status, n, offset, seq = scan_records(
        buf, offset, seq, start, end, payload_at, out_seq, out_ts, out_start, out_end, t, final
    )
    admin = 0
    if n:
        tags, meta, layout, defaults, account_tag, deposit_tag = parse_tables
        args = (buf, out_start[:n], out_end[:n], out_seq[:n], out_ts[:n], rows[:n], fast[:n])
        hot = parse_hot_rows(*args, tags, meta, layout, defaults)
        if hot < n:
            admin = parse_admin_rows(*args, account_tag, deposit_tag)
    return status, n, offset, seq, admin


_TABLES = (*HOT_TABLES, *ADMIN_TAGS)


def row_step(stretch: Stretch, at: int, seq: int) -> tuple[int, int, int, int, RowBatch | None]:
    """`engine.journalscan.ScanStep` of `scan_rows`: the batch as a `RowBatch`."""
    s, out = stretch, stretch.record_arrays()
    rows = np.empty((s.max_records, R_W), dtype=np.int64)
    fast = np.empty(s.max_records, dtype=np.bool_)
    status, got, at, seq, admin = scan_rows(
        s.buf, at, seq, s.start, s.end, s.payload_at, *out, rows, fast, CRC_TABLES, s.final, _TABLES
    )
    records = s.batch(out, got)
    if records is None:
        return status, got, at, seq, None
    return status, got, at, seq, RowBatch(records, rows[:got], fast[:got], admin)


__all__ = ["RowBatch", "row_step", "scan_rows"]
