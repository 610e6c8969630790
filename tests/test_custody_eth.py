"""Custody on Ethereum against a real anvil node: ETH and ERC-20 deposits (confirmations,
reorgs, deep reorg alert, restart), withdrawals (success, failure, bad input, stuck fee bump)
and reconciliation with the ledger after every scenario."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode

from custody.eth_signer import transfer_calldata
from custody.scanner import DeepReorg, WatcherHalted
from custody.withdrawals import WithdrawalRejected
from engine.schema import Deposit
from engine.service import ETH, USDT
from tests.custody_nodes import (
    CONFIRMATIONS,
    ETH_CHAIN,
    Anvil,
    Env,
    make_env,
    run_anvil,
    token_fixture,
)

GWEI = 10**9
ETHER = 10**18


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with run_anvil() as node:
        yield node


@pytest.fixture(scope="module")
def token(anvil: Anvil) -> str:
    """The test ERC-20 (6 decimals, 10^12 units to account 0), deployed from the fixture."""
    fixture = token_fixture()
    funder = anvil.rpc("eth_accounts")[0]
    data = fixture["bytecode"] + encode(["uint256"], [10**12]).hex()
    txid = anvil.rpc("eth_sendTransaction", {"from": funder, "data": data, "gas": hex(2_000_000)})
    receipt = anvil.receipt(txid)
    assert receipt["status"] == "0x1", receipt
    return str(receipt["contractAddress"])


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path, anvil: Anvil, token: str) -> Iterator[Env]:
    e = make_env(tmp_path, request.node.name, anvil=anvil, token=token)
    yield e
    asyncio.run(e.custody.close())
    e.node.close(snapshot=False)


def send_eth(anvil: Anvil, to: str, wei: int, sender: int = 1) -> str:
    frm = anvil.rpc("eth_accounts")[sender]
    return str(anvil.rpc("eth_sendTransaction", {"from": frm, "to": to, "value": hex(wei)}))


def send_token(anvil: Anvil, token: str, to: str, units: int) -> str:
    frm = anvil.rpc("eth_accounts")[0]
    data = "0x" + transfer_calldata(to, units).hex()
    return str(anvil.rpc("eth_sendTransaction", {"from": frm, "to": token, "data": data}))


def fund_hot(env: Env, anvil: Anvil, wei: int) -> str:
    """The operator's float in the hot wallet, recorded for reconciliation."""
    hot = env.custody.signers[ETH_CHAIN].address
    send_eth(anvil, hot, wei, sender=2)
    env.custody.store.add_treasury(ETH_CHAIN, ETH, wei, "test float", 0)
    return str(hot)


def test_deposit_credited_once_after_confirmations(env: Env, anvil: Anvil, token: str) -> None:
    async def scenario() -> None:
        c = env.custody
        addr = c.deposit_address(1, ETH)
        assert c.deposit_address(1, USDT).address == addr.address  # one address per chain
        assert c.deposit_address(1, ETH).address == addr.address  # persisted, not re-derived
        send_eth(anvil, addr.address, 3 * ETHER // 2 + 7)  # 7 wei of sub-gwei dust
        send_token(anvil, token, addr.address, 250_000_000)
        await c.poll()
        assert env.balance(1, ETH) == (0, 0)  # seen, 1 confirmation: not credited
        assert len(c.store.deposits(ETH_CHAIN, "pending")) == 2
        await env.assert_reconciled()  # pending deposits explain the difference
        # the ETH deposit's block has 2 confirmations now, the token's 1; N = 3
        anvil.mine(1)
        report = await c.poll()
        assert len(report[ETH_CHAIN].credited) == 1
        assert env.balance(1, ETH) == (1_500_000_000, 0)
        assert env.balance(1, USDT) == (0, 0)  # N - 1 confirmations
        anvil.mine(1)
        report = await c.poll()
        assert len(report[ETH_CHAIN].credited) == 1
        assert env.balance(1, USDT) == (250_000_000, 0)
        anvil.mine(5)
        assert (await c.poll())[ETH_CHAIN].credited == []
        assert env.balance(1, ETH) == (1_500_000_000, 0)  # exactly once
        await env.assert_reconciled()  # the 7 wei are named as dust

    asyncio.run(scenario())


def test_reorg_before_confirmations_never_credited(env: Env, anvil: Anvil) -> None:
    async def scenario() -> None:
        c = env.custody
        addr = c.deposit_address(2, ETH).address
        await c.poll()
        snapshot = anvil.rpc("evm_snapshot")
        send_eth(anvil, addr, ETHER)
        anvil.mine(1)  # 2 confirmations
        await c.poll()
        assert [d.status for d in c.store.deposits(ETH_CHAIN)] == ["pending"]
        anvil.rpc("evm_revert", snapshot)  # the deposit's blocks are gone
        anvil.mine(4)  # a longer branch without it
        report = await c.poll()
        assert report[ETH_CHAIN].rolled_back == 2
        assert [d.status for d in c.store.deposits(ETH_CHAIN)] == ["orphaned"]
        anvil.mine(CONFIRMATIONS)
        await c.poll()
        assert env.balance(2, ETH) == (0, 0)
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_deep_reorg_is_an_operator_alert(env: Env, anvil: Anvil, caplog: Any) -> None:
    async def scenario() -> None:
        c = env.custody
        addr = c.deposit_address(1, ETH).address
        await c.poll()
        snapshot = anvil.rpc("evm_snapshot")
        frm = anvil.rpc("eth_accounts")[1]
        tx = {
            "from": frm,
            "to": addr,
            "value": hex(ETHER),
            "nonce": anvil.rpc("eth_getTransactionCount", frm, "latest"),
        }
        txid = anvil.rpc("eth_sendTransaction", tx)
        raw = anvil.rpc("eth_getRawTransactionByHash", txid)
        anvil.mine(CONFIRMATIONS)
        await c.poll()
        assert env.balance(1, ETH) == (1_000_000_000, 0)  # credited
        anvil.rpc("evm_revert", snapshot)
        anvil.mine(CONFIRMATIONS + 2)
        with caplog.at_level(logging.CRITICAL), pytest.raises(DeepReorg):
            await c.poll()
        alerts = c.store.open_alerts(ETH_CHAIN)
        assert len(alerts) == 1 and "deep" in alerts[0][2] and txid in alerts[0][3]
        with pytest.raises(WatcherHalted):  # halted, not silently absorbed
            await c.poll()
        # the operator re-broadcasts the lost deposit, then accepts the node's chain
        anvil.rpc("eth_sendRawTransaction", raw)
        anvil.mine(CONFIRMATIONS)
        await c.scanners[ETH_CHAIN].resolve_deep_reorg(alerts[0][0])
        await c.poll()
        assert env.balance(1, ETH) == (1_000_000_000, 0)  # same key: never credited twice
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_watcher_restart_mid_scan_no_double_credit(env: Env, anvil: Anvil, token: str) -> None:
    async def scenario() -> None:
        c = env.custody
        addr = c.deposit_address(3, ETH).address
        for _ in range(4):
            send_eth(anvil, addr, ETHER // 10)  # one block each (automine)
        anvil.mine(CONFIRMATIONS)
        scanner = c.scanners[ETH_CHAIN]
        await scanner.scan(max_blocks=2)  # stop mid-scan
        assert env.balance(3, ETH) == (0, 0)
        # crash between the journal write and the store update: the engine has the deposit
        first = c.store.deposits(ETH_CHAIN, "pending")[0]
        env.node.submit(
            [Deposit(account_id=3, asset_id=ETH, amount_atoms=first.atoms, deposit_key=first.key)]
        )
        await c.close()
        from custody.service import Custody, node_submitter

        env.custody = restarted = Custody(c.config, node_submitter(env.node), signer=True)
        await restarted.poll()
        assert env.balance(3, ETH) == (400_000_000, 0)  # 4 x 0.1 ETH, each exactly once
        assert len(restarted.store.deposits(ETH_CHAIN, "credited")) == 4
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_withdrawals_success_failure_and_bad_input(env: Env, anvil: Anvil, token: str) -> None:
    async def scenario() -> None:
        c = env.custody
        fund_hot(env, anvil, 10 * ETHER)
        send_eth(anvil, c.deposit_address(1, ETH).address, 2 * ETHER)
        send_token(anvil, token, c.deposit_address(1, USDT).address, 100_000_000)
        anvil.mine(CONFIRMATIONS)
        await c.poll()
        assert env.balance(1, ETH) == (2 * GWEI, 0)
        outside = anvil.rpc("eth_accounts")[5]
        before = int(anvil.rpc("eth_getBalance", outside, "latest"), 16)

        # bad input: clear codes, no hold left behind
        bad = [
            ((1, 99, 1_000_000, outside), "UNKNOWN_ASSET"),
            ((1, ETH, 1_000_000, "0x1234"), "INVALID_ADDRESS"),
            (
                (1, ETH, 1_000_000, "rltc1q05fktjrqrr5ze7ntzukj0g0wrj5he0xm3jae59"),
                "INVALID_ADDRESS",
            ),
            ((1, ETH, 999, outside), "BELOW_MINIMUM"),
            ((1, ETH, 0, outside), "INVALID_AMOUNT"),
            ((1, ETH, 3 * GWEI, outside), "INSUFFICIENT_FUNDS"),
            ((9, ETH, GWEI, outside), "UNKNOWN_ACCOUNT"),
        ]
        for args, code in bad:
            with pytest.raises(WithdrawalRejected) as err:
                await c.request_withdrawal(*args)
            assert err.value.code == code, (args, err.value)
        assert env.balance(1, ETH) == (2 * GWEI, 0)

        ok = await c.request_withdrawal(1, ETH, GWEI // 2, outside.lower(), withdrawal_id=10)
        assert ok.status == "held" and env.balance(1, ETH) == (3 * GWEI // 2, GWEI // 2)
        with pytest.raises(WithdrawalRejected) as err:
            await c.request_withdrawal(1, ETH, 1_000, outside, withdrawal_id=10)
        assert err.value.code == "DUPLICATE_WITHDRAWAL"
        # the hot wallet holds no tokens: the transfer cannot be built, the hold is released
        fail = await c.request_withdrawal(1, USDT, 40_000_000, outside)
        assert env.balance(1, USDT) == (60_000_000, 40_000_000)

        await c.poll()  # signs, stores, broadcasts (anvil mines at once)
        await c.poll()  # sees it mined
        assert c.withdrawal(fail.withdrawal_id).status == "failed"
        assert env.balance(1, USDT) == (100_000_000, 0)  # released
        w = c.withdrawal(10)
        assert w.status == "mined" and w.txid
        assert env.balance(1, ETH) == (3 * GWEI // 2, GWEI // 2)  # still held: 1 confirmation
        await env.assert_reconciled()  # in flight explains it
        anvil.mine(CONFIRMATIONS)
        await c.poll()
        assert c.withdrawal(10).status == "settled"
        assert env.balance(1, ETH) == (3 * GWEI // 2, 0)
        after = int(anvil.rpc("eth_getBalance", outside, "latest"), 16)
        assert after - before == ETHER // 2  # sent exactly once
        assert len(c.store.attempts(10)) == 1
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_stuck_withdrawal_replaced_with_higher_fees(env: Env, anvil: Anvil) -> None:
    async def scenario() -> None:
        c = env.custody
        fund_hot(env, anvil, 5 * ETHER)
        send_eth(anvil, c.deposit_address(1, ETH).address, ETHER)
        anvil.mine(CONFIRMATIONS)
        await c.poll()
        signer = c.signers[ETH_CHAIN]
        signer.stuck_after_ns = 0
        anvil.rpc("evm_setAutomine", False)
        try:
            await c.request_withdrawal(1, ETH, GWEI // 4, anvil.rpc("eth_accounts")[6])
            await c.poll()  # signed and broadcast, not mined
            first = c.store.attempts(1)
            assert len(first) == 1 and c.withdrawal(1).status == "broadcast"
            # fees jump: the first attempt's fee cap is now below the base fee
            anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(first[0].max_fee * 4))
            anvil.mine(1)
            await c.poll()  # still unmined -> replaced (same nonce, higher fees)
            attempts = c.store.attempts(1)
            assert len(attempts) == 2 and attempts[1].nonce == attempts[0].nonce
            assert attempts[1].max_fee > attempts[0].max_fee and attempts[1].tip > attempts[0].tip
            anvil.mine(CONFIRMATIONS)
            await c.poll()
            await c.poll()
        finally:
            anvil.rpc("evm_setAutomine", True)
        w = c.withdrawal(1)
        assert w.status == "settled" and w.txid == attempts[1].txid
        assert env.balance(1, ETH) == (3 * GWEI // 4, 0)
        await env.assert_reconciled()

    asyncio.run(scenario())


def test_daily_limit(tmp_path: Path, anvil: Anvil, token: str) -> None:
    env = make_env(tmp_path, "daily-limit", anvil=anvil, token=token, daily_limit_atoms=GWEI)

    async def scenario() -> None:
        c = env.custody
        send_eth(anvil, c.deposit_address(1, ETH).address, 3 * ETHER)
        anvil.mine(CONFIRMATIONS)
        await c.poll()
        outside = anvil.rpc("eth_accounts")[7]
        await c.request_withdrawal(1, ETH, 600_000_000, outside)
        with pytest.raises(WithdrawalRejected) as err:
            await c.request_withdrawal(1, ETH, 600_000_000, outside)
        assert err.value.code == "LIMIT_EXCEEDED"
        assert env.balance(1, ETH) == (2_400_000_000, 600_000_000)  # only the first is held
        await c.close()

    try:
        asyncio.run(scenario())
    finally:
        env.node.close(snapshot=False)
