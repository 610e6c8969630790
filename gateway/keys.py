"""API keys: gateway state in the data directory, secrets never stored in clear.

Two kinds, as in the dialect:

- **Ed25519** (recommended): the server stores only the client's *public* key. A copy of the
  data directory reveals nothing that signs a request.
- **HMAC-SHA256**: the server must know the shared secret to verify a signature, so it cannot
  store only a hash. The secret is encrypted with AES-256-GCM (the API key as associated data)
  under a *master key kept outside the data directory* (``--master-key-file``, default
  ``$XDG_CONFIG_HOME/kootabase/master.key``, created 0600 on first use). A copy of the data
  directory alone yields ciphertext; the data directory and the master key together yield the
  secrets (that is inherent to HMAC; use Ed25519 where that matters).

Keys are not engine state (they change no balance) and are not journaled: ``keys.json`` is
written atomically (temp file created 0600 + fsync + rename). Secrets are shown once, at
creation or rotation, and never logged. Why persisted, not journaled: the journal is read by
auditors and replicas and must never carry a secret, even encrypted; and a key decides who may
send commands, not what a command does, so replay does not need it.

**Revocation** (``kootabase accounts keys revoke|rotate``, ``/admin/keys/...``) keeps the entry
in ``keys.json`` with ``revoked_ms`` (an audit trail) and drops it from the active keys, so a
revoked key stays revoked after a restart; a session that logged on with it loses every
permission at once (`ApiKey.revoked`).

**Demo accounts** (``serve --demo``, `mark_demo`) never hold the ``withdraw`` permission: their
money comes from no chain. The rule is applied here, where permissions are read, so it holds
for keys made before the rule existed too.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
import time
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from engine.filemodes import create_private
from engine.usererror import UserError

PERMISSIONS: Final = ("read", "trade", "withdraw")
HMAC: Final = "hmac"
ED25519: Final = "ed25519"
_ALNUM: Final = string.ascii_letters + string.digits


def default_master_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(os.environ.get("KOOTABASE_MASTER_KEY_FILE", Path(base) / "kootabase/master.key"))


def _token(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def load_master_key(path: Path) -> bytes:
    """Read (or create, 0600) the 32-byte master key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UserError(
            f"master key file {path} does not hold a base64 32-byte key",
            hint="pass the right --master-key-file",
        )
    return key


def ed25519_from_pem(pem: bytes) -> Ed25519PublicKey:
    """The Ed25519 public key in ``pem``; ValueError for anything else (not PEM, another
    algorithm, or one `cryptography` does not know, which raises UnsupportedAlgorithm)."""
    try:
        pub = load_pem_public_key(pem)
    except UnsupportedAlgorithm:
        raise ValueError("the public key is not an Ed25519 key") from None
    if not isinstance(pub, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return pub


@dataclass(slots=True)
class ApiKey:
    api_key: str
    account_id: int
    kind: str
    permissions: tuple[str, ...]
    created_ms: int
    hmac_secret: bytes | None = None
    """Decrypted in memory only."""
    public_key: Ed25519PublicKey | None = None
    revoked: bool = False
    """Set by `KeyStore.revoke`: a session holding this object loses every permission."""
    ip_allow: tuple[IPv4Network | IPv6Network, ...] = ()
    """Client addresses this key is accepted from (empty: any); `auth.lookup_key` checks."""

    def can(self, permission: str) -> bool:
        return not self.revoked and permission in self.permissions

    def allows(self, ip: str | None) -> bool:
        if not self.ip_allow:
            return True
        try:
            addr = ip_address(ip or "")
        except ValueError:
            return False
        return any(addr in net for net in self.ip_allow)


@dataclass(frozen=True, slots=True)
class NewKey:
    """What an operator is shown once: the API key and, for HMAC, the secret."""

    api_key: str
    account_id: int
    kind: str
    permissions: tuple[str, ...]
    secret: str | None


class KeyStore:
    def __init__(self, path: Path, master_key_file: Path) -> None:
        self.path = path
        self._keys: dict[str, ApiKey] = {}
        self._raw: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        if path.exists():
            entries = json.loads(path.read_text())["keys"]
        encrypted = sum(1 for e in entries if e["kind"] == HMAC)
        if encrypted and not master_key_file.exists():
            # a new key would decrypt nothing: every HMAC key would silently stop working
            raise UserError(
                f"{path} holds {encrypted} encrypted API secret(s) but the master key file "
                f"{master_key_file} does not exist",
                hint="pass the --master-key-file that encrypted them (a new key is never "
                "generated while secrets exist)",
            )
        self._aead = AESGCM(load_master_key(master_key_file))
        self._demo_accounts: set[int] = set()
        for entry in entries:
            self._raw.append(entry)
            if "revoked_ms" in entry:
                continue
            try:
                self._keys[entry["api_key"]] = self._load(entry)
            except InvalidTag:
                raise UserError(
                    f"the master key in {master_key_file} does not decrypt the API secrets "
                    f"stored in {path}",
                    hint="pass the --master-key-file that encrypted them",
                ) from None

    def _load(self, e: dict[str, Any]) -> ApiKey:
        key = ApiKey(
            e["api_key"],
            int(e["account_id"]),
            e["kind"],
            tuple(e["permissions"]),
            int(e["created_ms"]),
            ip_allow=tuple(ip_network(n) for n in e.get("ip_allow", ())),
        )
        if e["kind"] == HMAC:
            blob = base64.b64decode(e["secret_enc"])
            key.hmac_secret = self._aead.decrypt(blob[:12], blob[12:], e["api_key"].encode())
        else:
            raw = base64.b64decode(e["public_key"])
            key.public_key = Ed25519PublicKey.from_public_bytes(raw)
        return key

    def mark_demo(self, account_ids: set[int]) -> None:
        """These accounts hold demo-faucet money: their keys lose ``withdraw`` (in memory,
        re-derived from the journal at every start) and no new key of theirs gets it."""
        self._demo_accounts |= account_ids
        for key in self._keys.values():
            if key.account_id in account_ids and "withdraw" in key.permissions:
                key.permissions = tuple(p for p in key.permissions if p != "withdraw")

    def get(self, api_key: str) -> ApiKey | None:
        return self._keys.get(api_key)

    def all(self) -> list[ApiKey]:
        return list(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def create(
        self,
        account_id: int,
        permissions: tuple[str, ...] = ("read", "trade"),
        *,
        ed25519_public_pem: bytes | None = None,
        ip_allow: tuple[str, ...] = (),
    ) -> NewKey:
        """``ip_allow``: addresses or CIDR networks the key is accepted from (empty: any)."""
        entry, secret = self._new_entry(account_id, permissions, ed25519_public_pem, ip_allow)
        self._save()
        return NewKey(entry["api_key"], account_id, entry["kind"], tuple(permissions), secret)

    def listing(self) -> list[dict[str, Any]]:
        """Every key ever made, revoked ones included (no secret), oldest first."""
        out = []
        for e in self._raw:
            active = self._keys.get(e["api_key"])
            out.append(
                {
                    "api_key": e["api_key"],
                    "account_id": int(e["account_id"]),
                    "kind": e["kind"],
                    "permissions": list(active.permissions if active else e["permissions"]),
                    "created_ms": int(e["created_ms"]),
                    "revoked_ms": e.get("revoked_ms"),
                    "ip_allow": list(e.get("ip_allow", ())),
                    "demo": int(e["account_id"]) in self._demo_accounts,
                }
            )
        return out

    def revoke(self, api_key: str) -> dict[str, Any]:
        """Revoke an active key for good (persisted before this returns)."""
        entry = self._revoke_entry(api_key)
        self._save()
        return {
            "api_key": api_key,
            "account_id": int(entry["account_id"]),
            "revoked_ms": entry["revoked_ms"],
        }

    def rotate(self, api_key: str, *, ed25519_public_pem: bytes | None = None) -> NewKey:
        """A new key for the same account and permissions, the old one revoked, in one write.
        An Ed25519 key rotates to the new public key given; an HMAC key to a fresh secret."""
        old = self._keys.get(api_key)
        if old is None:
            raise KeyError(f"no active API key {api_key[:12]!r}...")
        if old.kind == ED25519 and ed25519_public_pem is None:
            raise ValueError("rotating an Ed25519 key needs the new public key")
        entry, secret = self._new_entry(
            old.account_id, old.permissions, ed25519_public_pem, tuple(str(n) for n in old.ip_allow)
        )
        self._revoke_entry(api_key)
        self._save()
        return NewKey(entry["api_key"], old.account_id, entry["kind"], old.permissions, secret)

    def _revoke_entry(self, api_key: str) -> dict[str, Any]:
        key = self._keys.pop(api_key, None)
        if key is None:
            raise KeyError(f"no active API key {api_key[:12]!r}...")
        key.revoked = True
        entry = next(e for e in self._raw if e["api_key"] == api_key)
        entry["revoked_ms"] = time.time_ns() // 1_000_000
        return entry

    def _new_entry(
        self,
        account_id: int,
        permissions: tuple[str, ...],
        ed25519_public_pem: bytes | None,
        ip_allow: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], str | None]:
        for p in permissions:
            if p not in PERMISSIONS:
                raise ValueError(f"unknown permission {p!r} (known: {', '.join(PERMISSIONS)})")
        if "withdraw" in permissions and account_id in self._demo_accounts:
            raise ValueError(f"account {account_id} holds demo money: no withdraw permission")
        api_key = _token(64)
        entry: dict[str, Any] = {
            "api_key": api_key,
            "account_id": account_id,
            "permissions": list(permissions),
            "created_ms": time.time_ns() // 1_000_000,
        }
        if ip_allow:
            entry["ip_allow"] = [str(ip_network(n, strict=False)) for n in ip_allow]
        secret: str | None = None
        if ed25519_public_pem is not None:
            pub = ed25519_from_pem(ed25519_public_pem)
            entry["kind"] = ED25519
            entry["public_key"] = base64.b64encode(pub.public_bytes_raw()).decode()
        else:
            secret = _token(64)
            nonce = os.urandom(12)
            ct = self._aead.encrypt(nonce, secret.encode(), api_key.encode())
            entry["kind"] = HMAC
            entry["secret_enc"] = base64.b64encode(nonce + ct).decode()
        self._raw.append(entry)
        self._keys[api_key] = self._load(entry)
        return entry, secret

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = create_private(tmp)
        try:
            os.write(fd, json.dumps({"version": 1, "keys": self._raw}, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
