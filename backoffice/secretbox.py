"""Secrets the identity store must be able to read back (TOTP seeds), sealed with AES-256-GCM
under a key derived from the gateway's master key (`gateway.keys.load_master_key`, kept outside
the data directory), so a copy of the identity store (SQLite file or PostgreSQL dump) alone
does not let anyone compute a user's codes. The derivation (HKDF-SHA256 with a purpose label)
keeps this key apart from the one that encrypts API secrets. The user id is associated data:
a sealed value moved to another user's row does not open.
"""

from __future__ import annotations

import base64
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX: Final = "v1:"
NONCE_BYTES: Final = 12


class SealedSecretError(Exception):
    """A sealed value does not open with this master key (another key, or altered)."""


class SecretBox:
    def __init__(self, master_key: bytes, purpose: bytes = b"kootabase/backoffice/totp") -> None:
        assert len(master_key) == 32
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master_key)
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, owner: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        ct = self._aead.encrypt(nonce, plaintext.encode(), owner.encode())
        return PREFIX + base64.b64encode(nonce + ct).decode()

    def open(self, sealed: str, owner: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SealedSecretError("not a sealed value")
        try:
            blob = base64.b64decode(sealed[len(PREFIX) :], validate=True)
            return self._aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], owner.encode()
            ).decode()
        except (ValueError, InvalidTag):
            raise SealedSecretError("the sealed value does not open with this key") from None
