"""`Custody`: the one object the gateway and the CLI use (deposit addresses, withdrawals,
polling the chains, reconciliation), built from a `CustodyConfig`.

Engine access is a single coroutine, ``submit(command) -> events``, so custody works the same
behind the gateway's batching bridge and directly on an `EngineNode` (`node_submitter`).
Deposits and withdrawal results reach the engine only through that journaled path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from bitcoinlib.keys import HDKey
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from custody.addresses import AddressBook
from custody.assets import AssetRegistry, ChainKind, CustodyAsset
from custody.btc_rpc import BitcoinRpc, to_sats
from custody.btc_signer import BitcoinSigner
from custody.btc_watch import BitcoinSource
from custody.config import CustodyConfig, NodeConfig
from custody.eth_signer import EthereumSigner, transfer_calldata
from custody.eth_watch import EthereumSource
from custody.reconcile import AssetReconciliation, reconcile
from custody.scanner import DepositScanner, ScanReport
from custody.signer import Signer
from custody.store import CustodyStore, DepositRow, WithdrawalRow
from custody.withdrawals import WithdrawalDesk
from engine.neterrors import describe
from engine.schema import Command, Event
from engine.usererror import UserError

log = structlog.get_logger(__name__)

FAILURE_LOG_EVERY_S = 60.0
"""While a chain's watcher keeps failing, its error is logged at most this often."""

EngineSubmit = Callable[[Command], Awaitable[Sequence[Event]]]


def node_submitter(node: Any) -> EngineSubmit:
    """Adapt a synchronous `engine.node.EngineNode` (tests, CLI, single-process setups)."""

    async def submit(command: Command) -> Sequence[Event]:
        return node.submit([command])

    return submit


@dataclass(frozen=True, slots=True)
class DepositAddress:
    account_id: int
    asset_id: int
    symbol: str
    chain: str
    address: str
    confirmations: int


class Custody:
    def __init__(
        self,
        config: CustodyConfig,
        submit: EngineSubmit,
        *,
        signer: bool = False,
        clock: Callable[[], int] = time.time_ns,
        tier_of: Callable[[int], int] | None = None,
    ) -> None:
        """``tier_of(account_id)``: the account's KYC tier (-1: none), for the tiers' 24 h
        deposit limits; without it (the offline CLIs) no deposit limit applies."""
        self.config = config
        self.tier_of = tier_of
        self.registry: AssetRegistry = config.registry()
        self.store = CustodyStore(config.store_path)
        self.clock = clock
        self.submit = submit
        xpubs = {n: c.xpub for n, c in config.nodes.items() if c.xpub}
        networks = {
            n: c.bitcoinlib_network for n, c in config.nodes.items() if c.bitcoinlib_network
        }
        self.addresses = AddressBook(
            self.store, self.registry.chains, xpubs, bitcoinlib_network=networks
        )
        self.desk = WithdrawalDesk(self.registry, self.store, submit, clock=clock)
        self.w3: dict[str, AsyncWeb3] = {}
        self.rpc: dict[str, BitcoinRpc] = {}
        self.scanners: dict[str, DepositScanner] = {}
        self.signers: dict[str, Signer] = {}
        self._watch: dict[str, dict[str, Any]] = {
            name: {"chain": name, "ok": None, "tip": None, "last_ok_ms": None, "error": ""}
            for name in config.nodes
        }
        """Per chain: the last pass of its watcher (`watchers`, for the operations console)."""
        self._failure_logged_at: dict[str, float] = {}
        """Per failing chain: when its failure was last logged (monotonic s)."""
        for name, node in config.nodes.items():
            self._wire(name, node, signer)

    def _wire(self, name: str, node: NodeConfig, with_signer: bool) -> None:
        scale = lambda asset_id: self.registry.assets[asset_id].scale  # noqa: E731
        if node.chain.kind is ChainKind.ETHEREUM:
            w3 = AsyncWeb3(AsyncHTTPProvider(node.rpc_url))
            self.w3[name] = w3
            source: Any = EthereumSource(node.chain, w3, self.store, self.registry)
        else:
            rpc = BitcoinRpc(node.rpc_url, node.rpc_user, node.rpc_password)
            self.rpc[name] = rpc
            native = self.registry.native(name)
            assert native is not None, f"{name}: no native asset configured"
            source = BitcoinSource(node.chain, rpc, self.store, native.asset_id)
        self.scanners[name] = DepositScanner(
            node.chain,
            source,
            self.store,
            self.submit,
            registry_scale=scale,
            start_height=node.start_height,
            clock=self.clock,
            deposit_limit=self._deposit_limit if self.tier_of is not None else None,
        )
        if with_signer and node.hot_key_file:
            key = Path(node.hot_key_file).read_text().strip()
            common: dict[str, Any] = {
                "stuck_after_ns": node.stuck_after_s * 1_000_000_000,
                "clock": self.clock,
            }
            if node.chain.kind is ChainKind.ETHEREUM:
                chain_id = node.chain_id or int(name.rsplit("-", 1)[-1])
                self.signers[name] = EthereumSigner(
                    node.chain,
                    self.registry,
                    self.store,
                    self.desk,
                    w3=self.w3[name],
                    hot_key=key,
                    chain_id=chain_id,
                    **common,
                )
            else:
                hot = HDKey(key, network=node.bitcoinlib_network or "litecoin_testnet")
                self.signers[name] = BitcoinSigner(
                    node.chain,
                    self.registry,
                    self.store,
                    self.desk,
                    rpc=self.rpc[name],
                    hot_key=hot,
                    fee_rate_sat_vb=node.fee_rate_sat_vb,
                    bitcoinlib_network=node.bitcoinlib_network or "litecoin_testnet",
                    **common,
                )

    # ---- the gateway's API -------------------------------------------------------------------

    def deposit_address(self, account_id: int, asset_id: int) -> DepositAddress:
        """The account's address for depositing ``asset_id`` (allocated on first call). Raises
        KeyError for an asset custody does not handle."""
        asset = self.registry.asset(asset_id)
        if asset is None:
            raise KeyError(f"asset {asset_id} has no deposit address")
        address = self.addresses.deposit_address(asset.chain, account_id)
        return DepositAddress(
            account_id,
            asset_id,
            asset.symbol,
            asset.chain,
            address,
            self.registry.chain_of(asset).confirmations,
        )

    async def request_withdrawal(
        self,
        account_id: int,
        asset_id: int,
        amount_atoms: int,
        address: str,
        *,
        withdrawal_id: int | None = None,
    ) -> WithdrawalRow:
        """Validate, check the 24 h limit and hold; raises `WithdrawalRejected` (``.code``)."""
        return await self.desk.request(
            account_id, asset_id, amount_atoms, address, withdrawal_id=withdrawal_id
        )

    def withdrawal(self, withdrawal_id: int) -> WithdrawalRow | None:
        return self.store.withdrawal(withdrawal_id)

    def withdrawals(self, account_id: int) -> list[WithdrawalRow]:
        return self.desk.history(account_id)

    def deposits(self, account_id: int) -> list[DepositRow]:
        """Seen deposits (pending, credited, orphaned, ...) of an account, oldest first."""
        return [d for d in self.store.deposits() if d.account_id == account_id]

    # ---- running -----------------------------------------------------------------------------

    def _deposit_limit(self, account_id: int, asset_id: int) -> int:
        assert self.tier_of is not None
        asset = self.registry.assets.get(asset_id)
        return 0 if asset is None else asset.deposit_limit(self.tier_of(account_id))

    async def poll(self) -> dict[str, ScanReport]:
        """One pass: every chain's scanner (reorg check, scan, credit), then every signer."""
        reports = {name: await scanner.scan() for name, scanner in self.scanners.items()}
        for signer in self.signers.values():
            await signer.process()
        return reports

    async def run(self, interval_s: float = 2.0) -> None:
        """Poll forever; a chain failing (node down, deep reorg alert) is logged loudly and
        retried, without stopping the other chains."""
        while True:
            for name, scanner in self.scanners.items():
                watch = self._watch[name]
                try:
                    report = await scanner.scan()
                except Exception as exc:
                    if self._should_log_failure(name):
                        log.error("custody_scan_failed", chain=name, error=str(exc))
                    watch.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:200]}")
                else:
                    if watch.get("ok") is False:
                        log.info("custody_scan_recovered", chain=name, tip=report.tip)
                    self._failure_logged_at.pop(name, None)
                    now_ms = self.clock() // 1_000_000
                    watch.update(ok=True, tip=report.tip, last_ok_ms=now_ms, error="")
            for name, signer in self.signers.items():
                try:
                    await signer.process()
                except Exception as exc:
                    log.error("custody_signer_failed", chain=name, error=str(exc))
            await asyncio.sleep(interval_s)

    def _should_log_failure(self, chain: str) -> bool:
        """A node down for an hour is one error line a minute, not one every pass (every 2 s):
        the first failure is logged at once, the chain's row in /health says it meanwhile."""
        now = time.monotonic()
        last = self._failure_logged_at.get(chain)
        if last is not None and now - last < FAILURE_LOG_EVERY_S:
            return False
        self._failure_logged_at[chain] = now
        return True

    def watchers(self) -> list[dict[str, Any]]:
        """Each chain watcher's last pass: ``ok`` (None before the first), the chain tip it
        saw, when it last succeeded (ms), and the last error; plus whether a signer runs."""
        return [
            {**w, "signer": name in self.signers, "open_alerts": self._alerts(name)}
            for name, w in self._watch.items()
        ]

    def _alerts(self, chain: str) -> int:
        return len(self.store.open_alerts(chain))

    # ---- reconciliation ----------------------------------------------------------------------

    async def on_chain(self, asset: CustodyAsset, addresses: list[str]) -> int:
        """Total balance of ``asset`` held by ``addresses``, at the block the watcher reached
        (Ethereum) or the node's tip (Bitcoin family: scantxoutset). An unreachable node is a
        `UserError` naming the chain and its URL."""
        try:
            return await self._on_chain(asset, addresses)
        except (aiohttp.ClientConnectionError, OSError, TimeoutError) as exc:
            url = self.config.nodes[asset.chain].rpc_url
            raise UserError(
                f"cannot reach the {asset.chain} node at {url}: {describe(exc)}",
                hint="is the node running? check rpc_url in the custody config",
            ) from None

    async def _on_chain(self, asset: CustodyAsset, addresses: list[str]) -> int:
        if asset.chain in self.w3:
            w3 = self.w3[asset.chain]
            tip = self.store.tip(asset.chain)
            block: Any = tip[0] if tip else "latest"
            total = 0
            for address in addresses:
                checksum = w3.to_checksum_address(address)
                if asset.native:
                    total += int(await w3.eth.get_balance(checksum, block))
                else:
                    data = b"\x70\xa0\x82\x31" + bytes(12) + bytes.fromhex(checksum[2:])
                    out = await w3.eth.call(
                        {"to": w3.to_checksum_address(asset.contract), "data": data}, block
                    )  # type: ignore[typeddict-item]
                    total += int.from_bytes(bytes(out), "big")
            return total
        descriptors = [f"addr({a})" for a in addresses]
        scan = await self.rpc[asset.chain].call("scantxoutset", "start", descriptors)
        return sum(to_sats(u["amount"]) for u in scan["unspents"])

    def hot_addresses(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, node in self.config.nodes.items():
            signer = self.signers.get(name)
            address = getattr(signer, "address", "") or node.hot_address
            if address:
                out[name] = [address]
        return out

    async def reconcile(
        self, balances: Any, demo_atoms: dict[int, int] | None = None
    ) -> list[AssetReconciliation]:
        return await reconcile(
            self.registry, self.store, balances, self.on_chain, self.hot_addresses(), demo_atoms
        )

    async def close(self) -> None:
        for rpc in self.rpc.values():
            await rpc.close()
        for w3 in self.w3.values():
            await w3.provider.disconnect()
        self.store.close()


__all__ = ["Custody", "DepositAddress", "node_submitter", "transfer_calldata"]
