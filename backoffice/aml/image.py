"""The AML engine's state as bytes, carried in the gateway's read-model snapshot.

Why: the rules fold over the whole event history (recent movements per account, the addresses
an account withdrew to, the last deposit and trade times, the holds decided). Without an image
a start had to replay the whole journal through a private engine, and a cluster replica (which
has no local journal) could not rebuild it at all. The image is taken between batches at the
same sequence as the read model, so the start-up replay of the tail folds into it exactly as
the live stream did.

An image is valid only for the rules that produced it: it names the hash of the rule set
(`rules_hash`, the rules and not the deny-list file, which changes no state). Other rules
mean a full replay (embedded) or the next older snapshot pair (cluster). ``pending`` carries
the hits whose case was not known to be written when the image was taken, so a crash between
the snapshot and the case write cannot lose a case the tail replay would not see again.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Final

import msgspec

from backoffice.aml.engine import AmlEngine, Hit, _Account
from backoffice.aml.rules import RuleSet

FORMAT: Final = 1


class AccountImage(msgspec.Struct, array_like=True, frozen=True):
    account_id: int
    withdrawals: list[tuple[int, int, int]]
    deposits: list[tuple[int, int, int]]
    addresses: list[str]
    last_deposit_ns: int
    last_trade_ns: int


class AmlImage(msgspec.Struct, frozen=True):
    format: int
    rules_hash: str
    last_seq: int
    assets: dict[str, tuple[int, int]]
    accounts: list[AccountImage]
    holds: dict[int, list[str]]
    pending: list[Hit] = []


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(AmlImage)


def rules_hash(rules: RuleSet) -> str:
    """BLAKE2b of the rules' canonical text (the deny-list is input, not state)."""
    text = "\n".join(repr(r) for r in rules.rules)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def encode(engine: AmlEngine, pending: list[Hit]) -> bytes:
    """The engine's state at ``engine.last_seq`` (call between batches)."""
    img = AmlImage(
        format=FORMAT,
        rules_hash=rules_hash(engine.rules),
        last_seq=engine.last_seq,
        assets=dict(engine.assets),
        accounts=[
            AccountImage(
                aid,
                list(a.withdrawals),
                list(a.deposits),
                sorted(a.addresses),
                a.last_deposit_ns,
                a.last_trade_ns,
            )
            for aid, a in engine.accounts.items()
        ],
        holds={k: list(v) for k, v in engine.holds.items()},
        pending=list(pending),
    )
    return _ENCODER.encode(img)


def restore(engine: AmlEngine, data: bytes) -> list[Hit] | None:
    """Load ``data`` into a fresh ``engine``; returns the image's pending hits, or None (and
    changes nothing) when there is no image or it was made by other rules or another format."""
    if not data:
        return None
    try:
        img = _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    if img.format != FORMAT or img.rules_hash != rules_hash(engine.rules):
        return None
    assert not engine.accounts and engine.last_seq == 0, "restore into a fresh engine only"
    engine.assets.update({k: (v[0], v[1]) for k, v in img.assets.items()})
    for a in img.accounts:
        engine.accounts[a.account_id] = _Account(
            deque(tuple(x) for x in a.withdrawals),  # type: ignore[misc]
            deque(tuple(x) for x in a.deposits),  # type: ignore[misc]
            set(a.addresses),
            a.last_deposit_ns,
            a.last_trade_ns,
        )
    engine.holds.update({k: list(v) for k, v in img.holds.items()})
    engine.last_seq = img.last_seq
    return list(img.pending)


def image_rules_hash(data: bytes) -> str:
    """The rules hash an encoded image was made with ("" when none or unreadable)."""
    if not data:
        return ""
    try:
        return _DECODER.decode(data).rules_hash
    except msgspec.DecodeError:
        return ""
