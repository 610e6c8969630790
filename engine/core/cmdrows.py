"""Journal payloads of the hot commands straight to command rows, without Python objects.

Replay and recovery spend most of their time turning msgpack payloads into `Command` objects
(msgspec) and then into int64 rows (`engine.core.codec`). For the hot kinds (PlaceOrder,
CancelOrder, AmendOrder, CancelAll) the journal payload is already a fixed shape: msgspec's
array-like encoding ``[tag, field, field, ...]`` with integer fields only. `payload_rows`
parses a batch of such payloads in one njit call and writes the rows directly.

The journal format does not change (old journals replay as before). One table,
`HOT_COMMANDS`, derived from the msgspec schema (field names, order and defaults) and the
row columns of `engine.core.layout`, drives the parser. Anything the parser is not sure of
(another kind, a non-integer, an integer outside int64, too many or too few elements, any
other msgpack type) is left to the slow path (`decode_command` + `encode`), which accepts or
refuses it exactly as before: the fast path never decides that a payload is invalid.
tests/test_cmdrows.py holds both paths to the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
from numba import njit

from engine.core.layout import (
    CMD_AMEND,
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_PLACE,
    R_ACCOUNT,
    R_COID,
    R_DELTA,
    R_DISPLAY,
    R_EXPIRE,
    R_KIND,
    R_MARKET,
    R_NEW_PRICE,
    R_NEW_QTY,
    R_OFFSET,
    R_ORDER_ID,
    R_PRICE,
    R_QTY,
    R_QUOTE_QTY,
    R_SEQ,
    R_SIDE,
    R_STOP,
    R_STP,
    R_TARGET_COID,
    R_TIF,
    R_TS,
    R_TYPE,
    R_W,
)
from engine.schema import AmendOrder, CancelAll, CancelOrder, PlaceOrder

HOT_COMMANDS: dict[type, tuple[int, dict[str, int]]] = {
    PlaceOrder: (
        CMD_PLACE,
        {
            "account_id": R_ACCOUNT, "market_id": R_MARKET, "side": R_SIDE,
            "order_type": R_TYPE, "time_in_force": R_TIF, "price_atoms": R_PRICE,
            "qty_atoms": R_QTY, "quote_qty_atoms": R_QUOTE_QTY, "client_order_id": R_COID,
            "stop_price_atoms": R_STOP, "trailing_delta_bps": R_DELTA,
            "limit_offset_atoms": R_OFFSET, "display_qty_atoms": R_DISPLAY,
            "expire_at_ns": R_EXPIRE, "stp_mode": R_STP,
        },
    ),
    CancelOrder: (
        CMD_CANCEL,
        {"account_id": R_ACCOUNT, "market_id": R_MARKET, "order_id": R_ORDER_ID,
         "client_order_id": R_TARGET_COID},
    ),
    AmendOrder: (
        CMD_AMEND,
        {"account_id": R_ACCOUNT, "market_id": R_MARKET, "order_id": R_ORDER_ID,
         "client_order_id": R_TARGET_COID, "new_price_atoms": R_NEW_PRICE,
         "new_qty_atoms": R_NEW_QTY},
    ),
    CancelAll: (CMD_CANCEL_ALL, {"account_id": R_ACCOUNT, "market_id": R_MARKET}),
}  # fmt: skip
"""Per hot command: its row kind and the row column of each of its fields (every field)."""

_MAX_FIELDS = 16


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tags, kinds, layout, defaults) arrays for the parser, one row per hot command.

    ``tags[k]``: the msgpack encoding of the tag string; ``layout[k, f]``: the row column of
    field ``f`` (in schema order); ``defaults[k, f]``: its default, or a sentinel for a
    required field (``required[k]`` fields come first, as msgspec requires).
    """
    n = len(HOT_COMMANDS)
    tags = np.zeros((n, 32), dtype=np.uint8)
    meta = np.zeros((n, 4), dtype=np.int64)  # kind, tag length, fields, required fields
    layout = np.zeros((n, _MAX_FIELDS), dtype=np.int64)
    defaults = np.zeros((n, R_W), dtype=np.int64)
    for k, (cls, (kind, columns)) in enumerate(HOT_COMMANDS.items()):
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType) and info.array_like
        tag = msgspec.msgpack.encode(info.tag)
        fields = info.fields
        assert [f.name for f in fields] == list(columns), (cls, "HOT_COMMANDS out of step")
        assert len(fields) <= _MAX_FIELDS and len(tag) <= 32
        required = 0
        for f, field in enumerate(fields):
            assert isinstance(field.type, msgspec.inspect.IntType), (cls, field.name)
            assert field.type.ge is None and field.type.le is None, "constraints: not parsed"
            layout[k, f] = columns[field.name]
            if field.required:
                assert required == f
                required += 1
            else:
                defaults[k, columns[field.name]] = int(field.default)
        tags[k, : len(tag)] = np.frombuffer(tag, dtype=np.uint8)
        meta[k] = (kind, len(tag), len(fields), required)
    return tags, meta, layout, defaults


_TAGS, _META, _LAYOUT, _DEFAULTS = _tables()
HOT_TABLES = (_TAGS, _META, _LAYOUT, _DEFAULTS)
"""`parse_hot_rows`' tables (tags, meta, layout, defaults), for callers that parse records
themselves (engine.core.journalrows)."""


@njit(cache=True, nogil=True)
def read_int(buf, p, end):  # pragma: no cover - njit
    """(value, next position, ok) of the msgpack integer at ``p``; ok False for anything
    else, for a uint64 above int64 and for a truncated buffer."""
    if p >= end:
        return 0, p, False
    b = buf[p]
    if b <= 0x7F:
        return np.int64(b), p + 1, True
    if b >= 0xE0:
        return np.int64(b) - 256, p + 1, True
    if b == 0xCC or b == 0xD0:
        size = 1
    elif b == 0xCD or b == 0xD1:
        size = 2
    elif b == 0xCE or b == 0xD2:
        size = 4
    elif b == 0xCF or b == 0xD3:
        size = 8
    else:
        return 0, p, False
    if p + 1 + size > end:
        return 0, p, False
    v = np.uint64(0)
    for k in range(size):
        v = (v << np.uint64(8)) | np.uint64(buf[p + 1 + k])
    signed = b >= 0xD0
    if signed:
        bits = 8 * size
        if bits < 64 and (v >> np.uint64(bits - 1)) & np.uint64(1):
            return np.int64(v) - (np.int64(1) << bits), p + 1 + size, True
        return np.int64(v), p + 1 + size, True
    if size == 8 and v > np.uint64(0x7FFFFFFFFFFFFFFF):
        return 0, p, False
    return np.int64(v), p + 1 + size, True


@njit(cache=True, nogil=True)
def finish_row(rows, i, kind, seqs, stamps, fast):  # pragma: no cover - njit
    """The columns every parsed row ends with (its kind, the record's sequence and time) and
    its ``fast`` flag: shared by the hot kinds' parser and `engine.core.adminrows`."""
    rows[i, R_KIND] = kind
    rows[i, R_SEQ] = seqs[i]
    rows[i, R_TS] = stamps[i]
    fast[i] = True


@njit(cache=True, nogil=True)
def parse_hot_rows(
    buf, starts, ends, seqs, stamps, rows, fast, tags, meta, layout, defaults
):  # pragma: no cover
    n = len(starts)
    parsed = 0
    for i in range(n):
        p = starts[i]
        end = ends[i]
        fast[i] = False
        if p >= end:
            continue
        b = buf[p]
        if 0x90 <= b <= 0x9F:
            count = b - 0x90
            p += 1
        elif b == 0xDC and p + 3 <= end:
            count = (np.int64(buf[p + 1]) << 8) | np.int64(buf[p + 2])
            p += 3
        else:
            continue
        kind_row = -1
        for k in range(len(meta)):
            length = meta[k, 1]
            if p + length <= end:
                same = True
                for j in range(length):
                    if buf[p + j] != tags[k, j]:
                        same = False
                        break
                if same:
                    kind_row = k
                    break
        if kind_row < 0:
            continue
        fields = count - 1
        if fields < meta[kind_row, 3] or fields > meta[kind_row, 2]:
            continue
        p += meta[kind_row, 1]
        row = rows[i]
        columns = layout[kind_row]
        for c in range(R_W):  # the kind's template: zeros and every field's default
            row[c] = defaults[kind_row, c]
        ok = True
        for f in range(fields):
            if p < end and buf[p] <= 0x7F:  # a positive fixint: most fields (sides, 0s)
                row[columns[f]] = buf[p]
                p += 1
                continue
            v, p, ok = read_int(buf, p, end)
            if not ok:
                break
            row[columns[f]] = v
        if not ok or p != end:
            continue
        finish_row(rows, i, meta[kind_row, 0], seqs, stamps, fast)
        parsed += 1
    return parsed


def payload_rows(
    records: Sequence[tuple[int, int, bytes]],
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, fast) for journal records: ``rows[i]`` is record i's command row where
    ``fast[i]``; the other records are left for the slow path (their rows are garbage)."""
    n = len(records)
    if n == 0:
        return np.empty((0, R_W), dtype=np.int64), np.zeros(0, dtype=np.bool_)
    seqs = np.fromiter((r[0] for r in records), dtype=np.int64, count=n)
    stamps = np.fromiter((r[1] for r in records), dtype=np.int64, count=n)
    payloads = [r[2] for r in records]
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, payloads), dtype=np.int64, count=n), out=starts[1:])
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    return buffer_rows(buf, starts[:-1], starts[1:], seqs, stamps)


def buffer_rows(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, seqs: np.ndarray, stamps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`payload_rows` for payloads already in one buffer: payload ``i`` is
    ``buf[starts[i]:ends[i]]`` (a journal segment read by `engine.journalscan`)."""
    n = len(starts)
    rows = np.empty((n, R_W), dtype=np.int64)
    fast = np.zeros(n, dtype=np.bool_)
    if n:
        parse_hot_rows(buf, starts, ends, seqs, stamps, rows, fast, *HOT_TABLES)
    return rows, fast


__all__ = [
    "HOT_COMMANDS",
    "HOT_TABLES",
    "buffer_rows",
    "parse_hot_rows",
    "payload_rows",
    "read_int",
]
