"""User data streams over the WS API: executionReport and outboundAccountPosition.

A logged-on session calls ``userDataStream.subscribe`` and gets a subscription id; events for
its account then arrive on the same connection as ``{"subscriptionId": n, "event": {...}}``.
Only accounts with a subscriber are watched by the store, so unwatched accounts cost nothing.
Events are rendered once per change and queued to each subscriber's outbox (never awaited on
the bridge's path: a slow client cannot slow the engine, it is disconnected instead).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from gateway import errors, wire

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.keys import ApiKey

_encode = msgspec.json.Encoder().encode


class Subscriber(Protocol):
    def push(self, data: bytes) -> None: ...


class UserStreams:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._subs: dict[int, dict[int, Subscriber]] = {}
        """account_id -> {subscription id: subscriber}."""
        self._keys: dict[int, ApiKey] = {}
        """subscription id -> the API key it was opened with: its events stop, and the
        subscription ends, the moment that key is revoked (or loses ``read``)."""
        self._next_id = 0

    def subscribe(self, key: ApiKey, subscriber: Subscriber) -> int:
        if not key.can("read"):
            raise errors.ApiError(
                errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401
            )
        account_id = key.account_id
        sub_id = self._next_id
        self._next_id += 1
        self._subs.setdefault(account_id, {})[sub_id] = subscriber
        self._keys[sub_id] = key
        self.gw.store.watched.add(account_id)
        return sub_id

    def unsubscribe(self, account_id: int, sub_id: int | None = None) -> None:
        subs = self._subs.get(account_id)
        if subs is None:
            return
        if sub_id is None:
            for i in subs:
                self._keys.pop(i, None)
            subs.clear()
        else:
            subs.pop(sub_id, None)
            self._keys.pop(sub_id, None)
        if not subs:
            del self._subs[account_id]
            self.gw.store.watched.discard(account_id)

    def end(self, sub_id: int) -> None:
        """End one subscription, whichever account it watches."""
        key = self._keys.get(sub_id)
        if key is not None:
            self.unsubscribe(key.account_id, sub_id)

    def drop(self, subscriber: Subscriber) -> None:
        for account_id in list(self._subs):
            for sub_id, s in list(self._subs[account_id].items()):
                if s is subscriber:
                    self.unsubscribe(account_id, sub_id)

    def publish(self) -> None:
        store = self.gw.store
        reports, dirty = store.drain()
        if not reports and not dirty:
            return
        now = time.time_ns() // 1_000_000
        for r in reports:
            subs = self._subs.get(r.order.account_id)
            if subs:
                m = store.markets[r.order.market_id]
                self._send(subs, wire.execution_report(r, m, self.gw.ids, now))
        for account_id, assets in dirty.items():
            subs = self._subs.get(account_id)
            if subs:
                self._send(
                    subs,
                    wire.account_position(
                        store, account_id, assets, store.last_ts_ns // 1_000_000, now
                    ),
                )

    def _send(self, subs: dict[int, Subscriber], event: dict[str, Any]) -> None:
        revoked: list[tuple[int, int]] = []
        for sub_id, s in subs.items():
            key = self._keys[sub_id]
            if not key.can("read"):
                revoked.append((key.account_id, sub_id))
                continue
            s.push(_encode({"subscriptionId": sub_id, "event": event}))
        for account_id, sub_id in revoked:
            self.unsubscribe(account_id, sub_id)

    def close(self) -> None:
        self._subs.clear()
        self._keys.clear()
