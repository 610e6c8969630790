"""``--history pg`` past ``--history-held-rows``: the store sheds its *oldest* held batches only
(down to 3/4 of the cap), counts them, and serves again as soon as the projection passes the
shed batches, not only once it reaches the newest; the warning is one line per interval.

The store is fed a real engine node's batches. PostgreSQL's checkpoint is set on the store as
`PgHistory.poll` sets it (``store.pg_seq``): what a lagging projection looks like to the store,
without running one (tests/test_cluster_history_pg.py runs the whole path with PostgreSQL).
"""

from __future__ import annotations

import random
from pathlib import Path

from structlog.testing import capture_logs

from engine.service import DEMO_COMMANDS
from gateway.heldrows import SHED_TO, ShedLog
from gateway.store import Store
from tests.marketdata_support import funding, make_node, random_commands

CAP = 400


def _pending(store: Store) -> int:
    return sum(len(a.pending_orders) + len(a.pending_trades) for a in store.accounts.values())


def test_a_full_cap_sheds_the_oldest_batches_and_counts_them(tmp_path: Path) -> None:
    rng = random.Random(3)
    store = Store(memory_orders=0)
    store.pg_seq = 0  # the projection is up but stopped at the start
    held_total = 0
    with make_node(tmp_path) as node:
        for batch in (list(DEMO_COMMANDS), funding()):
            store.apply_events(
                node.sequencer.last_timestamp_ns or 0, node.submit(batch), node.last_seq
            )
        image = node.engine.image()
        batch_rows: list[tuple[int, int]] = []
        shed_total = 0
        for _ in range(150):
            shed_total += store.trim_for_pg(CAP)
            assert store.held.rows == _pending(store) <= CAP
            events = node.submit(random_commands(rng, image, rng.randint(5, 30)))
            store.apply_events(node.sequencer.last_timestamp_ns or 0, events, node.last_seq)
            rows = len(store.new_orders) + len(store.new_trades)
            store.hold_for_pg()
            held_total += rows
            batch_rows.append((node.last_seq, rows))
            assert store.held.rows == _pending(store)
            image = node.engine.image()
    assert shed_total > 3 * CAP, "the flow should pass the cap several times"
    assert store.held.shed_rows == shed_total == held_total - store.held.rows
    # the oldest went: what is held is exactly the newest batches after the shed point
    shed_seq = store.held.shed_through_seq
    assert store.trimmed_seq == shed_seq < store.last_seq
    assert store.held.rows == sum(r for seq, r in batch_rows if seq > shed_seq)
    assert store.held.rows > 0 and not store.pg_serves()
    # the projection need only pass the shed point, not the newest batch, to serve again
    store.pg_seq = shed_seq - 1
    assert not store.pg_serves()
    store.pg_seq = shed_seq
    assert store.pg_serves()
    # once it has them, the held rows leave as usual and nothing more is shed
    store.pg_seq = store.last_seq
    assert store.trim_for_pg(CAP) == 0
    assert store.held.rows == _pending(store) == 0 and store.held.shed_rows == shed_total


def test_a_shed_leaves_room_for_a_quarter_cap_before_the_next() -> None:
    store = Store()
    for seq in range(1, 11):
        store.held.hold(seq, 50)
    seq, shed = store.held.shed(400)
    assert store.held.rows == 300 == int(400 * SHED_TO) and (seq, shed) == (4, 200)
    assert store.held.shed(400) == (0, 0)


def test_the_warning_is_one_line_per_interval_with_totals() -> None:
    shed_log = ShedLog()
    with capture_logs() as logs:
        shed_log.shed(120, 40, 10, 300, 400)
        shed_log.shed(110, 55, 10, 300, 400)  # within the interval: counted, not logged
    assert [(e["event"], e["rows"], e["through_seq"]) for e in logs] == [
        ("pg_history_rows_shed", 120, 40)
    ]
    assert "refused (-1008)" in logs[0]["effect"]
    shed_log._last_s -= 60  # the interval has passed
    with capture_logs() as logs:
        shed_log.shed(5, 60, 10, 300, 400)
    assert [(e["rows"], e["sheds"], e["through_seq"]) for e in logs] == [(115, 2, 60)]
