"""Request parameter readers shared by the WS API (JSON values) and REST (strings).

Each reader names the parameter in its error so a client knows what to fix; nothing is
coerced silently (a float price, a boolean order id, a 30-digit integer are all refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from gateway import errors

INT_LEGAL: Final = "^[0-9]{1,19}$"
UINT_RE: Final = re.compile(r"[0-9]{1,19}")
"""ASCII digits only, used with ``fullmatch`` (``str.isdigit`` accepts ``²`` and ``٣``, and a
``$`` anchor accepts a trailing newline)."""
MAX_INT64: Final = (1 << 63) - 1
MAX_STR_LEN: Final = 128
"""Longest string parameter `get_str` takes (a symbol)."""


def get_str(params: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise errors.mandatory(name)
        return None
    if not isinstance(v, str) or len(v) > MAX_STR_LEN:
        raise errors.illegal(name, "string")
    return v


def get_int(
    params: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    default: int | None = None,
    lo: int = 0,
    hi: int = MAX_INT64,
) -> int | None:
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise errors.mandatory(name)
        return default
    if isinstance(v, bool):
        raise errors.illegal(name, INT_LEGAL)
    if isinstance(v, str):
        if UINT_RE.fullmatch(v) is None:
            raise errors.illegal(name, INT_LEGAL)
        v = int(v)
    if not isinstance(v, int):
        raise errors.illegal(name, INT_LEGAL)
    if not lo <= v <= hi:
        raise errors.invalid(name)
    return v


def get_enum(
    params: Mapping[str, Any],
    name: str,
    allowed: Mapping[str, int] | frozenset[str],
    code: int,
    msg: str,
    *,
    required: bool = True,
    default: str | None = None,
) -> str:
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise errors.mandatory(name)
        assert default is not None
        return default
    if not isinstance(v, str) or v not in allowed:
        raise errors.ApiError(code, msg)
    return v


def get_bool(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    v = params.get(name)
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        return v
    if v in ("true", "TRUE", "True"):
        return True
    if v in ("false", "FALSE", "False"):
        return False
    raise errors.illegal(name, "true|false")
