"""Binance ``newClientOrderId`` strings <-> the engine's int64 ``client_order_id``.

The engine keys an open order by a non-negative int64 per account; the dialect uses strings
matching ``^[a-zA-Z0-9-_]{1,36}$``. The mapping must be deterministic (replay of the journal
rebuilds every answer) and injective among an account's open orders. Scheme:

- Strings of 1..10 characters use *bijective base-64 numeration* over the 64-symbol alphabet:
  a bijection onto ``1 .. (64**11 - 64) / 63`` (< 2**61). Such an id is fully reversible from
  the journaled integer, so nothing but the journal is needed to show it again.
- Longer strings (ccxt sends 30+ characters) hash to ``2**62 + BLAKE2b-64(string) mod 2**62``.
  The integer is journaled; the string itself is remembered in a side file of the gateway
  (``clientids.log``, appended before the command is submitted) so responses can show it after a
  restart. If that file were lost, only the *display* of those ids degrades (to ``h-<hex>``);
  lookups by the string still work because they hash again. Two different strings with the same
  hash among one account's open orders are refused by the engine as a duplicate
  (DUPLICATE_CLIENT_ORDER_ID), so a collision can never alias two orders; the odds are ~2**-62.
- No client id: the engine gets 0 and the wire shows ``kb<orderId>``; a lookup by such a string
  falls back to the order id.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Final

ALPHABET: Final = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}
CLIENT_ID_RE: Final = re.compile(r"[a-zA-Z0-9\-_]{1,36}")
"""Used with ``fullmatch``: ``match`` with a ``$`` anchor accepts a trailing newline."""
CLIENT_ID_LEGAL: Final = r"^[a-zA-Z0-9-_]{1,36}$"
SHORT_MAX_LEN: Final = 10
HASHED_BASE: Final = 1 << 62
AUTO_RE: Final = re.compile(r"kb([0-9]{1,19})")


def encode(client_id: str) -> int:
    """The engine integer for a valid dialect client id (validate with CLIENT_ID_RE first)."""
    if len(client_id) <= SHORT_MAX_LEN:
        n = 0
        for ch in client_id:
            n = n * 64 + _INDEX[ch] + 1
        return n
    digest = hashlib.blake2b(client_id.encode(), digest_size=8).digest()
    return HASHED_BASE + int.from_bytes(digest, "big") % HASHED_BASE


SHORT_MEMO_ENTRIES: Final = 4_096


def decode_short(value: int) -> str | None:
    """The string of a reversible (short) id, None for a hashed one or 0."""
    if value <= 0 or value >= HASHED_BASE:
        return None
    chars = []
    while value:
        value -= 1
        value, digit = divmod(value, 64)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


class ClientIdBook:
    """Remembers the strings behind hashed ids (display only; see the module docstring)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._strings: dict[int, str] = {}
        self._shorts: dict[int, str] = {}
        """Memo of decoded short ids (bounded): a history page shows the same few ids of a bot
        hundreds of times, and decoding is a Python loop per character."""
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                for line in path.read_text(encoding="ascii", errors="replace").splitlines():
                    if CLIENT_ID_RE.fullmatch(line):
                        self._strings[encode(line)] = line
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def remember(self, client_id: str, value: int) -> None:
        if value >= HASHED_BASE and value not in self._strings:
            self._strings[value] = client_id
            if self._fd is not None:
                os.write(self._fd, client_id.encode("ascii") + b"\n")

    def display(self, value: int, order_id: int) -> str:
        """The wire ``clientOrderId`` of an order."""
        if value == 0:
            return f"kb{order_id}"
        short = self._shorts.get(value)
        if short is not None:
            return short
        short = decode_short(value)
        if short is None:
            return self._strings.get(value, f"h-{value - HASHED_BASE:016x}")
        if len(self._shorts) >= SHORT_MEMO_ENTRIES:
            self._shorts.clear()
        self._shorts[value] = short
        return short

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
