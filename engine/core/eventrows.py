"""Event rows -> msgspec events, from one table (`EVENT_ROWS`) instead of a hand-written
decoder per event kind.

Each entry says which schema Struct an event row kind becomes and, for every field of that
Struct, the row column it is read from and its unit in the row: ``""`` (as is), ``"tick"``
(ticks, times the market's tick size), ``"lot"`` (lots, times the market's lot size) or
``"bool"``; ``MARKET_COLUMN`` says where the market id is, for the conversions. `make_decoder`
generates the decoding loop from the table (one ``if`` per kind, fields written out, as fast as
the hand-written loop it replaced); tests/test_eventrows.py checks the table against the
msgspec schema (every field of every Struct covered, no other), so a field added to an event
cannot be forgotten here. The kernel's writers (`engine.core.events` and the inline writers of
the accepted and trade rows) use the same columns.

Two kinds keep their own code: EV_ACCEPTED_X completes the OrderAccepted just before it with
its issue-3 fields, and EV_REJECTED echoes the command's own values when they did not fit a row
(``codec._echo``).

An OrderAccepted or OrderAmended row also carries the order's hold movement (the ORDER_HOLD or
ORDER_RELEASE posting of its own transaction, written out right after the event), and a trade
row stands for the postings of its transaction (`TRADE_TXN`): the quote and base
legs, the buyer's and the seller's fee when not 0, and the maker's hold release when not 0, in
that order. The ledger rules fix every field of them from the trade (who pays which bucket, the
market's assets, the amounts), so the kernel writes one row per fill instead of up to six and
the decoder writes the Posting events out, exactly as the kernel used to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from engine.core.codes import (
    BUY,
    P_FEE,
    P_ORDER_HOLD,
    P_ORDER_RELEASE,
    P_TRADE_BASE,
    P_TRADE_QUOTE,
)
from engine.core.layout import (
    B_AVAILABLE,
    B_FEES,
    B_HELD_ORDERS,
    EV_ACCEPTED,
    EV_ACCEPTED_X,
    EV_AMENDED,
    EV_CANCELLED,
    EV_DMS_FIRED,
    EV_EXPIRED,
    EV_ICEBERG,
    EV_POSTING,
    EV_REJECTED,
    EV_STP,
    EV_TRADE,
    EV_TRIGGERED,
    H_AMOUNT,
    H_ASSET,
    H_TXN,
)
from engine.schema import (
    DeadMansSwitchFired,
    IcebergRefreshed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderTriggered,
    Posting,
    SelfTradePrevented,
    Trade,
)

Field = tuple[str, int, str]
"""(Struct field, row column, unit in the row)."""

_END = (("order_id", 2, ""), ("account_id", 3, ""), ("market_id", 4, ""),
        ("remaining_qty_atoms", 5, "lot"), ("reason", 6, ""))  # fmt: skip

EVENT_ROWS: dict[int, tuple[type, tuple[Field, ...]]] = {
    # in decoding order: the most frequent kinds first
    EV_POSTING: (Posting, (
        ("txn_id", 2, ""), ("reason", 3, ""), ("asset_id", 4, ""), ("debit_account_id", 5, ""),
        ("debit_bucket", 6, ""), ("credit_account_id", 7, ""), ("credit_bucket", 8, ""),
        ("amount_atoms", 9, ""))),
    EV_TRADE: (Trade, (
        ("trade_id", 2, ""), ("market_id", 3, ""), ("price_atoms", 4, "tick"),
        ("qty_atoms", 5, "lot"), ("quote_atoms", 6, ""), ("maker_order_id", 7, ""),
        ("maker_account_id", 8, ""), ("taker_order_id", 9, ""), ("taker_account_id", 10, ""),
        ("taker_side", 11, ""), ("maker_fee_atoms", 12, ""), ("taker_fee_atoms", 13, ""))),
    EV_AMENDED: (OrderAmended, (
        ("order_id", 2, ""), ("account_id", 3, ""), ("market_id", 4, ""),
        ("price_atoms", 5, "tick"), ("qty_atoms", 6, "lot"), ("priority_kept", 7, "bool"),
        ("hold_atoms", 8, ""))),
    EV_STP: (SelfTradePrevented, (
        ("market_id", 2, ""), ("account_id", 3, ""), ("taker_order_id", 4, ""),
        ("maker_order_id", 5, ""), ("qty_atoms", 6, "lot"), ("stp_mode", 7, ""))),
    EV_ICEBERG: (IcebergRefreshed, (
        ("order_id", 2, ""), ("market_id", 3, ""), ("price_atoms", 4, "tick"),
        ("visible_qty_atoms", 5, "lot"), ("hidden_qty_atoms", 6, "lot"))),
    EV_TRIGGERED: (OrderTriggered, (
        ("order_id", 2, ""), ("account_id", 3, ""), ("market_id", 4, ""),
        ("trigger_price_atoms", 5, "tick"), ("last_price_atoms", 6, "tick"),
        ("price_atoms", 7, "tick"))),
    EV_DMS_FIRED: (DeadMansSwitchFired, (("account_id", 2, ""), ("fire_at_ns", 3, ""))),
    EV_ACCEPTED: (OrderAccepted, (
        ("order_id", 2, ""), ("account_id", 3, ""), ("market_id", 4, ""),
        ("client_order_id", 5, ""), ("side", 6, ""), ("order_type", 7, ""),
        ("time_in_force", 8, ""), ("price_atoms", 9, ""), ("qty_atoms", 10, ""),
        ("quote_qty_atoms", 11, ""), ("hold_atoms", 12, ""))),
    EV_CANCELLED: (OrderCancelled, _END),
    EV_EXPIRED: (OrderExpired, _END),
}  # fmt: skip

ACCEPTED_X: tuple[Field, ...] = (
    ("stop_price_atoms", 2, ""), ("trailing_delta_bps", 3, ""), ("limit_offset_atoms", 4, ""),
    ("display_qty_atoms", 5, ""), ("expire_at_ns", 6, ""), ("stp_mode", 7, ""),
)  # fmt: skip
"""The EV_ACCEPTED_X row: OrderAccepted's issue-3 fields (all 0 when there is no such row)."""

TRADE_TXN = 14
"""Trade row column: the id of the trade's transaction (its postings are derived, see above)."""
TRADE_RELEASE = 15
"""Trade row column: the maker's hold released in the trade's transaction (a buy maker whose
commitment shrank by more than it paid), 0 = none."""


def _hold_posting() -> list[str]:
    """Decoder lines appending the hold movement an OrderAccepted or OrderAmended row carries
    (`engine.core.events.hold_in_row`): ORDER_HOLD into HELD_ORDERS, ORDER_RELEASE out."""
    p = "                append(Posting(seq=seq, txn_id=r[{H_TXN}], "
    p = p.format(H_TXN=H_TXN)
    return [
        f"            if r[{H_TXN}] != 0:",
        f"                if r[{H_AMOUNT}] > 0:",
        f"    {p}reason={P_ORDER_HOLD}, asset_id=r[{H_ASSET}], debit_account_id=r[3], "
        f"debit_bucket={B_AVAILABLE}, credit_account_id=r[3], credit_bucket={B_HELD_ORDERS}, "
        f"amount_atoms=r[{H_AMOUNT}]))",
        "                else:",
        f"    {p}reason={P_ORDER_RELEASE}, asset_id=r[{H_ASSET}], debit_account_id=r[3], "
        f"debit_bucket={B_HELD_ORDERS}, credit_account_id=r[3], credit_bucket={B_AVAILABLE}, "
        f"amount_atoms=-r[{H_AMOUNT}]))",
    ]


def _trade_postings() -> list[str]:
    """Decoder lines appending the Posting events a trade row stands for (``r`` the row, ``m``
    its market): the same fields, in the same order, as the kernel's writers used to emit."""
    p = "            append(Posting(seq=seq, txn_id=txn, "
    return [
        f"            txn = r[{TRADE_TXN}]",
        "            base, quote = assets[m]",
        f"            if r[11] == {BUY}:",
        "                buyer, seller, buyer_fee, seller_fee = r[10], r[8], r[13], r[12]",
        "            else:",
        "                buyer, seller, buyer_fee, seller_fee = r[8], r[10], r[12], r[13]",
        f"{p}reason={P_TRADE_QUOTE}, asset_id=quote, debit_account_id=buyer, "
        f"debit_bucket={B_HELD_ORDERS}, credit_account_id=seller, credit_bucket={B_AVAILABLE}, "
        "amount_atoms=r[6]))",
        f"{p}reason={P_TRADE_BASE}, asset_id=base, debit_account_id=seller, "
        f"debit_bucket={B_HELD_ORDERS}, credit_account_id=buyer, credit_bucket={B_AVAILABLE}, "
        "amount_atoms=r[5] * lots[m]))",
        "            if buyer_fee > 0:",
        f"    {p}reason={P_FEE}, asset_id=quote, debit_account_id=buyer, "
        f"debit_bucket={B_HELD_ORDERS}, credit_account_id=0, credit_bucket={B_FEES}, "
        "amount_atoms=buyer_fee))",
        "            if seller_fee > 0:",
        f"    {p}reason={P_FEE}, asset_id=quote, debit_account_id=seller, "
        f"debit_bucket={B_AVAILABLE}, credit_account_id=0, credit_bucket={B_FEES}, "
        "amount_atoms=seller_fee))",
        f"            if r[{TRADE_RELEASE}] > 0:",
        f"    {p}reason={P_ORDER_RELEASE}, asset_id=quote, debit_account_id=r[8], "
        f"debit_bucket={B_HELD_ORDERS}, credit_account_id=r[8], credit_bucket={B_AVAILABLE}, "
        f"amount_atoms=r[{TRADE_RELEASE}]))",
    ]


def _column(field: Field, market: str) -> str:
    _, col, unit = field
    if unit == "tick":
        return f"r[{col}] * ticks[{market}]"
    if unit == "lot":
        return f"r[{col}] * lots[{market}]"
    if unit == "bool":
        return f"bool(r[{col}])"
    assert unit == "", unit
    return f"r[{col}]"


def decoder_source() -> str:
    """Python source of ``decode_rows(rows, ticks, lots, assets, clamped)`` from the tables
    (``assets[m]``: market ``m``'s (base, quote) asset ids)."""
    lines = [
        "def decode_rows(rows, ticks, lots, assets, clamped):",
        "    out = []",
        "    append = out.append",
        "    for r in rows.tolist():",
        "        kind = r[0]",
        "        seq = r[1]",
    ]
    first = True
    for kind, (cls, fields) in EVENT_ROWS.items():
        market = next((f"r[{c}]" for name, c, _ in fields if name == "market_id"), None)
        needs_market = any(unit in ("tick", "lot") for _, _, unit in fields)
        assert market is not None or not needs_market, cls
        lines.append(f"        {'if' if first else 'elif'} kind == {kind}:")
        first = False
        if needs_market:
            lines.append(f"            m = {market}")
        args = ", ".join(f"{name}={_column((name, c, u), 'm')}" for name, c, u in fields)
        if kind == EV_ACCEPTED:
            lines.append("            accepted = len(out)")
        lines.append(f"            append({cls.__name__}(seq=seq, {args}))")
        if kind == EV_TRADE:
            lines += _trade_postings()
        if kind in (EV_ACCEPTED, EV_AMENDED):
            lines += _hold_posting()
    x_args = ", ".join(f"{name}={_column((name, c, u), 'm')}" for name, c, u in ACCEPTED_X)
    lines += [
        f"        elif kind == {EV_ACCEPTED_X}:",
        f"            out[accepted] = replace(out[accepted], {x_args})",
        f"        elif kind == {EV_REJECTED}:",
        "            append(echo(seq, r, clamped))",
        "        else:",
        "            raise AssertionError(f'unknown event row kind {kind}')",
        "    return out",
    ]
    return "\n".join(lines) + "\n"


def make_decoder(echo: Callable[..., Any]) -> Callable[..., list[Any]]:
    """The generated decoder; ``echo(seq, row, clamped)`` builds an OrderRejected."""
    namespace: dict[str, Any] = {cls.__name__: cls for cls, _ in EVENT_ROWS.values()}
    namespace["Posting"] = Posting
    namespace |= {"replace": msgspec.structs.replace, "echo": echo}
    exec(compile(decoder_source(), "<engine.core.eventrows decoder>", "exec"), namespace)
    return namespace["decode_rows"]


__all__ = [
    "ACCEPTED_X",
    "EVENT_ROWS",
    "TRADE_RELEASE",
    "TRADE_TXN",
    "decoder_source",
    "make_decoder",
]
