"""Signed requests in the dialect: HMAC-SHA256 (hex) or Ed25519 (base64), timestamp and
recvWindow, and a replay guard.

What is signed:

- WS API: every parameter except ``signature``, sorted by name, as ``k=v`` joined with ``&``.
- REST: the query string *or* the form body (never both) exactly as sent, up to the
  ``&signature=`` that must be its last parameter (`gateway.rest`).

Timing (the dialect's rule): refused with -1021 when ``timestamp`` is more than 1 s ahead of the
server clock or older than ``recvWindow`` ms (default 5000, at most 60000). The replay guard is an
extension: a signed request that changes state (orders, cancels, withdrawals) or opens a session
(``session.logon``) is accepted once; within its recvWindow the same request again is refused
(-1022) so a captured request cannot be replayed. The guard remembers the API key and the signed
*payload*, not the signature text, so re-spelling the signature (hex in upper case, another
base64 encoding of the same bytes) or moving the same bytes between query string and body is
still the same request (docs/security.md, "Signed requests").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import time
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature

from gateway import errors
from gateway.keys import ApiKey, KeyStore
from gateway.params import get_int

SINGLE_USE_PERMISSIONS: Final = frozenset({"trade", "withdraw"})
"""A signed request needing one of these is accepted once (`ReplayGuard`), on REST and on the
WS API alike: the rule lives here, not at each route."""
MAX_RECV_WINDOW_MS: Final = 60_000
DEFAULT_RECV_WINDOW_MS: Final = 5_000
FUTURE_TOLERANCE_MS: Final = 1_000


_ORIGINS: Final = itertools.count(1)


def new_origin() -> int:
    """A number for a new connection, never reused in this process (`ReplayGuard` origins;
    ``id()`` of a closed connection's object can come back for the next one)."""
    return next(_ORIGINS)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _wire_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def ws_payload(params: Mapping[str, Any]) -> bytes:
    return "&".join(
        f"{k}={_wire_value(params[k])}" for k in sorted(params) if k != "signature"
    ).encode()


def check_timestamp(params: Mapping[str, Any], now: int | None = None) -> int:
    """Validate ``timestamp``/``recvWindow``; returns the expiry (ms) of this signature."""
    ts = get_int(params, "timestamp", required=True)
    window = get_int(params, "recvWindow", default=DEFAULT_RECV_WINDOW_MS)
    assert ts is not None and window is not None
    if window <= 0 or window > MAX_RECV_WINDOW_MS:
        raise errors.ApiError(errors.BAD_RECV_WINDOW, "recvWindow must be less than 60000")
    now = now_ms() if now is None else now
    if ts - now > FUTURE_TOLERANCE_MS:
        raise errors.ApiError(
            errors.INVALID_TIMESTAMP,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        )
    if now - ts > window:
        raise errors.ApiError(
            errors.INVALID_TIMESTAMP, "Timestamp for this request is outside of the recvWindow."
        )
    return ts + window


def lookup_key(keys: KeyStore, api_key: Any, ip: str | None = None) -> ApiKey:
    """The active key ``api_key``, if the client at ``ip`` may use it (its IP allow-list)."""
    if not isinstance(api_key, str) or not api_key:
        raise errors.ApiError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
    key = keys.get(api_key)
    if key is None or not key.allows(ip):
        raise errors.ApiError(
            errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status=401
        )
    return key


def verify(key: ApiKey, payload: bytes, signature: Any) -> None:
    """Raise -1022 unless ``signature`` signs ``payload`` with ``key``. The signature is
    compared as ASCII bytes: `hmac.compare_digest` raises TypeError on a ``str`` holding any
    other character, which was a 500 for a signature such as ``é``."""
    if not isinstance(signature, str) or not signature or len(signature) > 512:
        raise errors.BAD_SIGNATURE
    if not signature.isascii():
        raise errors.BAD_SIGNATURE
    if key.hmac_secret is not None:
        expected = hmac.new(key.hmac_secret, payload, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, signature.lower().encode()):
            raise errors.BAD_SIGNATURE
        return
    assert key.public_key is not None
    try:
        raw = base64.b64decode(signature, validate=True)
        key.public_key.verify(raw, payload)
    except (binascii.Error, ValueError, InvalidSignature):
        raise errors.BAD_SIGNATURE from None


def same_secret(sent: str, expected: str) -> bool:
    """Constant-time comparison of a secret sent in a header with the expected one, for any
    text a client can send: `hmac.compare_digest` raises TypeError on a non-ASCII ``str``,
    and a header's undecodable bytes arrive as surrogates that plain ``encode()`` refuses."""
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def require(key: ApiKey, permission: str) -> None:
    if not key.can(permission):
        raise errors.ApiError(
            errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status=401
        )


def request_digest(key: ApiKey, payload: bytes) -> bytes:
    """What the replay guard remembers of a verified request: its API key and the exact signed
    payload. A signature verifies only its payload, so every spelling of a valid signature for
    these bytes (hex case, base64 variants, or a second valid Ed25519 signature) maps here."""
    return hashlib.sha256(key.api_key.encode() + b"\n" + payload).digest()


class ReplayGuard:
    """Signed requests seen recently, by `request_digest` (each kept until its recvWindow has
    passed, after which the timestamp check refuses the request anyway).

    Neither the dialect's REST signature nor its WS API signature covers the method or the
    path, so the signed payload of a *read* (``GET /api/v3/openOrders?symbol=...``,
    ``order.status``) is also a valid signed payload for the *action* with the same parameters
    (``DELETE /api/v3/openOrders``, ``order.cancel``). Reads are remembered too (`note_read`):
    a payload seen in a read is not accepted for an action from another connection, so a
    captured read cannot be turned into a cancel. Reads themselves may repeat, and a client
    that sends a read and then an action with the same parameters in the same millisecond on
    one connection is served (its ``origin`` is the same)."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._used: dict[bytes, int] = {}
        """Payloads of accepted single-use requests -> expiry (ms)."""
        self._read: dict[bytes, tuple[int, int]] = {}
        """Payloads seen in read requests -> (expiry (ms), origin)."""
        self._max = max_entries
        self._last_prune = 0

    def _prune(self, now: int) -> None:
        if now - self._last_prune > 1_000 or len(self._used) + len(self._read) >= self._max:
            self._used = {s: e for s, e in self._used.items() if e >= now}
            self._read = {s: e for s, e in self._read.items() if e[0] >= now}
            self._last_prune = now
        if len(self._used) + len(self._read) >= self._max:
            raise errors.ApiError(errors.TOO_MANY_REQUESTS, "Too many signed requests.", 429)

    def check(
        self,
        key: ApiKey,
        payload: bytes,
        expires_ms: int,
        now: int | None = None,
        origin: int = 0,
    ) -> None:
        """Accept a single-use request's payload once, and not one already seen in a read from
        another ``origin`` (the connection's `new_origin` number)."""
        digest = request_digest(key, payload)
        now = now_ms() if now is None else now
        read = self._read.get(digest)
        if digest in self._used or (read is not None and read[1] != origin):
            raise errors.ApiError(
                errors.INVALID_SIGNATURE,
                "Signature for this request was already used (replayed request).",
            )
        self._prune(now)
        self._used[digest] = expires_ms

    def note_read(
        self,
        key: ApiKey,
        payload: bytes,
        expires_ms: int,
        now: int | None = None,
        origin: int = 0,
    ) -> None:
        """A verified read request's payload: it may come again as a read, not as an action
        from another connection (`check`)."""
        digest = request_digest(key, payload)
        if digest in self._read or digest in self._used:
            return
        self._prune(now_ms() if now is None else now)
        self._read[digest] = (expires_ms, origin)


def sign_hmac(secret: str, payload: bytes) -> str:
    """Client side (SDK, tests): the hex HMAC-SHA256 signature."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
