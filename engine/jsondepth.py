"""A bound on JSON nesting, checked before a network message is decoded.

Decoders recurse once per level (msgspec and the standard library alike), so a frame of a few
kilobytes of ``[[[[...`` raises RecursionError deep inside the decoder, which a handler that
expects DecodeError does not catch. No request of the dialect nests deeper than a few levels;
`too_deep` refuses anything past `MAX_JSON_DEPTH` before any decoder sees it.

It lives in the engine package, the lowest room, because both the gateway (WS API, query
parameters, admin bodies) and market data (``/ws``, ``/stream``, REST) take JSON from the
network and market data may not import the gateway. It does no I/O and touches no state.
"""

from __future__ import annotations

import re
from typing import Final

MAX_JSON_DEPTH: Final = 16
"""Deepest nesting accepted; a WS API request needs 3 (``{"params": {"symbols": [...]}}``)."""
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
"""A whole string literal: brackets inside strings do not nest."""
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_INNERMOST: Final = re.compile(r"\[\]|\{\}")


def too_deep(text: str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when ``text`` nests arrays or objects more than ``max_depth`` deep, or has brackets
    that do not pair up (not JSON: the caller refuses it either way).

    Every ordinary request has at most ``max_depth`` opening brackets in all and costs two
    ``str.count`` calls. Otherwise strings and everything but brackets are dropped and the
    innermost pairs removed once per level, at most ``max_depth`` times: a handful of linear
    passes in C, comparable to decoding the text."""
    assert max_depth >= 1
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets, removed = _INNERMOST.subn("", brackets)
        if removed == 0:
            return True
    return bool(brackets)
