"""WS API client: request/response by id over one connection, user data events on a queue.

Requests may be pipelined: each call awaits only its own response (matched by ``id``), so many
concurrent calls share one connection and end up in the same group commit on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import websockets

from gateway.client.credentials import Credentials


class ClientError(Exception):
    """An error answer: ``code``/``msg`` from the server, ``status`` its HTTP-like status."""

    def __init__(self, status: int, code: int, msg: str, data: Any = None) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.data = data


def _payload(params: dict[str, Any]) -> bytes:
    def value(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return "&".join(f"{k}={value(params[k])}" for k in sorted(params)).encode()


class WsApiClient:
    def __init__(self, ws: Any, credentials: Credentials | None) -> None:
        self.ws = ws
        self.credentials = credentials
        self.logged_on = False
        self.rate_limits: list[dict[str, Any]] = []
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, url: str, credentials: Credentials | None = None, **kwargs: Any
    ) -> AsyncIterator[WsApiClient]:
        async with websockets.connect(url, max_size=None, **kwargs) as ws:
            client = cls(ws, credentials)
            try:
                yield client
            finally:
                client._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await client._reader

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "event" in msg and "subscriptionId" in msg:
                    self.events.put_nowait(msg["event"])
                    continue
                fut = self._pending.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed"))
            self._pending.clear()

    def _sign(self, params: dict[str, Any]) -> dict[str, Any]:
        assert self.credentials is not None, "signed request without credentials"
        params = {
            **params,
            "apiKey": self.credentials.api_key,
            "timestamp": time.time_ns() // 1_000_000,
        }
        params["signature"] = self.credentials.sign(_payload(params))
        return params

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, signed: bool = False
    ) -> Any:
        """Send one request; return its ``result`` or raise `ClientError`."""
        params = dict(params or {})
        if signed and not self.logged_on:
            params = self._sign(params)
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        await self.ws.send(json.dumps({"id": req_id, "method": method, "params": params}))
        msg = await fut
        self.rate_limits = msg.get("rateLimits", self.rate_limits)
        if msg.get("status") != 200:
            err = msg.get("error", {})
            raise ClientError(
                msg.get("status", 0), err.get("code", 0), err.get("msg", ""), err.get("data")
            )
        return msg["result"]

    # ---- session ----------------------------------------------------------------------------

    async def logon(self, *, cancel_on_disconnect: bool = False) -> Any:
        params: dict[str, Any] = {}
        if cancel_on_disconnect:
            params["cancelOnDisconnect"] = True
        result = await self.request("session.logon", self._sign(params))
        self.logged_on = True
        return result

    async def logout(self) -> Any:
        result = await self.request("session.logout")
        self.logged_on = False
        return result

    # ---- trading ----------------------------------------------------------------------------

    async def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        *,
        quantity: str | None = None,
        price: str | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        quote_order_qty: str | None = None,
        **extra: Any,
    ) -> Any:
        params: dict[str, Any] = {"symbol": symbol, "side": side, "type": type, **extra}
        for name, value in (
            ("quantity", quantity),
            ("price", price),
            ("timeInForce", time_in_force),
            ("newClientOrderId", client_order_id),
            ("quoteOrderQty", quote_order_qty),
        ):
            if value is not None:
                params[name] = value
        return await self.request("order.place", params, signed=True)

    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> Any:
        params = _order_ref({"symbol": symbol}, order_id, client_order_id)
        return await self.request("order.cancel", params, signed=True)

    async def amend_keep_priority(
        self,
        symbol: str,
        new_qty: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
    ) -> Any:
        params = _order_ref({"symbol": symbol, "newQty": new_qty}, order_id, client_order_id)
        return await self.request("order.amend.keepPriority", params, signed=True)

    async def cancel_replace(
        self,
        symbol: str,
        cancel_order_id: int,
        side: str,
        type: str,
        *,
        mode: str = "STOP_ON_FAILURE",
        **order: Any,
    ) -> Any:
        params = {
            "symbol": symbol,
            "cancelOrderId": cancel_order_id,
            "side": side,
            "type": type,
            "cancelReplaceMode": mode,
            **order,
        }
        return await self.request("order.cancelReplace", params, signed=True)

    async def cancel_all(self, symbol: str) -> Any:
        return await self.request("openOrders.cancelAll", {"symbol": symbol}, signed=True)

    async def order_status(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> Any:
        params = _order_ref({"symbol": symbol}, order_id, client_order_id)
        return await self.request("order.status", params, signed=True)

    async def open_orders(self, symbol: str | None = None) -> Any:
        return await self.request(
            "openOrders.status", {"symbol": symbol} if symbol else {}, signed=True
        )

    async def account(self) -> Any:
        return await self.request("account.status", {}, signed=True)

    async def dead_mans_switch(self, timeout_ms: int) -> Any:
        """Extension: cancel all open orders unless called again within ``timeout_ms``."""
        return await self.request("deadMansSwitch.set", {"timeoutMs": timeout_ms}, signed=True)

    # ---- user data --------------------------------------------------------------------------

    async def subscribe_user_data(self) -> int:
        result = await self.request("userDataStream.subscribe")
        return int(result["subscriptionId"])

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)


def _order_ref(
    params: dict[str, Any], order_id: int | None, client_order_id: str | None
) -> dict[str, Any]:
    """Name an existing order the dialect's way: ``orderId`` and/or ``origClientOrderId``."""
    if order_id is not None:
        params["orderId"] = order_id
    if client_order_id is not None:
        params["origClientOrderId"] = client_order_id
    return params
