"""Commands to int64 rows, event rows to msgspec events.

Rows carry the command's raw atoms; the kernel validates them and converts to ticks/lots.
Python ints outside int64 cannot enter a row: a range-checked amount saturates (it still fails
the same range check), an id or enum field becomes INT64_MIN (never a valid id or enum, never
-1 = "every market"), and the wrapper restores the command's own values in the OrderRejected
that echoes them (see ``clamped``).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from engine.core.layout import (
    CMD_ADMIN,
    CMD_AMEND,
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_DISCONNECT,
    CMD_PLACE,
    CMD_REPLACE,
    CMD_TICK,
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
    DeadMansSwitchFired,
    Event,
    IcebergRefreshed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PlaceOrder,
    Posting,
    SelfTradePrevented,
    Tick,
    Trade,
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


def decode_rows(
    rows: np.ndarray, ticks: list[int], lots: list[int], clamped: dict[int, Command]
) -> list[Event]:
    """Events of the kernel's rows; ``ticks``/``lots`` per market convert back to atoms."""
    out: list[Event] = []
    append = out.append
    for r in rows.tolist():
        kind = r[0]
        seq = r[1]
        if kind == EV_POSTING:
            append(
                Posting(
                    seq=seq,
                    txn_id=r[2],
                    reason=r[3],
                    asset_id=r[4],
                    debit_account_id=r[5],
                    debit_bucket=r[6],
                    credit_account_id=r[7],
                    credit_bucket=r[8],
                    amount_atoms=r[9],
                )
            )
        elif kind == EV_TRADE:
            m = r[3]
            append(
                Trade(
                    seq=seq,
                    trade_id=r[2],
                    market_id=m,
                    price_atoms=r[4] * ticks[m],
                    qty_atoms=r[5] * lots[m],
                    quote_atoms=r[6],
                    maker_order_id=r[7],
                    maker_account_id=r[8],
                    taker_order_id=r[9],
                    taker_account_id=r[10],
                    taker_side=r[11],
                    maker_fee_atoms=r[12],
                    taker_fee_atoms=r[13],
                )
            )
        elif kind == EV_AMENDED:
            m = r[4]
            append(
                OrderAmended(
                    seq=seq,
                    order_id=r[2],
                    account_id=r[3],
                    market_id=m,
                    price_atoms=r[5] * ticks[m],
                    qty_atoms=r[6] * lots[m],
                    priority_kept=bool(r[7]),
                    hold_atoms=r[8],
                )
            )
        elif kind == EV_STP:
            append(
                SelfTradePrevented(
                    seq=seq,
                    market_id=r[2],
                    account_id=r[3],
                    taker_order_id=r[4],
                    maker_order_id=r[5],
                    qty_atoms=r[6] * lots[r[2]],
                    stp_mode=r[7],
                )
            )
        elif kind == EV_ICEBERG:
            m = r[3]
            append(
                IcebergRefreshed(
                    seq=seq,
                    order_id=r[2],
                    market_id=m,
                    price_atoms=r[4] * ticks[m],
                    visible_qty_atoms=r[5] * lots[m],
                    hidden_qty_atoms=r[6] * lots[m],
                )
            )
        elif kind == EV_TRIGGERED:
            m = r[4]
            append(
                OrderTriggered(
                    seq=seq,
                    order_id=r[2],
                    account_id=r[3],
                    market_id=m,
                    trigger_price_atoms=r[5] * ticks[m],
                    last_price_atoms=r[6] * ticks[m],
                    price_atoms=r[7] * ticks[m],
                )
            )
        elif kind == EV_DMS_FIRED:
            append(DeadMansSwitchFired(seq=seq, account_id=r[2], fire_at_ns=r[3]))
        elif kind == EV_ACCEPTED:
            append(
                OrderAccepted(
                    seq=seq,
                    order_id=r[2],
                    account_id=r[3],
                    market_id=r[4],
                    client_order_id=r[5],
                    side=r[6],
                    order_type=r[7],
                    time_in_force=r[8],
                    price_atoms=r[9],
                    qty_atoms=r[10],
                    quote_qty_atoms=r[11],
                    hold_atoms=r[12],
                )
            )
        elif kind == EV_ACCEPTED_X:
            out[-1] = msgspec.structs.replace(
                out[-1],
                stop_price_atoms=r[2],
                trailing_delta_bps=r[3],
                limit_offset_atoms=r[4],
                display_qty_atoms=r[5],
                expire_at_ns=r[6],
                stp_mode=r[7],
            )
        elif kind == EV_REJECTED:
            append(_echo(seq, r, clamped))
        elif kind in (EV_CANCELLED, EV_EXPIRED):
            cls = OrderCancelled if kind == EV_CANCELLED else OrderExpired
            m = r[4]
            append(
                cls(
                    seq=seq,
                    order_id=r[2],
                    account_id=r[3],
                    market_id=m,
                    remaining_qty_atoms=r[5] * lots[m],
                    reason=r[6],
                )
            )
        else:
            raise AssertionError(f"unknown event row kind {kind}")
    return out
