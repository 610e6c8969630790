"""An account row's set-up: one definition for the two paths that create accounts.

`AdminCommands._create_account` (the object path, live and slow replay) and
`adminrows.run_admin_rows` (replay's parsed path, njit) must leave the same row and the same
account count (``ctr[C_ACCOUNTS]`` gates the account prefetches), or the image after a replay
would differ from the live one. Both call this function; callers have checked the id.
"""

from __future__ import annotations

from numba import njit

from engine.core.layout import A_DMS, A_EXISTS, A_FROZEN, A_HEAD, A_OPEN, A_TAIL, A_TIER, C_ACCOUNTS


@njit(cache=True, nogil=True)
def install_account(acct, ctr, account):
    """Mark ``account`` existing with no orders, no dead-man switch, unfrozen, tier 0."""
    assert acct[account, A_EXISTS] == 0
    ctr[C_ACCOUNTS] += 1
    acct[account, A_EXISTS] = 1
    acct[account, A_OPEN] = 0
    acct[account, A_HEAD] = -1
    acct[account, A_TAIL] = -1
    acct[account, A_DMS] = 0
    acct[account, A_FROZEN] = 0
    acct[account, A_TIER] = 0
