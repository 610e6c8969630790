"""Issue 17: order and trade history that does not forget.

20,000 orders (``KOOTABASE_HISTORY_ORDERS`` for more) for one account through a real gateway,
with a small in-memory budget so most of the history is served by the on-disk index; then a
restart, and the first order is found by id and by client id and the whole ``allOrders`` and
``myTrades`` history pages back oldest-first by id and by time, nothing missing, nothing twice.
The same after SIGKILL during the load: every acknowledged order is present.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gateway.client import Credentials
from gateway.ratelimit import Limits
from tests.custody_nodes import free_port
from tests.gateway_support import ServerThread, http
from tests.history_load import Acked, check_history, place_many

ROOT = Path(__file__).resolve().parent.parent
ORDERS = int(os.environ.get("KOOTABASE_HISTORY_ORDERS", "20000"))
LIMITS = Limits(orders_per_10s=10**7, orders_per_day=10**8, weight_per_minute=10**8)
CONFIG: dict[str, Any] = {"history_memory_orders": 500, "snapshot_every": max(500, ORDERS // 3)}


def test_twenty_thousand_orders_survive_a_restart(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, LIMITS, **CONFIG)
    acc = s.accounts
    acked = Acked()
    try:
        asyncio.run(place_many(s.ws_api, acc.demo, acc.maker, ORDERS, acked))
        assert len(acked.orders) == ORDERS
        before = asyncio.run(check_history(s.ws_api, acc.demo, acked))
        # memory holds open orders and the budget of closed ones: the index holds the rest
        store = s.gw.store
        closed_in_memory = sum(not o.is_open for o in store.orders.values())
        unwritten = sum(len(a.pending_orders) for a in store.accounts.values())
        assert closed_in_memory <= CONFIG["history_memory_orders"] + unwritten
        assert s.gw.history.flush(s.gw.last_seq)
        status, _, text = http("GET", s.http + "/metrics")
        assert status == 200
        metrics = dict(
            line.rsplit(" ", 1)
            for line in text.splitlines()
            if line.startswith("kootabase_history_")
        )
        assert float(metrics["kootabase_history_indexed_seq"]) == s.gw.last_seq
        assert float(metrics["kootabase_history_unwritten_rows"]) == 0
        assert float(metrics["kootabase_history_write_failures"]) == 0
    finally:
        s.stop()
    s2 = ServerThread(tmp_path, LIMITS, fixture_accounts=False, **CONFIG)
    try:
        # a clean stop leaves a read-model snapshot at the last sequence: nothing to replay
        assert s2.gw.start_point == (s2.gw.last_seq, 0)
        after = asyncio.run(check_history(s2.ws_api, acc.demo, acked, before["trades"]))
        assert after == before
        assert before["statuses"].get("CANCELED", 0) >= ORDERS // 3
        assert before["statuses"].get("EXPIRED", 0) >= ORDERS // 6
        assert before["statuses"].get("FILLED", 0) >= ORDERS // 6
    finally:
        s2.stop()


def test_a_lagging_index_hides_no_acknowledged_order(tmp_path: Path) -> None:
    """The index commits in time-batched groups, so it trails the acknowledgements; with no
    closed orders cached and no commit due for an hour, every acknowledged order and trade is
    still answered (from the rows waiting for the index), and the same after the commit."""
    s = ServerThread(
        tmp_path,
        LIMITS,
        history_memory_orders=0,
        history_commit_interval_s=3_600.0,
        snapshot_every=10**6,
    )
    acc = s.accounts
    acked = Acked()
    try:
        assert s.gw.history.flush(s.gw.last_seq)  # a commit now: the next is an hour away
        asyncio.run(place_many(s.ws_api, acc.demo, acc.maker, 300, acked))
        assert len(acked.orders) == 300
        assert s.gw.history.durable_seq < min(acked.orders), "the index should trail the load"
        before = asyncio.run(check_history(s.ws_api, acc.demo, acked))
        assert before["orders"] == 300 and before["trades"] > 0
        assert s.gw.history.flush(s.gw.last_seq)
        after = asyncio.run(check_history(s.ws_api, acc.demo, acked, before["trades"]))
        assert after == before
    finally:
        s.stop()


def _start_child(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.history_child", str(data_dir), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 300)
    assert ready, "history child did not start"
    line = child.stdout.readline().split()
    assert line and line[0] == "ready", line
    return child, dict(kv.split("=", 1) for kv in line[1:])


def test_sigkill_during_the_load_loses_no_acknowledged_order(tmp_path: Path) -> None:
    rng = random.Random(17)
    data_dir = tmp_path / "data"
    port = free_port()
    child, info = _start_child(data_dir, port)
    ws = f"ws://127.0.0.1:{port}/ws-api/v3"
    demo = Credentials.hmac(info["demo_key"], info["demo_secret"])
    taker = Credentials.hmac(info["taker_key"], info["taker_secret"])
    acked = Acked()
    kill_at = rng.randint(ORDERS // 4, ORDERS // 2)
    killed = False

    def progress(n: int) -> None:
        nonlocal killed
        if n >= kill_at and not killed:
            killed = True
            child.send_signal(signal.SIGKILL)

    try:
        with contextlib.suppress(Exception):  # the connection dies with the server
            asyncio.run(place_many(ws, demo, taker, ORDERS, acked, progress))
        assert killed and len(acked.orders) >= kill_at
        child.wait(timeout=30)
        child, info = _start_child(data_dir, port)
        # started from a read-model snapshot; only the tail after it was replayed
        assert int(info["snapshot"]) > 0
        assert int(info["replayed"]) <= CONFIG["snapshot_every"] + 2_048
        summary = asyncio.run(check_history(ws, demo, acked))
        assert summary["orders"] >= len(acked.orders)
        # and the exchange keeps going where it stopped
        more = len(acked.orders) + 600
        deadline = time.monotonic() + 120
        asyncio.run(place_many(ws, demo, taker, 600, acked, tag="k"))
        assert len(acked.orders) == more and time.monotonic() < deadline
        asyncio.run(check_history(ws, demo, acked))
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=60)
