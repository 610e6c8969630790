"""Reach every chain node of a custody config once, before a server starts.

Why: ``kootabase serve --custody-config`` with a wrong ``rpc_url`` (or wrong Bitcoin Core RPC
credentials) started an exchange whose log then said ``custody_scan_failed`` every two seconds,
with aiohttp's text of the error. The nodes are asked once first, with one cheap call per chain:
``eth_chainId`` (Ethereum), ``getblockcount`` (the Bitcoin family, over `custody.btc_rpc`, so
the credentials are checked too).

Two kinds of failure, two answers. A mistake in the config (credentials refused, a host name
that does not resolve, a URL that answers but is not a node) stops the start in one line naming
the chain, the URL and what went wrong: it will not fix itself. A node that is down or busy
(connection refused, no answer in time) does not: one chain's node in maintenance must not keep
the whole venue closed, and the watchers already treat an outage as something to wait out
(each chain scans from its own checkpoint, so deposits are credited late, never lost). That
case comes back as a warning for `serve` to print, and ``/health`` shows the chain's watcher
failing until the node answers.
"""

from __future__ import annotations

import json
from typing import Final

import aiohttp

from custody.assets import ChainKind
from custody.btc_rpc import BitcoinRpc, RpcError
from custody.config import CustodyConfig, NodeConfig
from engine.neterrors import describe, unwrap
from engine.usererror import UserError

TIMEOUT_S: Final = 10.0
URL_HINT: Final = "is the node running? check rpc_url in the custody config"


async def check_nodes(config: CustodyConfig, timeout_s: float = TIMEOUT_S) -> list[str]:
    """`UserError` (one line) for the first chain whose config is wrong; otherwise one warning
    line per chain whose node is down (empty when every node answered)."""
    warnings = []
    for name, node in config.nodes.items():
        down = await check_node(name, node, timeout_s)
        if down is not None:
            warnings.append(down)
    return warnings


async def check_node(name: str, node: NodeConfig, timeout_s: float = TIMEOUT_S) -> str | None:
    """None when the node answered as a node; a warning line when it is down; `UserError`
    when the config is wrong."""
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
        if _is_outage(exc):
            return (
                f"the {name} node at {url} is down ({describe(exc)}): starting without it; "
                f"{name} deposits and withdrawals wait until it answers"
            )
        raise UserError(
            f"cannot reach the {name} node at {url}: {describe(exc)}", hint=URL_HINT
        ) from None
    return None


def _is_outage(exc: BaseException) -> bool:
    """Down or busy (worth waiting for) rather than misconfigured (worth stopping for)."""
    return isinstance(unwrap(exc), ConnectionRefusedError | TimeoutError)


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
