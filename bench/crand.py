"""glibc's ``srand``/``rand``, bit for bit: the TYPE_3 additive feedback generator.

Workload (c) is a published C++ order-book benchmark's insert-only stream, generated there
with glibc ``srand(3)`` and ``rand()``. Reproducing the stream exactly (same prices, same
quantities, so the same 917,708 trades at 2M orders) needs the same generator, which is not
the textbook LCG: glibc's default ``rand()`` is ``random()`` with a 31-word state (TYPE_3,
separation 3), seeded by a Park-Miller LCG and warmed up by 310 discarded outputs.

    r[0] = seed (0 becomes 1)
    r[i] = 16807 * r[i-1] mod (2**31 - 1), i = 1..30    (Schrage's method, as glibc)
    then each output: front += rear (uint32), output = front >> 1, both pointers advance;
    the first 310 outputs are discarded.

tests/test_crand.py checks the first values against the C library itself (ctypes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_DEGREE = 31
_SEPARATION = 3
_WARM_UP = 10 * _DEGREE


def _seeded_state(seed: int) -> np.ndarray:
    """The 31-word state after ``srandom_r(seed)`` and before its warm-up."""
    word = seed & 0xFFFFFFFF
    if word >= 1 << 31:  # glibc takes the seed as a signed int
        word -= 1 << 32
    if word == 0:
        word = 1
    state = np.zeros(_DEGREE, dtype=np.uint32)
    state[0] = word & 0xFFFFFFFF
    for i in range(1, _DEGREE):
        hi = abs(word) // 127_773 * (1 if word >= 0 else -1)  # C division truncates to zero
        lo = word - hi * 127_773
        word = 16_807 * lo - 2_836 * hi
        if word < 0:
            word += 2_147_483_647
        state[i] = word
    return state


@njit(cache=True)
def _run(state: np.ndarray, skip: int, count: int) -> np.ndarray:  # pragma: no cover - njit
    out = np.empty(count, dtype=np.int64)
    front = _SEPARATION
    rear = 0
    for k in range(skip + count):
        v = np.uint32(state[front] + state[rear])
        state[front] = v
        if k >= skip:
            out[k - skip] = np.int64(v >> np.uint32(1))
        front += 1
        if front == _DEGREE:
            front = 0
        rear += 1
        if rear == _DEGREE:
            rear = 0
    return out


def glibc_rand(seed: int, count: int) -> np.ndarray:
    """The first ``count`` values of ``rand()`` after ``srand(seed)`` (int64, 0..2**31-1)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return _run(_seeded_state(seed), _WARM_UP, count)


__all__ = ["glibc_rand"]
