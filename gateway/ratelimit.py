"""Rate limits in the dialect: fixed windows, usage echoed, 429 then a temporary ban (418).

- REQUEST_WEIGHT per IP and per API key over 1 minute (each method has a weight).
- ORDERS per account over 10 seconds and over 1 day (counted on every order request), as the
  dialect counts them; the daily count survives a restart (`gateway.ordercounts`).
- Concurrent WS connections per IP.

Windows are fixed intervals aligned to the epoch, like the dialect's (the counter restarts at
each minute boundary). A request over a limit gets 429 with ``retryAfter`` (the start of the next
window). A caller that keeps sending after its 429s - more than ``ban_after`` refused requests in
one window - is banned (418) for ``ban_seconds``, doubling on each repeat up to ``max_ban``.
Weight of refused requests still counts (so a flood cannot hide behind its own 429s).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from gateway import errors
from gateway.limits import Limits as Limits

MINUTE_MS: Final = 60_000


class Window:
    """A fixed-window counter per key."""

    __slots__ = ("_counts", "_json_head", "interval_ms", "label", "limit")

    def __init__(self, limit: int, interval_ms: int, label: tuple[str, str, int]) -> None:
        self.limit = limit
        self.interval_ms = interval_ms
        self.label = label
        self._counts: dict[Any, list[int]] = {}
        described = msgspec.json.encode(self.describe(0))
        assert described.endswith(b',"count":0}')
        self._json_head = described[:-2]
        """`describe` as JSON up to the count: the WS API echoes it on every request."""

    def add(self, key: Any, amount: int, now_ms: int) -> int:
        """Add ``amount`` and return the count in the current window."""
        w = now_ms // self.interval_ms
        entry = self._counts.get(key)
        if entry is None or entry[0] != w:
            if len(self._counts) > 100_000:
                self._counts = {k: e for k, e in self._counts.items() if e[0] == w}
            entry = self._counts[key] = [w, 0]
        entry[1] += amount
        return entry[1]

    def counts(self, now_ms: int) -> dict[Any, int]:
        """Every key's count in the current window."""
        w = now_ms // self.interval_ms
        return {k: e[1] for k, e in self._counts.items() if e[0] == w}

    def count(self, key: Any, now_ms: int) -> int:
        entry = self._counts.get(key)
        return entry[1] if entry is not None and entry[0] == now_ms // self.interval_ms else 0

    def retry_after_ms(self, now_ms: int) -> int:
        return (now_ms // self.interval_ms + 1) * self.interval_ms

    def describe(self, count: int) -> dict[str, Any]:
        kind, interval, num = self.label
        return {
            "rateLimitType": kind,
            "interval": interval,
            "intervalNum": num,
            "limit": self.limit,
            "count": count,
        }

    def describe_json(self, count: int) -> bytes:
        """`describe` encoded (the same bytes): a concatenation instead of a dict and its
        encoding, on every WS request."""
        return b"%b%d}" % (self._json_head, count)


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ip_weight = Window(
            limits.weight_per_minute, MINUTE_MS, ("REQUEST_WEIGHT", "MINUTE", 1)
        )
        self.key_weight = Window(
            limits.weight_per_minute, MINUTE_MS, ("REQUEST_WEIGHT", "MINUTE", 1)
        )
        self.orders_10s = Window(limits.orders_per_10s, 10_000, ("ORDERS", "SECOND", 10))
        self.orders_day = Window(limits.orders_per_day, 86_400_000, ("ORDERS", "DAY", 1))
        self._refused = Window(limits.ban_after, MINUTE_MS, ("REFUSED", "MINUTE", 1))
        self._banned: dict[str, tuple[float, float]] = {}
        """ip -> (banned until ms, last ban length s)."""
        self.connections: dict[str, int] = {}

    # ---- bans -------------------------------------------------------------------------------

    def check_ban(self, ip: str, now_ms: int) -> None:
        ban = self._banned.get(ip)
        if ban is not None and now_ms < ban[0]:
            until = int(ban[0])
            raise errors.ApiError(
                errors.TOO_MANY_REQUESTS,
                f"Way too many requests; IP banned until {until}.",
                status=418,
                data={"serverTime": now_ms, "retryAfter": until},
            )

    def _refuse(self, ip: str, now_ms: int, err: errors.ApiError) -> errors.ApiError:
        if self._refused.add(ip, 1, now_ms) > self.limits.ban_after:
            prev = self._banned.get(ip)
            length = (
                self.limits.ban_seconds
                if prev is None
                else min(prev[1] * 2, self.limits.max_ban_seconds)
            )
            self._banned[ip] = (now_ms + length * 1000, length)
            self.check_ban(ip, now_ms)
        return err

    # ---- weight and orders ------------------------------------------------------------------

    def request(self, ip: str, key: str | None, weight: int, now_ms: int) -> list[dict[str, Any]]:
        """Count one request; raise 429/418 when over a limit; return the usage to echo."""
        window, count = self.weigh(ip, key, weight, now_ms)
        return [window.describe(count)]

    def weigh(self, ip: str, key: str | None, weight: int, now_ms: int) -> tuple[Window, int]:
        """Count one request; raise 429/418 when over a limit; return the window and count
        to echo (`request` as a dict, the WS API as pre-encoded JSON)."""
        self.check_ban(ip, now_ms)
        n_ip = self.ip_weight.add(ip, weight, now_ms)
        usage = self.ip_weight, n_ip
        over = n_ip > self.ip_weight.limit
        if key is not None:
            n_key = self.key_weight.add(key, weight, now_ms)
            over = over or n_key > self.key_weight.limit
            usage = self.key_weight, max(n_ip, n_key)
        if over:
            retry = self.ip_weight.retry_after_ms(now_ms)
            raise self._refuse(
                ip,
                now_ms,
                errors.ApiError(
                    errors.TOO_MANY_REQUESTS,
                    f"Too much request weight used; current limit is {self.ip_weight.limit} "
                    "request weight per 1 MINUTE. Please use WebSocket Streams for live updates "
                    "to avoid polling the API.",
                    status=429,
                    data={"serverTime": now_ms, "retryAfter": retry},
                ),
            )
        return usage

    def order(self, ip: str, account_id: int, now_ms: int) -> list[dict[str, Any]]:
        """Count one new order of ``account_id`` (the dialect counts ORDERS per account)."""
        n10, nday = self.count_order(ip, account_id, now_ms)
        return [self.orders_10s.describe(n10), self.orders_day.describe(nday)]

    def count_order(self, ip: str, account_id: int, now_ms: int) -> tuple[int, int]:
        """`order` without the rendering: the 10 s and daily counts to echo."""
        n10 = self.orders_10s.add(account_id, 1, now_ms)
        nday = self.orders_day.add(account_id, 1, now_ms)
        if n10 <= self.orders_10s.limit and nday <= self.orders_day.limit:
            return n10, nday
        for window, n in ((self.orders_10s, n10), (self.orders_day, nday)):
            if n > window.limit:
                _, interval, num = window.label
                raise self._refuse(
                    ip,
                    now_ms,
                    errors.ApiError(
                        errors.TOO_MANY_ORDERS,
                        f"Too many new orders; current limit is {window.limit} orders per "
                        f"{num} {interval}.",
                        status=429,
                        data={"serverTime": now_ms, "retryAfter": window.retry_after_ms(now_ms)},
                    ),
                )
        return n10, nday

    def order_usage(self, account_id: int, now_ms: int) -> list[dict[str, Any]]:
        return [
            self.orders_10s.describe(self.orders_10s.count(account_id, now_ms)),
            self.orders_day.describe(self.orders_day.count(account_id, now_ms)),
        ]

    # ---- connections ------------------------------------------------------------------------

    def connect(self, ip: str, now_ms: int) -> None:
        self.check_ban(ip, now_ms)
        n = self.connections.get(ip, 0)
        if n >= self.limits.connections_per_ip:
            raise self._refuse(
                ip,
                now_ms,
                errors.ApiError(
                    errors.TOO_MANY_REQUESTS,
                    f"Too many connections; current limit is {self.limits.connections_per_ip} "
                    "per IP.",
                    status=429,
                    data={"serverTime": now_ms, "retryAfter": now_ms + 1000},
                ),
            )
        self.connections[ip] = n + 1

    def disconnect(self, ip: str) -> None:
        n = self.connections.get(ip, 0) - 1
        if n <= 0:
            self.connections.pop(ip, None)
        else:
            self.connections[ip] = n
