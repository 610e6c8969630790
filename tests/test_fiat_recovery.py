"""A fiat deposit approval interrupted by a crash, on a real gateway (SQLite identity store, then
PostgreSQL), settled from the journal at the next start (`backoffice.fiatrecovery`).

The on-disk state a crash leaves is built exactly: a transfer recorded by one finance staff
member, claimed by another (``approving``), and its Deposit journaled (a crash after the
journal write) or not (a crash before it). After a restart the first is ``approved`` with the
sequence of its journaled Deposit and credited once; the second is ``pending`` again and a
second approval credits it then. Nothing is credited twice; a replay gives the same state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backoffice.fiat import FiatDeposits
from backoffice.roles import Role
from backoffice.routes import BACKOFFICE_KEY
from engine.schema import Deposit
from tests.backoffice_support import BACKENDS, identity_dsn, start_server
from tests.gateway_support import ServerThread, journal_replay
from tests.test_backoffice_ops import login, make_staff, ops


def _usd(srv: ServerThread, account_id: int) -> int:
    return srv.call(srv.gw.bridge.call(lambda n: int(n.engine._a.bal[account_id, usd_id(srv), 0])))


def usd_id(srv: ServerThread) -> int:
    return next(a.asset_id for a in srv.gw.store.assets.values() if a.symbol == "USD")


@pytest.mark.parametrize("backend", BACKENDS)
def test_crash_between_journal_and_mark_is_settled_at_start(backend: str, tmp_path: Path) -> None:
    with identity_dsn(backend) as dsn:
        srv = start_server(tmp_path, dsn)
        try:
            admin = login(srv, "a@x.example.com", make_staff(srv, "a@x.example.com", Role.ADMIN))
            f1 = login(srv, "f1@x.example.com", make_staff(srv, "f1@x.example.com", Role.FINANCE))
            staff_f1 = ops(srv, "GET", "/me", f1)[1]["staff_id"]
            assert ops(srv, "POST", "/assets", admin, {"symbol": "USD", "decimals": 2})[0] == 200
            account_id = srv.gw.keys.get(srv.new_account().api_key).account_id  # type: ignore[union-attr]
            rows = {}
            for ref in ("BANK-AFTER-0001", "BANK-BEFORE-0002"):
                body = {"account_id": account_id, "asset": "USD", "amount": "100.00",
                        "bank_reference": ref}  # fmt: skip
                status, rec = ops(srv, "POST", "/fiat/deposits", f1, body)
                assert status == 200, rec
                rows[ref] = rec["deposit_id"]
            db = srv.running.runner.app[BACKOFFICE_KEY].store.db
            claim = (
                "UPDATE bo_fiat_deposits SET status = 'approving', decided_by = 'staff-b' "
                "WHERE deposit_id = $1"
            )
            for deposit_id in rows.values():  # both claimed by a second staff member ...
                srv.call(db.execute(claim, deposit_id))
            deposit = Deposit(  # ... and the first one's Deposit journaled: then the crash
                account_id=account_id,
                asset_id=usd_id(srv),
                amount_atoms=10_000,
                deposit_key="fiat:BANK-AFTER-0001",
                recorded_by=staff_f1,
                approved_by="staff-b",
            )
            journaled_seq, _, _ = srv.call(srv.gw.trading.execute(account_id, deposit))
            assert _usd(srv, account_id) == 10_000
        finally:
            srv.stop()

        srv = start_server(tmp_path, dsn)
        try:
            fiat = FiatDeposits(srv.running.runner.app[BACKOFFICE_KEY].store.db)
            after = srv.call(fiat.get(rows["BANK-AFTER-0001"]))
            assert (after["status"], after["seq"]) == ("approved", journaled_seq)
            before = srv.call(fiat.get(rows["BANK-BEFORE-0002"]))
            assert (before["status"], before["decided_by"]) == ("pending", "")
            assert _usd(srv, account_id) == 10_000  # credited once, not again
            f2 = login(srv, "f2@x.example.com", make_staff(srv, "f2@x.example.com", Role.FINANCE))
            did = rows["BANK-BEFORE-0002"]
            status, approved = ops(srv, "POST", f"/fiat/deposits/{did}/approve", f2, {})
            assert status == 200 and approved["status"] == "approved", approved
            assert _usd(srv, account_id) == 20_000
            listed = ops(srv, "GET", "/fiat/deposits", f2, status="approved")[1]
            assert {r["deposit_id"] for r in listed} == set(rows.values())
            srv.wait_idle()
            _, replayed = journal_replay(srv.gw)
            assert replayed == srv.seq_and_hash()[1]
        finally:
            srv.stop()
