"""The staff audit log, read from the journal: every journaled command that names a staff
member (SetAccountFrozen, SetAccountTier, SetMarketState, SetTierTradeLimit, WithdrawalDecision;
CreateMarket, CreateAsset and fiat Deposits when staff made them), in journal order.

In single-process mode the log is read from the journal itself, so it says exactly what the
book of record says. A cluster gateway has no local journal: every replica applies the whole
command stream, so it keeps the staff commands' records as it applies them (`staff_records`,
held by the store and carried in its read-model snapshots), byte for byte the records a journal
would hold; both modes answer through `page`, so the same history gives the same answer.

A query scans forward from ``from_seq`` and stops after ``limit`` entries or `MAX_SCANNED`
records, answering the sequence to continue from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from engine.schema import (
    CreateAsset,
    CreateMarket,
    Deposit,
    MarketState,
    SetAccountFrozen,
    SetAccountTier,
    SetMarketState,
    SetTierTradeLimit,
    WithdrawalDecision,
    decode_command,
    encode_command,
)

MAX_SCANNED: Final = 2_000_000
"""Records one query reads at most (a few seconds of a worker thread); the answer's
``next_seq`` continues from there."""
_NAMES: Final = (
    "SetAccountFrozen",
    "SetAccountTier",
    "SetMarketState",
    "SetTierTradeLimit",
    "WithdrawalDecision",
    "CreateMarket",
    "CreateAsset",
    "Deposit",
)
_TAGS: Final = tuple(msgspec.msgpack.encode(name) for name in _NAMES)


def _staff_command(payload: bytes) -> bool:
    """A cheap look at the tag (the array's first element) before decoding."""
    head = payload[1:24]
    return any(head.startswith(tag) for tag in _TAGS)


_ALWAYS_STAFF: Final = (
    SetAccountFrozen,
    SetAccountTier,
    SetMarketState,
    SetTierTradeLimit,
    WithdrawalDecision,
)
_STAFF_TYPES: Final = frozenset((*_ALWAYS_STAFF, CreateMarket, CreateAsset, Deposit))
"""Every command type `is_staff_action` may accept (built from the same tuple, so a new staff
command cannot be missing here): a set lookup turns the rest (orders, nearly all of the
stream) away before the isinstance tests."""


def is_staff_action(command: Any) -> bool:
    """Whether ``command`` is an entry of the audit log (the same test `read_staff_actions`
    applies after decoding)."""
    if isinstance(command, _ALWAYS_STAFF):
        return True
    if isinstance(command, CreateMarket | CreateAsset):
        return bool(command.staff_id)
    if isinstance(command, Deposit):
        return bool(command.approved_by)
    return False


def staff_records(
    first_seq: int, ts_ns: int, commands: Sequence[Any]
) -> list[tuple[int, int, bytes]]:
    """The audit log's records among one batch's commands (sequences from ``first_seq``),
    encoded as the journal encodes them. Runs on every stream message of every cluster
    gateway, hence the type check first (1.26 -> 0.05 us per order command,
    bench numbers in docs/scaling.md)."""
    staff = _STAFF_TYPES
    return [
        (first_seq + i, ts_ns, encode_command(c))
        for i, c in enumerate(commands)
        if type(c) in staff and is_staff_action(c)
    ]


def has_decision(
    records: Iterable[tuple[int, int, bytes]], withdrawal_id: int, staff_id: str
) -> bool:
    """Whether ``records`` hold a `WithdrawalDecision` by ``staff_id`` on ``withdrawal_id``:
    custody's read-back after a crash between journaling a decision and recording it
    (`custody.approvals`), so a restart neither loses the decision nor journals it twice."""
    for _seq, _ts, payload in records:
        if not _staff_command(payload):
            continue
        c = decode_command(payload)
        if (
            isinstance(c, WithdrawalDecision)
            and c.withdrawal_id == withdrawal_id
            and c.staff_id == staff_id
        ):
            return True
    return False


def page(
    records: Iterable[tuple[int, int, bytes]],
    last_seq: int,
    limit: int,
    account_id: int | None,
    staff_id: str | None,
    symbols: dict[int, str],
) -> dict[str, Any]:
    """One page of the audit log from ``records`` (the journal from the query's ``from_seq``,
    or the staff records from it): ``next_seq`` follows the page's last entry when the page is
    full, else the end of the history, whichever records were read."""
    entries, cont = read_staff_actions(records, limit, account_id, staff_id, symbols)
    next_seq = entries[-1]["seq"] + 1 if len(entries) >= limit else cont or last_seq + 1
    return {"entries": entries, "next_seq": next_seq}


def read_staff_actions(
    records: Iterable[tuple[int, int, bytes]],
    limit: int,
    account_id: int | None,
    staff_id: str | None,
    symbols: dict[int, str],
) -> tuple[list[dict[str, Any]], int | None]:
    """(entries, sequence to continue from; None when the journal's end was reached)."""
    entries: list[dict[str, Any]] = []
    scanned = 0
    for seq, ts, payload in records:
        scanned += 1
        if scanned > MAX_SCANNED or len(entries) >= limit:
            return entries, seq
        if not _staff_command(payload):
            continue
        c = decode_command(payload)
        entry: dict[str, Any] = {"seq": seq, "time_ms": ts // 1_000_000}
        if isinstance(c, SetAccountFrozen):
            entry |= {
                "action": "freeze" if c.frozen else "unfreeze",
                "staff_id": c.staff_id,
                "account_id": c.account_id,
            }
        elif isinstance(c, SetAccountTier):
            entry |= {
                "action": "set_tier",
                "staff_id": c.staff_id,
                "account_id": c.account_id,
                "tier": c.tier,
            }
        elif isinstance(c, SetMarketState):
            known = c.state in MarketState._value2member_map_
            state = MarketState(c.state).name if known else c.state
            entry |= {
                "action": "set_market_state",
                "staff_id": c.staff_id,
                "symbol": symbols.get(c.market_id, str(c.market_id)),
                "state": state,
            }
        elif isinstance(c, SetTierTradeLimit):
            entry |= {
                "action": "set_tier_limit",
                "staff_id": c.staff_id,
                "tier": c.tier,
                "asset_id": c.asset_id,
                "max_order_notional_atoms": c.max_order_notional_atoms,
            }
        elif isinstance(c, CreateMarket):
            if not c.staff_id:  # made at the data directory's start, not by staff
                continue
            wire = c.symbol.replace("-", "").upper()
            entry |= {"action": "create_market", "staff_id": c.staff_id, "symbol": wire}
        elif isinstance(c, CreateAsset):
            if not c.staff_id:
                continue
            entry |= {"action": "create_asset", "staff_id": c.staff_id, "symbol": c.symbol}
        elif isinstance(c, Deposit):
            if not c.approved_by:  # custody's and operators' credits: not a staff action
                continue
            entry |= {
                "action": "fiat_deposit",
                "staff_id": c.approved_by,
                "recorded_by": c.recorded_by,
                "account_id": c.account_id,
                "note": c.deposit_key,
            }
        elif isinstance(c, WithdrawalDecision):
            entry |= {
                "action": "approve_withdrawal" if c.approve else "reject_withdrawal",
                "staff_id": c.staff_id,
                "account_id": c.account_id,
                "withdrawal_id": c.withdrawal_id,
            }
            if c.note:
                entry["note"] = c.note
        else:  # pragma: no cover - the tag check admits only these
            continue
        if account_id is not None and entry.get("account_id") != account_id:
            continue
        if staff_id is not None and entry["staff_id"] != staff_id:
            continue
        entries.append(entry)
    return entries, None
