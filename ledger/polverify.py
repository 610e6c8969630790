"""Checking a proof of liabilities with nothing but the proof and the published root.

A user's proof says: "after journal sequence S, my balance of ASSET was B atoms, and it is one
of the leaves summed into the tree whose root (hash, total) the exchange published". This
module is the whole verifier: standard library only (hashlib, json), no engine, no journal, no
network, so an auditor or a user can read it, copy it, or re-implement it from the rules below.

The Merkle-sum tree (one per asset):

* leaf: ``hash = BLAKE2b-256("kootabase-pol-leaf/1" || salt || u64 account || u64 asset_id ||
  u64 as_of_seq || u64 balance)``, ``sum = balance``. The salt is 16 random bytes known only to
  the exchange and the leaf's owner, so a leaf hash says nothing about who it is or what it
  holds;
* node: ``hash = BLAKE2b-256("kootabase-pol-node/1" || left.hash || u64 left.sum ||
  right.hash || u64 right.sum)``, ``sum = left.sum + right.sum``. A node without a right
  sibling (odd count) is carried up unchanged;
* leaves are ordered by their hash, so a position says nothing about the account.

What the verifier rejects: a leaf or sibling sum below zero or above 2**64 - 1 (a negative
sibling would let the exchange shrink the total it must back), a path that does not recompute
to the root hash, a root whose total differs from the recomputed sum.

What a proof reveals: its own balance, and per level the *sum* of the sibling subtree (at the
lowest level that is one other, unnamed leaf's balance). It never names another account.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

PROOF_FORMAT: Final = "kootabase-liabilities-proof/1"
PUBLISHED_FORMAT: Final = "kootabase-liabilities/1"
_LEAF_TAG: Final = b"kootabase-pol-leaf/1"
_NODE_TAG: Final = b"kootabase-pol-node/1"
_U64: Final = struct.Struct("<Q")
_MAX_U64: Final = (1 << 64) - 1
SALT_BYTES: Final = 16


class ProofInvalid(ValueError):
    """The proof does not show what it claims; the message says which check failed."""


def _u64(value: int, what: str) -> bytes:
    if type(value) is not int:
        raise ProofInvalid(f"{what} is not an integer: {value!r}")
    if value < 0:
        raise ProofInvalid(f"{what} is negative ({value}): sums in the tree cannot be")
    if value > _MAX_U64:
        raise ProofInvalid(f"{what} is out of range ({value})")
    return _U64.pack(value)


def leaf_hash(salt: bytes, account: int, asset_id: int, as_of_seq: int, balance: int) -> bytes:
    data = (
        _LEAF_TAG
        + salt
        + _u64(account, "account")
        + _u64(asset_id, "asset id")
        + _u64(as_of_seq, "sequence")
        + _u64(balance, "balance")
    )
    return hashlib.blake2b(data, digest_size=32).digest()


def node_hash(left: bytes, left_sum: int, right: bytes, right_sum: int) -> bytes:
    data = _NODE_TAG + left + _u64(left_sum, "left sum") + right + _u64(right_sum, "right sum")
    return hashlib.blake2b(data, digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class Verified:
    account: int
    as_of_seq: int
    asset: str
    balance_atoms: int
    root: str
    total_atoms: int


def _hex(value: Any, what: str, size: int = 32) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise ProofInvalid(f"{what} is not {size} bytes of hex")
    return raw


def verify_asset_proof(proof: dict[str, Any], account: int, as_of_seq: int) -> Verified:
    """Recompute one asset's path from the leaf to the root; `ProofInvalid` on any failure."""
    try:
        salt = _hex(proof["salt"], "salt", SALT_BYTES)
        balance = proof["balance_atoms"]
        asset_id = proof["asset_id"]
        root = proof["root"]
        path = proof["path"]
        asset = str(proof["asset"])
    except (KeyError, TypeError) as exc:
        raise ProofInvalid(f"proof lacks {exc}") from None
    current = leaf_hash(salt, account, asset_id, as_of_seq, balance)
    total = balance
    if not isinstance(path, list):
        raise ProofInvalid("path is not a list")
    for level, step in enumerate(path):
        try:
            side, sib_hex, sib_sum = step["side"], step["hash"], step["sum_atoms"]
        except (KeyError, TypeError):
            raise ProofInvalid(f"path step {level} is malformed") from None
        sibling = _hex(sib_hex, f"path step {level} hash")
        _u64(sib_sum, f"sibling sum at level {level}")
        if side == "left":
            current = node_hash(sibling, sib_sum, current, total)
        elif side == "right":
            current = node_hash(current, total, sibling, sib_sum)
        else:
            raise ProofInvalid(f"path step {level} has side {side!r}")
        total += sib_sum
        _u64(total, f"sum at level {level + 1}")
    try:
        root_hash = _hex(root["hash"], "root hash")
        root_total = root["sum_atoms"]
    except (KeyError, TypeError):
        raise ProofInvalid("root is malformed") from None
    if current != root_hash:
        raise ProofInvalid(f"{asset}: the path does not lead to the root (leaf or path altered)")
    if total != root_total:
        raise ProofInvalid(f"{asset}: the path sums to {total}, the root says {root_total}")
    return Verified(account, as_of_seq, asset, balance, root_hash.hex(), total)


def verify_proof(doc: dict[str, Any], roots: dict[str, tuple[str, int | None]]) -> list[Verified]:
    """Check every asset proof in a user's proof document against the published ``roots``
    (asset -> (root hash hex, total or None)). Every asset in the document must have one."""
    if not isinstance(doc, dict) or doc.get("format") != PROOF_FORMAT:
        raise ProofInvalid(f"not a {PROOF_FORMAT} document")
    account, seq = doc.get("account"), doc.get("as_of_seq")
    _u64(account, "account")  # type: ignore[arg-type]
    _u64(seq, "sequence")  # type: ignore[arg-type]
    proofs = doc.get("proofs")
    if not isinstance(proofs, list) or not proofs:
        raise ProofInvalid("the document holds no proof")
    out = []
    for proof in proofs:
        done = verify_asset_proof(proof, account, seq)  # type: ignore[arg-type]
        if done.asset not in roots:
            raise ProofInvalid(f"no published root given for {done.asset}")
        want_hash, want_total = roots[done.asset]
        if done.root != want_hash.lower():
            raise ProofInvalid(
                f"{done.asset}: the proof's root {done.root[:16]}... is not the published "
                f"{want_hash[:16]}..."
            )
        if want_total is not None and want_total != done.total_atoms:
            raise ProofInvalid(f"{done.asset}: total {done.total_atoms} is not the published one")
        out.append(done)
    return out


def load_roots(texts: list[str], doc: dict[str, Any]) -> dict[str, tuple[str, int | None]]:
    """``--root`` values: a published summary file, or hex root(s) matched to the proof's
    assets in order (``ASSET=HEX`` names one explicitly)."""
    roots: dict[str, tuple[str, int | None]] = {}
    proofs = doc.get("proofs")
    assets = [
        str(p.get("asset"))
        for p in (proofs if isinstance(proofs, list) else [])
        if isinstance(p, dict)
    ]
    for n, text in enumerate(texts):
        path = Path(text)
        if path.is_file():
            try:
                pub = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ProofInvalid(f"cannot read published roots {path}: {exc}") from None
            if not isinstance(pub, dict) or pub.get("format") != PUBLISHED_FORMAT:
                raise ProofInvalid(f"{path} is not a {PUBLISHED_FORMAT} document")
            if pub.get("as_of_seq") != doc.get("as_of_seq"):
                raise ProofInvalid(
                    f"the proof is for sequence {doc.get('as_of_seq')}, the published roots "
                    f"for {pub.get('as_of_seq')}"
                )
            try:
                for entry in pub["assets"]:
                    roots[str(entry["asset"])] = (str(entry["root"]), int(entry["total_atoms"]))
            except (KeyError, TypeError, ValueError):
                raise ProofInvalid(f"{path}: its assets are malformed") from None
            continue
        name, sep, hex_root = text.partition("=")
        if not sep:
            if n >= len(assets):
                raise ProofInvalid(f"more --root values than assets in the proof: {text!r}")
            name, hex_root = assets[n], text
        _hex(hex_root, f"root {text!r}")
        roots[name] = (hex_root.lower(), None)
    return roots
