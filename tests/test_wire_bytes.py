"""The exact bytes of the order and trade answers (`order.status`, `allOrders`, `myTrades`, the
cancel answer, `order.place` as ACK, RESULT and FULL) for records of every kind
(`tests/wire_cases.py`), pinned to a golden file written by the per-order dict renderers before
rendering was made cheap (`gateway.wireviews` renders pages and order.place answers as Structs
encoded in one call): a faster renderer must answer the same bytes, or clients that compare or
hash answers would see a change.

To regenerate after a *deliberate* wire change: ``KB_WRITE_WIRE_GOLDEN=1 pytest`` this file,
and review the diff of the golden file.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from gateway import wire, wireviews
from tests import wire_cases

GOLDEN = Path(__file__).parent / "fixtures" / "wire_answers.txt"
_encode = msgspec.json.Encoder().encode


def _answers() -> list[str]:
    """One labelled line per answer, as the transport would send it."""
    ids = wire_cases.client_ids()
    lines = []
    for m in wire_cases.markets():
        rows = wire_cases.orders(m.market_id)
        for o in rows:
            status = _encode(wire.order(o, m, ids))
            assert _encode(wireviews.order_views([o], m, ids)[0]) == status
            lines.append(f"order.status {m.wire} {o.order_id}\t{status.decode()}")
            cancel = _encode(wire.cancelled(o, m, ids, None, wire_cases.T_NS + 42_000_000))
            lines.append(f"order.cancel {m.wire} {o.order_id}\t{cancel.decode()}")
        page = _encode(wireviews.orders_json(rows, m, ids))  # as the transport embeds it
        assert page == _encode([wire.order(o, m, ids) for o in rows])
        lines.append(f"allOrders {m.wire}\t{page.decode()}")
        trade_rows = wire_cases.trades(m.market_id)
        trades = _encode(wireviews.trades_json(trade_rows, m))
        assert trades == _encode([wire.trade(t, m) for t in trade_rows])
        lines.append(f"myTrades {m.wire}\t{trades.decode()}")
        fills = [(t.price, t.qty, t.commission, t.trade_id) for t in trade_rows[:2]]
        for o in rows:
            for resp in ("ACK", "RESULT", "FULL"):
                placed = wire.order_result(o, m, ids, resp, wire_cases.T_NS + 7_000_000, fills)
                label = f"order.place {resp} {m.wire} {o.order_id}"
                lines.append(f"{label}\t{_encode(placed).decode()}")
    return lines


def test_answers_byte_identical_to_golden() -> None:
    got = _answers()
    if os.environ.get("KB_WRITE_WIRE_GOLDEN") == "1":
        GOLDEN.write_text("\n".join(got) + "\n")
    want = GOLDEN.read_text().splitlines()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w
