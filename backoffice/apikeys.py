"""A user's own API keys: create (permissions, IP allow-list), list, revoke, with an access
token. A key that may withdraw also needs an IP allow-list and a fresh TOTP code. The keys
themselves are the gateway's (`gateway.keys.KeyStore`, the same store and functions the
operator's ``accounts keys ...`` uses); the identity store only records which user made
which key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from backoffice import errors
from backoffice.errors import BackofficeError
from backoffice.store import IdentityStore
from gateway.keys import PERMISSIONS, KeyStore

if TYPE_CHECKING:
    from backoffice.auth import Session
    from backoffice.sessionkeys import SessionKeys

SecondFactor = Callable[["Session", object, str], Awaitable[None]]
"""Checks a TOTP code for the session's user (`backoffice.auth.Auth.second_factor`)."""

MAX_KEYS_PER_USER: Final = 20
MAX_IP_ALLOW: Final = 32
MAX_PEM_CHARS: Final = 1_024


def parse_ip_allow(value: object) -> list[str]:
    """Addresses or CIDR networks, normalised (``10.0.0.1`` -> ``10.0.0.1/32``)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_IP_ALLOW:
        raise BackofficeError(
            400,
            errors.INVALID_IP_ALLOW,
            f"ip_allow must be a list of at most {MAX_IP_ALLOW} addresses",
        )
    out: list[str] = []
    for item in value:
        try:
            if not isinstance(item, str) or len(item) > 64:
                raise ValueError(item)
            out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise BackofficeError(
                400, errors.INVALID_IP_ALLOW, f"not an address or network: {str(item)[:64]!r}"
            ) from None
    return sorted(set(out))


def parse_permissions(value: object) -> tuple[str, ...]:
    if value is None:
        return ("read",)
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise BackofficeError(
            400, errors.INVALID_PERMISSION, "permissions must be a non-empty list of strings"
        )
    for p in value:
        if p not in PERMISSIONS:
            raise BackofficeError(
                400,
                errors.INVALID_PERMISSION,
                f"unknown permission {p[:32]!r} (known: {', '.join(PERMISSIONS)})",
            )
    return tuple(p for p in PERMISSIONS if p in value)


class UserKeys:
    def __init__(
        self,
        store: IdentityStore,
        keys: KeyStore,
        second_factor: SecondFactor,
        session_keys: SessionKeys | None = None,
    ) -> None:
        self.store, self.keys = store, keys
        self.second_factor = second_factor
        self.session_keys = session_keys

    @staticmethod
    def _account(session: Session) -> int:
        if session.user.account_id is None:
            raise BackofficeError(409, errors.NO_TRADING_ACCOUNT, "this user has no account")
        return session.user.account_id

    def list(self, session: Session) -> list[dict[str, Any]]:
        """Every key of the user's trading account (revoked ones with ``revoked_ms``)."""
        account_id = self._account(session)
        return [
            {k: v for k, v in e.items() if k != "account_id"}
            for e in self.keys.listing()
            if e["account_id"] == account_id
        ]

    async def create(self, session: Session, body: dict[str, Any], ip: str) -> dict[str, Any]:
        account_id = self._account(session)
        permissions = parse_permissions(body.get("permissions"))
        ip_allow = parse_ip_allow(body.get("ip_allow"))
        if "withdraw" in permissions and not ip_allow:
            raise BackofficeError(
                400,
                errors.INVALID_IP_ALLOW,
                "a key with the withdraw permission needs an ip_allow list",
            )
        if "withdraw" in permissions:
            await self.second_factor(session, body.get("totp"), ip)
        pem = body.get("ed25519_public_pem")
        if pem is not None and (not isinstance(pem, str) or len(pem) > MAX_PEM_CHARS):
            raise errors.bad_request("ed25519_public_pem must be a PEM string")
        bound = body.get("session", False)
        if not isinstance(bound, bool):
            raise errors.bad_request("session must be true or false")
        if bound and self.session_keys is None:
            raise errors.bad_request("session keys are not available on this server")
        if self.session_keys is not None:
            # keys of ended or idle sessions are not counted (nor kept)
            await self.session_keys.sweep()
            if bound:  # this session's previous key goes before the count
                await self.session_keys.end_session(session.claims.session_id)
        active = sum(1 for e in self.list(session) if e["revoked_ms"] is None)
        if active >= MAX_KEYS_PER_USER:
            raise BackofficeError(
                409, errors.TOO_MANY_API_KEYS, f"at most {MAX_KEYS_PER_USER} active keys"
            )
        try:
            new = self.keys.create(
                account_id,
                permissions,
                ed25519_public_pem=pem.encode() if pem else None,
                ip_allow=tuple(ip_allow),
            )
        except ValueError as exc:  # demo account asking for withdraw, a non-Ed25519 key
            raise errors.bad_request(str(exc)) from None
        await self.store.add_api_key(session.user.user_id, new.api_key, ip_allow)
        if bound:
            assert self.session_keys is not None
            await self.session_keys.bind(
                new.api_key, session.claims.session_id, session.user.user_id
            )
        return {
            "session": bound,
            "api_key": new.api_key,
            "kind": new.kind,
            "permissions": list(new.permissions),
            "ip_allow": ip_allow,
            "secret": new.secret,
        }

    def revoke(self, session: Session, api_key: str) -> dict[str, Any]:
        account_id = self._account(session)
        key = self.keys.get(api_key)
        if key is None or key.account_id != account_id:  # someone else's key: not found
            raise BackofficeError(404, errors.API_KEY_NOT_FOUND, "no such active API key")
        return self.keys.revoke(api_key)
