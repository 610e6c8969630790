"""``--history pg``: the closed orders and trades a gateway holds in memory until PostgreSQL's
projection has them, counted per batch so that a full cap sheds the *oldest* batches only.

Without a local index, memory is the only place a closed row lives until the projection's
checkpoint passes its batch. While the projection lags (``ledger sync`` stopped, PostgreSQL
down), rows pile up; ``--history-held-rows`` bounds them. Past it the gateway used to drop every
held row at once, silently. Now it sheds the oldest batches until a quarter of the cap is free
(`SHED_TO`), so:

- trading never waits on the projection (back-pressure would stall every order of the venue on
  a read-side lag);
- history queries needing a shed row are refused with the stable -1008 until the projection
  passes the shed batches (`gateway.history.lookup`), and only until then: the rows after them
  are still held, so the projection need not reach the newest batch;
- the operator sees it: ``kootabase_history_rows_shed`` counts the rows,
  ``kootabase_history_held_rows`` is the backlog, ``/health``'s ``pgHistory`` shows both, and a
  warning ``pg_history_rows_shed`` names the rows and the sequences (at most one line per
  `LOG_EVERY_S`, with the totals since the previous one).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Final

import structlog

log = structlog.get_logger(__name__)

SHED_TO: Final = 0.75
"""A shed leaves this fraction of the cap held, so one happens per quarter cap of rows, not
per batch."""
LOG_EVERY_S: Final = 10.0


class HeldBatches:
    """Rows held per batch sequence, oldest first (single writer: the loop thread)."""

    def __init__(self) -> None:
        self._batches: deque[tuple[int, int]] = deque()
        """(batch seq, rows held from it)."""
        self.rows = 0
        """Rows held now (the store's pending lists hold exactly these)."""
        self.shed_rows = 0
        """Rows shed past the cap since start (a counter)."""
        self.shed_through_seq = 0
        """The newest batch a shed dropped (0: none)."""

    def hold(self, seq: int, rows: int) -> None:
        if rows:
            self._batches.append((seq, rows))
            self.rows += rows

    def release_through(self, seq: int) -> None:
        """Batches through ``seq`` leave (the projection has them, or memory never held them)."""
        batches = self._batches
        while batches and batches[0][0] <= seq:
            self.rows -= batches.popleft()[1]

    def shed(self, max_rows: int) -> tuple[int, int]:
        """Drop the oldest batches until at most ``SHED_TO`` of ``max_rows`` are held; returns
        (the newest batch dropped, rows dropped), (0, 0) while within ``max_rows``."""
        if self.rows <= max_rows:
            return 0, 0
        target = int(max_rows * SHED_TO)
        batches = self._batches
        seq = shed = 0
        while batches and self.rows > target:
            seq, rows = batches.popleft()
            self.rows -= rows
            shed += rows
        self.shed_rows += shed
        self.shed_through_seq = seq
        return seq, shed


class ShedLog:
    """The warning for shed rows, at most one line per `LOG_EVERY_S` (totals since the last)."""

    def __init__(self) -> None:
        self._last_s = -LOG_EVERY_S
        self._rows = 0
        self._sheds = 0

    def shed(self, rows: int, through_seq: int, pg_seq: int | None, held: int, cap: int) -> None:
        self._rows += rows
        self._sheds += 1
        now = time.monotonic()
        if now - self._last_s < LOG_EVERY_S:
            return
        log.warning(
            "pg_history_rows_shed",
            rows=self._rows,
            sheds=self._sheds,
            through_seq=through_seq,
            pg_seq=pg_seq,
            held_rows=held,
            cap=cap,
            effect="history queries needing them are refused (-1008) until the PostgreSQL "
            "projection passes through_seq",
        )
        self._last_s, self._rows, self._sheds = now, 0, 0
