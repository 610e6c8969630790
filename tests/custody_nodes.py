"""Real blockchain nodes for the custody tests: anvil (Ethereum) and litecoind (regtest).

The nodes are installed by ``scripts/install-nodes.sh`` (``make test`` runs it) and started
here on free loopback ports with throw-away data directories. A missing binary FAILS the tests:
custody is tested against real nodes or not at all (no mocks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ANVIL_DEFAULT = REPO / ".tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_ltc_config(port: int) -> str:
    """A valid custody.toml whose one chain (LTC regtest) has no node at ``port``: for the
    commands that must fail in one line before or when they reach it."""
    return f"""
[[chain]]
name = "ltc-regtest"
kind = "bitcoin"
hrp = "rltc"
rpc_url = "http://127.0.0.1:{port}"
hot_address = "rltc1qhkydyzuhpmvf8f0gjkue4hmlny4t7juttqm07l"
bitcoinlib_network = "litecoin_testnet"
[[asset]]
asset_id = 4
symbol = "LTC"
chain = "ltc-regtest"
chain_decimals = 8
engine_decimals = 8
"""


def seed_for(name: str) -> bytes:
    """A deterministic, test-unique seed: every test gets its own keys and addresses, so the
    chains (shared by the whole session) never mix one test's coins into another's figures."""
    return hashlib.sha256(name.encode()).digest()


def _post(url: str, body: dict[str, Any], auth: str | None = None) -> Any:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    if auth:
        import base64

        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:  # Core answers errors with HTTP 500 + JSON
        return json.loads(exc.read(), parse_float=Decimal)


@dataclass
class Anvil:
    url: str
    proc: subprocess.Popen[bytes]

    def rpc(self, method: str, *params: Any) -> Any:
        reply = _post(
            self.url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )
        if "error" in reply:
            raise RuntimeError(f"anvil {method}: {reply['error']}")
        return reply["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def height(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def receipt(self, txid: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while (receipt := self.rpc("eth_getTransactionReceipt", txid)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{txid} not mined after {timeout}s")
            time.sleep(0.05)
        return receipt


@dataclass
class Litecoind:
    url: str
    auth: str
    proc: subprocess.Popen[bytes]
    miner: str = ""

    def rpc(self, method: str, *params: Any, wallet: str = "") -> Any:
        url = self.url + (f"/wallet/{wallet}" if wallet else "")
        reply = _post(
            url, {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}, self.auth
        )
        if reply.get("error"):
            raise RuntimeError(f"litecoind {method}: {reply['error']}")
        return reply["result"]

    def mine(self, blocks: int = 1) -> list[str]:
        return list(self.rpc("generatetoaddress", blocks, self.miner))

    def mine_empty(self, blocks: int = 1) -> None:
        """Blocks without the mempool's transactions (to out-grow a branch in a reorg)."""
        for _ in range(blocks):
            self.rpc("generateblock", self.miner, [])

    def height(self) -> int:
        return int(self.rpc("getblockcount"))

    def send(self, address: str, coins: str) -> str:
        return str(self.rpc("sendtoaddress", address, coins, wallet="miner"))


def _wait(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            check()
            return
        except Exception as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up: {last}")


@contextlib.contextmanager
def run_anvil() -> Iterator[Anvil]:
    binary = Path(os.environ.get("ANVIL_BIN", ANVIL_DEFAULT))
    if not binary.is_file():
        pytest.fail(f"anvil not found at {binary}: run scripts/install-nodes.sh (make test does)")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--mnemonic",
            MNEMONIC,
            "--chain-id",
            str(ANVIL_CHAIN_ID),
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node = Anvil(f"http://127.0.0.1:{port}", proc)
    try:
        _wait(node.height, "anvil")
        yield node
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def run_litecoind() -> Iterator[Litecoind]:
    binary = shutil.which("litecoind")
    if binary is None:
        pytest.fail("litecoind not found: run scripts/install-nodes.sh (make test does)")
    datadir = Path(tempfile.mkdtemp(prefix="kootabase-ltc-"))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "-regtest",
            f"-datadir={datadir}",
            f"-rpcport={port}",
            f"-port={free_port()}",
            "-rpcuser=kootabase",
            "-rpcpassword=kootabase",
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            "-listen=0",
            "-server=1",
            "-txindex=1",
            "-fallbackfee=0.0002",
            "-printtoconsole=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node = Litecoind(f"http://127.0.0.1:{port}", "kootabase:kootabase", proc)
    try:
        _wait(node.height, "litecoind")
        node.rpc("createwallet", "miner")
        node.miner = str(node.rpc("getnewaddress", "", "bech32", wallet="miner"))
        node.mine(101)  # coinbase maturity: the miner can spend from now on
        yield node
    finally:
        with contextlib.suppress(Exception):
            node.rpc("stop")
        # A clean stop can wait ~30 s on idle RPC keep-alive connections; the datadir is thrown
        # away, so after 5 s the node is killed.
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(datadir, ignore_errors=True)


def token_fixture() -> dict[str, Any]:
    return json.loads((FIXTURES / "erc20" / "TestToken.json").read_text())


# ---- a custody + engine environment per test ----------------------------------------------

ETH_CHAIN = f"eth-{ANVIL_CHAIN_ID}"
LTC_CHAIN = "ltc-regtest"
CONFIRMATIONS = 3


def _hd(seed: bytes, network: str, path: list[int]) -> Any:
    from bitcoinlib.keys import HDKey

    key = HDKey.from_seed(seed, network=network)
    for index in path:
        hardened = index < 0
        key = key.child_private(abs(index), hardened=hardened)
    return key


def eth_custody_config(
    tmp: Path,
    anvil: Anvil,
    seed_tag: str,
    *,
    hot_key: bool = False,
    stuck_after_s: float | None = None,
    **asset_options: Any,
) -> Any:
    """A gateway's custody config for one ETH chain on ``anvil``: the watch-only xpub (and, with
    ``hot_key``, the hot key in ``tmp/eth.key``) derived from ``seed_tag``, and the ETH asset
    (18 decimals on chain, 9 in the engine) with ``asset_options`` (limits, thresholds)."""
    from custody.assets import ChainKind, ChainSpec, CustodyAsset
    from custody.config import CustodyConfig, NodeConfig
    from engine.service import ETH

    seed = seed_for(seed_tag)
    node_options: dict[str, Any] = {}
    if hot_key:
        hot = _hd(seed, "bitcoin", [-44, -60, -1, 0, 0])
        (tmp / "eth.key").write_text("0x" + hot.private_hex)
        node_options["hot_key_file"] = str(tmp / "eth.key")
    if stuck_after_s is not None:
        node_options["stuck_after_s"] = stuck_after_s
    node = NodeConfig(
        ChainSpec(ETH_CHAIN, ChainKind.ETHEREUM, CONFIRMATIONS, bip44_coin=60),
        anvil.url,
        xpub=_hd(seed, "bitcoin", [-44, -60, -0]).wif_public(),
        start_height=anvil.height() + 1,
        bitcoinlib_network="bitcoin",
        **node_options,
    )
    asset = CustodyAsset(ETH, "ETH", ETH_CHAIN, 18, 9, **asset_options)
    return CustodyConfig(tmp / "custody.sqlite", {ETH_CHAIN: node}, [asset])


@dataclass
class Env:
    """An engine node, a Custody on top of it, and the test's keys."""

    node: Any
    custody: Any
    data_dir: Path
    eth_hot_key: str = ""
    ltc_hot_wif: str = ""

    def balance(self, account_id: int, asset_id: int) -> tuple[int, int]:
        """(available, held for withdrawals) in engine atoms."""
        for acc in self.node.engine.image().accounts:
            if acc.account_id == account_id:
                for bal in acc.balances:
                    if bal.asset_id == asset_id:
                        return bal.available_atoms, bal.held_withdrawals_atoms
        return 0, 0

    async def reconcile(self) -> list[Any]:
        from custody.reconcile import format_report
        from ledger.book import image_balances

        rows = await self.custody.reconcile(image_balances(self.node.engine.image()))
        print("\n".join(format_report(rows)))
        return rows

    async def assert_reconciled(self) -> None:
        rows = await self.reconcile()
        assert [(r.symbol, r.unexplained) for r in rows] == [(r.symbol, 0) for r in rows]


def make_env(
    tmp: Path,
    name: str,
    *,
    anvil: Anvil | None = None,
    ltc: Litecoind | None = None,
    token: str = "",
    accounts: int = 3,
    signer: bool = True,
    daily_limit_atoms: int = 0,
) -> Env:
    from custody.assets import ChainKind, ChainSpec, CustodyAsset
    from custody.config import CustodyConfig, NodeConfig
    from custody.service import Custody, node_submitter
    from engine.node import EngineNode
    from engine.node import NodeConfig as EngineNodeConfig
    from engine.schema import CreateAccount
    from engine.service import ETH, LTC, USDT, bootstrap_demo

    seed = seed_for(name)
    node = EngineNode(EngineNodeConfig(data_dir=tmp / "engine", fsync=False))
    bootstrap_demo(node)
    node.submit([CreateAccount(account_id=i) for i in range(1, accounts + 1)])
    nodes: dict[str, NodeConfig] = {}
    assets: list[CustodyAsset] = []
    env = Env(node, None, tmp)
    if anvil is not None:
        xpub = _hd(seed, "bitcoin", [-44, -60, -0]).wif_public()
        hot = _hd(seed, "bitcoin", [-44, -60, -1, 0, 0])
        env.eth_hot_key = "0x" + hot.private_hex
        (tmp / "eth.key").write_text(env.eth_hot_key)
        nodes[ETH_CHAIN] = NodeConfig(
            ChainSpec(ETH_CHAIN, ChainKind.ETHEREUM, CONFIRMATIONS, bip44_coin=60),
            anvil.url,
            xpub=xpub,
            hot_key_file=str(tmp / "eth.key"),
            start_height=anvil.height() + 1,
            stuck_after_s=3600,
            bitcoinlib_network="bitcoin",
        )
        assets.append(
            CustodyAsset(
                ETH,
                "ETH",
                ETH_CHAIN,
                18,
                9,
                min_withdrawal_atoms=1_000,
                daily_limit_atoms=daily_limit_atoms,
            )
        )
        if token:
            assets.append(
                CustodyAsset(
                    USDT, "USDT", ETH_CHAIN, 6, 6, contract=token, min_withdrawal_atoms=1_000
                )
            )
    if ltc is not None:
        xpub = _hd(seed, "litecoin_testnet", [-84, -1, -0]).wif_public()
        hot = _hd(seed, "litecoin_testnet", [-84, -1, -1, 0, 0])
        env.ltc_hot_wif = hot.wif_private()
        (tmp / "ltc.key").write_text(env.ltc_hot_wif)
        nodes[LTC_CHAIN] = NodeConfig(
            ChainSpec(LTC_CHAIN, ChainKind.BITCOIN, CONFIRMATIONS, hrp="rltc", bip44_coin=1),
            ltc.url,
            xpub=xpub,
            hot_key_file=str(tmp / "ltc.key"),
            rpc_user="kootabase",
            rpc_password="kootabase",
            start_height=ltc.height() + 1,
            bitcoinlib_network="litecoin_testnet",
            fee_rate_sat_vb=20,
        )
        assets.append(
            CustodyAsset(
                LTC,
                "LTC",
                LTC_CHAIN,
                8,
                8,
                min_withdrawal_atoms=10_000,
                daily_limit_atoms=daily_limit_atoms,
            )
        )
    config = CustodyConfig(tmp / "custody.sqlite", nodes, assets)
    env.custody = Custody(config, node_submitter(node), signer=signer)
    return env
