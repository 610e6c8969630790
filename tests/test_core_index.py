"""Focused tests of the compiled core (engine/core): its hash indexes against a dict, the state
hash's determinism and its level book's sorted insert/remove.

The big differential tests against the reference model live in tests/test_differential.py.
"""

from __future__ import annotations

import bisect

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from engine.core import book, hashindex
from engine.core.layout import (
    C_LEVEL_FREE,
    C_LEVEL_HWM,
    C_W,
    CF_LEVEL_CAP,
    CF_MAX_LEVELS,
    K_ACCOUNT,
    K_W,
    O_COID,
    O_ID,
    O_W,
    V_PRICE,
    V_W,
)
from engine.schema import MAX_AMOUNT_ATOMS

# --------------------------------------------------------------------------------------------
# Hash indexes against a dict

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "find"]), st.integers(-40, 40), st.integers(0, 2)
    ),
    max_size=120,
)


@given(_OPS)
def test_order_id_index_matches_a_dict(ops: list[tuple[str, int, int]]) -> None:
    """Keys that differ by multiples of 2**31 share a fingerprint: the order row decides."""
    capacity = 16  # 8 slots at load <= 0.5: lots of collisions and wrap-around clusters
    mask = 2 * capacity - 1
    idx = np.zeros(2 * capacity, dtype=np.int64)
    ords = np.zeros((capacity, O_W), dtype=np.int64)
    free = list(range(capacity))
    model: dict[int, int] = {}
    for op, low, high in ops:
        key = low + high * (1 << 31)
        if op == "insert" and key not in model and free:
            slot = free.pop()
            ords[slot, O_ID] = key
            hashindex.oid_insert(idx, ords, mask, slot)
            model[key] = slot
        elif op == "delete" and key in model:
            slot = model.pop(key)
            assert hashindex.oid_delete(idx, ords, mask, slot)
            ords[slot, O_ID] = 10_000 + slot  # stale key must not matter
            free.append(slot)
        assert hashindex.oid_find(idx, ords, mask, key) == model.get(key, -1)
        for k, slot in model.items():
            assert hashindex.oid_find(idx, ords, mask, k) == slot
        assert np.count_nonzero(idx) == len(model)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3), st.integers(1, 6)), max_size=120))
def test_client_order_id_index_matches_a_dict(ops: list[tuple[bool, int, int]]) -> None:
    capacity = 16
    mask = 2 * capacity - 1
    idx = np.zeros((1, 2 * capacity), dtype=np.int32)
    ords = np.zeros((capacity, O_W), dtype=np.int64)
    olnk = np.zeros((capacity, K_W), dtype=np.int32)
    free = list(range(capacity))
    model: dict[tuple[int, int], int] = {}
    for insert, account, coid in ops:
        key = (account, coid)
        if insert and key not in model and free:
            slot = free.pop()
            olnk[slot, K_ACCOUNT] = account
            ords[slot, O_COID] = coid
            hashindex.coid_insert(idx, ords, olnk, mask, slot)
            model[key] = slot
        elif not insert and key in model:
            slot = model.pop(key)
            assert hashindex.coid_delete(idx, ords, olnk, mask, slot)
            free.append(slot)
        for (a, c), slot in model.items():
            assert hashindex.coid_find(idx, ords, olnk, mask, a, c) == slot
        for a in range(1, 4):
            for c in range(1, 7):
                if (a, c) not in model:
                    assert hashindex.coid_find(idx, ords, olnk, mask, a, c) == -1


def test_hash_is_deterministic() -> None:
    # splitmix64 finalizer values are part of no contract, but must not depend on the run.
    assert [hashindex.mix64(k) for k in (0, 1, -1)] == [
        hashindex.mix64(0),
        hashindex.mix64(1),
        hashindex.mix64(-1),
    ]
    assert all(hashindex.mix64(k) >= 0 for k in range(-1000, 1000))


def test_order_id_home_keeps_runs_and_stays_in_the_table() -> None:
    for mask in (31, 63, 1023, (1 << 21) - 1):
        for run in (0, 1, 7, 4_096, (1 << 27) - 1):
            homes = [hashindex.oid_home(run * 16 + k, mask) for k in range(16)]
            assert all(0 <= home <= mask for home in homes)
            assert homes == [homes[0] + k for k in range(16)]  # one run, consecutive entries


def test_order_id_probes_stay_short_for_consecutive_ids() -> None:
    """The live set the engine sees: ids are sequence numbers, orders leave at random. At load
    0.5, linear probing with evenly spread runs displaces an entry by ~0.4 on average (a
    uniform hash: ~0.5-1; a hash that maps nearby runs to nearby homes: 2.6 to 25 measured)."""
    rng = np.random.default_rng(7)
    for bits in (12, 17):
        live = 1 << bits
        mask = 2 * live - 1
        ids = np.sort(rng.choice(np.arange(1, 8 * live), live, replace=False))
        idx = np.zeros(mask + 1, dtype=np.int64)
        ords = np.zeros((live, O_W), dtype=np.int64)
        ords[:, O_ID] = ids
        for slot in range(live):
            hashindex.oid_insert(idx, ords, mask, slot)
        where = np.flatnonzero(idx)
        slots = (idx[where] & hashindex.SLOT_MASK) - 1
        homes = np.array([hashindex.oid_home(int(i) & hashindex.FP_MASK, mask) for i in ids])
        displacement = (where - homes[slots]) & mask
        assert displacement.mean() < 0.6, displacement.mean()
        assert displacement.max() < 64


# --------------------------------------------------------------------------------------------
# Level book: sorted insert/remove


def _side_arrays(levels: int) -> tuple[np.ndarray, ...]:
    lvl = np.zeros((levels, V_W), dtype=np.int64)
    lfree = np.zeros(levels, dtype=np.int32)
    bkl = np.zeros((2, levels), dtype=np.int32)
    bkn = np.zeros(2, dtype=np.int64)
    ctr = np.zeros(C_W, dtype=np.int64)
    ctr[CF_LEVEL_CAP] = levels
    ctr[CF_MAX_LEVELS] = levels
    return lvl, lfree, bkl, bkn, ctr


# Prices near the top of the range too: the search compares by the sign of a key difference
# (`engine.core.kernelapi.below_mask`), which must hold at the bounds.
_FAR_PRICES = [MAX_AMOUNT_ATOMS, MAX_AMOUNT_ATOMS - 1, 1 << 61, (1 << 61) + 1]
_PRICES = st.one_of(st.integers(1, 30), st.sampled_from(_FAR_PRICES))


@given(st.lists(st.tuples(st.integers(0, 1), _PRICES, st.booleans()), max_size=200))
def test_level_book_keeps_sorted_order(ops: list[tuple[int, int, bool]]) -> None:
    lvl, lfree, bkl, bkn, ctr = _side_arrays(64)
    model: list[set[int]] = [set(), set()]
    for side, price, add in ops:
        if add:
            lv = book.level_get_or_add(lvl, bkl, bkn, lfree, ctr, side, side, price)
            assert lv >= 0 and lvl[lv, V_PRICE] == price
            model[side].add(price)
        elif price in model[side]:
            lv = book.level_find(lvl, bkl, bkn, side, side, price)
            book.level_drop(lvl, bkl, bkn, lfree, ctr, side, side, lv)
            model[side].discard(price)
        for s in (0, 1):
            n = int(bkn[s])
            prices = [int(lvl[bkl[s, k], V_PRICE]) for k in range(n)]
            # bids ascending, asks descending: the best price is always last
            expected = sorted(model[s]) if s == 0 else sorted(model[s], reverse=True)
            assert prices == expected
            keys = sorted(p if s == 0 else -p for p in model[s])
            for probe in [*range(0, 32), *_FAR_PRICES]:
                key = probe if s == 0 else -probe
                assert book.level_pos(lvl, bkl, bkn, s, s, key) == bisect.bisect_left(keys, key)
                found = book.level_find(lvl, bkl, bkn, s, s, probe)
                assert (found >= 0) == (probe in model[s])
        live = len(model[0]) + len(model[1])
        assert ctr[C_LEVEL_HWM] - ctr[C_LEVEL_FREE] == live


# --------------------------------------------------------------------------------------------
