"""Ethereum deposits (ETH and ERC-20): a `ChainSource` over web3.py's async API.

Native ETH: a successful transaction whose ``to`` is a deposit address (value > 0); the receipt
is read to skip reverted ones (a reverted call moves no value). Value sent by contract-internal
calls is not seen (it needs tracing); the reconciliation report would show it as unexplained.
ERC-20: ``Transfer(from, to, value)`` logs of the configured token contracts whose ``to`` is a
deposit address, fetched by block *hash* so a log can never come from a sibling block.
Idempotency key ``chain:txhash:logindex`` (``-1`` for the native value), the chain name carrying
the chain id (e.g. ``eth-1``).
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound

from custody.assets import AssetRegistry, ChainSpec
from custody.scanner import Found, ScannedBlock
from custody.store import CustodyStore

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def hexstr(value: Any) -> str:
    """0x-prefixed lower-case hex of HexBytes/bytes/str."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def topic_address(topic: Any) -> str:
    return "0x" + hexstr(topic)[-40:]


class EthereumSource:
    def __init__(
        self, spec: ChainSpec, w3: AsyncWeb3, store: CustodyStore, registry: AssetRegistry
    ) -> None:
        self.spec = spec
        self.w3 = w3
        self.store = store
        self.registry = registry
        native = registry.native(spec.name)
        self.native_asset = native.asset_id if native else None
        self.tokens = {
            a.contract.lower(): a.asset_id for a in registry.on_chain(spec.name) if a.contract
        }

    async def tip_height(self) -> int:
        return int(await self.w3.eth.block_number)

    async def hash_at(self, height: int) -> str | None:
        try:
            block = await self.w3.eth.get_block(height)
        except BlockNotFound:
            return None
        return hexstr(block["hash"])

    async def block(self, height: int) -> ScannedBlock:
        block = await self.w3.eth.get_block(height, full_transactions=True)
        block_hash = hexstr(block["hash"])
        watched = self.store.watched(self.spec.name)
        found: list[Found] = []
        if self.native_asset is not None:
            for tx in block["transactions"]:
                to = tx.get("to")
                if not to or tx["value"] == 0 or to.lower() not in watched:
                    continue
                receipt = await self.w3.eth.get_transaction_receipt(tx["hash"])
                if receipt["status"] != 1:
                    continue
                found.append(
                    Found(
                        f"{self.spec.name}:{hexstr(tx['hash'])}:-1",
                        watched[to.lower()],
                        self.native_asset,
                        int(tx["value"]),
                    )
                )
        if self.tokens and watched:
            logs = await self.w3.eth.get_logs(
                {
                    "blockHash": block["hash"],
                    "address": [self.w3.to_checksum_address(c) for c in self.tokens],
                    "topics": [TRANSFER_TOPIC],
                }
            )
            for entry in logs:
                topics = entry["topics"]
                if len(topics) != 3 or entry.get("removed"):
                    continue
                to = topic_address(topics[2])
                if to not in watched:
                    continue
                found.append(
                    Found(
                        f"{self.spec.name}:{hexstr(entry['transactionHash'])}:{int(entry['logIndex'])}",
                        watched[to],
                        self.tokens[entry["address"].lower()],
                        int.from_bytes(bytes(entry["data"]), "big"),
                    )
                )
        return ScannedBlock(int(block["number"]), block_hash, hexstr(block["parentHash"]), found)
