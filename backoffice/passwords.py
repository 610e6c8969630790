"""Passwords and emails: argon2id hashes (argon2-cffi's RFC 9106 defaults), input rules.

Hashing costs ~64 MiB and tens of milliseconds by design, so it runs on a worker thread and at
most `MAX_CONCURRENT_HASHES` at a time: a burst of logins queues instead of exhausting memory
or stalling the event loop that also serves trading.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backoffice import errors
from backoffice.errors import BackofficeError

MIN_PASSWORD_CHARS: Final = 10
MAX_PASSWORD_CHARS: Final = 128
MAX_EMAIL_CHARS: Final = 254
MAX_CONCURRENT_HASHES: Final = 2
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def normalize_email(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_EMAIL_CHARS:
        raise BackofficeError(400, errors.INVALID_EMAIL, "email must be an address")
    email = value.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise BackofficeError(400, errors.INVALID_EMAIL, "email must be an address")
    return email


def check_new_password(value: object, email: str) -> str:
    if not isinstance(value, str):
        raise errors.bad_request("password must be a string")
    if not MIN_PASSWORD_CHARS <= len(value) <= MAX_PASSWORD_CHARS:
        raise BackofficeError(
            400,
            errors.WEAK_PASSWORD,
            f"password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters",
        )
    if value.lower() == email or len(set(value)) < 4:
        raise BackofficeError(400, errors.WEAK_PASSWORD, "password is too easy to guess")
    return value


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._dummy = self._hasher.hash("not a password of anyone")
        """Verified against when the email is unknown, so both cases take the same time."""

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return (
                    self._hasher.verify(password_hash or self._dummy, password)
                    and password_hash is not None
                )
            except (VerificationError, InvalidHashError):
                return False

        async with self._slots:
            return await asyncio.to_thread(check)
