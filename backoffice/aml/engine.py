"""The AML rules engine: a pure fold over the engine's event stream.

Why events and not requests: the events are a function of the journal, so replaying the
journal gives the same hits and the same cases (`backoffice.aml.service` rebuilds the cases
that way at start, and a test compares). Time is journal time (the batch's timestamp), never a
clock. A withdrawal's destination travels in the journaled ``WithdrawRequest`` (and so in
``WithdrawalHeld``), so every cluster replica sees the same address; for commands journaled
before that field it is read from the custody store by withdrawal id (custody writes it
*before* the engine hold, and never changes it). The deny-list file is the other outside
input: the same journal, rules and deny-list give the same cases.

What it watches:

- a deposit: a ``Posting`` with reason ``DEPOSIT`` (credit account, asset, amount);
- a withdrawal: ``WithdrawalHeld`` (an accepted request; a refused one never reaches here);
  its ``WithdrawalSettled`` (sent, rejected or cancelled) drops its hold verdict: nothing asks
  for it after the decision, and ``holds`` would otherwise grow with every held withdrawal;
- trading: ``Trade`` (both accounts traded).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from backoffice.aml.rules import Rule, RuleSet
from engine.schema import (
    AssetCreated,
    Event,
    Posting,
    PostingReason,
    Trade,
    WithdrawalHeld,
    WithdrawalSettled,
)

NS: int = 1_000_000_000
AddressOf = Callable[[int], str | None]


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule matching one movement: becomes one case (``case_id`` is deterministic)."""

    case_id: str
    rule_id: str
    kind: str
    action: str
    account_id: int
    withdrawal_id: int
    """0 for a deposit."""
    asset_id: int
    amount_atoms: int
    seq: int
    ts_ns: int
    detail: str


@dataclass(slots=True)
class _Account:
    withdrawals: deque[tuple[int, int, int]] = field(default_factory=deque)
    """(ts_ns, asset_id, amount_atoms) of recent withdrawals, oldest first."""
    deposits: deque[tuple[int, int, int]] = field(default_factory=deque)
    addresses: set[str] = field(default_factory=set)
    last_deposit_ns: int = -1
    last_trade_ns: int = -1


class AmlEngine:
    def __init__(self, rules: RuleSet, address_of: AddressOf | None = None) -> None:
        self.rules = rules
        self.address_of = address_of
        self.assets: dict[str, tuple[int, int]] = {}
        """symbol -> (asset_id, decimals), from ``AssetCreated``."""
        self.accounts: dict[int, _Account] = {}
        self.holds: dict[int, list[str]] = {}
        """withdrawal id -> ids of the rules that hold it for review, while it is undecided
        (custody screens a withdrawal only between its hold and its settlement)."""
        self.keep_ns = max((r.window_s for r in rules.rules), default=0) * NS
        self.last_seq = 0

    # ---- the fold ----------------------------------------------------------------------------

    def feed(self, ts_ns: int, events: Iterable[Event]) -> list[Hit]:
        """Fold one batch's events (journal time ``ts_ns``); returns the hits, in order."""
        hits: list[Hit] = []
        for e in events:
            t = type(e)
            if t is Trade:
                assert isinstance(e, Trade)
                for account_id in (e.maker_account_id, e.taker_account_id):
                    self._account(account_id).last_trade_ns = ts_ns
            elif t is Posting:
                assert isinstance(e, Posting)
                if e.reason == PostingReason.DEPOSIT:
                    hits += self._deposit(ts_ns, e)
            elif t is WithdrawalHeld:
                assert isinstance(e, WithdrawalHeld)
                hits += self._withdrawal(ts_ns, e)
            elif t is WithdrawalSettled:
                assert isinstance(e, WithdrawalSettled)
                self.holds.pop(e.withdrawal_id, None)  # decided: custody never asks again
            elif t is AssetCreated:
                assert isinstance(e, AssetCreated)
                self.assets[e.symbol.upper()] = (e.asset_id, e.decimals)
            self.last_seq = max(self.last_seq, e.seq)
        return hits

    def screen(self, withdrawal_id: int) -> list[str]:
        """The rules holding this withdrawal for review (custody's ``screen`` hook)."""
        return list(self.holds.get(withdrawal_id, ()))

    # ---- deposits and withdrawals ------------------------------------------------------------

    def _deposit(self, ts_ns: int, e: Posting) -> list[Hit]:
        acct = self._account(e.credit_account_id)
        self._trim(acct.deposits, ts_ns)
        acct.deposits.append((ts_ns, e.asset_id, e.amount_atoms))
        acct.last_deposit_ns = ts_ns
        hits = []
        for rule in self.rules.rules:
            why = ""
            if rule.kind == "large_deposit" and self._is_asset(rule, e.asset_id):
                if e.amount_atoms >= self._atoms(rule, rule.amount):
                    why = f"deposit of {e.amount_atoms} atoms >= {rule.amount} {rule.asset}"
            elif rule.kind == "structuring" and rule.flow == "deposit":
                why = self._structuring(rule, acct.deposits, e.asset_id, ts_ns)
            if why:
                hit = self._hit(
                    rule, e.credit_account_id, 0, e.asset_id, e.amount_atoms, e.seq, ts_ns, why
                )
                hits.append(hit)
        return hits

    def _withdrawal(self, ts_ns: int, e: WithdrawalHeld) -> list[Hit]:
        acct = self._account(e.account_id)
        self._trim(acct.withdrawals, ts_ns)
        acct.withdrawals.append((ts_ns, e.asset_id, e.amount_atoms))
        address = e.address.lower()
        if not address and self.address_of is not None:  # journaled before the field
            address = (self.address_of(e.withdrawal_id) or "").lower()
        hits = []
        for rule in self.rules.rules:
            why = self._withdrawal_rule(rule, acct, e, ts_ns, address)
            if why:
                hit = self._hit(
                    rule,
                    e.account_id,
                    e.withdrawal_id,
                    e.asset_id,
                    e.amount_atoms,
                    e.seq,
                    ts_ns,
                    why,
                )
                hits.append(hit)
                if rule.action in ("hold", "freeze"):  # a frozen account's withdrawal waits too
                    self.holds.setdefault(e.withdrawal_id, []).append(rule.id)
        if address:
            acct.addresses.add(address)
        return hits

    def _withdrawal_rule(
        self, rule: Rule, acct: _Account, e: WithdrawalHeld, ts_ns: int, address: str
    ) -> str:
        kind = rule.kind
        if kind == "large_withdrawal" and self._is_asset(rule, e.asset_id):
            if e.amount_atoms >= self._atoms(rule, rule.amount):
                return f"withdrawal of {e.amount_atoms} atoms >= {rule.amount} {rule.asset}"
        elif kind == "velocity":
            return self._velocity(rule, acct, e.asset_id, ts_ns)
        elif kind == "structuring" and rule.flow == "withdrawal":
            return self._structuring(rule, acct.withdrawals, e.asset_id, ts_ns)
        elif kind == "deposit_withdraw_no_trade":
            dep = acct.last_deposit_ns
            if dep >= 0 and ts_ns - dep <= rule.window_s * NS and acct.last_trade_ns < dep:
                return f"withdrawal {(ts_ns - dep) // NS} s after a deposit, no trade since"
        elif kind == "deny_list" and address and address in self.rules.deny_list:
            return f"destination {address} is on the deny-list"
        elif kind == "new_address" and address and address not in acct.addresses:
            return f"first withdrawal of this account to {address}"
        return ""

    def _velocity(self, rule: Rule, acct: _Account, asset_id: int, ts_ns: int) -> str:
        since = ts_ns - rule.window_s * NS
        recent = [
            (a, amt) for t, a, amt in acct.withdrawals if t > since and self._is_asset(rule, a)
        ]
        if rule.count and len(recent) >= rule.count:
            return f"{len(recent)} withdrawals within {rule.window_s} s (limit {rule.count})"
        if rule.amount > 0 and self._is_asset(rule, asset_id):
            total = sum(amt for _, amt in recent)
            if total >= self._atoms(rule, rule.amount):
                return f"{total} atoms withdrawn within {rule.window_s} s (>= {rule.amount})"
        return ""

    def _structuring(
        self, rule: Rule, movements: deque[tuple[int, int, int]], asset_id: int, ts_ns: int
    ) -> str:
        if not self._is_asset(rule, asset_id):
            return ""
        threshold = self._atoms(rule, rule.amount)
        floor = threshold - threshold * rule.margin_pct // 100
        since = ts_ns - rule.window_s * NS
        just_under = [
            amt
            for t, a, amt in movements
            if t > since and a == asset_id and floor <= amt < threshold
        ]
        if movements and floor <= movements[-1][2] < threshold and len(just_under) >= rule.count:
            return (
                f"{len(just_under)} {rule.flow}s just under {rule.amount} {rule.asset} "
                f"within {rule.window_s} s"
            )
        return ""

    # ---- plumbing ----------------------------------------------------------------------------

    def _account(self, account_id: int) -> _Account:
        acct = self.accounts.get(account_id)
        if acct is None:
            acct = self.accounts[account_id] = _Account()
        return acct

    def _trim(self, movements: deque[tuple[int, int, int]], ts_ns: int) -> None:
        while movements and movements[0][0] < ts_ns - self.keep_ns:
            movements.popleft()

    def _is_asset(self, rule: Rule, asset_id: int) -> bool:
        if not rule.asset:
            return True
        known = self.assets.get(rule.asset)
        return known is not None and known[0] == asset_id

    def _atoms(self, rule: Rule, amount: Decimal) -> int:
        """``amount`` of the rule's asset in atoms (rounded up: a threshold is never lowered)."""
        _, decimals = self.assets[rule.asset]
        return int((amount * (Decimal(10) ** decimals)).to_integral_value(rounding="ROUND_CEILING"))

    @staticmethod
    def _hit(
        rule: Rule,
        account_id: int,
        withdrawal_id: int,
        asset_id: int,
        amount_atoms: int,
        seq: int,
        ts_ns: int,
        detail: str,
    ) -> Hit:
        return Hit(
            f"{rule.id}@{seq}",
            rule.id,
            rule.kind,
            rule.action,
            account_id,
            withdrawal_id,
            asset_id,
            amount_atoms,
            seq,
            ts_ns,
            detail,
        )
