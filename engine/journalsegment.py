"""One segment file of a `engine.journal.SegmentJournal`, as the journal holds it: its
in-memory view (where its valid bytes end, its sparse index), its file name, and making a
created or truncated directory entry durable.

Shared by the journal's append and read paths and by its recovery (`engine.journalrecovery`);
the bytes inside a segment are `engine.journalformat`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.journalformat import FORMAT_VERSION

#: One sparse-index entry per sequence divisible by this (plus one per segment start).
INDEX_INTERVAL = 4096
_SUFFIX = ".seg"


@dataclass
class _Segment:
    """In-memory view of one segment file: where its valid bytes end and its sparse index."""

    path: Path
    first_seq: int
    size: int
    next_seq: int
    version: int = FORMAT_VERSION
    last_digest: bytes | None = None
    """Stored digest of its last record (version 2 with records), else None."""
    first_ts: int | None = None
    last_ts: int | None = None
    last_offset: int = -1
    """Offset of its last record (-1: none yet)."""
    index_seqs: list[int] = field(default_factory=list)
    index_offsets: list[int] = field(default_factory=list)

    def add_index(self, seq: int, offset: int) -> None:
        self.index_seqs.append(seq)
        self.index_offsets.append(offset)


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    """Make a created, renamed or truncated directory entry durable (a file's fsync does not);
    the journal's segments and the snapshots both need it."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
