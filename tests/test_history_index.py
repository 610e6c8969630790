"""The history index on its own: retention drops only never-traded closed orders, commits are
grouped in time, paging by id and by time agrees, a page far into a long history is found by
seeks, and a gateway that finds its index unusable sets it aside and rebuilds it from the
journal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from gateway.history.index import HistoryIndex
from gateway.history.writer import DAY_NS, HistoryWriter
from gateway.records import CANCELED, EXPIRED, FILLED, OrderRecord, TradeRecord
from tests.gateway_support import ServerThread

T0 = 1_767_225_600_000_000_000


def _order(oid: int, account: int, ts: int, status: str, executed: int = 0) -> OrderRecord:
    return OrderRecord(
        order_id=oid,
        account_id=account,
        market_id=0,
        client_order_id=oid % 7,
        side=0,
        order_type=0,
        time_in_force=0,
        price=100,
        orig_qty=10,
        orig_quote_qty=0,
        time_ns=ts,
        executed=executed,
        status=status,
        update_ns=ts,
    )


def _trade(tid: int, oid: int, ts: int) -> TradeRecord:
    return TradeRecord(
        market_id=0,
        trade_id=tid,
        order_id=oid,
        price=100,
        qty=10,
        quote=1,
        commission=0,
        is_buyer=True,
        is_maker=False,
        time_ns=ts,
    )


def test_retention_drops_only_untraded_closed_orders(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "h.sqlite3", retention_days=90)
    old = [
        _order(1, 5, T0, CANCELED),
        _order(2, 5, T0, EXPIRED),
        _order(3, 5, T0, FILLED, 10),
        _order(4, 5, T0, CANCELED, 5),
    ]
    w.submit(10, T0, old, [(5, _trade(0, 3, T0)), (5, _trade(1, 4, T0))])
    assert w.flush(10)
    later = T0 + 91 * DAY_NS
    w.submit(20, later, [_order(11, 5, later, CANCELED)], [])
    assert w.flush(20)
    r = HistoryIndex(tmp_path / "h.sqlite3", readonly=True)
    assert [o.order_id for o in r.orders(5, 0)] == [3, 4, 11]
    assert [t.order_id for t in r.trades(5, 0)] == [3, 4]
    assert r.order(1) is None and r.order(3) is not None
    r.close()
    w.close()


def test_commits_are_grouped_in_time_and_a_flush_does_not_wait(tmp_path: Path) -> None:
    """Batches arriving within the commit interval share one transaction (one commit per
    engine batch was the disk traffic that slowed the journal's fsync); a flush commits at
    once, whatever the interval."""
    w = HistoryWriter(tmp_path / "h.sqlite3", retention_days=0, commit_interval_s=3_600.0)
    r = HistoryIndex(tmp_path / "h.sqlite3", readonly=True)
    try:
        w.submit(1, T0, [_order(1, 5, T0, CANCELED)], [])
        deadline = time.monotonic() + 30
        while w.durable_seq < 1:  # the first commit is not held back: none came before it
            assert time.monotonic() < deadline, "the first batch was never committed"
            time.sleep(0.01)
        for seq in range(2, 52):
            w.submit(seq, T0, [_order(seq, 5, T0, FILLED, 10)], [(5, _trade(seq, seq, T0))])
        time.sleep(0.3)
        assert w.durable_seq == 1 and w.commits == 1
        assert [o.order_id for o in r.orders(5, 0)] == [1]
        assert w.flush(51, timeout_s=60)
        assert w.commits == 2
        assert [o.order_id for o in r.orders(5, 0)] == list(range(1, 52))
        assert len(r.trades(5, 0)) == 50
    finally:
        r.close()
        w.close()


def test_forever_keeps_everything_and_paging_agrees(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "h.sqlite3", retention_days=0)
    orders, trades = [], []
    for i in range(3_000):  # two accounts interleaved, 3 orders per millisecond
        ts = T0 + (i // 3) * 1_000_000
        status = FILLED if i % 2 else CANCELED
        orders.append(_order(100 + i, 5 + i % 2, ts, status, 10 if i % 2 else 0))
        if i % 2:
            trades.append((6, _trade(i, 100 + i, ts)))
    w.submit(5_000, T0 + 4_000 * DAY_NS, orders, trades)
    assert w.flush(5_000)
    r = HistoryIndex(tmp_path / "h.sqlite3", readonly=True)
    mine = [o.order_id for o in orders if o.account_id == 6]
    got, start = [], 0
    while True:
        page = r.orders(6, 0, from_id=start, limit=100)
        got += [o.order_id for o in page]
        if len(page) < 100:
            break
        start = page[-1].order_id + 1
    assert got == mine
    by_time: list[int] = []
    start_ns = 0
    while True:
        page = r.orders(6, 0, start_ns=start_ns, limit=100)
        by_time += [o.order_id for o in page if o.order_id not in by_time]
        if len(page) < 100:
            break
        start_ns = page[-1].time_ns
    assert by_time == mine
    assert [o.order_id for o in r.orders(6, 0, limit=5, newest=True)] == mine[-5:]
    end_ns = orders[1_000].time_ns
    assert [o.order_id for o in r.orders(6, 0, end_ns=end_ns, limit=3, newest=True)] == [
        o.order_id for o in orders if o.account_id == 6 and o.time_ns <= end_ns
    ][-3:]
    assert [t.order_id for t in r.trades(6, 0, order_id=mine[7])] == [mine[7]]
    assert r.latest_by_client_id(6, 0, 3).order_id == max(  # type: ignore[union-attr]
        o.order_id for o in orders if o.account_id == 6 and o.client_order_id == 3
    )
    r.close()
    w.close()


def test_time_ranges_match_a_scan_of_every_row(tmp_path: Path) -> None:
    """The time bounds are bisections over the id (no time index): against the plain filter
    of every row, for bounds before, between, on and after rows, with runs of equal times
    and gaps in the ids."""
    w = HistoryWriter(tmp_path / "h.sqlite3", retention_days=0)
    orders, trades = [], []
    for i in range(400):
        ts = T0 + (i // 4) * 1_000_000 + (i // 50) * 10_000_000  # equal runs, then jumps
        oid = 10 + i * 3 + (i % 5)  # increasing, with gaps
        orders.append(_order(oid, 5 + i % 2, ts, FILLED, 10))
        trades.append((5 + i % 2, _trade(i * 2, oid, ts)))
    w.submit(5_000, T0, orders, trades)
    assert w.flush(5_000)
    r = HistoryIndex(tmp_path / "h.sqlite3", readonly=True)
    times = sorted({o.time_ns for o in orders})
    bounds = [T0 - 1, *times[::7], *(t + 1 for t in times[3::11]), times[-1] + 1, 0]
    for start_ns in bounds:
        for end_ns in [*bounds[::3], times[-1], 1 << 62]:
            for newest in (False, True):
                want = [
                    o.order_id
                    for o in orders
                    if o.account_id == 6 and start_ns <= o.time_ns <= end_ns
                ]
                want = want[-20:] if newest else want[:20]
                got = r.orders(6, 0, start_ns=start_ns, end_ns=end_ns, limit=20, newest=newest)
                assert [o.order_id for o in got] == want, (start_ns, end_ns, newest)
                want_t = [
                    t.trade_id for a, t in trades if a == 6 and start_ns <= t.time_ns <= end_ns
                ]
                want_t = want_t[-20:] if newest else want_t[:20]
                got_t = r.trades(6, 0, start_ns=start_ns, end_ns=end_ns, limit=20, newest=newest)
                assert [t.trade_id for t in got_t] == want_t, (start_ns, end_ns, newest)
    assert r.orders(7, 0, start_ns=T0, end_ns=T0 + DAY_NS) == []
    r.close()
    w.close()


def test_an_unusable_index_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    s = ServerThread(tmp_path)
    acc = s.accounts
    try:
        from gateway.client import WsApiClient

        async def place() -> int:
            async with WsApiClient.connect(s.ws_api, acc.demo) as c:
                r = await c.place_order(
                    "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="1000", time_in_force="IOC"
                )
                return int(r["orderId"])

        oid = asyncio.run(place())
    finally:
        s.stop()
    gw_dir = tmp_path / "data" / "gateway"
    for p in gw_dir.glob("readmodel/*.rms"):
        p.unlink()  # no snapshot: the start replays the whole journal
    index = gw_dir / "history.sqlite3"
    for extra in ("-wal", "-shm"):
        index.with_name(index.name + extra).unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)
    s2 = ServerThread(tmp_path, fixture_accounts=False)
    try:
        assert list(gw_dir.glob("history.unusable-*"))
        assert s2.gw.start_point[0] == 0
        s2.gw.history.flush(s2.gw.last_seq)
        o = s2.gw.store.history.order(oid)  # type: ignore[union-attr]
        assert o is not None and o.status == "EXPIRED"
    finally:
        s2.stop()


def test_an_index_ahead_of_a_restored_journal_is_rebuilt(tmp_path: Path) -> None:
    """A journal restored from an older backup with the newer index left in place: the index
    would show orders the journal never had, so it is set aside and rebuilt."""
    import shutil

    from gateway.client import WsApiClient

    async def place(server: ServerThread, creds: object) -> int:
        async with WsApiClient.connect(server.ws_api, creds) as c:
            r = await c.place_order(
                "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="1000", time_in_force="IOC"
            )
            return int(r["orderId"])

    data = tmp_path / "data"
    s = ServerThread(tmp_path)
    creds = s.accounts.demo
    try:
        first = asyncio.run(place(s, creds))
    finally:
        s.stop()
    for part in ("journal", "snapshots"):
        shutil.copytree(data / part, tmp_path / f"backup-{part}")
    s = ServerThread(tmp_path, fixture_accounts=False)
    try:
        second = asyncio.run(place(s, creds))
    finally:
        s.stop()
    for part in ("journal", "snapshots"):
        shutil.rmtree(data / part)
        shutil.copytree(tmp_path / f"backup-{part}", data / part)
    s = ServerThread(tmp_path, fixture_accounts=False)
    try:
        assert list((data / "gateway").glob("history.unusable-*"))
        s.gw.history.flush(s.gw.last_seq)
        index = s.gw.store.history
        assert index is not None
        assert index.order(first) is not None
        assert index.order(second) is None
        assert s.gw.last_seq < second
    finally:
        s.stop()
