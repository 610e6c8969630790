"""Open-addressing hash indexes: order id -> slot and (account, client order id) -> slot.

Linear probing, load factor <= 0.5 (each table has >= 2 * max_orders entries), backward-shift
deletion (no tombstones, so probe lengths never degrade). Deterministic on every machine.

**Order ids** (``oidx``, int64 entries): an entry is ``fingerprint << 32 | slot + 1`` (0 =
empty), the fingerprint being the low 31 bits of the order id. Order ids are sequence numbers,
so new orders arrive with consecutive ids: the home of an id keeps runs of 16 consecutive ids
in 16 consecutive entries (one 128-byte stretch) and scatters the runs by Fibonacci hashing
(`oid_home`: the top bits of the run number times 2**64 / golden ratio, which spreads
consecutive runs almost evenly). Inserts then touch memory that the previous inserts just
touched, and probes compare fingerprints in the table instead of reading every candidate's
order row: the order row is read once, to confirm the match (ids beyond 2**31 can share a
fingerprint). The home is computed from the fingerprint alone, so backward shifts read nothing
else either.
Measured on workload (c): the random-hash index with key checks through the orders table was
~40 % of the CPU time per order; this layout costs 16 bytes per order slot instead of 8.

**Client order ids** (``idx`` row 0, int32 entries ``slot + 1``): the key is not stored, it is
read back from the orders table (client ids are rare on the hot path).
"""

from __future__ import annotations

import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros

from engine.core.kernelapi import kernel, nonneg
from engine.core.layout import K_ACCOUNT, O_COID, O_ID

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S1 = np.uint64(1)

COID_ROW = 0
FP_MASK = (1 << 31) - 1
"""Fingerprint: the low 31 bits of an order id (an entry stays a non-negative int64)."""
SLOT_MASK = (1 << 32) - 1
RUN_BITS = 4
RUN = 1 << RUN_BITS
"""Consecutive order ids kept in consecutive entries (16)."""
MIN_CAPACITY = 2 * RUN
"""Smallest order-id table: its run part (`oid_home`) needs at least one bit."""


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
def oid_home(fp, mask):
    """Home entry of fingerprint ``fp`` (>= 0) in a table of ``mask + 1`` >= `MIN_CAPACITY`
    entries (a power of two): runs of `RUN` consecutive ids stay together, and the run number
    is Fibonacci-hashed (multiplied by 2**64 / golden ratio, its top bits kept). Why not a
    mixing finalizer: consecutive run numbers, the usual live set, land almost evenly spaced
    (the three-gap theorem), so probes are shorter (mean displacement at load 0.5 with random
    survivors: 0.40 against splitmix64's 0.94), in 6 instructions instead of 16."""
    shift = leading_zeros(np.uint64(mask)) + np.uint64(RUN_BITS)  # 64 - log2(runs in table)
    run_home = np.int64((np.uint64(fp >> RUN_BITS) * _GOLDEN) >> shift)
    return ((run_home << RUN_BITS) | (fp & (RUN - 1))) & mask


@kernel
def oid_find(oidx, ords, mask, oid):
    """Slot of the open order ``oid``, or -1."""
    mask = nonneg(mask)
    fp = oid & FP_MASK
    i = nonneg(oid_home(fp, mask))
    while True:
        e = oidx[i]
        if e == 0:
            return -1
        if (e >> 32) == fp:
            s = nonneg((e & SLOT_MASK) - 1)
            if ords[s, O_ID] == oid:
                return s
        i = (i + 1) & mask


@kernel(inline=True)
def oid_home_slot(oidx, mask, oid):
    """The slot in the home entry of ``oid``'s fingerprint, or -1: a guess, not checked
    against the order row (the order may sit further along the probe sequence, or the entry
    may hold another id with the same fingerprint); for prefetching, not for lookups."""
    fp = oid & FP_MASK
    e = oidx[nonneg(oid_home(fp, nonneg(mask)))]
    if e == 0 or (e >> 32) != fp:
        return -1
    return (e & SLOT_MASK) - 1


@kernel
def oid_insert(oidx, ords, mask, slot):
    """Index ``slot`` under its order id (which must not be indexed yet)."""
    mask = nonneg(mask)
    slot = nonneg(slot)
    fp = ords[slot, O_ID] & FP_MASK
    i = nonneg(oid_home(fp, mask))
    while oidx[i] != 0:
        i = (i + 1) & mask
    oidx[i] = (fp << 32) | (slot + 1)


@kernel
def oid_delete(oidx, ords, mask, slot):
    """Remove ``slot`` from the index; False if it was not there."""
    mask = nonneg(mask)
    slot = nonneg(slot)
    fp = ords[slot, O_ID] & FP_MASK
    i = nonneg(oid_home(fp, mask))
    target = (fp << 32) | (slot + 1)
    while True:
        e = oidx[i]
        if e == 0:
            return False
        if e == target:
            break
        i = (i + 1) & mask
    # Backward shift: pull every later entry of the cluster that may live at the hole.
    j = i
    while True:
        j = (j + 1) & mask
        e = oidx[j]
        if e == 0:
            break
        home = oid_home(e >> 32, mask)
        # Keep e in place iff its home lies cyclically in (i, j].
        stays = (i < home <= j) if i <= j else (home > i or home <= j)
        if not stays:
            oidx[i] = e
            i = j
    oidx[i] = 0
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
