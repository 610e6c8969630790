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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from engine.core.layout import (
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
    """Python source of ``decode_rows(rows, ticks, lots, clamped)`` from the tables."""
    lines = [
        "def decode_rows(rows, ticks, lots, clamped):",
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
        lines.append(f"            append({cls.__name__}(seq=seq, {args}))")
    x_args = ", ".join(f"{name}={_column((name, c, u), 'm')}" for name, c, u in ACCEPTED_X)
    lines += [
        f"        elif kind == {EV_ACCEPTED_X}:",
        f"            out[-1] = replace(out[-1], {x_args})",
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
    namespace |= {"replace": msgspec.structs.replace, "echo": echo}
    exec(compile(decoder_source(), "<engine.core.eventrows decoder>", "exec"), namespace)
    return namespace["decode_rows"]


__all__ = ["ACCEPTED_X", "EVENT_ROWS", "decoder_source", "make_decoder"]
