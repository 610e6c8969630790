"""The history chain of cluster snapshots (`gateway.histchain`) against the machine's real NATS
Object Store: a base and deltas cut at successive points rebuild an index that answers exactly
like the one they were cut from; a new base is cut once the deltas outweigh the last; a
damaged, missing or out-of-sequence segment is refused (the caller falls back)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.snapstore import SnapshotRefused, snapshot_bucket
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway import clustersnap, clusterstart, histchain
from gateway.history.index import HistoryIndex, order_row
from gateway.history.writer import HistoryWriter
from gateway.records import FILLED
from tests.cluster_support import stream_on
from tests.test_history_index import T0, _order, _trade

ACCOUNTS = (1, 2, 3)


def _round(w: HistoryWriter, seq: int, first_id: int, orders: int) -> int:
    """``orders`` closed orders, each with a trade, one batch per order; the last sequence."""
    for i in range(orders):
        oid = first_id + i
        seq += 1
        acct = ACCOUNTS[oid % len(ACCOUNTS)]
        w.submit(
            seq,
            T0 + seq,
            [_order(oid, acct, T0 + seq, FILLED, 10)],
            [(acct, _trade(oid, oid, T0 + seq))],
        )
    assert w.flush(seq)
    return seq


def _answers(index: HistoryIndex) -> dict[str, Any]:
    out: dict[str, Any] = {"counts": index.counts()}
    for acct in ACCOUNTS:
        out[f"o{acct}"] = [msgspec.to_builtins(o) for o in index.orders(acct, 0, limit=1_000)]
        out[f"t{acct}"] = [msgspec.to_builtins(t) for t in index.trades(acct, 0, limit=1_000)]
    out["lookup"] = [msgspec.to_builtins(index.order(oid)) for oid in range(1, 8_500, 97)]
    return out


def test_base_and_deltas_rebuild_the_index_and_a_bad_piece_is_refused(tmp_path: Path) -> None:
    w = HistoryWriter(tmp_path / "src.sqlite3", retention_days=0, commit_interval_s=0)
    chain = histchain.HistoryChain([], 0)
    w.on_rows = chain.add
    points: list[tuple[int, list[histchain.SegmentRef], dict[str, Any]]] = []
    segments: dict[str, bytes] = {}
    seq, next_id = 0, 1
    for orders in (2_000, 150, 150, 150, 6_000):
        seq = _round(w, seq, next_id, orders)
        next_id += orders
        refs, new = chain.cut(seq, lambda s=seq: clustersnap.history_image(w.index.db, s))
        segments.update((r.name, d) for r, d in new)
        points.append((seq, refs, _answers(w.index)))
    w.close()
    kinds = [[r.kind for r in refs] for _, refs, _ in points]
    base, delta = histchain.BASE, histchain.DELTA
    assert kinds == [
        [base],
        [base, delta],
        [base, delta, delta],
        [base, delta, delta, delta],
        [base],
    ]
    assert points[1][1][1].size_bytes * 5 < points[1][1][0].size_bytes, "a delta ships its rows"

    async def body(spec: StreamSpec) -> None:
        sl = await StreamLog.connect(NatsOptions(), spec)
        store = await snapshot_bucket(sl)
        for name, data in segments.items():
            await store.put(name, data)
        for i, (last_seq, refs, want) in enumerate(points):
            histchain.check_chain("rm", refs, last_seq)
            db = await clusterstart.fetch_history(store, "rm", refs, last_seq)
            path = tmp_path / f"cold{i}.sqlite3"
            clusterstart.install_history(path, db)
            cold = HistoryIndex(path)
            assert cold.last_seq == last_seq
            assert _answers(cold) == want
            cold.close()
        last_seq, refs, _ = points[3]
        with pytest.raises(SnapshotRefused, match="gap"):  # a delta left out of the list
            histchain.check_chain("rm", [refs[0], *refs[2:]], last_seq)
        with pytest.raises(SnapshotRefused, match="ends at"):
            histchain.check_chain("rm", refs[:-1], last_seq)
        damaged = bytearray(segments[refs[2].name])
        damaged[-5] ^= 0xFF
        await store.put(refs[2].name, bytes(damaged))
        with pytest.raises(SnapshotRefused, match="hash"):
            await clusterstart.fetch_history(store, "rm", refs, last_seq)
        await store.delete(refs[2].name)
        with pytest.raises(SnapshotRefused, match="missing"):
            await clusterstart.fetch_history(store, "rm", refs, last_seq)
        # a replica whose chain names the pruned segment stores no read model on it, and its
        # next point ships a new base
        chain = histchain.HistoryChain(refs, last_seq)
        uploader = clustersnap.Uploader(sl, stored := set(), chain)
        uploader.offer(7, b"never stored", refs, [])
        assert uploader._task is not None
        await asyncio.wait_for(uploader._task, 30)
        assert chain.broken and not stored
        assert await clustersnap.stored_points(sl) == set()
        base_db = histchain.open_segment(refs[0], segments[refs[0].name])
        new_refs, new = chain.cut(last_seq + 1, lambda: base_db)
        assert [r.kind for r in new_refs] == [histchain.BASE] and new[0][0] is new_refs[0]
        await sl.close()

    with stream_on() as spec:
        asyncio.run(body(spec))


def test_rows_are_applied_in_key_order_and_a_rewritten_key_keeps_its_last_version(
    tmp_path: Path,
) -> None:
    """A cold start inserts a delta's rows sorted by key (`index.ORDER_KEY`), not in commit
    order; a key written twice in one delta (or one commit) must still end as its last write."""
    index = HistoryIndex(tmp_path / "h.sqlite3")
    first = _order(7, 2, T0, FILLED, 10)
    again = _order(7, 2, T0 + 5, FILLED, 10)
    again.update_ns = T0 + 99
    rows = [
        order_row(o) for o in (_order(9, 1, T0, FILLED, 10), first, _order(3, 3, T0, FILLED, 10))
    ]
    index.write(1, [*rows, order_row(again)], [])
    assert index.order(7) == again
    base = clustersnap.history_image(index.db, 1)
    index.write(2, [order_row(first)], [])
    later = _order(7, 2, T0 + 6, FILLED, 10)
    body = msgspec.msgpack.encode(
        [[order_row(first), order_row(_order(1, 3, T0, FILLED, 10)), order_row(later)], []]
    )
    ref, data = histchain.segment(histchain.DELTA, 1, 2, body)
    image = histchain.apply_deltas(base, [(ref, histchain.open_segment(ref, data))], 2)
    index.close()
    path = tmp_path / "cold.sqlite3"
    clusterstart.install_history(path, image)
    cold = HistoryIndex(path)
    assert cold.order(7) == later and cold.order(1) is not None and cold.last_seq == 2
    assert [o.order_id for o in cold.orders(3, 0)] == [1, 3]
    cold.close()
