"""Overflow-safe integer money arithmetic (docs/engine-semantics.md, Notation and Holds).

Every product is bounded before it is formed: callers check ``p <= MAX // qtl`` and
``q <= MAX // (p * qtl)`` (NOTIONAL_OVERFLOW) before calling `notional`, and every amount
here stays below 2**63 (MAX = 2**62 - 1 plus a fee of at most 10 %).
"""

from __future__ import annotations

import numpy as np

from engine.core.kernelapi import kernel, nonneg
from engine.core.layout import MAX, PPM
from engine.schema.limits import MAX_FEE_PPM

# Below this, n * ppm < 2**63 for every fee rate a market may have: one division, not three.
_FEE_ONE_DIVISION = ((1 << 63) - 1) // MAX_FEE_PPM


@kernel
def fee(n, ppm):
    """floor(n * ppm / 10**6) without overflow (n >= 0, 0 <= ppm <= MAX_FEE_PPM).

    The product fits for notionals up to ~9.2e13 atoms (a market quoted in 6-decimal atoms,
    up to 92 million units a trade), where the division by the constant is a multiply and a
    shift; larger notionals (18-decimal quotes) split n at 10**6 first. Both give the same
    floor: n = a * 10**6 + b, so n * ppm // 10**6 = a * ppm + b * ppm // 10**6."""
    n = nonneg(n)
    ppm = nonneg(ppm)
    if n <= _FEE_ONE_DIVISION:
        return n * ppm // PPM
    return (n // PPM) * ppm + (n % PPM) * ppm // PPM


@kernel(inline=True)
def exact_div(x, d):
    """``x // d`` when ``d`` divides ``x``, else -1 (x >= 0, d >= 1: a price or quantity in atoms
    and the market's tick or lot, both validated before the call).

    One division per field: ``x % d == x - (x // d) * d``, and numba's ``//`` and ``%`` are two
    divisions (their sign fix-ups keep LLVM from merging them); with both operands known
    non-negative the division is unsigned, without a fix-up. Inlined (a frame of its own would
    return through memory)."""
    x = nonneg(x)
    d = nonneg(d)
    q = x // d
    return q if x - q * d == 0 else -1


def divisor_constants(d: int) -> tuple[int, int, int]:
    """(inverse, rotation, largest quotient) of divisor ``d >= 1``: the three int64 words a
    market row keeps per divisor (`M_TICK_DIV`, `M_LOT_DIV`) for `exact_div_by`.

    ``d = odd * 2**k``; the inverse is odd's inverse modulo 2**64. For any ``0 <= x < 2**63``,
    rotating ``x * inverse`` (mod 2**64) right by ``k`` gives ``x // d`` when ``d`` divides
    ``x`` and a number above ``(2**64 - 1) // d`` when it does not (Granlund and Montgomery's
    exact division; Hacker's Delight 10-17)."""
    assert d >= 1
    k = (d & -d).bit_length() - 1
    inverse = pow(d >> k, -1, 1 << 64)
    return _int64_bits(inverse), k, _int64_bits(((1 << 64) - 1) // d)


def _int64_bits(u: int) -> int:
    """The int64 with the bits of the unsigned 64-bit ``u`` (what an int64 table stores)."""
    return u - (1 << 64) if u >= 1 << 63 else u


@kernel(inline=True)
def exact_div_by(x, mkt, m, col):
    """``x // d`` when ``d`` divides ``x``, else -1 (``0 <= x < 2**63``), where
    ``mkt[m, col:col + 3]`` holds `divisor_constants(d)`: a multiply and a rotate where
    `exact_div` runs a hardware divide (~26 cycles; place and amend divide a price by the tick
    and a quantity by the lot on every order)."""
    y = np.uint64(x) * np.uint64(mkt[m, col])
    k = np.uint64(mkt[m, col + 1])
    y = (y >> k) | (y << ((np.uint64(64) - k) & np.uint64(63)))
    return np.int64(y) if y <= np.uint64(mkt[m, col + 2]) else -1


_SMALL = (1 << 31) - 1  # (2**31 - 1)**2 < MAX: two factors this small cannot overflow


@kernel(inline=True)
def notional_fits(p, q, qtl):
    """True iff p * q * qtl <= MAX (p, q >= 1, qtl >= 1): the contract's NOTIONAL_OVERFLOW
    test ``p > MAX // qtl or q > MAX // (p * qtl)``, skipping both divisions when the factors
    are small enough that the product cannot exceed MAX."""
    if p <= _SMALL and qtl <= _SMALL:
        per_lot = p * qtl  # < 2**62
        if per_lot <= _SMALL and q <= _SMALL:
            return True
        return q <= MAX // per_lot
    if p > MAX // qtl:
        return False
    return q <= MAX // (p * qtl)


@kernel
def required_buy(p, q, qtl, worst_ppm):
    """Hold of a buy limit: notional + fee at the worst rate of the market."""
    n = p * q * qtl
    return n + fee(n, worst_ppm)


@kernel
def lots_for_budget(cost_per_lot, taker_ppm, budget, max_lots):
    """Largest k <= max_lots with k*c + fee(k*c, taker) <= budget (c = price * qtl)."""
    hi = budget // cost_per_lot
    if hi > max_lots:
        hi = max_lots
    if hi <= 0:
        return 0
    n = hi * cost_per_lot  # <= budget: no overflow
    if n + fee(n, taker_ppm) <= budget:
        return hi
    # cost(lo) <= budget < cost(hi); cost is non-decreasing in k.
    lo = 0
    while hi - lo > 1:
        mid = lo + ((hi - lo) >> 1)
        n = mid * cost_per_lot
        if n + fee(n, taker_ppm) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


@kernel
def bps_of(x, bps):
    """floor(x * bps / 10**4) without overflow (x >= 0, 0 <= bps <= 10**4)."""
    return (x // 10_000) * bps + (x % 10_000) * bps // 10_000
