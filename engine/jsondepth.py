"""A bound on JSON nesting, checked before a network message is decoded.

Decoders recurse once per level (msgspec and the standard library alike), so a frame of a few
kilobytes of ``[[[[...`` raises RecursionError deep inside the decoder, which a handler that
expects DecodeError does not catch. No request of the dialect nests deeper than a few levels;
`too_deep` refuses anything past `MAX_JSON_DEPTH` before any decoder sees it.

It lives in the engine package, the lowest room, because both the gateway (WS API, query
parameters, admin bodies) and market data (``/ws``, ``/stream``, REST) take JSON from the
network and market data may not import the gateway. It does no I/O and touches no state.

`decode_json` is the one reader of a JSON body from the network: the depth bound, then a
decoder that refuses what the standard library lets through, lone surrogates (``"\\ud800"``)
above all: ``json.loads`` turns them into a ``str`` that no UTF-8 encoder accepts, so the
first hash, password check or journal write of that text raised UnicodeEncodeError (a 500).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

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


_decode: Final = msgspec.json.Decoder().decode


def decode_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of a network body or parameter; ValueError (with the reason) for text
    that is not UTF-8, nests deeper than ``max_depth``, is not JSON, or holds a lone
    surrogate. Every ``str`` in the result encodes to UTF-8."""
    if isinstance(text, bytes):
        text = text.decode()  # UnicodeDecodeError is a ValueError
    if too_deep(text, max_depth):
        raise ValueError(f"nests deeper than {max_depth} levels")
    try:
        return _decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
