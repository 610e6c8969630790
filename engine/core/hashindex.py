"""Open-addressing hash indexes: order id -> slot and (account, client order id) -> slot.

Linear probing over an int32 table whose entries are ``slot + 1`` (0 = empty), load factor
<= 0.5 (the table has >= 2 * max_orders entries), backward-shift deletion (no tombstones, so
probe lengths never degrade). The key is not stored: it is read back from the orders table,
so each index costs 4 bytes per table entry, 8 bytes per order slot.

Row 0 of ``idx`` is the order-id index, row 1 the client-order-id index. The hash is the
splitmix64 finalizer: deterministic on every machine.
"""

from __future__ import annotations

import numpy as np

from engine.core.layout import K_ACCOUNT, O_COID, O_ID, kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S1 = np.uint64(1)

OID_ROW = 0
COID_ROW = 1


@kernel
def mix64(x):
    """splitmix64 finalizer of an int64, as a non-negative int64."""
    z = np.uint64(x) + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return np.int64(z >> _S1)


@kernel
def coid_hash(account, coid):
    return mix64(coid ^ mix64(account))


# ---- order id -> slot ----------------------------------------------------------------------


@kernel
def oid_find(idx, ords, mask, oid):
    """Slot of the open order ``oid``, or -1."""
    i = mix64(oid) & mask
    while True:
        e = idx[OID_ROW, i]
        if e == 0:
            return -1
        if ords[e - 1, O_ID] == oid:
            return e - 1
        i = (i + 1) & mask


@kernel
def oid_insert(idx, ords, mask, slot):
    """Index ``slot`` under its order id (which must not be indexed yet)."""
    i = mix64(ords[slot, O_ID]) & mask
    while idx[OID_ROW, i] != 0:
        i = (i + 1) & mask
    idx[OID_ROW, i] = slot + 1


@kernel
def oid_delete(idx, ords, mask, slot):
    """Remove ``slot`` from the index; False if it was not there."""
    i = mix64(ords[slot, O_ID]) & mask
    while True:
        e = idx[OID_ROW, i]
        if e == 0:
            return False
        if e == slot + 1:
            break
        i = (i + 1) & mask
    # Backward shift: pull every later entry of the cluster that may live at the hole.
    j = i
    while True:
        j = (j + 1) & mask
        e = idx[OID_ROW, j]
        if e == 0:
            break
        home = mix64(ords[e - 1, O_ID]) & mask
        # Keep e in place iff its home lies cyclically in (i, j].
        stays = (i < home <= j) if i <= j else (home > i or home <= j)
        if not stays:
            idx[OID_ROW, i] = e
            i = j
    idx[OID_ROW, i] = 0
    return True


# ---- (account, client order id) -> slot ----------------------------------------------------


@kernel
def coid_find(idx, ords, olnk, mask, account, coid):
    """Slot of the account's open order with client order id ``coid``, or -1."""
    i = coid_hash(account, coid) & mask
    while True:
        e = idx[COID_ROW, i]
        if e == 0:
            return -1
        s = e - 1
        if ords[s, O_COID] == coid and olnk[s, K_ACCOUNT] == account:
            return s
        i = (i + 1) & mask


@kernel
def coid_insert(idx, ords, olnk, mask, slot):
    i = coid_hash(np.int64(olnk[slot, K_ACCOUNT]), ords[slot, O_COID]) & mask
    while idx[COID_ROW, i] != 0:
        i = (i + 1) & mask
    idx[COID_ROW, i] = slot + 1


@kernel
def coid_delete(idx, ords, olnk, mask, slot):
    i = coid_hash(np.int64(olnk[slot, K_ACCOUNT]), ords[slot, O_COID]) & mask
    while True:
        e = idx[COID_ROW, i]
        if e == 0:
            return False
        if e == slot + 1:
            break
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        e = idx[COID_ROW, j]
        if e == 0:
            break
        home = coid_hash(np.int64(olnk[e - 1, K_ACCOUNT]), ords[e - 1, O_COID]) & mask
        stays = (i < home <= j) if i <= j else (home > i or home <= j)
        if not stays:
            idx[COID_ROW, i] = e
            i = j
    idx[COID_ROW, i] = 0
    return True
