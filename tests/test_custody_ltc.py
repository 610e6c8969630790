"""Custody on the Bitcoin family against a real litecoind in regtest: deposits (confirmations,
reorg before N via invalidateblock, deep reorg alert), withdrawals signed with bitcoinlib
(success with change, failure releasing the hold), reconciliation after every scenario and
the `kootabase custody reconcile` command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from custody.scanner import DeepReorg, WatcherHalted
from custody.withdrawals import WithdrawalRejected
from engine.service import LTC
from tests.custody_nodes import CONFIRMATIONS, LTC_CHAIN, Env, Litecoind, make_env, run_litecoind

SAT = 1
COIN = 100_000_000


@pytest.fixture(scope="module")
def ltc() -> Iterator[Litecoind]:
    with run_litecoind() as node:
        yield node


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path, ltc: Litecoind) -> Iterator[Env]:
    e = make_env(tmp_path, request.node.name, ltc=ltc)
    yield e
    asyncio.run(e.custody.close())
    e.node.close(snapshot=False)


def test_deposit_confirmations_and_shallow_reorg(env: Env, ltc: Litecoind) -> None:
    async def scenario() -> None:
        c = env.custody
        addr = c.deposit_address(1, LTC)
        assert addr.address.startswith("rltc1q")
        txid = ltc.send(addr.address, "1.25")
        [block] = ltc.mine(1)
        await c.poll()
        [dep] = c.store.deposits(LTC_CHAIN)
        assert dep.status == "pending" and dep.key.startswith(f"{LTC_CHAIN}:{txid}:")
        await env.assert_reconciled()
        # reorg before N: the deposit's block is replaced by empty blocks
        ltc.rpc("invalidateblock", block)
        ltc.mine_empty(2)
        report = await c.poll()
        assert report[LTC_CHAIN].rolled_back == 1
        assert [d.status for d in c.store.deposits(LTC_CHAIN)] == ["orphaned"]
        ltc.mine_empty(CONFIRMATIONS)
        await c.poll()
        assert env.balance(1, LTC) == (0, 0)  # never credited while off the chain
        await env.assert_reconciled()
        # the transaction comes back (same txid, same vout): credited once after N
        ltc.mine(1)
        await c.poll()
        assert env.balance(1, LTC) == (0, 0)
        ltc.mine(CONFIRMATIONS - 1)
        await c.poll()
        assert env.balance(1, LTC) == (125_000_000, 0)
        ltc.mine(2)
        await c.poll()
        assert env.balance(1, LTC) == (125_000_000, 0)
        assert [d.status for d in c.store.deposits(LTC_CHAIN)] == ["credited"]
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_deep_reorg_is_an_operator_alert(env: Env, ltc: Litecoind) -> None:
    async def scenario() -> None:
        c = env.custody
        addr = c.deposit_address(2, LTC).address
        ltc.send(addr, "0.5")
        blocks = ltc.mine(CONFIRMATIONS)
        await c.poll()
        assert env.balance(2, LTC) == (50_000_000, 0)
        ltc.rpc("invalidateblock", blocks[0])  # removes a block with N confirmations
        ltc.mine_empty(CONFIRMATIONS + 1)
        with pytest.raises(DeepReorg):
            await c.poll()
        [(alert_id, chain, kind, detail)] = c.store.open_alerts()
        assert chain == LTC_CHAIN and kind == "deep_reorg" and "depth 3" in detail
        with pytest.raises(WatcherHalted):
            await c.poll()
        ltc.mine(CONFIRMATIONS)  # the deposit is mined again on the new chain
        await c.scanners[LTC_CHAIN].resolve_deep_reorg(alert_id)
        await c.poll()
        assert env.balance(2, LTC) == (50_000_000, 0)  # not credited twice
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_withdrawals_success_failure_and_bad_input(env: Env, ltc: Litecoind) -> None:
    async def scenario() -> None:
        c = env.custody
        signer = c.signers[LTC_CHAIN]
        ltc.send(signer.address, "3")  # the operator's float
        c.store.add_treasury(LTC_CHAIN, LTC, 3 * COIN, "test float", 0)
        ltc.send(c.deposit_address(1, LTC).address, "6")
        ltc.mine(CONFIRMATIONS)
        await c.poll()
        assert env.balance(1, LTC) == (6 * COIN, 0)
        outside = str(ltc.rpc("getnewaddress", "", "bech32", wallet="miner"))
        for args, code in [
            ((1, LTC, COIN, "ltc1q05fktjrqrr5ze7ntzukj0g0wrj5he0xm3jae59"), "INVALID_ADDRESS"),
            ((1, LTC, COIN, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), "INVALID_ADDRESS"),
            (
                (1, LTC, COIN, outside[:-1] + ("q" if outside[-1] != "q" else "p")),
                "INVALID_ADDRESS",
            ),
            ((1, LTC, 9_999, outside), "BELOW_MINIMUM"),
            ((1, LTC, 7 * COIN, outside), "INSUFFICIENT_FUNDS"),
            ((1, 42, COIN, outside), "UNKNOWN_ASSET"),
        ]:
            with pytest.raises(WithdrawalRejected) as err:
                await c.request_withdrawal(*args)
            assert err.value.code == code, (args, err.value)
        assert env.balance(1, LTC) == (6 * COIN, 0)

        ok = await c.request_withdrawal(1, LTC, COIN, outside)
        await c.poll()
        w = c.withdrawal(ok.withdrawal_id)
        assert w.status == "broadcast"
        tx = ltc.rpc("getrawtransaction", w.txid, True)
        paid = [
            o
            for o in tx["vout"]
            if o["scriptPubKey"].get("addresses") == [outside]
            or o["scriptPubKey"].get("address") == outside
        ]
        assert len(paid) == 1 and int(paid[0]["value"] * COIN) == COIN
        assert len(tx["vout"]) == 2  # change back to the hot address
        ltc.mine(1)
        await c.poll()
        assert c.withdrawal(ok.withdrawal_id).status == "mined"
        await env.assert_reconciled()  # in flight + fee explain the difference
        ltc.mine(CONFIRMATIONS - 1)
        await c.poll()
        assert c.withdrawal(ok.withdrawal_id).status == "settled"
        assert env.balance(1, LTC) == (5 * COIN, 0)

        # the hot wallet (about 2 LTC left) cannot pay 4.5 LTC: failure releases the hold
        big = await c.request_withdrawal(1, LTC, 450_000_000, outside)
        assert env.balance(1, LTC) == (50_000_000, 450_000_000)
        await c.poll()
        assert c.withdrawal(big.withdrawal_id).status == "failed"
        assert env.balance(1, LTC) == (5 * COIN, 0)
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_reconcile_command(tmp_path: Path, ltc: Litecoind) -> None:
    """`kootabase custody reconcile` from a data directory: replays the journal into the
    ledger, reads the chain, prints per-asset figures, exits 0 when all is explained."""
    from gateway.cli import main

    env = make_env(tmp_path, "reconcile-cli", ltc=ltc)

    async def deposit() -> None:
        ltc.send(env.custody.deposit_address(3, LTC).address, "0.3")
        ltc.send(env.custody.deposit_address(3, LTC).address, "0.2")
        ltc.mine(CONFIRMATIONS)
        await env.custody.poll()
        ltc.send(env.custody.deposit_address(2, LTC).address, "0.1")  # unconfirmed, not mined
        ltc.mine(1)
        await env.custody.poll()
        await env.custody.close()

    asyncio.run(deposit())
    env.node.close()
    _write_reconcile_config(tmp_path, env)
    code = main(
        [
            "custody",
            "reconcile",
            "--data-dir",
            str(tmp_path),
            "--journal",
            str(tmp_path / "engine" / "journal"),
        ]
    )
    assert code == 0


def test_reconcile_accounts_demo_credits_apart(
    tmp_path: Path, ltc: Litecoind, capsys: pytest.CaptureFixture[str]
) -> None:
    """Demo-faucet credits (flagged, and keyed ``demo:`` as journals before the flag were) sit
    in the ledger's figure but on no chain: reconcile names them and still reaches 0."""
    from engine.schema import Deposit
    from gateway.cli import main

    env = make_env(tmp_path, "reconcile-demo", ltc=ltc)

    async def deposit() -> None:
        ltc.send(env.custody.deposit_address(3, LTC).address, "0.3")
        ltc.mine(CONFIRMATIONS)
        await env.custody.poll()
        await env.custody.close()

    asyncio.run(deposit())
    env.node.submit(
        [
            Deposit(account_id=1, asset_id=LTC, amount_atoms=1000 * COIN, deposit_key="demo:1:LTC"),
            Deposit(account_id=2, asset_id=LTC, amount_atoms=5 * COIN, deposit_key="x", demo=True),
        ]
    )
    env.node.close()
    _write_reconcile_config(tmp_path, env)
    args = [
        "custody",
        "reconcile",
        "--data-dir",
        str(tmp_path),
        "--journal",
        str(tmp_path / "engine" / "journal"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"demo credits (serve --demo), never on chain: {-1005 * COIN}" in out
    assert "unexplained: 0" in out


def _write_reconcile_config(tmp_path: Path, env: Env) -> None:
    node_cfg = env.custody.config.nodes[LTC_CHAIN]
    (tmp_path / "custody.toml").write_text(f"""
store = "custody.sqlite"
[[chain]]
name = "{LTC_CHAIN}"
kind = "bitcoin"
hrp = "rltc"
confirmations = {CONFIRMATIONS}
rpc_url = "{node_cfg.rpc_url}"
rpc_user = "kootabase"
rpc_password = "kootabase"
xpub = "{node_cfg.xpub}"
bitcoinlib_network = "litecoin_testnet"
[[asset]]
asset_id = {LTC}
symbol = "LTC"
chain = "{LTC_CHAIN}"
chain_decimals = 8
engine_decimals = 8
""")


def test_a_halted_chain_signs_nothing_until_the_alert_is_resolved(env: Env, ltc: Litecoind) -> None:
    """After a deep-reorg alert the signer signs and broadcasts nothing (also when the polling
    loop runs signers after a failed scan), and `kootabase custody alerts list|resolve` is how
    an operator sees and ends the halt."""
    import json

    from tests.serve_process import kootabase

    def alerts(*args: str) -> list[dict[str, object]]:
        """`kootabase custody alerts ...` in its own process, as an operator runs it."""
        done = kootabase("custody", "alerts", *args, "--data-dir", str(env.data_dir))
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    async def scenario() -> None:
        c = env.custody
        signer = c.signers[LTC_CHAIN]
        ltc.send(signer.address, "3")
        c.store.add_treasury(LTC_CHAIN, LTC, 3 * COIN, "test float", 0)
        addr = c.deposit_address(1, LTC).address
        ltc.send(addr, "2")
        blocks = ltc.mine(CONFIRMATIONS)
        await c.poll()
        assert env.balance(1, LTC) == (2 * COIN, 0)
        ltc.rpc("invalidateblock", blocks[0])
        ltc.mine_empty(CONFIRMATIONS + 1)
        with pytest.raises(DeepReorg):
            await c.poll()
        outside = str(ltc.rpc("getnewaddress", "", "bech32", wallet="miner"))
        w = await c.request_withdrawal(1, LTC, COIN, outside)
        mempool = set(ltc.rpc("getrawmempool"))
        for _ in range(2):  # what `Custody.run` does after a chain's scan failed
            await signer.process()
        assert c.withdrawal(w.withdrawal_id).status == "held"
        assert c.store.attempts(w.withdrawal_id) == []
        assert set(ltc.rpc("getrawmempool")) == mempool

        _write_reconcile_config(env.data_dir, env)
        [alert] = alerts("list")
        assert alert["chain"] == LTC_CHAIN and alert["kind"] == "deep_reorg"
        ltc.mine(CONFIRMATIONS)
        assert alerts("resolve", str(alert["id"]))[0]["resolved"] == alert["id"]
        assert alerts("list") == []
        await c.poll()
        assert c.withdrawal(w.withdrawal_id).status == "broadcast"

    asyncio.run(scenario())


def test_a_second_withdrawal_waits_for_the_change_of_the_first(env: Env, ltc: Litecoind) -> None:
    """The hot wallet holds one coin; the first withdrawal spends it and its change is
    unconfirmed: the second waits (held) instead of failing, and is sent once it confirms."""

    async def scenario() -> None:
        c = env.custody
        signer = c.signers[LTC_CHAIN]
        ltc.send(signer.address, "3")  # one coin
        c.store.add_treasury(LTC_CHAIN, LTC, 3 * COIN, "test float", 0)
        ltc.send(c.deposit_address(1, LTC).address, "4")
        ltc.mine(CONFIRMATIONS)
        await c.poll()
        outside = str(ltc.rpc("getnewaddress", "", "bech32", wallet="miner"))
        first = await c.request_withdrawal(1, LTC, COIN, outside)
        second = await c.request_withdrawal(1, LTC, COIN, outside)
        await c.poll()
        assert c.withdrawal(first.withdrawal_id).status == "broadcast"
        assert c.withdrawal(second.withdrawal_id).status == "held"
        await c.poll()
        assert c.withdrawal(second.withdrawal_id).status == "held"  # still waiting
        ltc.mine(1)  # the first (and its change) confirm
        await c.poll()
        assert c.withdrawal(second.withdrawal_id).status == "broadcast"
        ltc.mine(CONFIRMATIONS)
        await c.poll()
        await c.poll()
        assert c.withdrawal(first.withdrawal_id).status == "settled"
        assert c.withdrawal(second.withdrawal_id).status == "settled"
        assert env.balance(1, LTC) == (2 * COIN, 0)
        await env.assert_reconciled()

    asyncio.run(scenario())
