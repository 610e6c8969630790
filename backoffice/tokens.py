"""Short-lived access tokens: JWT (RFC 7519), HS256, signed with a key of the data directory.

The key (``<data_dir>/backoffice/jwt.key``, 32 random bytes, created 0600) never leaves this
process: only the gateway both issues and checks the tokens, so a symmetric MAC is enough and a
stolen token is good for at most `ACCESS_TTL_S`. A token names its user (``sub``), its session
(``sid``: the refresh-token family), and is refused once that session is revoked
(`backoffice.auth.Auth.authenticate` checks), so logout takes effect at once.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt

from engine.filemodes import PRIVATE_FILE, tighten, write_private

ALGORITHM: Final = "HS256"
ISSUER: Final = "kootabase"
ACCESS_TTL_S: Final = 300
KEY_BYTES: Final = 32


def load_key(path: Path) -> bytes:
    """Read (or create, 0600) the signing key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
    tighten(path, PRIVATE_FILE)
    key = base64.b64decode(path.read_bytes().strip())
    assert len(key) == KEY_BYTES, f"{path} does not hold a {KEY_BYTES}-byte key"
    return key


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: str
    session_id: str
    expires_s: int


class AccessTokens:
    def __init__(self, key: bytes, ttl_s: int = ACCESS_TTL_S) -> None:
        assert len(key) == KEY_BYTES and ttl_s > 0
        self._key, self.ttl_s = key, ttl_s

    def issue(self, user_id: str, session_id: str, kind: str = "access") -> str:
        """``kind``: ``access`` (a user's) or ``staff`` (an operator's): a token of one kind is
        never accepted as the other."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": secrets.token_hex(8),
            "typ": kind,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, kind: str = "access") -> Claims | None:
        """The claims of a valid, unexpired token of ours; None for anything else."""
        if len(token) > 4_096 or not token.isascii():
            return None  # a header's non-UTF-8 bytes arrive as surrogates: PyJWT's encode()
            # raised UnicodeEncodeError on them, a 500 on every bearer route before any login
        try:
            c = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        if c.get("typ") != kind or not isinstance(c.get("sid"), str):
            return None
        return Claims(str(c["sub"]), c["sid"], int(c["exp"]))
