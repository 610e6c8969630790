"""The state image's canonical bytes, with its two big lists encoded straight from the arrays.

`engine.schema.state_hash` of `CompiledEngine.image` builds one Python object per resting
order and per account (and a list per balance), then msgpack-encodes them: ~0.3-0.6 s at
100,000 resting orders and 10,000 accounts, nearly all of it the objects (the encoding and
the BLAKE2b are ~30 ms). ``replay --verify`` pays that at every snapshot it passes (one per
100,000 commands on a node's data dir), several times the replay of those commands.

`image_bytes` writes the same bytes without the objects: the small parts of the image are
built and encoded as before (`header_image`, `encode_image`); the accounts and the resting
orders are msgpack-encoded by njit from the canonical tables `build_image` itself reads
(`balance_table`, `order_columns`) and spliced in as `msgspec.Raw`, which the encoder writes
verbatim. The msgpack written here is msgspec's: every integer in its smallest form, arrays
with a fixarray, array16 or array32 header. So `image_state_hash(eng) ==
state_hash(eng.image())` byte for byte (tests/test_imagebytes.py holds them equal on
generated states and on integer boundaries), and a snapshot's recorded hash is compared
against exactly the state it would have been compared against before.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import msgspec
import numpy as np
from numba import njit

from engine.core.imaging import balance_table, header_image, order_columns
from engine.core.layout import A_DMS
from engine.schema import encode_image

if TYPE_CHECKING:
    from engine.core.compiled import CompiledEngine
    from engine.schema import StateImage

_INT_BYTES = 9
"""The longest msgpack integer: a marker byte and 8 bytes."""
_HEADER_BYTES = 5
"""The longest array header (array32)."""


@njit(cache=True, nogil=True)
def _put_be(out, p, v, size):  # pragma: no cover - njit
    """``size`` low bytes of ``v``, big-endian, at ``out[p:]``; returns the next position."""
    u = np.uint64(v)
    for k in range(size):
        out[p + k] = np.uint8((u >> np.uint64(8 * (size - 1 - k))) & np.uint64(0xFF))
    return p + size


@njit(cache=True, nogil=True)
def put_int(out, p, v):  # pragma: no cover - njit
    """msgpack integer ``v`` at ``out[p:]`` in msgspec's form (the shortest); next position."""
    if v >= 0:
        if v < 128:
            out[p] = np.uint8(v)
            return p + 1
        if v < 256:
            out[p] = 0xCC
            return _put_be(out, p + 1, v, 1)
        if v < 65536:
            out[p] = 0xCD
            return _put_be(out, p + 1, v, 2)
        if v < 4294967296:
            out[p] = 0xCE
            return _put_be(out, p + 1, v, 4)
        out[p] = 0xCF
        return _put_be(out, p + 1, v, 8)
    if v >= -32:
        out[p] = np.uint8(v + 256)
        return p + 1
    if v >= -128:
        out[p] = 0xD0
        return _put_be(out, p + 1, v, 1)
    if v >= -32768:
        out[p] = 0xD1
        return _put_be(out, p + 1, v, 2)
    if v >= -2147483648:
        out[p] = 0xD2
        return _put_be(out, p + 1, v, 4)
    out[p] = 0xD3
    return _put_be(out, p + 1, v, 8)


@njit(cache=True, nogil=True)
def put_array_header(out, p, n):  # pragma: no cover - njit
    """msgpack array header for ``n`` elements at ``out[p:]``; next position."""
    if n < 16:
        out[p] = np.uint8(0x90 + n)
        return p + 1
    if n < 65536:
        out[p] = 0xDC
        return _put_be(out, p + 1, n, 2)
    out[p] = 0xDD
    return _put_be(out, p + 1, n, 4)


@njit(cache=True, nogil=True)
def _encode_table(rows, out):  # pragma: no cover - njit
    """``rows`` (int64 [n, w]) as a msgpack array of n arrays of w integers (a list of
    array-like structs of int fields); returns the bytes written."""
    n, w = rows.shape
    p = put_array_header(out, 0, n)
    for i in range(n):
        p = put_array_header(out, p, w)
        for j in range(w):
            p = put_int(out, p, rows[i, j])
    return p


@njit(cache=True, nogil=True)
def _encode_accounts(account_ids, table, dms, out):  # pragma: no cover - njit
    """`AccountImage` list: ``[account_id, [[asset, available, held orders, held
    withdrawals], ...], dead_mans_switch_ns]`` per account; ``table`` is `balance_table`'s
    (rows by account index then asset). Returns the bytes written."""
    n = len(account_ids)
    p = put_array_header(out, 0, n)
    r = 0
    for k in range(n):
        p = put_array_header(out, p, 3)
        p = put_int(out, p, account_ids[k])
        first = r
        while r < len(table) and table[r, 0] == k:
            r += 1
        p = put_array_header(out, p, r - first)
        for b in range(first, r):
            p = put_array_header(out, p, 4)
            for j in range(1, 5):
                p = put_int(out, p, table[b, j])
        p = put_int(out, p, dms[k])
    assert r == len(table)
    return p


def table_raw(rows: np.ndarray) -> msgspec.Raw:
    """``rows`` (int64 [n, w]) as `msgspec.Raw` of a msgpack array of n arrays of w ints."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n, w = rows.shape
    out = np.empty(_HEADER_BYTES + n * (_HEADER_BYTES + w * _INT_BYTES), dtype=np.uint8)
    return msgspec.Raw(out[: _encode_table(rows, out)].tobytes())


def accounts_raw(account_ids: np.ndarray, table: np.ndarray, dms: np.ndarray) -> msgspec.Raw:
    """The `AccountImage` list as `msgspec.Raw` of its canonical msgpack, from an account id
    per account index, `balance_table`'s rows and the dead man's switch per account (the
    engine's own arrays, or a capture's copies of them)."""
    account_ids = np.ascontiguousarray(account_ids, dtype=np.int64)
    table = np.ascontiguousarray(table, dtype=np.int64)
    dms = np.ascontiguousarray(dms, dtype=np.int64)
    size = _HEADER_BYTES + len(account_ids) * (3 * _HEADER_BYTES + 2 * _INT_BYTES)
    out = np.empty(size + len(table) * (_HEADER_BYTES + 4 * _INT_BYTES), dtype=np.uint8)
    used = _encode_accounts(account_ids, table, dms, out)
    return msgspec.Raw(out[:used].tobytes())


def _accounts_raw(eng: CompiledEngine) -> msgspec.Raw:
    account_ids, table = balance_table(eng)
    return accounts_raw(account_ids, table, eng._a.acct[account_ids, A_DMS])


def spliced_image(eng: CompiledEngine) -> StateImage:
    """``eng.image()`` with its accounts and orders as `msgspec.Raw` of their canonical
    msgpack: it encodes to the same bytes, alone (`encode_image`) or inside another structure
    (a replica snapshot, `engine.snapstore.encode_snapshot`), without a Python object per
    account or order. For encoding only: its two lists are not lists."""
    small = header_image(eng)
    return msgspec.structs.replace(
        small, accounts=_accounts_raw(eng), orders=table_raw(order_columns(eng))
    )


def image_bytes(eng: CompiledEngine) -> bytes:
    """``encode_image(eng.image())``, without a Python object per account or order."""
    return encode_image(spliced_image(eng))


def image_state_hash(eng: CompiledEngine) -> str:
    """``state_hash(eng.image())``: BLAKE2b-256 hex of `image_bytes`."""
    return hashlib.blake2b(image_bytes(eng), digest_size=32).hexdigest()


__all__ = ["image_bytes", "image_state_hash", "put_array_header", "put_int", "spliced_image"]
