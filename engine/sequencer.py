"""The sequencer: the only clock the engine ever sees.

The engine is a pure function of (state, command), so time must arrive *inside* commands. The
sequencer stamps each command with the next sequence number and a timestamp, journals the
batch in one group commit, and only then hands the stamped records on. A command is therefore
never processed (nor acknowledged) unless it is durable, and replay sees exactly the same
sequences and timestamps as the live run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from engine.journal import Journal, Record

log = structlog.get_logger(__name__)


class Sequencer:
    """Stamps and journals command batches; single-threaded, the journal's only writer.

    ``clock`` returns nanoseconds since the epoch and defaults to `time.time_ns`. It is a
    constructor parameter because the clock is a real input of the system (like the journal):
    tests and simulations pass a deterministic clock to reproduce exact timestamps. That is a
    genuine clock, not a mock: the sequencer uses whatever it returns, unmodified, except for
    the monotonic floor described on `stamp_and_commit`.
    """

    def __init__(self, journal: Journal, clock: Callable[[], int] = time.time_ns) -> None:
        self._journal = journal
        self._clock = clock
        self._next_seq = journal.last_sequence + 1
        self._last_ts: int | None = None
        self._clock_behind = False  # warn once per episode, not on every batch
        if journal.first_sequence <= journal.last_sequence:
            # Recover the floor for timestamps from the last durable record, so a restart on a
            # machine whose clock is behind cannot make time go backwards in the journal.
            last = journal.last_sequence
            for seq, ts, _ in journal.read_from(last, last):
                assert seq == last, f"journal returned sequence {seq} for {last}"
                self._last_ts = ts
            assert self._last_ts is not None, "journal did not return its last record"
        log.info(
            "sequencer_recovered", next_sequence=self._next_seq, last_timestamp_ns=self._last_ts
        )

    @property
    def next_sequence(self) -> int:
        """Sequence the next stamped command will get."""
        return self._next_seq

    @property
    def last_timestamp_ns(self) -> int | None:
        """Timestamp of the last committed command, None if the journal holds no record."""
        return self._last_ts

    def stamp_and_commit(self, payloads: Sequence[bytes]) -> list[Record]:
        """Stamp ``payloads`` in order, journal them durably, and return the stamped records.

        Sequences continue the journal contiguously. The whole batch gets one timestamp,
        ``max(clock(), last timestamp)``: one group commit happens at one instant, and the
        floor keeps journal time non-decreasing when the wall clock steps back (NTP slew, VM
        migration, restart on another host). Engine logic such as GTD expiry and candle
        boundaries depends on time never going backwards, and replay must reproduce it, so the
        correction is recorded in the journal rather than applied later.

        Nothing is returned before the journal append has returned (the batch is durable).
        If the append raises, the sequencer's state is unchanged and the error propagates.
        """
        if not payloads:
            return []
        assert self._journal.last_sequence + 1 == self._next_seq, (
            "journal was appended to behind the sequencer's back (single-writer violated)"
        )
        now = self._clock()
        if type(now) is not int:
            raise TypeError(f"clock must return int nanoseconds, got {now!r}")
        ts = now if self._last_ts is None else max(now, self._last_ts)
        behind = self._last_ts is not None and now < self._last_ts
        if behind and not self._clock_behind:
            log.warning("sequencer_clock_behind", clock_ns=now, floor_ns=self._last_ts)
        self._clock_behind = behind
        first = self._next_seq
        records = [(first + i, ts, payload) for i, payload in enumerate(payloads)]
        self._journal.append_batch(records)
        self._next_seq = first + len(records)
        self._last_ts = ts
        return records
