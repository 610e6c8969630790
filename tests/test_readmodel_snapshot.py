"""Read-model and market-data images: a state restored from an image at sequence S and fed the
tail ends exactly where the state fed from the start ends (the start-up path of issue 17).

The flow is the market-data tests' deep books (stops firing, icebergs refreshing, prevented
matches, cancels, amends) on the demo markets; images are taken at several points, each encoded
and decoded (what is written to disk), restored, and fed the rest of the flow."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgspec

from engine.service import DEMO_COMMANDS
from gateway import readmodel
from gateway.store import Store
from marketdata import snapshot as md_snapshot
from marketdata.state import MarketDataState
from tests.marketdata_support import funding, make_node, random_commands


def _store_view(store: Store) -> Any:
    """What the store answers from (history aside): image + the closed orders it folded."""
    return msgspec.to_builtins(readmodel.image(store))


def test_restored_images_continue_like_the_original(tmp_path: Path) -> None:
    rng = random.Random(17)
    batches: list[tuple[int, list[Any], int]] = []
    with make_node(tmp_path) as node:
        for batch in (list(DEMO_COMMANDS), funding()):
            events = node.submit(batch)
            batches.append((node.sequencer.last_timestamp_ns or 0, events, node.last_seq))
        image = node.engine.image()
        for _ in range(240):
            events = node.submit(random_commands(rng, image, rng.randint(1, 40), issue3=True))
            batches.append((node.sequencer.last_timestamp_ns or 0, events, node.last_seq))
            image = node.engine.image()
    cuts = [2, 50, 120, 239]
    store, md = Store(), MarketDataState()
    restored: list[tuple[Store, MarketDataState]] = []
    closed_after: list[set[int]] = []
    for i, (ts, events, last) in enumerate(batches):
        store.apply_events(ts, events, last)
        store.take_history()
        md.apply_events(ts, events, last)
        for s, m in restored:
            s.apply_events(ts, events, last)
            s.take_history()
            m.apply_events(ts, events, last)
        if i in cuts:
            img = readmodel._DECODER.decode(readmodel._ENCODER.encode(readmodel.image(store)))
            md_img = msgspec.msgpack.decode(
                msgspec.msgpack.encode(md_snapshot.image(md)), type=md_snapshot.MarketDataImage
            )
            s2 = readmodel.restore(img, memory_orders=1_000)
            m2 = MarketDataState()
            md_snapshot.restore(m2, md_img)
            assert _store_view(s2) == _store_view(store)
            assert md_snapshot.image(m2) == md_snapshot.image(md)
            restored.append((s2, m2))
            closed_after.append(set())
    assert len(restored) == len(cuts)
    want_store, want_md = _store_view(store), md_snapshot.image(md)
    assert want_md.markets and any(m.book for m in want_md.markets)
    assert any(m.trades for m in want_md.markets)
    for s, m in restored:
        assert _store_view(s) == want_store
        assert md_snapshot.image(m) == want_md
        for market_id, market in md.markets.items():
            other = m.markets[market_id]
            assert other.ticker.stats() == market.ticker.stats()
            for side in (0, 1):
                assert other.book.depth(side, 50) == market.book.depth(side, 50)
