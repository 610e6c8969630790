"""Bitcoin-family deposits (BTC with bitcoind, LTC with litecoind): a `ChainSource` over
Bitcoin Core's JSON-RPC.

A deposit is any output of a block transaction whose scriptPubKey is one of our deposit scripts
(matching the script, not the node's rendering of the address, works on every Core version).
Idempotency key: ``chain:txid:vout``.
"""

from __future__ import annotations

from custody.assets import ChainSpec
from custody.btc_rpc import BitcoinRpc, RpcError, to_sats
from custody.scanner import Found, ScannedBlock
from custody.store import CustodyStore


class BitcoinSource:
    def __init__(
        self, spec: ChainSpec, rpc: BitcoinRpc, store: CustodyStore, asset_id: int
    ) -> None:
        self.spec = spec
        self.rpc = rpc
        self.store = store
        self.asset_id = asset_id

    async def tip_height(self) -> int:
        return int(await self.rpc.call("getblockcount"))

    async def hash_at(self, height: int) -> str | None:
        try:
            return str(await self.rpc.call("getblockhash", height))
        except RpcError as exc:
            if exc.code == -8:  # block height out of range
                return None
            raise

    async def block(self, height: int) -> ScannedBlock:
        block_hash = await self.rpc.call("getblockhash", height)
        block = await self.rpc.call("getblock", block_hash, 2)
        watched = self.store.watched(self.spec.name)
        found: list[Found] = []
        for tx in block["tx"]:
            for out in tx["vout"]:
                account = watched.get(out["scriptPubKey"].get("hex", ""))
                if account is None or out.get("ismweb"):
                    continue
                found.append(
                    Found(
                        f"{self.spec.name}:{tx['txid']}:{out['n']}",
                        account,
                        self.asset_id,
                        to_sats(out["value"]),
                    )
                )
        parent = block.get("previousblockhash", "0" * 64)
        return ScannedBlock(int(block["height"]), str(block["hash"]), str(parent), found)
