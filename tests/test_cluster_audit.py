"""The operator API's audit log in cluster mode: every gateway replica keeps the staff commands'
records as it applies the stream, so a staff action taken through one gateway shows in the audit
log of another, the same entries in the same order, and a replica started later from an Object
Store read-model snapshot (the snapshot holds the records up to its point, the stream's tail the
rest) answers the same; and the stream exported to a local journal, read as the single-process
handler reads it, gives the same page.

Against the machine's real NATS (JetStream on 127.0.0.1:4222), a unique stream per test; the
back office's identity store is SQLite in each gateway's data directory (each replica has its own
staff; the journaled commands carry the acting staff id).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pyotp

from backoffice.audit import page, staff_records
from backoffice.roles import Role
from backoffice.routes import BACKOFFICE_KEY
from engine.crosscheck import CHECKPOINT_EVERY
from engine.journal import SegmentJournal
from engine.schema import CreateAccount, CreateMarket, Deposit, SetAccountFrozen, SetAccountTier
from engine.streamjournal import export_stream
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway.admin import Admin
from gateway.app import Gateway
from tests.cluster_support import stream_on
from tests.test_backoffice_ops import FAST, PASSWORD
from tests.test_cluster_checks import _batches, _publish, _wait
from tests.test_cluster_snapshots import _gateway

_SECRETS: dict[int, tuple[str, str]] = {}
"""(email, TOTP seed) of the auditor made on each running replica (by its runner, which the
test keeps alive)."""
_TOKENS: dict[int, str] = {}


async def _audit(run: Any, **query: Any) -> dict[str, Any]:
    """GET /ops/v1/audit as an auditor made on this replica (its own identity store)."""
    key = id(run.runner)
    if key not in _SECRETS:
        bo = run.runner.app[BACKOFFICE_KEY]
        bo.staff.passwords = FAST
        email = f"auditor{len(_SECRETS)}@ops.example.com"
        _, secret, _ = await bo.staff.create(email, PASSWORD, Role.AUDITOR)
        _SECRETS[key] = (email, secret)
    email, secret = _SECRETS[key]
    async with aiohttp.ClientSession() as http:
        if key not in _TOKENS:
            totp = pyotp.TOTP(secret).now()
            login = {"email": email, "password": PASSWORD, "totp": totp}
            async with http.post(f"{run.http}/ops/v1/auth/login", json=login) as resp:
                assert resp.status == 200, await resp.text()
                _TOKENS[key] = (await resp.json())["access_token"]
        token = _TOKENS[key]
        headers = {"Authorization": f"Bearer {token}"}
        params = {k: str(v) for k, v in query.items()}
        async with http.get(f"{run.http}/ops/v1/audit", headers=headers, params=params) as resp:
            assert resp.status == 200, await resp.text()
            out: dict[str, Any] = await resp.json()
            return out


def _summary(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["action"], e["staff_id"], e.get("account_id"), e.get("symbol")) for e in entries]


async def _caught_up(gw: Gateway, other: Gateway) -> None:
    await _wait(lambda: gw.bridge.replica.stream_seq == other.bridge.replica.stream_seq)


def test_staff_actions_show_on_every_replica_and_after_restart(tmp_path: Path) -> None:
    head = CHECKPOINT_EVERY - 20  # the staff actions land before the first snapshot point

    async def body(spec: StreamSpec) -> None:
        writer = await StreamLog.connect(NatsOptions(), spec)
        await _publish(writer, _batches(head))
        a, a_run = await _gateway(tmp_path, "a", spec, snapshot_every=1)
        b, b_run = await _gateway(tmp_path, "b", spec, snapshot_every=0)
        assert (await _audit(b_run))["entries"] == []

        # staff act through gateway a
        admin = Admin(a)
        await admin.standing(SetAccountFrozen(account_id=1, frozen=True, staff_id="s-comp"))
        await admin.standing(SetAccountTier(account_id=2, tier=2, staff_id="s-kyc"))
        await admin.set_market_state("BTCUSDT", "HALTED", staff_id="s-admin")
        await admin.set_market_state("BTCUSDT", "OPEN", staff_id="s-admin")
        await admin.standing(SetAccountFrozen(account_id=1, frozen=False, staff_id="s-comp"))
        await _caught_up(b, a)
        want = [
            ("freeze", "s-comp", 1, None),
            ("set_tier", "s-kyc", 2, None),
            ("set_market_state", "s-admin", None, "BTCUSDT"),
            ("set_market_state", "s-admin", None, "BTCUSDT"),
            ("unfreeze", "s-comp", 1, None),
        ]
        on_b = await _audit(b_run)
        assert _summary(on_b["entries"]) == want
        assert on_b["next_seq"] == b.store.last_seq + 1
        assert await _audit(a_run) == on_b, "every replica answers the same"

        # filters and paging as in single-process mode: a full page continues after its last
        first = await _audit(b_run, account_id=1, limit=1)
        assert _summary(first["entries"]) == [want[0]]
        assert first["next_seq"] == first["entries"][0]["seq"] + 1
        rest = await _audit(b_run, account_id=1, from_seq=first["next_seq"])
        assert _summary(rest["entries"]) == [want[4]]
        by_admin = await _audit(b_run, staff_id="s-admin")
        assert _summary(by_admin["entries"]) == want[2:4]
        beyond = await _audit(b_run, from_seq=b.store.last_seq + 5)
        assert beyond == {"entries": [], "next_seq": b.store.last_seq + 5}

        # past a snapshot point (a stores the read model there), then one more action in the tail
        await _publish(writer, _batches(head + 30)[head:])
        await _wait(lambda: CHECKPOINT_EVERY in a.bridge.stored_readmodels)
        await admin.standing(SetAccountTier(account_id=1, tier=3, staff_id="s-kyc"))
        want.append(("set_tier", "s-kyc", 1, None))
        await _caught_up(b, a)
        on_b = await _audit(b_run)
        assert _summary(on_b["entries"]) == want

        # a replica started now loads the snapshot (records up to its point) and the tail
        c, c_run = await _gateway(tmp_path, "c", spec, snapshot_every=0)
        assert c.start_point[0] > 0, "started from the read-model snapshot"
        assert len(c.store.staff_actions) == len(want)
        assert (await _audit(c_run))["entries"] == on_b["entries"]

        # b restarted (same data directory) answers the same
        await b_run.runner.cleanup()
        b2, b2_run = await _gateway(tmp_path, "b", spec, snapshot_every=0)
        assert (await _audit(b2_run))["entries"] == on_b["entries"]

        # the kept records are the journal's staff records: the journal path's page agrees
        symbols = {m.market_id: m.wire for m in b2.store.markets.values()}
        kept = page(b2.store.staff_actions, b2.store.last_seq, 100, None, None, symbols)
        assert kept == on_b
        # the same history in single-process mode: the stream exported to a local journal,
        # read the way the single-process handler reads it, gives the same page
        exported = tmp_path / "exported"
        await export_stream(writer, exported)
        with SegmentJournal(exported) as journal:
            last = journal.last_sequence
            records = list(journal.read_from(journal.first_sequence, last))
        assert page(records, last, 100, None, None, symbols) == on_b
        assert page(records, last, 1, 1, None, symbols) == first
        for run in (a_run, c_run, b2_run):
            await run.runner.cleanup()
        await writer.close()

    with stream_on() as spec:
        asyncio.run(body(spec))


def test_staff_records_keep_only_audit_entries() -> None:
    commands = [
        CreateAccount(account_id=7),
        CreateMarket(
            market_id=9,
            symbol="x-y",
            base_asset_id=0,
            quote_asset_id=1,
            tick_size_atoms=1,
            lot_size_atoms=1,
            min_notional_atoms=0,
            maker_fee_ppm=0,
            taker_fee_ppm=0,
        ),
        Deposit(account_id=7, asset_id=0, amount_atoms=5, deposit_key="chain:1"),
        SetAccountFrozen(account_id=7, frozen=True, staff_id="s1"),
        Deposit(
            account_id=7,
            asset_id=0,
            amount_atoms=5,
            deposit_key="fiat:r1",
            recorded_by="s2",
            approved_by="s3",
        ),
    ]
    kept = staff_records(10, 99, commands)
    assert [seq for seq, _, _ in kept] == [13, 14]
    out = page(kept, 14, 100, None, None, {})
    assert [(e["action"], e["staff_id"]) for e in out["entries"]] == [
        ("freeze", "s1"),
        ("fiat_deposit", "s3"),
    ]


def test_staff_filter_knows_every_audited_command() -> None:
    """`staff_records`' fast type filter and the journal reader's tag list name the same
    commands: a staff command added to one and not the other would vanish from a cluster
    gateway's audit log while the single-process log still showed it."""
    from backoffice.audit import _NAMES, _STAFF_TYPES

    assert {t.__name__ for t in _STAFF_TYPES} == set(_NAMES)
