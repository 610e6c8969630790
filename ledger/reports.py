"""Back-office reports, computed straight from a journal replay (the in-memory `Book`).

The same report types are produced from PostgreSQL (`ledger.pg.queries`); the tests hold the
two sources to equality, so an auditor may use whichever is at hand. All amounts are integer
atoms; decimal strings appear only when a report is rendered (`ledger.render`).

- `balances`: every non-zero ledger account after command ``as_of`` (default: the last).
- `trial_balance`: per account, total debits and credits and the balance after ``as_of``; per
  asset the balances sum to zero and the debits equal the credits.
- `statement`: one owner's postings in a window of sequences or of journal times (both ends
  inclusive), with the opening balance before it, a running balance per (asset, bucket), and
  the closing balance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.schema import EngineConfig
from engine.usererror import UserError
from ledger.book import Book, LedgerPosting
from ledger.source import default_snapshot_dir, journal_chunks, open_journal


class BeyondEnd(UserError, LookupError):
    """A report asks about sequences its source does not hold: the same error whether the
    source is the journal or the PostgreSQL projection (never a silently partial answer)."""

    def __init__(self, source: str, last_seq: int, asked_seq: int, *, hint: str) -> None:
        super().__init__(
            f"{source} holds the ledger up to seq {last_seq}, not {asked_seq}", hint=hint
        )
        self.last_seq = last_seq
        self.asked_seq = asked_seq


@dataclass(frozen=True, slots=True, order=True)
class BalanceRow:
    owner: int
    asset: int
    bucket: int
    amount: int


@dataclass(frozen=True, slots=True, order=True)
class TrialBalanceRow:
    asset: int
    owner: int
    bucket: int
    debits: int
    credits: int
    balance: int
    """credits - debits (the engine's sign convention, see `ledger.chart`)."""


@dataclass(frozen=True, slots=True)
class TrialBalance:
    as_of_seq: int
    rows: tuple[TrialBalanceRow, ...]
    demo_atoms: dict[int, int] = field(default_factory=dict)
    """asset -> demo-faucet credits (``serve --demo``) inside the CUSTODY balance: money no
    chain backs, shown apart so an auditor never mistakes it for custody."""

    def totals(self) -> dict[int, tuple[int, int, int]]:
        """asset -> (total debits, total credits, sum of balances)."""
        out: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for r in self.rows:
            t = out[r.asset]
            t[0] += r.debits
            t[1] += r.credits
            t[2] += r.balance
        return {asset: (t[0], t[1], t[2]) for asset, t in sorted(out.items())}

    @property
    def balanced(self) -> bool:
        return all(d == c and s == 0 for d, c, s in self.totals().values())


@dataclass(frozen=True, slots=True, order=True)
class StatementLine:
    seq: int
    ts_ns: int
    txn_id: int
    posting_index: int
    side: int
    """0 = debit (the owner's bucket lost ``-amount``), 1 = credit."""
    reason: int
    asset: int
    bucket: int
    amount: int
    """Signed: negative for a debit, positive for a credit."""
    counter_owner: int
    counter_bucket: int
    balance_after: int
    """Running balance of (owner, asset, bucket) after this line."""


@dataclass(frozen=True, slots=True)
class Window:
    """Both ends inclusive; ``by`` is "seq" or "ts" (journal time, ns)."""

    by: str = "seq"
    low: int = 0
    high: int = (1 << 63) - 1

    def __post_init__(self) -> None:
        if self.by not in ("seq", "ts"):
            raise ValueError(f"window by {self.by!r}: expected 'seq' or 'ts'")
        if self.high < self.low:
            raise ValueError(f"window {self.low}..{self.high} is reversed")


@dataclass(frozen=True, slots=True)
class Statement:
    owner: int
    window: Window
    opening: tuple[BalanceRow, ...]
    lines: tuple[StatementLine, ...]
    closing: tuple[BalanceRow, ...] = field(default=())


def _rows(balances: dict[tuple[int, int, int], int]) -> tuple[BalanceRow, ...]:
    return tuple(sorted(BalanceRow(o, a, b, v) for (o, a, b), v in balances.items() if v))


def build_statement(
    owner: int,
    window: Window,
    opening_postings: Iterable[LedgerPosting],
    window_postings: Iterable[LedgerPosting],
    asset: int | None = None,
) -> Statement:
    """Shared by both sources once they have the postings before and inside the window."""
    running: dict[tuple[int, int, int], int] = defaultdict(int)
    for p in opening_postings:
        if asset is not None and p.asset != asset:
            continue
        if p.debit.owner == owner:
            running[(owner, p.asset, int(p.debit.bucket))] -= p.amount
        if p.credit.owner == owner:
            running[(owner, p.asset, int(p.credit.bucket))] += p.amount
    opening = _rows(running)
    lines: list[StatementLine] = []
    for p in window_postings:
        if asset is not None and p.asset != asset:
            continue
        for side, mine, other, sign in ((0, p.debit, p.credit, -1), (1, p.credit, p.debit, 1)):
            if mine.owner != owner:
                continue
            key = (owner, p.asset, int(mine.bucket))
            running[key] += sign * p.amount
            lines.append(
                StatementLine(
                    p.seq,
                    p.ts_ns,
                    p.txn_id,
                    p.index,
                    side,
                    p.reason,
                    p.asset,
                    int(mine.bucket),
                    sign * p.amount,
                    other.owner,
                    int(other.bucket),
                    running[key],
                )
            )
    return Statement(owner, window, opening, tuple(lines), _rows(running))


def book_balances(book: Book, as_of: int | None = None) -> tuple[BalanceRow, ...]:
    seq = book.last_seq if as_of is None else as_of
    found = book.balances_as_of(seq)
    return tuple(sorted(BalanceRow(a.owner, a.asset, int(a.bucket), v) for a, v in found.items()))


def book_trial_balance(book: Book, as_of: int | None = None) -> TrialBalance:
    seq = book.last_seq if as_of is None else as_of
    debits: dict[tuple[int, int, int], int] = defaultdict(int)
    credits: dict[tuple[int, int, int], int] = defaultdict(int)
    for p in book.postings[: book.postings_through(seq)]:
        debits[(p.asset, p.debit.owner, int(p.debit.bucket))] += p.amount
        credits[(p.asset, p.credit.owner, int(p.credit.bucket))] += p.amount
    rows = tuple(
        sorted(
            TrialBalanceRow(
                a,
                o,
                b,
                debits.get((a, o, b), 0),
                credits.get((a, o, b), 0),
                credits.get((a, o, b), 0) - debits.get((a, o, b), 0),
            )
            for (a, o, b) in set(debits) | set(credits)
        )
    )
    return TrialBalance(min(seq, book.last_seq), rows, book.demo_deposited_through(seq))


def book_statement(book: Book, owner: int, window: Window, asset: int | None = None) -> Statement:
    if window.by == "seq":
        lo = book.postings_through(window.low - 1)
        hi = book.postings_through(window.high)
    else:
        lo = book.postings_before_time(window.low)
        hi = book.postings_through_time(window.high)
    return build_statement(owner, window, book.postings[:lo], book.postings[lo:hi], asset)


def replay_book(
    journal_dir: Path, *, to_seq: int | None = None, config: EngineConfig | None = None
) -> Book:
    """Rebuild the book of record from a journal (from genesis: the ledger needs every
    posting), checking it after every chunk."""
    book = Book()
    with open_journal(journal_dir) as journal:
        for chunk in journal_chunks(
            journal, to_seq=to_seq, config=config, snapshot_dir=default_snapshot_dir(journal_dir)
        ):
            book.note_demo_deposits(chunk.demo_seqs)
            book.apply_events(chunk.events, chunk.times)
            book.advance_to(chunk.last_seq, chunk.last_ts_ns)
            book.check()
    return book
