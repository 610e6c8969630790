"""Proof of liabilities: a Merkle-sum tree per asset over every account's balance at a sequence.

``kootabase audit liabilities --as-of SEQ`` replays the journal to SEQ through the book of
record (`ledger.reports.replay_book`: balances re-derived from postings, checked after every
chunk), takes each account's available + held balance per asset, and builds the trees whose
rules `ledger.polverify` states (that module is the verifier; this one only builds).

It writes, in the output directory:

* ``liabilities.json``: what the exchange publishes: per asset the root hash, the total and
  the number of leaves, the sequence, and the audit chain's head at that sequence (so the
  publication names exactly which history it sums);
* ``proofs/<account>.json``: one document per account with a path per asset it holds, and
  the account's salts. Handed to that user only (the gateway serves the caller's own).

Reconciliation (`reconcile`): per asset the tree's total must equal the ledger's customer
liabilities (the user buckets of the trial balance), and liabilities plus fee revenue must
equal what the ledger says custody holds (``-custody``). Randomness: salts come from
`secrets`; a rerun gives other roots for the same balances, which is the point of salting.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import msgspec

from engine.usererror import UserError
from ledger.book import Book
from ledger.chart import USER_BUCKETS, LedgerBucket
from ledger.polverify import (
    PROOF_FORMAT,
    PUBLISHED_FORMAT,
    SALT_BYTES,
    leaf_hash,
    node_hash,
)

Node = tuple[bytes, int]
"""(hash, sum_atoms) of a tree node."""


@dataclass(frozen=True, slots=True)
class AssetTree:
    asset_id: int
    symbol: str
    decimals: int
    levels: list[list[Node]]
    """levels[0] are the leaves (ordered by hash), levels[-1] is ``[root]``."""
    leaf_of: dict[int, int]
    """account -> index of its leaf in levels[0]."""
    salts: dict[int, bytes]
    balances: dict[int, int]

    @property
    def root(self) -> Node:
        return self.levels[-1][0]

    def path(self, account: int) -> list[dict[str, object]]:
        """Sibling (side, hash, sum) per level from the account's leaf up to the root."""
        index = self.leaf_of[account]
        steps: list[dict[str, object]] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                side = "left" if sibling < index else "right"
                h, s = level[sibling]
                steps.append({"side": side, "hash": h.hex(), "sum_atoms": s})
            index //= 2
        return steps


def build_tree(
    asset_id: int, symbol: str, decimals: int, as_of_seq: int, balances: dict[int, int]
) -> AssetTree:
    """The tree of one asset over ``balances`` (account -> atoms, all >= 0)."""
    salts: dict[int, bytes] = {}
    leaves: list[tuple[bytes, int, int]] = []
    for account, balance in balances.items():
        if balance < 0:
            raise AssertionError(f"account {account} holds {balance} of asset {asset_id}")
        salt = secrets.token_bytes(SALT_BYTES)
        salts[account] = salt
        leaves.append((leaf_hash(salt, account, asset_id, as_of_seq, balance), balance, account))
    leaves.sort()
    level: list[Node] = [(h, s) for h, s, _ in leaves]
    leaf_of = {account: i for i, (_, _, account) in enumerate(leaves)}
    levels = [level]
    if not level:
        raise AssertionError(f"asset {asset_id}: no balance to build a tree over")
    while len(level) > 1:
        up: list[Node] = []
        for i in range(0, len(level) - 1, 2):
            (lh, ls), (rh, rs) = level[i], level[i + 1]
            up.append((node_hash(lh, ls, rh, rs), ls + rs))
        if len(level) % 2:
            up.append(level[-1])
        levels.append(up)
        level = up
    return AssetTree(asset_id, symbol, decimals, levels, leaf_of, salts, dict(balances))


@dataclass(frozen=True, slots=True)
class Reconciled:
    asset_id: int
    symbol: str
    liabilities_atoms: int
    fees_atoms: int
    custody_atoms: int
    """What custody should hold on chain (``-custody`` in the ledger's sign convention)."""
    demo_atoms: int


def user_balances(book: Book, as_of_seq: int) -> dict[int, dict[int, int]]:
    """asset -> account -> available + held, after ``as_of_seq``, from the ledger's postings."""
    out: dict[int, dict[int, int]] = defaultdict(dict)
    for acct, amount in book.balances_as_of(as_of_seq).items():
        if acct.bucket in USER_BUCKETS:
            per = out[acct.asset]
            per[acct.owner] = per.get(acct.owner, 0) + amount
    return out


def reconcile(book: Book, as_of_seq: int, trees: dict[int, AssetTree]) -> list[Reconciled]:
    """Tie each tree's total to the ledger; `UserError` naming the asset if anything differs."""
    sums: dict[int, dict[LedgerBucket, int]] = defaultdict(lambda: defaultdict(int))
    for acct, amount in book.balances_as_of(as_of_seq).items():
        sums[acct.asset][acct.bucket] += amount
    demo = book.demo_deposited_through(as_of_seq)
    out = []
    for asset_id, tree in sorted(trees.items()):
        per = sums[asset_id]
        liabilities = sum(per[b] for b in USER_BUCKETS)
        fees = per[LedgerBucket.FEES]
        custody = -per[LedgerBucket.CUSTODY]
        if tree.root[1] != liabilities:
            raise UserError(
                f"{tree.symbol}: the tree sums to {tree.root[1]}, the ledger owes {liabilities}"
            )
        if liabilities + fees != custody:
            raise UserError(
                f"{tree.symbol}: liabilities {liabilities} + fees {fees} != custody {custody}"
            )
        out.append(
            Reconciled(asset_id, tree.symbol, liabilities, fees, custody, demo.get(asset_id, 0))
        )
    return out


def build_all(book: Book, as_of_seq: int) -> dict[int, AssetTree]:
    """One tree per asset that any account holds at ``as_of_seq``."""
    trees = {}
    for asset_id, per in sorted(user_balances(book, as_of_seq).items()):
        info = book.assets[asset_id]
        held = {account: bal for account, bal in per.items() if bal}
        if held:
            trees[asset_id] = build_tree(asset_id, info.symbol, info.decimals, as_of_seq, held)
    return trees


def proof_document(trees: dict[int, AssetTree], account: int, as_of_seq: int) -> dict[str, object]:
    """The account's proof document (every asset it holds)."""
    proofs = []
    for asset_id, tree in sorted(trees.items()):
        if account not in tree.leaf_of:
            continue
        h, s = tree.root
        proofs.append(
            {
                "asset": tree.symbol,
                "asset_id": asset_id,
                "decimals": tree.decimals,
                "balance_atoms": tree.balances[account],
                "salt": tree.salts[account].hex(),
                "path": tree.path(account),
                "root": {"hash": h.hex(), "sum_atoms": s},
            }
        )
    return {"format": PROOF_FORMAT, "account": account, "as_of_seq": as_of_seq, "proofs": proofs}


def published_document(
    trees: dict[int, AssetTree], as_of_seq: int, chain_head: str, rec: list[Reconciled]
) -> dict[str, object]:
    by_asset = {r.asset_id: r for r in rec}
    return {
        "format": PUBLISHED_FORMAT,
        "as_of_seq": as_of_seq,
        "chain_head": chain_head,
        "assets": [
            {
                "asset": t.symbol,
                "asset_id": a,
                "decimals": t.decimals,
                "root": t.root[0].hex(),
                "total_atoms": t.root[1],
                "leaves": len(t.levels[0]),
                "fees_atoms": by_asset[a].fees_atoms,
                "custody_atoms": by_asset[a].custody_atoms,
                "demo_atoms": by_asset[a].demo_atoms,
            }
            for a, t in sorted(trees.items())
        ],
    }


def write_outputs(
    out_dir: Path, trees: dict[int, AssetTree], as_of_seq: int, published: dict[str, object]
) -> int:
    """Write the publication and one proof file per account (0600); returns accounts written."""
    from engine.filemodes import PRIVATE_DIR, PRIVATE_FILE

    proofs_dir = out_dir / "proofs"
    proofs_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    accounts = sorted({acc for t in trees.values() for acc in t.leaf_of})
    for account in accounts:
        path = proofs_dir / f"{account}.json"
        doc = proof_document(trees, account, as_of_seq)
        path.write_bytes(msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n")
        path.chmod(PRIVATE_FILE)
    (out_dir / "liabilities.json").write_bytes(
        msgspec.json.format(msgspec.json.encode(published), indent=2) + b"\n"
    )
    return len(accounts)
