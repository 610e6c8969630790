"""Keeping secrets out of what is printed: DSN passwords and secret-named settings.

Used wherever a setting or a connection string reaches a log line, an error message or the
effective configuration printed at start-up. It lives in ``engine``, the one room every other
room may import.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

MASK: Final = "***"
SECRET_WORDS: Final = ("secret", "password", "token", "passphrase")


def redact_url(text: str) -> str:
    """``scheme://user:***@host/...`` for a URL with a password; anything else unchanged."""
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if not password:
        return text
    netloc = parts.netloc.replace(f":{password}@", f":{MASK}@", 1)
    return parts._replace(netloc=netloc).geturl()


def is_secret_name(name: str) -> bool:
    """A setting whose value is itself a secret (a file *holding* one is only a path)."""
    lowered = name.lower()
    return not lowered.endswith("file") and any(w in lowered for w in SECRET_WORDS)


def redact_setting(name: str, value: object) -> object:
    """The value of setting ``name`` as it may be printed."""
    if value is None or value is False:
        return value
    if is_secret_name(name):
        return MASK
    if isinstance(value, str):
        return redact_url(value)
    return value
