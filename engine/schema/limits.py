"""Bounds of every value the engine accepts, and the journal/snapshot format version."""

from __future__ import annotations

from typing import Final

FORMAT_VERSION: Final = 2
"""Bumped whenever an encoded command or event changes meaning; recorded in snapshots."""

MAX_AMOUNT_ATOMS: Final = (1 << 62) - 1
"""Upper bound for any amount, price or balance; keeps every sum of two inside int64."""

MAX_ACCOUNT_ID: Final = (1 << 31) - 1
MAX_CLIENT_ORDER_ID: Final = (1 << 63) - 1
"""Client order ids are non-negative int64 values; 0 means none."""
MAX_FEE_PPM: Final = 100_000
"""10 %: a bound that keeps amount + fee inside int64 and catches a fee typed in basis points."""
BPS: Final = 10_000
"""Basis points per whole: price bands, market protection and trailing deltas are in bps."""
MAX_BAND_BPS: Final = 10_000
"""Price band and market protection bound: 100 % (a band of 0 is off)."""
MAX_TRAILING_DELTA_BPS: Final = 9_999
SYSTEM_ACCOUNT: Final = 0
"""Account 0 is the exchange itself: it owns the fee and custody buckets."""
