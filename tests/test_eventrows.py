"""The event-row table covers the msgspec schema exactly, and its generated decoder is used.

`engine.core.eventrows.EVENT_ROWS` is the one place that says which row column holds which
event field; the decoder is generated from it. A field added to an event Struct and not to the
table (or a misspelt field, or two fields on one column) fails here, before any differential
test has to find the wrong value.
"""

from __future__ import annotations

import msgspec
import numpy as np

from engine.core import codec
from engine.core.eventrows import ACCEPTED_X, EVENT_ROWS, TRADE_RELEASE, TRADE_TXN, decoder_source
from engine.core.layout import E_W, EV_ACCEPTED, EV_TRADE
from engine.schema import Bucket, OrderAccepted, Posting, PostingReason, Trade


def _fields(cls: type) -> set[str]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.name for f in info.fields}


def test_every_field_of_every_event_kind_has_a_column() -> None:
    for kind, (cls, fields) in EVENT_ROWS.items():
        names = [name for name, _, _ in fields]
        columns = [col for _, col, _ in fields]
        assert len(set(names)) == len(names) and len(set(columns)) == len(columns), cls
        assert all(2 <= col < E_W for col in columns), cls
        assert all(unit in ("", "tick", "lot", "bool") for _, _, unit in fields), cls
        expected = _fields(cls) - {"seq"}
        if kind == EV_ACCEPTED:  # the extension row carries the rest
            expected -= {name for name, _, _ in ACCEPTED_X}
        assert set(names) == expected, (cls, set(names) ^ expected)
    assert {name for name, _, _ in ACCEPTED_X} | {
        name for name, _, _ in EVENT_ROWS[EV_ACCEPTED][1]
    } == _fields(OrderAccepted) - {"seq"}


def test_generated_decoder_converts_units() -> None:
    assert "def decode_rows" in decoder_source()
    row = np.zeros((1, E_W), dtype=np.int64)
    row[0, :14] = [EV_TRADE, 9, 5, 1, 300, 7, 2_100, 11, 3, 9, 4, 0, 1, 2]
    row[0, TRADE_TXN] = 40
    ticks, lots, assets = [0, 10, 0], [0, 1_000, 0], [(0, 0), (6, 8), (0, 0)]
    trade, *postings = codec.decode_rows(row, ticks, lots, assets, {})
    assert trade == Trade(
        seq=9, trade_id=5, market_id=1, price_atoms=3_000, qty_atoms=7_000, quote_atoms=2_100,
        maker_order_id=11, maker_account_id=3, taker_order_id=9, taker_account_id=4,
        taker_side=0, maker_fee_atoms=1, taker_fee_atoms=2,
    )  # fmt: skip
    # The postings the row stands for (a buy taker, account 4, from maker 3): quote, base, the
    # buyer's (taker's) fee from its hold, the seller's (maker's) fee from what it received.
    held, avail, fees = Bucket.HELD_ORDERS, Bucket.AVAILABLE, Bucket.FEES
    quote, base, fee = PostingReason.TRADE_QUOTE, PostingReason.TRADE_BASE, PostingReason.FEE
    assert postings == [
        Posting(seq=9, txn_id=40, reason=quote, asset_id=8, debit_account_id=4,
                debit_bucket=held, credit_account_id=3, credit_bucket=avail, amount_atoms=2_100),
        Posting(seq=9, txn_id=40, reason=base, asset_id=6, debit_account_id=3,
                debit_bucket=held, credit_account_id=4, credit_bucket=avail, amount_atoms=7_000),
        Posting(seq=9, txn_id=40, reason=fee, asset_id=8, debit_account_id=4,
                debit_bucket=held, credit_account_id=0, credit_bucket=fees, amount_atoms=2),
        Posting(seq=9, txn_id=40, reason=fee, asset_id=8, debit_account_id=3,
                debit_bucket=avail, credit_account_id=0, credit_bucket=fees, amount_atoms=1),
    ]  # fmt: skip
    # A sell taker with no fees and a maker (buyer) release: quote, base, then the release.
    row[0, 11:14] = [1, 0, 0]
    row[0, TRADE_RELEASE] = 5
    _, *postings = codec.decode_rows(row, ticks, lots, assets, {})
    assert [(p.reason, p.debit_account_id, p.credit_account_id, p.amount_atoms)
            for p in postings] == [
        (quote, 3, 4, 2_100), (base, 4, 3, 7_000), (PostingReason.ORDER_RELEASE, 3, 3, 5)
    ]  # fmt: skip
