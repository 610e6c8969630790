"""API credentials and request signing, client side (HMAC-SHA256 hex or Ed25519 base64)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    secret: str | None = None
    private_key: Ed25519PrivateKey | None = None

    @classmethod
    def hmac(cls, api_key: str, secret: str) -> Credentials:
        return cls(api_key, secret=secret)

    @classmethod
    def ed25519(cls, api_key: str, private_key: Ed25519PrivateKey | bytes) -> Credentials:
        if isinstance(private_key, bytes):
            loaded = load_pem_private_key(private_key, password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 private key")
            private_key = loaded
        return cls(api_key, private_key=private_key)

    def sign(self, payload: bytes) -> str:
        if self.secret is not None:
            return hmac.new(self.secret.encode(), payload, hashlib.sha256).hexdigest()
        assert self.private_key is not None, "credentials without a secret or private key"
        return base64.b64encode(self.private_key.sign(payload)).decode()
