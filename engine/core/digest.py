"""The checkpoint digest: the canonical state hashed straight from the core's arrays.

The hash cross-check (`engine.crosscheck`) compares replicas at fixed stream points. Hashing
the state image there (`engine.schema.state_hash`) builds one Python object per resting order
and msgpack-encodes them all: ~260 ms at 100,000 orders, on the replica's thread. This digest
covers the same canonical data (the image's small parts encoded as the image encodes them;
accounts, balances and resting orders as int64 tables in the image's order, built by the
same code as the image: `engine.core.imaging.balance_table`, `order_columns`) without
building the objects. It is allocation-independent like the image: two engines whose images
are equal have equal digests (a replica restored from a snapshot agrees with one that ran
from the first message), and any difference in the image changes it.

It is not the state hash: the image's BLAKE2b stays the hash of snapshots, journals and
``/health``; this one names what the replicas record at checkpoints. Versioned through the
BLAKE2b ``person`` parameter so a change of layout cannot compare equal to an older digest.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np

from engine.core.imaging import balance_table, header_image, order_rows, ordered_slots
from engine.core.layout import A_DMS
from engine.schema import encode_image

if TYPE_CHECKING:
    from engine.core.compiled import CompiledEngine

PERSON: Final = b"kb-checkpoint-1"


def _table(h: hashlib._Hash, table: np.ndarray) -> None:
    """Shape, then little-endian int64 bytes: two tables with the same bytes and other
    shapes differ."""
    t = np.ascontiguousarray(table, dtype="<i8")
    h.update(np.array(t.shape, dtype="<i8").tobytes())
    h.update(t.tobytes())


class DigestInput(NamedTuple):
    """Everything the digest reads, copied out of the engine (`capture`): `finish` hashes it
    on any thread while the engine goes on (the cross-check's checkpoints, so the replica's
    loop pays the copies, not the column arithmetic and BLAKE2b over ~11 MB at 100,000
    resting orders)."""

    head: bytes
    accounts: np.ndarray
    """int64 rows ``[account id, dead-man's switch]``."""
    balances: np.ndarray
    ords: np.ndarray
    """The resting orders' rows of the order table, in book order (a copy)."""
    olnk: np.ndarray
    """Their rows of the link table, same order (a copy)."""
    mkt: np.ndarray
    """The market table (a copy)."""


def capture(eng: CompiledEngine) -> DigestInput:
    """Copy what the digest covers, between two commands (the point the digest names)."""
    a = eng._a
    head = encode_image(header_image(eng))
    account_ids, balances = balance_table(eng)
    dms = a.acct[account_ids, A_DMS] if len(account_ids) else np.zeros(0, dtype=np.int64)
    accounts = np.stack([account_ids, dms.astype(np.int64)], axis=1)
    slots = ordered_slots(eng)
    return DigestInput(head, accounts, balances, a.ords[slots], a.olnk[slots], a.mkt.copy())


def finish(captured: DigestInput) -> str:
    """BLAKE2b-256 hex of a captured state; reads only the copies, so any thread may run it
    (numpy and hashlib release the GIL for most of it)."""
    h = hashlib.blake2b(digest_size=32, person=PERSON)
    h.update(len(captured.head).to_bytes(8, "little"))
    h.update(captured.head)
    _table(h, captured.accounts)
    _table(h, captured.balances)
    _table(h, order_rows(captured.ords, captured.olnk, captured.mkt))
    return h.hexdigest()


def checkpoint_digest(eng: CompiledEngine) -> str:
    """BLAKE2b-256 hex of the canonical state (see the module docstring)."""
    return finish(capture(eng))
