"""Per-address throttles in bounded memory: failed logins, and sign-ups.

Per-account lockout lives in the store (`IdentityStore.login_failed`), so it survives a
restart and holds across gateways sharing a PostgreSQL store. This one guards against one
address trying many accounts (password spraying): at most `max_failures` failed logins per
`window_s` per address. Memory is bounded: at most `max_addresses` addresses are tracked,
least recently seen dropped first (an attacker with more addresses than that gets no more than
the per-account lockout allows anyway). The same counter bounds sign-ups per address, since
each one journals a new trading account.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Final

MAX_ADDRESSES: Final = 100_000


class IpThrottle:
    def __init__(
        self, max_failures: int = 20, window_s: float = 300.0, max_addresses: int = MAX_ADDRESSES
    ) -> None:
        assert max_failures > 0 and window_s > 0 and max_addresses > 0
        self.max_failures, self.window_s, self.max_addresses = (
            max_failures,
            window_s,
            max_addresses,
        )
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, ip: str, now: float) -> deque[float] | None:
        times = self._failures.get(ip)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[ip]
            return None
        return times

    def retry_after_s(self, ip: str, now: float | None = None) -> float:
        """0 if this address may go on; else seconds until its oldest counted event ages out."""
        now = time.monotonic() if now is None else now
        times = self._recent(ip, now)
        if times is None or len(times) < self.max_failures:
            return 0.0
        return max(0.001, times[0] + self.window_s - now)

    def note(self, ip: str, now: float | None = None) -> None:
        """Count one event (a failed login, a sign-up) of this address."""
        now = time.monotonic() if now is None else now
        times = self._recent(ip, now)
        if times is None:
            times = self._failures[ip] = deque(maxlen=self.max_failures)
        times.append(now)
        self._failures.move_to_end(ip)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        assert len(self._failures) <= self.max_addresses

    def __len__(self) -> int:
        return len(self._failures)
