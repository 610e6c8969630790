"""A minimal async client for Bitcoin Core's JSON-RPC (bitcoind, litecoind, ...).

Why not a library: the handful of calls custody needs (getblockcount, getblockhash, getblock
verbosity 2, scantxoutset, sendrawtransaction, getrawtransaction, testmempoolaccept) are plain
JSON-RPC 1.0 over HTTP with basic auth. Amounts arrive as JSON numbers in whole coins; they are
parsed as `Decimal` (never float) and converted to integer satoshis at once.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import aiohttp

COIN = 100_000_000


class RpcError(RuntimeError):
    """The node answered with a JSON-RPC error (a definite refusal, e.g. a rejected tx)."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.method = method
        self.code = code
        self.message = message


def to_sats(value: Decimal | int | str) -> int:
    """Whole coins (as the node prints them) to satoshis, exactly."""
    sats = Decimal(value) * COIN
    if sats != sats.to_integral_value():
        raise ValueError(f"amount {value} has sub-satoshi digits")
    return int(sats)


class BitcoinRpc:
    def __init__(self, url: str, user: str, password: str, *, timeout_s: float = 30.0) -> None:
        self.url = url
        # A header, not ClientSession(auth=BasicAuth(...)): aiohttp deprecates both.
        self._headers = {"Authorization": aiohttp.encode_basic_auth(user, password)}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def call(self, method: str, *params: Any) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}
        async with self._session.post(self.url, json=body) as resp:
            text = await resp.text()
        try:
            reply = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            raise RpcError(method, resp.status, text[:200]) from None
        if reply.get("error"):
            err = reply["error"]
            raise RpcError(method, int(err.get("code", 0)), str(err.get("message", "")))
        return reply["result"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
