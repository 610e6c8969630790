"""The staff audit log, read from the journal: every journaled command that names a staff
member (SetAccountFrozen, SetAccountTier, SetMarketState, WithdrawalDecision; CreateMarket,
CreateAsset and fiat Deposits when staff made them), in journal order.

Nothing here is kept apart from the journal, so the log says exactly what the book of record
says and replay reproduces it. A query scans forward from ``from_seq`` and stops after
``limit`` entries or `MAX_SCANNED` records, answering the sequence to continue from.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    WithdrawalDecision,
    decode_command,
)

MAX_SCANNED: Final = 2_000_000
"""Records one query reads at most (a few seconds of a worker thread); the answer's
``next_seq`` continues from there."""
_NAMES: Final = (
    "SetAccountFrozen",
    "SetAccountTier",
    "SetMarketState",
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
