"""An amend that moves an order without crossing (`engine.core.book.move_order`) against the
reference engine, and the level book's own invariants after every command.

Why: the move takes the order out of its level and puts it at the new price in one pass; when
the old level empties and the new price has none, the level itself moves between the two
positions. Prices in a band of a few ticks make every case frequent: the emptied level moving
up or down the array, the new price's level existing, the same price with a larger quantity
(back of the queue), the old level keeping other orders; crossing limits then take from the
book, so a misplaced level or queue changes the trades, not only the image.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.compiled import CompiledEngine
from engine.core.layout import (
    C_LEVEL_FREE,
    C_LEVEL_HWM,
    K_LEVEL,
    K_NEXT,
    K_PREV,
    O_ID,
    O_PRICE,
    V_HEAD,
    V_PRICE,
    V_TAIL,
)
from engine.reference import ReferenceEngine
from engine.schema import (
    AmendOrder,
    EngineConfig,
    OrderType,
    PlaceOrder,
    TimeInForce,
)
from tests.core_support import UNIT_SETUP

CONFIG = EngineConfig(max_accounts=4, max_assets=2, max_markets=1, max_orders=64)
FIRST_ORDER_SEQ = len(UNIT_SETUP) + 1


def command(data: st.DataObject, placed: list[tuple[int, int, int]], seq: int) -> object:
    """Bids at 93-97, asks at 103-107 (passive), an occasional crossing IOC, and amends of
    earlier placements (``placed``: seq, account, side) to prices on their own side of 100
    (moves that do not cross) or to none (a quantity change)."""
    kind = data.draw(st.sampled_from(["place", "place", "amend", "amend", "amend", "take"]))
    if kind == "amend" and placed:
        order_id, account, side = data.draw(st.sampled_from(placed[-12:]))
        prices = range(93, 98) if side == 0 else range(103, 108)
        return AmendOrder(
            account_id=account,
            market_id=0,
            order_id=order_id,
            new_price_atoms=data.draw(st.sampled_from([0, *prices])),
            new_qty_atoms=data.draw(st.sampled_from([0, 1, 2, 3, 5])),
        )
    account = data.draw(st.sampled_from([1, 2]))
    side = data.draw(st.sampled_from([0, 1]))
    price = data.draw(st.integers(93, 97) if side == 0 else st.integers(103, 107))
    tif = TimeInForce.GTC
    if kind == "take":
        price = 110 if side == 0 else 90
        tif = TimeInForce.IOC
    else:
        placed.append((seq, account, side))
    return PlaceOrder(
        account_id=account,
        market_id=0,
        side=side,
        order_type=int(OrderType.LIMIT),
        time_in_force=int(tif),
        price_atoms=price,
        qty_atoms=data.draw(st.integers(1, 4)),
    )


def check_level_book(eng: CompiledEngine) -> None:
    """Each side's level ids sorted by key (best last), every level non-empty with a consistent
    queue at its own price, and every level id either live or on the free stack once."""
    a = eng._a
    live: list[int] = []
    for sx in (0, 1):  # market 0: bids, asks
        n = int(a.bkn[sx])
        ids = [int(lv) for lv in a.bkl[sx, :n]]
        prices = [int(a.lvl[lv, V_PRICE]) for lv in ids]
        keys = prices if sx == 0 else [-p for p in prices]
        assert keys == sorted(keys) and len(set(keys)) == n
        for lv, price in zip(ids, prices, strict=True):
            s = int(a.lvl[lv, V_HEAD])
            assert s >= 0, "an empty level stayed in the book"
            prev = -1
            while s >= 0:
                assert a.olnk[s, K_LEVEL] == lv and a.olnk[s, K_PREV] == prev
                assert a.ords[s, O_PRICE] == price and a.ords[s, O_ID] > 0
                prev, s = s, int(a.olnk[s, K_NEXT])
            assert a.lvl[lv, V_TAIL] == prev
        live += ids
    free = [int(lv) for lv in a.lfree[: int(a.ctr[C_LEVEL_FREE])]]
    assert sorted(live + free) == list(range(int(a.ctr[C_LEVEL_HWM])))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 80))
def test_moves_match_the_reference_and_keep_the_level_book(data: st.DataObject, n: int) -> None:
    compiled = CompiledEngine(CONFIG)
    reference = ReferenceEngine(CONFIG)
    records = [(seq, seq * 1_000, c) for seq, c in enumerate(UNIT_SETUP, start=1)]
    assert compiled.process(records) == reference.process(records)
    placed: list[tuple[int, int, int]] = []
    for seq in range(FIRST_ORDER_SEQ, FIRST_ORDER_SEQ + n):
        record = [(seq, seq * 1_000, command(data, placed, seq))]
        assert compiled.process(record) == reference.process(record)
        check_level_book(compiled)
    assert compiled.image() == reference.image()
