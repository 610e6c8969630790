"""Sequencer: contiguous sequences, monotonic time, durability before return, recovery.

The clock is a real, deterministic clock (a scripted list of readings), the journal a real
`SegmentJournal` in a temporary directory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from engine.journal import MAX_PAYLOAD_BYTES, SegmentJournal
from engine.sequencer import Sequencer


class ScriptedClock:
    """A clock that returns prescribed nanosecond readings in order, like a wall clock that
    is stepped by NTP; it fails loudly if the sequencer reads it more often than expected."""

    def __init__(self, readings: Iterable[int]) -> None:
        self._readings = iter(readings)

    def __call__(self) -> int:
        return next(self._readings)


def test_stamps_contiguous_sequences_and_journals_before_returning(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, segment_bytes=200) as journal:
        seq = Sequencer(journal, clock=ScriptedClock([100, 200, 300]))
        assert (seq.next_sequence, seq.last_timestamp_ns) == (1, None)
        first = seq.stamp_and_commit([b"a", b"b", b"c"])
        assert first == [(1, 100, b"a"), (2, 100, b"b"), (3, 100, b"c")]
        assert journal.last_sequence == 3  # durable by the time it is returned
        second = seq.stamp_and_commit([b"d"])
        assert second == [(4, 200, b"d")]
        assert seq.stamp_and_commit([]) == []
        assert (seq.next_sequence, seq.last_timestamp_ns) == (5, 200)
        assert list(journal.read_from(1)) == first + second


def test_timestamps_never_go_back_when_the_clock_does(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as journal:
        seq = Sequencer(journal, clock=ScriptedClock([1_000, 500, 400, 2_000, 1_500, 3_000]))
        with capture_logs() as logs:
            stamps = [seq.stamp_and_commit([b"x"])[0][1] for _ in range(6)]
        assert stamps == [1_000, 1_000, 1_000, 2_000, 2_000, 3_000]
        behind = [e for e in logs if e["event"] == "sequencer_clock_behind"]
        assert [(e["clock_ns"], e["floor_ns"]) for e in behind] == [(500, 1_000), (1_500, 2_000)]


def test_recovers_next_sequence_and_time_floor_after_reopen(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, segment_bytes=150) as journal:
        seq = Sequencer(journal, clock=ScriptedClock([10, 20, 30]))
        for n in range(3):
            seq.stamp_and_commit([b"p%d" % i for i in range(n + 2)])
    with SegmentJournal(tmp_path, segment_bytes=150) as journal:
        seq = Sequencer(journal, clock=ScriptedClock([5, 40]))
        assert (seq.next_sequence, seq.last_timestamp_ns) == (10, 30)
        assert seq.stamp_and_commit([b"late"]) == [(10, 30, b"late")]  # clock behind: floor
        assert seq.stamp_and_commit([b"on time"]) == [(11, 40, b"on time")]
        assert [r[0] for r in journal.read_from(1)] == list(range(1, 12))


def test_failed_append_leaves_the_sequencer_unchanged(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as journal:
        seq = Sequencer(journal, clock=ScriptedClock([10, 20, 30]))
        seq.stamp_and_commit([b"ok"])
        with pytest.raises(ValueError, match="exceeds"):
            seq.stamp_and_commit([b"fine", b"z" * (MAX_PAYLOAD_BYTES + 1)])
        assert (seq.next_sequence, seq.last_timestamp_ns, journal.last_sequence) == (2, 10, 1)
        assert seq.stamp_and_commit([b"next"]) == [(2, 30, b"next")]


def test_clock_must_return_int_nanoseconds(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as journal:
        seq = Sequencer(journal, clock=lambda: 1.5)  # type: ignore[arg-type, return-value]
        with pytest.raises(TypeError, match="int nanoseconds"):
            seq.stamp_and_commit([b"x"])
        assert journal.last_sequence == 0


def test_default_clock_is_wall_time(tmp_path: Path) -> None:
    with SegmentJournal(tmp_path, fsync=False) as journal:
        before = time.time_ns()
        [(sequence, ts, _)] = Sequencer(journal).stamp_and_commit([b"x"])
        assert sequence == 1 and before <= ts <= time.time_ns()
