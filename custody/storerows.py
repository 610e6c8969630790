"""The typed rows the custody store returns, and their reading from SQLite rows."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DepositRow:
    key: str
    chain: str
    height: int
    block_hash: str
    account_id: int
    asset_id: int
    chain_amount: int
    atoms: int
    dust: int
    status: str
    seen_ns: int = 0
    """Wall-clock time the scanner first saw it (0 in stores older than the column)."""
    credited_ns: int = 0
    """Wall-clock time it was credited, 0 until then."""
    detail: str = ""
    """Why it is in its status (over a tier's deposit limit, refused by the engine, dust)."""


@dataclass(frozen=True, slots=True)
class WithdrawalRow:
    withdrawal_id: int
    account_id: int
    asset_id: int
    atoms: int
    address: str
    chain: str
    status: str
    created_ns: int
    updated_ns: int
    detail: str
    txid: str
    mined_height: int
    fee_chain: int
    review: str = ""
    """Why it waits for four eyes (comma-separated reasons: ``threshold``, ``new_address``,
    ``aml:<rule>``); empty when it needed no approval."""


@dataclass(frozen=True, slots=True)
class Attempt:
    withdrawal_id: int
    attempt: int
    txid: str
    raw: str
    nonce: int
    max_fee: int
    tip: int
    fee_chain: int
    created_ns: int


def deposit_row(row: sqlite3.Row) -> DepositRow:
    return DepositRow(
        row["key"],
        row["chain"],
        row["height"],
        row["block_hash"],
        row["account_id"],
        row["asset_id"],
        int(row["chain_amount"]),
        row["atoms"],
        int(row["dust"]),
        row["status"],
        row["seen_ns"],
        row["credited_ns"],
        row["detail"],
    )


def withdrawal_row(row: sqlite3.Row) -> WithdrawalRow:
    return WithdrawalRow(
        row["withdrawal_id"],
        row["account_id"],
        row["asset_id"],
        row["atoms"],
        row["address"],
        row["chain"],
        row["status"],
        row["created_ns"],
        row["updated_ns"],
        row["detail"],
        row["txid"],
        row["mined_height"],
        int(row["fee_chain"]),
        row["review"],
    )
