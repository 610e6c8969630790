"""Settle fiat deposit approvals a crash interrupted, from the journal, at start.

Approving a bank transfer (`backoffice.fiat.FiatDeposits.approve`) claims the row
(``pending`` -> ``approving``), journals the ``Deposit`` keyed ``fiat:<bank reference>``, then
marks the row ``approved`` with the Deposit's sequence. A crash between the journal write and
the mark leaves the row ``approving`` for good: nobody may approve it again (the claim refuses
anything but ``pending``) and the identity store does not say whether the money was credited.
The journal does: at start, before the first request, each ``approving`` row is

- ``approved`` with the sequence of its journaled Deposit when the engine has credited the key
  (sequence 0 if the record is no longer in the local journal), so it is credited exactly once;
- ``pending`` again when the engine has not (the crash came before the journal write), for a
  second staff member to approve as if nothing happened.

Single-process mode only: a cluster gateway has no local journal and its replica may not be
caught up at start (as for custody's recovery); its rows wait for a restart in single mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import msgspec
import structlog

from backoffice.fiat import KEY_PREFIX, FiatDeposits
from engine.schema import Deposit, decode_command

if TYPE_CHECKING:
    from backoffice.db import Db
    from gateway.app import Gateway

log = structlog.get_logger(__name__)

_DEPOSIT_TAG: Final = msgspec.msgpack.encode("Deposit")


def deposit_seqs(records: Iterable[tuple[int, int, bytes]], keys: set[str]) -> dict[str, int]:
    """deposit key -> sequence of the first journaled Deposit with that key, for ``keys``
    (a cheap look at each record's tag before decoding, as the audit log does)."""
    found: dict[str, int] = {}
    for seq, _, payload in records:
        if not payload[1:24].startswith(_DEPOSIT_TAG):
            continue
        command = decode_command(payload)
        if isinstance(command, Deposit) and command.deposit_key in keys:
            found.setdefault(command.deposit_key, seq)
            if len(found) == len(keys):
                break
    return found


async def recover_fiat_approvals(gw: Gateway, db: Db) -> dict[str, str]:
    """Settle every ``approving`` row; returns deposit_id -> the status it ends in."""
    node = gw.node
    if node is None:
        return {}
    fiat = FiatDeposits(db)
    rows = await fiat.approving()
    if not rows:
        return {}
    keys = {KEY_PREFIX + r["bank_reference"] for r in rows}
    credited: set[str] = await gw.bridge.call(
        lambda n: {k for k in keys if n.engine.deposit_credited(k)}
    )
    seqs: dict[str, int] = {}
    if credited:
        journal = node.journal
        records = journal.read_from(journal.first_sequence, journal.last_sequence)
        seqs = await asyncio.to_thread(deposit_seqs, records, credited)
    out = {}
    for row in rows:
        key = KEY_PREFIX + row["bank_reference"]
        if key in credited:
            await fiat.mark_approved(row["deposit_id"], seqs.get(key, 0))
            out[row["deposit_id"]] = "approved"
        else:
            await fiat.reopen(row["deposit_id"])
            out[row["deposit_id"]] = "pending"
        log.warning(
            "fiat_approval_recovered",
            deposit_id=row["deposit_id"],
            status=out[row["deposit_id"]],
            seq=seqs.get(key, 0),
        )
    return out
