"""Signed REST client (aiohttp): the query string (GET/DELETE) or form body (POST/PUT) is
signed as sent, the signature appended last, the key in ``X-MBX-APIKEY``."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

from gateway.client.credentials import Credentials
from gateway.client.ws import ClientError


class RestClient:
    def __init__(self, base_url: str, credentials: Credentials | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.credentials = credentials
        self.session = aiohttp.ClientSession()
        self.last_headers: dict[str, str] = {}

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def signed_query(self, params: dict[str, Any]) -> str:
        assert self.credentials is not None
        params = {**params, "timestamp": time.time_ns() // 1_000_000}
        query = urlencode(params)
        signature = self.credentials.sign(query.encode())
        return f"{query}&{urlencode({'signature': signature})}"

    async def raw(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        hdrs = dict(headers or {})
        if self.credentials is not None:
            hdrs.setdefault("X-MBX-APIKEY", self.credentials.api_key)
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(method, url, data=body, headers=hdrs) as resp:
            self.last_headers = dict(resp.headers)
            data = await resp.json(content_type=None)
            return resp.status, data

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, *, signed: bool = False
    ) -> Any:
        params = params or {}
        text = self.signed_query(params) if signed else urlencode(params)
        if method in ("POST", "PUT"):
            status, data = await self.raw(method, path, body=text)
        else:
            status, data = await self.raw(method, path, query=text)
        if status != 200:
            data = data if isinstance(data, dict) else {}
            raise ClientError(status, data.get("code", 0), data.get("msg", ""), data.get("data"))
        return data
