"""AML in cluster mode: every gateway replica folds the stream through the rules, one case per
hit in the shared PostgreSQL store, one freeze in the log, the state from the Object Store
snapshot at start.

Against the machine's real NATS (JetStream on 127.0.0.1:4222, a unique stream per test) and
real PostgreSQL (a database made for the test, the gateways' shared ``--backoffice-dsn``).
Commands reach the stream through a plain publisher (as any gateway's would), so each hit is
seen by every replica at the same sequence.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from backoffice.aml.rules import Rule, RuleSet
from backoffice.aml.service import freeze_origin
from engine.crosscheck import CHECKPOINT_EVERY
from engine.replica import BATCH_FORMAT, CommandBatch, encode_batch, msg_id
from engine.schema import Command, CreateAccount, Deposit, SetAccountFrozen, WithdrawRequest
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from gateway.app import Gateway
from gateway.cluster import ClusterConfig
from gateway.config import GatewayConfig
from gateway.server import start
from tests.backoffice_support import pg_database
from tests.cluster_support import stream_on
from tests.test_cluster_checks import _batches, _publish, _wait

ORIGIN = 0xA1
USDT_ATOMS = 10**6
BTC_ATOMS = 10**8
RULES = RuleSet(
    (
        Rule("big-btc", "large_deposit", "freeze", asset="BTC", amount=Decimal(5000)),
        Rule(
            "smurf",
            "structuring",
            "case",
            asset="USDT",
            amount=Decimal(1000),
            count=2,
            window_s=86_400,
            flow="deposit",
        ),
        Rule("first-addr", "new_address", "hold"),
    ),
    frozenset(),
)


async def _gateway(
    root: Path, name: str, spec: StreamSpec, dsn: str, rules: RuleSet = RULES, **cluster: Any
) -> Any:
    gw = Gateway(
        GatewayConfig(
            data_dir=root / name,
            master_key_file=root / "secrets" / "master.key",
            cluster=ClusterConfig(stream=spec, **cluster),
            backoffice_dsn=dsn,
            aml_rules=rules,
            marketdata=False,
        )
    )
    return gw, await start(gw, "127.0.0.1", 0)


async def _send(writer: StreamLog, batch_no: int, commands: list[Command]) -> None:
    batch = CommandBatch(ORIGIN, batch_no, commands)
    await writer.publish(encode_batch(batch), msg_id(ORIGIN, batch_no), fmt=BATCH_FORMAT)


async def _cases(dsn: str) -> list[tuple[str, int, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT case_id, account_id, action_done FROM bo_aml_cases ORDER BY seq, case_id"
        )
    finally:
        await conn.close()
    return [(r["case_id"], r["account_id"], r["action_done"]) for r in rows]


def _freezes(gw: Gateway) -> list[int]:
    """Sequences of the journaled AML freezes this replica applied (its audit records)."""
    return [seq for seq, _, _ in gw.store.staff_actions]


def test_one_case_one_freeze_across_replicas_and_state_from_snapshot(tmp_path: Path) -> None:
    head = CHECKPOINT_EVERY - 40  # the hits land before the first snapshot point

    async def body(spec: StreamSpec, dsn: str) -> None:
        writer = await StreamLog.connect(NatsOptions(), spec)
        await _publish(writer, _batches(head))
        a, a_run = await _gateway(tmp_path, "a", spec, dsn, snapshot_every=1)
        b, b_run = await _gateway(tmp_path, "b", spec, dsn, snapshot_every=0)
        gateways = [a, b]

        # a large BTC deposit (freeze) and the first USDT deposit just under 1000
        await _send(
            writer,
            head,
            [
                CreateAccount(account_id=3),
                CreateAccount(account_id=4),
                Deposit(account_id=3, asset_id=0, amount_atoms=950 * USDT_ATOMS, deposit_key="s1"),
                Deposit(account_id=4, asset_id=1, amount_atoms=6000 * BTC_ATOMS, deposit_key="x"),
            ],
        )
        # a withdrawal request naming its destination: no custody store anywhere
        await _send(
            writer,
            head + 1,
            [
                WithdrawRequest(
                    withdrawal_id=77,
                    account_id=3,
                    asset_id=0,
                    amount_atoms=10 * USDT_ATOMS,
                    address="0xAbC1",
                )
            ],
        )
        await _wait(lambda: all(4 in g.store.standing for g in gateways))
        for g in gateways:
            await g.aml.idle()
            assert g.aml.engine.screen(77) == ["first-addr"], "each replica holds it alike"
        cases = await _cases(dsn)
        assert [(c[0].split("@")[0], c[1], c[2]) for c in cases] == [
            ("big-btc", 4, 1),
            ("first-addr", 3, 1),
        ], cases
        big = cases[0][0]
        await _wait(lambda: a.last_seq == b.last_seq)
        assert _freezes(a) == _freezes(b) and len(_freezes(a)) == 1, "one freeze in the log"
        assert a.store.standing[4][0] and b.store.standing[4][0]

        # a retry of the freeze (a crash between insert and freeze, retried elsewhere) is the
        # same stream message id and batch identity: nothing runs twice
        last = a.last_seq
        await b.aml._journal_freeze(4, big)
        command = SetAccountFrozen(account_id=4, frozen=True, staff_id=f"aml:{big}")
        await a.bridge.publish_system(1, [command], origin=freeze_origin(big))
        await asyncio.sleep(0.3)
        assert a.last_seq == b.last_seq == last, "the duplicates executed nothing"

        # past a snapshot point: a stores its read model with the AML state
        await _publish(writer, _batches(head + 60)[head + 2 :])
        await _wait(lambda: CHECKPOINT_EVERY in a.bridge.stored_readmodels)

        # a replica started now gets the AML state from the snapshot, not from a replay: the
        # second deposit just under 1000 is structuring only if it knows the first
        c, c_run = await _gateway(tmp_path, "c", spec, dsn, snapshot_every=0)
        assert c.start_point[0] > 0 and c.aml.start_replayed == 0
        assert [d[2] for d in c.aml.engine.accounts[3].deposits] == [950 * USDT_ATOMS]
        assert "0xabc1" in c.aml.engine.accounts[3].addresses
        gateways.append(c)
        await _send(
            writer,
            head + 60,
            [Deposit(account_id=3, asset_id=0, amount_atoms=960 * USDT_ATOMS, deposit_key="s2")],
        )
        await _wait(lambda: a.last_seq == b.last_seq == c.last_seq)
        for g in gateways:
            await g.aml.idle()
        smurf = [x for x in await _cases(dsn) if x[0].startswith("smurf@")]
        assert len(smurf) == 1 and smurf[0][1] == 3, smurf

        # other rules: the snapshot's AML state does not serve them; the whole stream is
        # replayed and the state is the same
        extra = Rule("big-usdt", "large_deposit", "case", asset="USDT", amount=Decimal(10**9))
        other = RuleSet((*RULES.rules, extra), frozenset())
        d, d_run = await _gateway(tmp_path, "d", spec, dsn, snapshot_every=0, rules=other)
        assert d.start_point[0] == 0, "the pair made with other rules was skipped"
        assert [x[2] for x in d.aml.engine.accounts[3].deposits] == [
            950 * USDT_ATOMS,
            960 * USDT_ATOMS,
        ]
        await d.aml.idle()
        assert len(await _cases(dsn)) == 3, "replaying opened no case twice"
        for run in (a_run, b_run, c_run, d_run):
            await run.runner.cleanup()
        await writer.close()

    with stream_on() as spec, pg_database() as dsn:
        asyncio.run(body(spec, dsn))


def test_embedded_start_takes_the_aml_state_from_the_read_model_snapshot(tmp_path: Path) -> None:
    """Single-process mode: a restart restores the AML state from the read-model snapshot (no
    private replay of the journal), and a structuring pattern spanning the restart is caught."""
    from gateway.admin import Admin

    def gateway() -> Gateway:
        return Gateway(
            GatewayConfig(
                data_dir=tmp_path / "data",
                master_key_file=tmp_path / "master.key",
                aml_rules=RULES,
                marketdata=False,
            )
        )

    async def first() -> int:
        gw = gateway()
        run = await start(gw, "127.0.0.1", 0)
        account = (await Admin(gw).create_account()).account_id
        await Admin(gw).deposit(account, "USDT", "950", "s1")
        await gw.aml.idle()
        assert gw.aml.start_replayed == 0  # a new data directory: nothing to replay
        await run.runner.cleanup()  # the close snapshots the engine and the read model
        return account

    async def second(account: int) -> None:
        gw = gateway()
        assert gw.start_point[0] > 0 and gw.aml.start_replayed == 0, "from the snapshot"
        assert [d[2] for d in gw.aml.engine.accounts[account].deposits] == [950 * USDT_ATOMS]
        run = await start(gw, "127.0.0.1", 0)
        await Admin(gw).deposit(account, "USDT", "960", "s2")
        await gw.aml.idle()
        cases = await gw.aml.cases.cases("auditor")
        assert [c["case_id"].split("@")[0] for c in cases] == ["smurf"], cases
        await run.runner.cleanup()

    account = asyncio.run(first())
    asyncio.run(second(account))


def test_aml_image_round_trip_and_other_rules_refused() -> None:
    """The image restores the same state and the unwritten hits; other rules get nothing."""
    from backoffice.aml import image
    from backoffice.aml.engine import AmlEngine
    from engine.schema import AssetCreated, Posting, PostingReason, WithdrawalHeld

    engine = AmlEngine(RULES)
    usdt = AssetCreated(seq=1, asset_id=0, symbol="USDT", decimals=6)
    hits = engine.feed(10, [usdt])
    for seq, atoms in ((2, 950), (3, 955)):
        dep = Posting(
            seq=seq,
            txn_id=seq,
            reason=PostingReason.DEPOSIT,
            asset_id=0,
            debit_account_id=0,
            debit_bucket=0,
            credit_account_id=3,
            credit_bucket=0,
            amount_atoms=atoms * USDT_ATOMS,
        )
        hits += engine.feed(10 + seq, [dep])
    held = WithdrawalHeld(
        seq=4, withdrawal_id=9, account_id=3, asset_id=0, amount_atoms=1, address="0xAB"
    )
    hits += engine.feed(20, [held])
    assert [h.rule_id for h in hits] == ["smurf", "first-addr"]
    data = image.encode(engine, hits[:1])

    fresh = AmlEngine(RULES)
    assert image.restore(fresh, data) == hits[:1]
    assert fresh.accounts == engine.accounts and fresh.holds == engine.holds == {9: ["first-addr"]}
    assert (fresh.assets, fresh.last_seq) == (engine.assets, engine.last_seq)
    other = RuleSet(RULES.rules[:1], frozenset())
    untouched = AmlEngine(other)
    assert image.restore(untouched, data) is None and not untouched.accounts
    assert image.restore(AmlEngine(RULES), b"not msgpack") is None
