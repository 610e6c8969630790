"""Commands to int64 rows, event rows to msgspec events.

Rows carry the command's raw atoms; the kernel validates them and converts to ticks/lots.
Python ints outside int64 cannot enter a row: a range-checked amount saturates (it still fails
the same range check), an id or enum field becomes INT64_MIN (never a valid id or enum, never
-1 = "every market"), and the wrapper restores the command's own values in the OrderRejected
that echoes them (see ``clamped``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.core.eventrows import make_decoder
from engine.core.layout import (
    CMD_ADMIN,
    CMD_AMEND,
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_DISCONNECT,
    CMD_PLACE,
    CMD_REPLACE,
    CMD_TICK,
    INT64_MAX,
    INT64_MIN,
    R_W,
)
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOnDisconnect,
    CancelOrder,
    CancelReplaceOrder,
    Command,
    OrderRejected,
    PlaceOrder,
    Tick,
)

# Which row columns are saturating amounts (the rest are ids/enums), per command kind.
_AMOUNT_COLS = {
    CMD_PLACE: (7, 8, 9, 12, 13, 14, 15, 16),
    CMD_CANCEL: (),
    CMD_AMEND: (6, 7),
    CMD_CANCEL_ALL: (),
    CMD_ADMIN: (),
    CMD_TICK: (),
    CMD_DISCONNECT: (),
    CMD_REPLACE: (),
}
_PAD = (0, 0, 0, 0, 0, 0)


def _row(seq: int, ts: int, cmd: Command) -> tuple[int, ...]:
    t = type(cmd)
    if t is AmendOrder:
        return (
            CMD_AMEND,
            seq,
            cmd.account_id,
            cmd.market_id,
            cmd.order_id,
            cmd.client_order_id,
            cmd.new_price_atoms,
            cmd.new_qty_atoms,
            0,
            0,
            0,
            ts,
            *_PAD,
        )
    if t is PlaceOrder:
        return (
            CMD_PLACE,
            seq,
            cmd.account_id,
            cmd.market_id,
            cmd.side,
            cmd.order_type,
            cmd.time_in_force,
            cmd.price_atoms,
            cmd.qty_atoms,
            cmd.quote_qty_atoms,
            cmd.client_order_id,
            ts,
            cmd.stop_price_atoms,
            cmd.trailing_delta_bps,
            cmd.limit_offset_atoms,
            cmd.display_qty_atoms,
            cmd.expire_at_ns,
            cmd.stp_mode,
        )
    if t is CancelOrder:
        return (
            CMD_CANCEL,
            seq,
            cmd.account_id,
            cmd.market_id,
            cmd.order_id,
            cmd.client_order_id,
            0,
            0,
            0,
            0,
            0,
            ts,
            *_PAD,
        )
    if t is CancelAll:
        return (CMD_CANCEL_ALL, seq, cmd.account_id, cmd.market_id, 0, 0, 0, 0, 0, 0, 0, ts,
                *_PAD)  # fmt: skip
    if t is CancelOnDisconnect:
        return (CMD_DISCONNECT, seq, cmd.account_id, -1, 0, 0, 0, 0, 0, 0, 0, ts, *_PAD)
    if t is Tick:
        return (CMD_TICK, seq, 0, 0, 0, 0, 0, 0, 0, 0, 0, ts, *_PAD)
    return (CMD_ADMIN, seq, 0, 0, 0, 0, 0, 0, 0, 0, 0, ts, *_PAD)


def _rows(seq: int, ts: int, cmd: Command) -> tuple[tuple[int, ...], ...]:
    """One row per command, except CancelReplaceOrder: its cancel row, then its place row."""
    if type(cmd) is CancelReplaceOrder:
        cancel = (CMD_REPLACE, seq, cmd.place.account_id, cmd.place.market_id,
                  cmd.cancel_order_id, cmd.cancel_client_order_id, int(cmd.allow_failure),
                  0, 0, 0, 0, ts, *_PAD)  # fmt: skip
        return cancel, _row(seq, ts, cmd.place)
    return (_row(seq, ts, cmd),)


def _clamp(row: tuple[int, ...]) -> tuple[int, ...]:
    amounts = _AMOUNT_COLS[row[0]]
    out = list(row)
    for k in range(2, R_W):
        v = out[k]
        if INT64_MIN <= v <= INT64_MAX:
            continue
        if k in amounts:
            out[k] = INT64_MAX if v > 0 else INT64_MIN
        else:
            out[k] = INT64_MIN
    return tuple(out)


def encode_records(
    records: Sequence[tuple[int, int, Command]],
    admin: dict[int, tuple[int, Command]],
    clamped: dict[int, Command],
) -> np.ndarray:
    """Rows for ``records``; admin commands become CMD_ADMIN rows and are parked in ``admin``
    by seq; commands with a field outside int64 are parked in ``clamped``."""
    rows = []
    for seq, ts, cmd in records:
        if type(cmd) is CancelReplaceOrder:
            rows.extend(_rows(seq, ts, cmd))
            continue
        row = _row(seq, ts, cmd)
        if row[0] == CMD_ADMIN:
            admin[seq] = (ts, cmd)
        rows.append(row)
    if not rows:
        return np.zeros((0, R_W), dtype=np.int64)
    try:
        return np.array(rows, dtype=np.int64)
    except OverflowError:
        pass
    safe = []
    for seq, ts, cmd in records:
        if not 1 <= seq <= INT64_MAX:
            raise ValueError(f"sequence {seq} outside 1..2**63-1")
        if not 0 <= ts <= INT64_MAX:
            raise ValueError(f"timestamp {ts} outside 0..2**63-1")
        for row in _rows(seq, ts, cmd):
            fixed = _clamp(row)
            if fixed != row:
                clamped[seq] = cmd
            safe.append(fixed)
    return np.array(safe, dtype=np.int64)


def _echo(seq: int, row: list[int], clamped: dict[int, Command]) -> OrderRejected:
    account, market, order_id, coid = row[2], row[3], row[4], row[5]
    cmd = clamped.get(seq)
    if type(cmd) is CancelReplaceOrder:  # column 7: the refusal is the cancel half's
        cmd = cmd.cancel() if row[7] else cmd.place
    if cmd is not None:
        account, market = cmd.account_id, cmd.market_id
        if isinstance(cmd, (CancelOrder, AmendOrder)):
            order_id, coid = cmd.order_id, cmd.client_order_id
        elif isinstance(cmd, PlaceOrder):
            coid = cmd.client_order_id
    return OrderRejected(
        seq=seq,
        account_id=account,
        market_id=market,
        order_id=order_id,
        client_order_id=coid,
        reason=row[6],
    )


decode_rows = make_decoder(_echo)
"""``decode_rows(rows, ticks, lots, assets, clamped)``: the events of the kernel's rows; ``ticks``
and ``lots`` per market convert back to atoms, ``assets`` per market (base, quote) complete the
postings a trade row stands for (generated from `engine.core.eventrows.EVENT_ROWS`)."""
