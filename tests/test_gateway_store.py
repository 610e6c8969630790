"""The gateway's read model against the engine, on the differential tests' streams (every order
type: stops, take-profits, trailing stops, icebergs, self-trade prevention, GTD, market states).

After every command the store's open orders are exactly the engine's (resting and waiting), with
the same open quantity (orig - executed - prevented), price and working state; balances match;
every order self-trade prevention expired has no quantity left unaccounted for; and every
execution report and order view renders."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.compiled import CompiledEngine
from engine.schema import EngineConfig, OrderTriggered, StateImage
from engine.service import DEMO_COMMANDS
from gateway import wire
from gateway.clientids import ClientIdBook
from gateway.records import EXPIRED_IN_MATCH
from gateway.store import Store
from tests.marketdata_support import funding, make_node, random_commands
from tests.streams import ACCOUNTS, ISSUE3_CONFIGS, Record, command_streams

IDS = ClientIdBook(None)


def _check(store: Store, image: StateImage) -> None:
    expected: dict[int, tuple[int, int, int, bool]] = {}  # id -> (account, open, price, working)
    for o in image.orders:
        expected[o.order_id] = (o.account_id, o.qty_atoms, o.price_atoms, True)
    for c in image.conditional_orders:
        expected[c.order_id] = (c.account_id, c.qty_atoms, c.price_atoms, False)
    got: dict[int, tuple[int, int, int, bool]] = {}
    for account_id, acct in store.accounts.items():
        for o in acct.open_orders.values():
            assert o.account_id == account_id and o.is_open
            open_qty = o.orig_qty - o.executed - o.prevented_qty
            got[o.order_id] = (account_id, open_qty, o.price, o.is_working)
            assert o.status == ("NEW" if not o.executed else "PARTIALLY_FILLED")
    assert got == expected
    for a in image.accounts:
        for b in a.balances:
            bal = store.accounts[a.account_id].balances.get(b.asset_id, [0, 0, 0])
            assert bal == [b.available_atoms, b.held_orders_atoms, b.held_withdrawals_atoms]


@settings(max_examples=200)
@given(
    records=command_streams(max_commands=80, issue3=True), config=st.sampled_from(ISSUE3_CONFIGS)
)
def test_store_follows_the_engine_on_issue3_streams(
    records: list[Record], config: EngineConfig
) -> None:
    engine = CompiledEngine(config)
    store = Store()
    store.watched.update(ACCOUNTS)
    for seq, ts, command in records:
        events = engine.process([(seq, ts, command)])
        store.apply_events(ts, events, seq)
        _check(store, engine.image())
        reports, _ = store.drain()
        for r in reports:
            m = store.markets[r.order.market_id]
            report = wire.execution_report(r, m, IDS, 0)
            assert report["X"] == r.snapshot[4]
            if r.exec_type == "TRADE_PREVENTION":
                assert report["v"] >= 0 and "A" in report and "B" in report
            assert report["w"] is (
                report["X"] in ("NEW", "PARTIALLY_FILLED") and r.working_ns != -1
            )
    for o in store.orders.values():
        m = store.markets[o.market_id]
        view = wire.order(o, m, IDS)
        assert view["isWorking"] is o.is_working
        if o.status == EXPIRED_IN_MATCH and o.orig_qty:
            assert o.executed + o.prevented_qty == o.orig_qty, view
        if o.prevented_matches:
            wire.order_result(o, m, IDS, "FULL", 0, [])


def test_store_follows_the_engine_on_deep_books(tmp_path: Path) -> None:
    """The market-data tests' order flow (deep books on the demo markets, many stops firing,
    iceberg refreshes, prevented matches): the same agreement after every node batch."""
    rng = random.Random(4)
    store = Store()
    fired = quote_fills = 0
    with make_node(tmp_path) as node:
        for batch in (list(DEMO_COMMANDS), funding()):
            events = node.submit(batch)
            store.apply_events(node.sequencer.last_timestamp_ns or 0, events, node.last_seq)
        image = node.engine.image()
        for _ in range(300):
            events = node.submit(random_commands(rng, image, rng.randint(1, 40), issue3=True))
            store.apply_events(node.sequencer.last_timestamp_ns or 0, events, node.last_seq)
            image = node.engine.image()
            _check(store, image)
            for ev in events:
                if isinstance(ev, OrderTriggered):
                    fired += 1
                    o = store.orders[ev.order_id]
                    quote_fills += o.orig_quote_qty > 0 and o.status == "FILLED"
    assert fired > 20 and quote_fills > 0
