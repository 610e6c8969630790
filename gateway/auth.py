"""Signed requests in the dialect: HMAC-SHA256 (hex) or Ed25519 (base64), timestamp and
recvWindow, and a replay guard.

What is signed:

- WS API: every parameter except ``signature``, sorted by name, as ``k=v`` joined with ``&``.
- REST: the query string exactly as sent, immediately followed by the request body.

Timing (the dialect's rule): refused with -1021 when ``timestamp`` is more than 1 s ahead of the
server clock or older than ``recvWindow`` ms (default 5000, at most 60000). The replay guard is an
extension: a signature that changes state (orders, cancels) is accepted once; within its
recvWindow the same signature again is refused (-1022) so a captured request cannot be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature

from gateway import errors
from gateway.keys import ApiKey, KeyStore

MAX_RECV_WINDOW_MS: Final = 60_000
DEFAULT_RECV_WINDOW_MS: Final = 5_000
FUTURE_TOLERANCE_MS: Final = 1_000


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


def _int_param(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    v = params.get(name)
    if v is None:
        if default is None:
            raise errors.mandatory(name)
        return default
    if isinstance(v, bool):
        raise errors.illegal(name, "^[0-9]{1,20}$")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit() and len(v) <= 20:
        return int(v)
    raise errors.illegal(name, "^[0-9]{1,20}$")


def check_timestamp(params: Mapping[str, Any], now: int | None = None) -> int:
    """Validate ``timestamp``/``recvWindow``; returns the expiry (ms) of this signature."""
    ts = _int_param(params, "timestamp")
    window = _int_param(params, "recvWindow", DEFAULT_RECV_WINDOW_MS)
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


def lookup_key(keys: KeyStore, api_key: Any) -> ApiKey:
    if not isinstance(api_key, str) or not api_key:
        raise errors.ApiError(errors.BAD_API_KEY_FMT, "API-key format invalid.", status=401)
    key = keys.get(api_key)
    if key is None:
        raise errors.ApiError(
            errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status=401
        )
    return key


def verify(key: ApiKey, payload: bytes, signature: Any) -> None:
    """Raise -1022 unless ``signature`` signs ``payload`` with ``key``."""
    if not isinstance(signature, str) or not signature or len(signature) > 512:
        raise errors.BAD_SIGNATURE
    if key.hmac_secret is not None:
        expected = hmac.new(key.hmac_secret, payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise errors.BAD_SIGNATURE
        return
    assert key.public_key is not None
    try:
        raw = base64.b64decode(signature, validate=True)
        key.public_key.verify(raw, payload)
    except (binascii.Error, ValueError, InvalidSignature):
        raise errors.BAD_SIGNATURE from None


def require(key: ApiKey, permission: str) -> None:
    if not key.can(permission):
        raise errors.ApiError(
            errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status=401
        )


class ReplayGuard:
    """Signatures seen recently (each kept until its recvWindow has passed)."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._seen: dict[str, int] = {}
        self._max = max_entries
        self._last_prune = 0

    def check(self, signature: str, expires_ms: int, now: int | None = None) -> None:
        now = now_ms() if now is None else now
        if now - self._last_prune > 1_000 or len(self._seen) >= self._max:
            self._seen = {s: e for s, e in self._seen.items() if e >= now}
            self._last_prune = now
        if signature in self._seen:
            raise errors.ApiError(
                errors.INVALID_SIGNATURE,
                "Signature for this request was already used (replayed request).",
            )
        if len(self._seen) >= self._max:
            raise errors.ApiError(errors.TOO_MANY_REQUESTS, "Too many signed requests.", 429)
        self._seen[signature] = expires_ms


def sign_hmac(secret: str, payload: bytes) -> str:
    """Client side (SDK, tests): the hex HMAC-SHA256 signature."""
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
