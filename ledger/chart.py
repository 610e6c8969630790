"""Chart of accounts: which ledger accounts exist, what they mean, and which may go negative.

A ledger account is the triple ``(owner, asset, bucket)``:

- ``owner`` is an engine account id; ``SYSTEM_ACCOUNT`` (0) is the exchange itself.
- ``asset`` is the engine asset id; balances are integers in the asset's smallest unit.
- ``bucket`` says where the units sit (`LedgerBucket`).

**Sign convention** (the engine's, kept so the ledger can be compared with it byte for byte):
a posting of ``n`` atoms *debits* one account (its balance drops by ``n``) and *credits* another
(its balance rises by ``n``). Every account starts at zero, so per asset the sum of all balances
is zero at all times (the trial balance). User buckets and fee revenue therefore carry positive
balances: what the exchange owes its users, and what it has earned. The custody account is the
counter-side of every deposit and settled withdrawal, so its balance is
``-(deposits - settled withdrawals)``: the on-chain holdings that back the liabilities, shown
negative. Read ``-custody`` as "coins the exchange should hold on chain"; custody reconciliation
compares that figure with the chain.

Floors: every account except custody (the world side) is floored at zero; a negative balance
anywhere else is a bug in the engine or in the ledger, never a state to carry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from engine.schema import SYSTEM_ACCOUNT, Bucket, PostingReason


class LedgerBucket(enum.IntEnum):
    """The engine's buckets (same numbers) plus custody's transit accounts.

    ``DEPOSITS_PENDING`` and ``WITHDRAWALS_IN_FLIGHT`` are reserved for the custody issue: a
    deposit seen on chain but not yet final, and a settled withdrawal broadcast but not yet
    confirmed. The engine never posts to them today, so they are always zero; they are part
    of the chart now so that the PostgreSQL schema and the reports need no change later.
    """

    AVAILABLE = Bucket.AVAILABLE
    HELD_ORDERS = Bucket.HELD_ORDERS
    HELD_WITHDRAWALS = Bucket.HELD_WITHDRAWALS
    FEES = Bucket.FEES
    CUSTODY = Bucket.CUSTODY
    DEPOSITS_PENDING = 5
    WITHDRAWALS_IN_FLIGHT = 6


class AccountClass(enum.Enum):
    """Accounting nature of a bucket, for statements and auditors."""

    LIABILITY = "liability"
    """Owed to a user: available or held funds."""
    REVENUE = "revenue"
    """Earned by the exchange: fees."""
    CUSTODY = "custody"
    """The on-chain side (an asset, shown negative in this sign convention)."""
    TRANSIT = "transit"
    """Custody's in-between states (pending deposits, withdrawals in flight)."""


USER_BUCKETS: Final = (
    LedgerBucket.AVAILABLE,
    LedgerBucket.HELD_ORDERS,
    LedgerBucket.HELD_WITHDRAWALS,
)
SYSTEM_BUCKETS: Final = (
    LedgerBucket.FEES,
    LedgerBucket.CUSTODY,
    LedgerBucket.DEPOSITS_PENDING,
    LedgerBucket.WITHDRAWALS_IN_FLIGHT,
)

BUCKET_CLASS: Final[dict[LedgerBucket, AccountClass]] = {
    LedgerBucket.AVAILABLE: AccountClass.LIABILITY,
    LedgerBucket.HELD_ORDERS: AccountClass.LIABILITY,
    LedgerBucket.HELD_WITHDRAWALS: AccountClass.LIABILITY,
    LedgerBucket.FEES: AccountClass.REVENUE,
    LedgerBucket.CUSTODY: AccountClass.CUSTODY,
    LedgerBucket.DEPOSITS_PENDING: AccountClass.TRANSIT,
    LedgerBucket.WITHDRAWALS_IN_FLIGHT: AccountClass.TRANSIT,
}

MAY_GO_NEGATIVE: Final = frozenset({LedgerBucket.CUSTODY})
"""The only bucket allowed below zero: the world side of the custody boundary."""


class ChartError(ValueError):
    """A posting names an account the chart does not have (wrong owner for the bucket, or an
    unknown bucket): the posting rules are broken, so nothing built on it can be trusted."""


@dataclass(frozen=True, slots=True, order=True)
class LedgerAccount:
    """One ledger account. Ordered (owner, asset, bucket) so reports list it stably."""

    owner: int
    asset: int
    bucket: LedgerBucket

    def __str__(self) -> str:
        return f"{self.owner}/{self.asset}/{self.bucket.name}"

    @property
    def account_class(self) -> AccountClass:
        return BUCKET_CLASS[self.bucket]

    @property
    def may_go_negative(self) -> bool:
        return self.bucket in MAY_GO_NEGATIVE


def account(owner: int, asset: int, bucket: int) -> LedgerAccount:
    """Validate and build a ledger account: user buckets belong to user accounts (id >= 1),
    system buckets to the system account only."""
    try:
        b = LedgerBucket(bucket)
    except ValueError:
        raise ChartError(f"unknown bucket {bucket} for account {owner}, asset {asset}") from None
    if b in SYSTEM_BUCKETS:
        if owner != SYSTEM_ACCOUNT:
            raise ChartError(f"bucket {b.name} belongs to the system account, not {owner}")
    elif owner <= SYSTEM_ACCOUNT:
        raise ChartError(f"bucket {b.name} belongs to a user account, not {owner}")
    if asset < 0:
        raise ChartError(f"negative asset id {asset}")
    return LedgerAccount(owner, asset, b)


def bucket_name(bucket: int) -> str:
    return LedgerBucket(bucket).name


# --------------------------------------------------------------------------------------------
# Posting rules (docs/engine-semantics.md, "Posting shapes"): for each reason, the buckets a
# posting may debit and credit and whether both sides must belong to the same owner. The ledger
# checks every posting against this table, so an engine that moves value along a path the
# contract does not list is caught here, independently of the engine's own asserts.


@dataclass(frozen=True, slots=True)
class PostingRule:
    debit_buckets: frozenset[LedgerBucket]
    credit_buckets: frozenset[LedgerBucket]
    same_owner: bool


def _rule(
    debit: tuple[LedgerBucket, ...], credit: tuple[LedgerBucket, ...], same_owner: bool = False
) -> PostingRule:
    return PostingRule(frozenset(debit), frozenset(credit), same_owner)


_A, _H, _W = LedgerBucket.AVAILABLE, LedgerBucket.HELD_ORDERS, LedgerBucket.HELD_WITHDRAWALS
POSTING_RULES: Final[dict[int, PostingRule]] = {
    PostingReason.DEPOSIT: _rule((LedgerBucket.CUSTODY,), (_A,)),
    PostingReason.ORDER_HOLD: _rule((_A,), (_H,), same_owner=True),
    PostingReason.ORDER_RELEASE: _rule((_H,), (_A,), same_owner=True),
    PostingReason.TRADE_QUOTE: _rule((_H,), (_A,)),
    PostingReason.TRADE_BASE: _rule((_H,), (_A,)),
    PostingReason.FEE: _rule((_H, _A), (LedgerBucket.FEES,)),
    PostingReason.WITHDRAW_HOLD: _rule((_A,), (_W,), same_owner=True),
    PostingReason.WITHDRAW_SETTLE: _rule((_W,), (LedgerBucket.CUSTODY,)),
    PostingReason.WITHDRAW_RELEASE: _rule((_W,), (_A,), same_owner=True),
}


def check_posting_rule(reason: int, debit: LedgerAccount, credit: LedgerAccount) -> None:
    """Raise `ChartError` naming the posting if it does not follow its reason's shape."""
    rule = POSTING_RULES.get(reason)
    if rule is None:
        raise ChartError(f"unknown posting reason {reason} ({debit} -> {credit})")
    name = PostingReason(reason).name
    if debit.bucket not in rule.debit_buckets or credit.bucket not in rule.credit_buckets:
        raise ChartError(f"{name} may not move {debit} -> {credit}")
    if rule.same_owner and debit.owner != credit.owner:
        raise ChartError(f"{name} must stay within one owner: {debit} -> {credit}")
