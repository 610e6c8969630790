"""The in-memory book of record: transactions built from the engine's postings, and balances
re-derived from those postings alone.

Why a second set of books: the engine keeps balances in its own arrays; the ledger recomputes
them from nothing but the posted movements, with its own rules (chart of accounts, posting
shapes, floors). If the two ever disagree, one of them is wrong, and the tests say which command
did it.

**Transaction identity.** A transaction is the postings that share the engine's ``txn_id``. The
engine numbers transactions 1, 2, 3, ... engine-wide and only when a posting is emitted, so the
id is stable under replay (it is a pure function of the journal, and snapshots carry the
counter) and the ledger can demand contiguity: a missing or repeated id is a hard error. Each
transaction also records its cause: the journal sequence of the command and the index, within
that command's events, of its first posting (``event_index``), so ``(seq, event_index)`` points
at the exact event. A posting's id is ``(txn_id, index within the transaction)``.

**Idempotency.** The book remembers the last journal sequence it applied; events of a sequence
at or below it are ignored, so re-applying an already applied stretch changes nothing.

**Immutability.** Transactions are never edited or removed; a correction is a new transaction.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.schema import (
    MAX_AMOUNT_ATOMS,
    SYSTEM_ACCOUNT,
    AssetCreated,
    Event,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderTriggered,
    Posting,
    PostingReason,
    SelfTradePrevented,
    StateImage,
    Trade,
)
from ledger.chart import LedgerAccount, LedgerBucket, account, check_posting_rule
from ledger.orders import OrderTracker


class LedgerError(AssertionError):
    """The posted movements break a ledger rule; the message names the account and cause."""


class FloorViolation(LedgerError):
    """An account that is floored at zero went negative."""

    def __init__(self, acct: LedgerAccount, balance: int, txn_id: int, seq: int) -> None:
        super().__init__(
            f"account {acct} would be {balance} after transaction {txn_id} (seq {seq}): "
            f"{acct.bucket.name} is floored at zero"
        )
        self.account = acct
        self.balance = balance
        self.txn_id = txn_id
        self.seq = seq


class LedgerMismatch(AssertionError):
    """Balances re-derived from postings differ from the engine's state image."""


@dataclass(frozen=True, slots=True)
class LedgerPosting:
    txn_id: int
    index: int
    """Position within the transaction, from 0."""
    seq: int
    ts_ns: int
    event_index: int
    """Position of the Posting event among its command's events."""
    reason: int
    asset: int
    debit: LedgerAccount
    credit: LedgerAccount
    amount: int


@dataclass(frozen=True, slots=True)
class Transaction:
    txn_id: int
    seq: int
    ts_ns: int
    event_index: int
    postings: tuple[LedgerPosting, ...]

    @property
    def reason(self) -> int:
        """The reason of its first posting: names the transaction (a trade starts with
        TRADE_QUOTE, a placement with ORDER_HOLD, ...)."""
        return self.postings[0].reason


@dataclass(frozen=True, slots=True)
class AssetInfo:
    asset_id: int
    symbol: str
    decimals: int


TimeOf = Callable[[int], int]
"""seq -> journal timestamp (ns) of that command."""


class Book:
    """Transactions, postings and balances; fed with engine events in journal order."""

    def __init__(self, *, keep_closed_orders: bool = True) -> None:
        self.transactions: list[Transaction] = []
        self.postings: list[LedgerPosting] = []
        self._posting_seqs: list[int] = []
        self._posting_ts: list[int] = []
        self.balances: dict[LedgerAccount, int] = defaultdict(int)
        self.deposited: dict[int, int] = defaultdict(int)
        self.withdrawn: dict[int, int] = defaultdict(int)
        self.demo_deposited: dict[int, int] = defaultdict(int)
        """Per asset, the part of ``deposited`` that the demo faucet credited (no chain
        backs it; `note_demo_deposits` says which commands those were)."""
        self._demo_seqs: set[int] = set()
        self.assets: dict[int, AssetInfo] = {}
        self.orders = OrderTracker(keep_closed=keep_closed_orders)
        self.trades: list[Trade] = []
        self.trade_ts: list[int] = []
        self.last_seq = 0
        self.last_ts_ns = 0
        self.next_txn_id = 1

    # ---- feeding ---------------------------------------------------------------------------

    def apply_events(
        self, events: Iterable[Event], time_of: TimeOf | Mapping[int, int] | None = None
    ) -> None:
        """Apply events of one or more commands (in journal order). ``time_of`` gives each
        command's journal timestamp; without it times are 0 (tests that do not care)."""
        if time_of is None:
            lookup: TimeOf = lambda _seq: 0  # noqa: E731
        elif isinstance(time_of, Mapping):
            lookup = time_of.__getitem__
        else:
            lookup = time_of
        group: list[Event] = []
        for event in events:
            if group and event.seq != group[0].seq:
                self.apply_command(group[0].seq, lookup(group[0].seq), group)
                group = []
            group.append(event)
        if group:
            self.apply_command(group[0].seq, lookup(group[0].seq), group)

    def note_demo_deposits(self, seqs: Iterable[int]) -> None:
        """Mark the commands at ``seqs`` as demo-faucet deposits before their events are
        applied (`ledger.source.Chunk.demo_seqs`)."""
        self._demo_seqs.update(s for s in seqs if s > self.last_seq)

    def advance_to(self, seq: int, ts_ns: int) -> None:
        """Record that every command up to ``seq`` has been seen (commands without events
        leave no other trace)."""
        if seq > self.last_seq:
            self.last_seq = seq
            self.last_ts_ns = ts_ns

    def apply_command(self, seq: int, ts_ns: int, events: Sequence[Event]) -> bool:
        """Apply one command's events; False (and no change) if ``seq`` was applied already."""
        if seq <= self.last_seq:
            return False
        if ts_ns < self.last_ts_ns:
            raise LedgerError(f"seq {seq}: journal time {ts_ns} before {self.last_ts_ns}")
        pending: list[LedgerPosting] = []
        for index, event in enumerate(events):
            if event.seq != seq:
                raise LedgerError(f"event {event!r} in the events of seq {seq}")
            if isinstance(event, Posting):
                if pending and pending[0].txn_id != event.txn_id:
                    self._commit(pending)
                    pending = []
                pending.append(self._posting(event, len(pending), ts_ns, index))
                continue
            if pending:
                self._commit(pending)
                pending = []
            self._other(event, ts_ns)
        if pending:
            self._commit(pending)
        self.orders.end_command()
        self.orders.touched.clear()
        self.last_seq = seq
        self.last_ts_ns = ts_ns
        return True

    def _posting(self, ev: Posting, index: int, ts_ns: int, event_index: int) -> LedgerPosting:
        if not 0 < ev.amount_atoms <= MAX_AMOUNT_ATOMS:
            raise LedgerError(
                f"seq {ev.seq} txn {ev.txn_id}: amount {ev.amount_atoms} outside "
                f"1..{MAX_AMOUNT_ATOMS}"
            )
        debit = account(ev.debit_account_id, ev.asset_id, ev.debit_bucket)
        credit = account(ev.credit_account_id, ev.asset_id, ev.credit_bucket)
        if debit == credit:
            raise LedgerError(f"seq {ev.seq} txn {ev.txn_id}: posting from {debit} to itself")
        check_posting_rule(ev.reason, debit, credit)
        return LedgerPosting(
            ev.txn_id,
            index,
            ev.seq,
            ts_ns,
            event_index,
            ev.reason,
            ev.asset_id,
            debit,
            credit,
            ev.amount_atoms,
        )

    def _commit(self, postings: list[LedgerPosting]) -> None:
        first = postings[0]
        if first.txn_id != self.next_txn_id:
            raise LedgerError(
                f"seq {first.seq}: transaction {first.txn_id} where "
                f"{self.next_txn_id} was due (gap or repeat)"
            )
        balances = self.balances
        for p in postings:
            balances[p.debit] -= p.amount
            balances[p.credit] += p.amount
            if p.reason == PostingReason.DEPOSIT:
                self.deposited[p.asset] += p.amount
                if p.seq in self._demo_seqs:
                    self.demo_deposited[p.asset] += p.amount
            elif p.reason == PostingReason.WITHDRAW_SETTLE:
                self.withdrawn[p.asset] += p.amount
        # Floors are checked per transaction: a transaction is the unit that must leave the
        # books consistent (the engine may order postings inside it freely).
        for p in postings:
            for acct in (p.debit, p.credit):
                if balances[acct] < 0 and not acct.may_go_negative:
                    raise FloorViolation(acct, balances[acct], first.txn_id, first.seq)
        txn = Transaction(first.txn_id, first.seq, first.ts_ns, first.event_index, tuple(postings))
        self.transactions.append(txn)
        self.postings.extend(postings)
        self._posting_seqs.extend(p.seq for p in postings)
        self._posting_ts.extend(p.ts_ns for p in postings)
        self.next_txn_id += 1

    def _other(self, event: Event, ts_ns: int) -> None:
        kind = type(event)
        if kind is Trade:
            assert isinstance(event, Trade)
            self.orders.trade(event, ts_ns)
            self.trades.append(event)
            self.trade_ts.append(ts_ns)
        elif kind is OrderAccepted:
            assert isinstance(event, OrderAccepted)
            self.orders.accepted(event, ts_ns)
        elif kind is OrderAmended:
            assert isinstance(event, OrderAmended)
            self.orders.amended(event, ts_ns)
        elif kind is OrderCancelled or kind is OrderExpired:
            assert isinstance(event, OrderCancelled | OrderExpired)
            self.orders.ended(event, ts_ns)
        elif kind is OrderTriggered:
            assert isinstance(event, OrderTriggered)
            self.orders.triggered(event, ts_ns)
        elif kind is SelfTradePrevented:
            assert isinstance(event, SelfTradePrevented)
            self.orders.self_trade_prevented(event, ts_ns)
        elif kind is AssetCreated:
            assert isinstance(event, AssetCreated)
            self.assets[event.asset_id] = AssetInfo(event.asset_id, event.symbol, event.decimals)

    # ---- checks ----------------------------------------------------------------------------

    def trial_balance_sums(self) -> dict[int, int]:
        """Per asset, the sum of every account's balance: zero when the books balance."""
        sums: dict[int, int] = defaultdict(int)
        for acct, amount in self.balances.items():
            sums[acct.asset] += amount
        return dict(sums)

    def check(self) -> None:
        """Trial balance zero per asset, floors, and user + fee money = net deposits."""
        for asset, total in self.trial_balance_sums().items():
            if total != 0:
                raise LedgerError(f"asset {asset}: trial balance is {total}, not 0")
        outstanding: dict[int, int] = defaultdict(int)
        for acct, amount in self.balances.items():
            if amount < 0 and not acct.may_go_negative:
                raise FloorViolation(acct, amount, self.next_txn_id - 1, self.last_seq)
            if acct.bucket != LedgerBucket.CUSTODY:
                outstanding[acct.asset] += amount
        for asset in set(outstanding) | set(self.deposited):
            net = self.deposited[asset] - self.withdrawn[asset]
            if outstanding[asset] != net:
                raise LedgerError(
                    f"asset {asset}: {outstanding[asset]} owed and earned, "
                    f"but deposits - withdrawals = {net}"
                )

    def nonzero_balances(self) -> dict[LedgerAccount, int]:
        return {acct: amount for acct, amount in self.balances.items() if amount}

    def verify_against(self, image: StateImage) -> None:
        """Raise `LedgerMismatch` unless the balances equal the engine image's, bucket for
        bucket (zero balances are equal to absent ones)."""
        engine = image_balances(image)
        ours = self.nonzero_balances()
        if ours != engine:
            keys = sorted(set(ours) | set(engine))
            rows = [
                f"{k}: ledger {ours.get(k, 0)} engine {engine.get(k, 0)}"
                for k in keys
                if ours.get(k, 0) != engine.get(k, 0)
            ]
            raise LedgerMismatch(
                f"after seq {image.last_seq} ledger and engine disagree on "
                f"{len(rows)} account(s):\n" + "\n".join(rows[:20])
            )
        if image.next_txn_id != self.next_txn_id:
            raise LedgerMismatch(
                f"engine's next transaction id {image.next_txn_id}, ledger's {self.next_txn_id}"
            )

    # ---- point-in-time views ---------------------------------------------------------------

    def postings_through(self, seq: int) -> int:
        """Number of postings caused by commands up to ``seq``."""
        return bisect.bisect_right(self._posting_seqs, seq)

    def postings_before_time(self, ts_ns: int) -> int:
        return bisect.bisect_left(self._posting_ts, ts_ns)

    def postings_through_time(self, ts_ns: int) -> int:
        return bisect.bisect_right(self._posting_ts, ts_ns)

    def demo_deposited_through(self, seq: int) -> dict[int, int]:
        """Per asset, demo-faucet credits by commands up to ``seq``."""
        out: dict[int, int] = defaultdict(int)
        for p in self.postings[: self.postings_through(seq)]:
            if p.reason == PostingReason.DEPOSIT and p.seq in self._demo_seqs:
                out[p.asset] += p.amount
        return dict(out)

    def balances_as_of(self, seq: int) -> dict[LedgerAccount, int]:
        """Non-zero balances after command ``seq``, re-summed from the postings."""
        out: dict[LedgerAccount, int] = defaultdict(int)
        for p in self.postings[: self.postings_through(seq)]:
            out[p.debit] -= p.amount
            out[p.credit] += p.amount
        return {acct: amount for acct, amount in out.items() if amount}


def image_balances(image: StateImage) -> dict[LedgerAccount, int]:
    """The engine's non-zero balances, keyed like the ledger's."""
    out: dict[LedgerAccount, int] = {}
    for acc in image.accounts:
        for bal in acc.balances:
            for bucket, amount in (
                (LedgerBucket.AVAILABLE, bal.available_atoms),
                (LedgerBucket.HELD_ORDERS, bal.held_orders_atoms),
                (LedgerBucket.HELD_WITHDRAWALS, bal.held_withdrawals_atoms),
            ):
                if amount:
                    out[LedgerAccount(acc.account_id, bal.asset_id, bucket)] = amount
    for asset in image.assets:
        if asset.fees_atoms:
            out[LedgerAccount(SYSTEM_ACCOUNT, asset.asset_id, LedgerBucket.FEES)] = asset.fees_atoms
        if asset.custody_atoms:
            out[LedgerAccount(SYSTEM_ACCOUNT, asset.asset_id, LedgerBucket.CUSTODY)] = (
                asset.custody_atoms
            )
    return out
