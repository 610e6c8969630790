"""Reach every chain node of a custody config once, before a server starts.

Why: ``kootabase serve --custody-config`` with a wrong ``rpc_url`` (or a node that is down, or
wrong Bitcoin Core RPC credentials) started an exchange whose log then said
``custody_scan_failed`` every two seconds, with aiohttp's text of the error. Like the other
outward connections of the start (``--ledger-dsn``, ``--backoffice-dsn``, ``--nats``), the
nodes are asked once first, and a failure is one line naming the chain, the URL and what went
wrong in words. One cheap call per chain: ``eth_chainId`` (Ethereum), ``getblockcount`` (the
Bitcoin family, over `custody.btc_rpc`, so the credentials are checked too).
"""

from __future__ import annotations

import json
from typing import Final

import aiohttp

from custody.assets import ChainKind
from custody.btc_rpc import BitcoinRpc, RpcError
from custody.config import CustodyConfig, NodeConfig
from engine.neterrors import describe
from engine.usererror import UserError

TIMEOUT_S: Final = 10.0
URL_HINT: Final = "is the node running? check rpc_url in the custody config"


async def check_nodes(config: CustodyConfig, timeout_s: float = TIMEOUT_S) -> None:
    """`UserError` (one line) for the first chain whose node does not answer as it should."""
    for name, node in config.nodes.items():
        await check_node(name, node, timeout_s)


async def check_node(name: str, node: NodeConfig, timeout_s: float = TIMEOUT_S) -> None:
    url = node.rpc_url
    try:
        if node.chain.kind is ChainKind.ETHEREUM:
            await _eth_chain_id(url, timeout_s)
        else:
            rpc = BitcoinRpc(url, node.rpc_user, node.rpc_password, timeout_s=timeout_s)
            try:
                await rpc.call("getblockcount")
            finally:
                await rpc.close()
    except RpcError as exc:
        if exc.code in (401, 403):
            raise UserError(
                f"the {name} node at {url} refused the RPC credentials (HTTP {exc.code})",
                hint="check rpc_user and rpc_password in the custody config",
            ) from None
        raise UserError(
            f"the {name} node at {url} did not answer as a node: {exc.code} {exc.message[:120]}",
            hint=URL_HINT,
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UserError(
            f"cannot reach the {name} node at {url}: {describe(exc)}", hint=URL_HINT
        ) from None


async def _eth_chain_id(url: str, timeout_s: float) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=body) as resp,
    ):
        text = await resp.text()
    try:
        result = json.loads(text)["result"]
        return int(result, 16)
    except (ValueError, KeyError, TypeError):
        raise RpcError("eth_chainId", resp.status, text) from None
