"""Proof of liabilities over a real journal: every account's proof verifies against the
published roots, the totals tie to the ledger and custody, and every kind of cheating the
verifier is meant to catch is caught (an altered balance, a dropped user, a negative sum)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.schema import (
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
    WithdrawRequest,
)
from ledger.chart import USER_BUCKETS, LedgerBucket
from ledger.liabilities import build_all, build_tree, proof_document, reconcile, user_balances
from ledger.polverify import PUBLISHED_FORMAT, ProofInvalid, load_roots, verify_proof
from ledger.reports import replay_book
from ledger.source import write_journal

ACCOUNTS = range(1, 14)


def _order(account: int, side: int, price: int, qty: int) -> PlaceOrder:
    return PlaceOrder(
        account_id=account,
        market_id=0,
        side=side,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price_atoms=price,
        qty_atoms=qty,
    )


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two assets, 13 accounts with deposits, resting orders (held funds), trades with fees,
    and a pending withdrawal (held for withdrawal): every user bucket is non-zero somewhere."""
    commands = [
        CreateAsset(asset_id=0, symbol="BTC", decimals=8),
        CreateAsset(asset_id=1, symbol="USDT", decimals=6),
        CreateMarket(
            market_id=0,
            symbol="BTCUSDT",
            base_asset_id=0,
            quote_asset_id=1,
            tick_size_atoms=1_000_000,  # 1 USDT
            lot_size_atoms=100_000,  # 0.001 BTC
            min_notional_atoms=0,
            maker_fee_ppm=1_000,
            taker_fee_ppm=2_000,
        ),
        *(CreateAccount(account_id=a) for a in ACCOUNTS),
        *(
            Deposit(account_id=a, asset_id=1, amount_atoms=100_000_000 * a, deposit_key=f"u{a}")
            for a in ACCOUNTS
        ),
        *(
            Deposit(account_id=a, asset_id=0, amount_atoms=1_000_000 * a, deposit_key=f"b{a}")
            for a in ACCOUNTS
            if a % 2
        ),
        _order(1, Side.SELL, 30_000_000_000, 200_000),  # rests: BTC held
        _order(2, Side.BUY, 30_000_000_000, 100_000),  # trades with 1, pays fees
        _order(4, Side.BUY, 20_000_000_000, 100_000),  # rests: USDT held
        WithdrawRequest(withdrawal_id=1, account_id=6, asset_id=1, amount_atoms=500_000),
    ]
    records = [(i + 1, 1_000 * (i + 1), c) for i, c in enumerate(commands)]
    path = tmp_path_factory.mktemp("pol") / "journal"
    write_journal(path, records)
    return path


@pytest.fixture(scope="module")
def book(journal: Path):  # type: ignore[no-untyped-def]
    return replay_book(journal)


def _roots(trees: dict) -> dict[str, tuple[str, int | None]]:  # type: ignore[type-arg]
    return {t.symbol: (t.root[0].hex(), t.root[1]) for t in trees.values()}


def test_every_account_proof_verifies_and_totals_tie_to_the_ledger(book) -> None:  # type: ignore[no-untyped-def]
    seq = book.last_seq
    trees = build_all(book, seq)
    assert {t.symbol for t in trees.values()} == {"BTC", "USDT"}
    buckets = {b: 0 for b in USER_BUCKETS}
    for acct, amount in book.balances_as_of(seq).items():
        if acct.bucket in USER_BUCKETS:
            buckets[acct.bucket] += amount
    assert all(buckets.values()), f"the journal should exercise every user bucket: {buckets}"
    rec = {r.symbol: r for r in reconcile(book, seq, trees)}
    for tree in trees.values():
        owed = sum(
            v
            for a, v in book.balances_as_of(seq).items()
            if a.asset == tree.asset_id and a.bucket in USER_BUCKETS
        )
        assert tree.root[1] == owed == rec[tree.symbol].liabilities_atoms
        assert owed + rec[tree.symbol].fees_atoms == rec[tree.symbol].custody_atoms
    assert rec["USDT"].fees_atoms > 0
    for account in ACCOUNTS:
        done = verify_proof(proof_document(trees, account, seq), _roots(trees))
        per = user_balances(book, seq)
        assert {v.asset: v.balance_atoms for v in done} == {
            trees[asset].symbol: held[account] for asset, held in per.items() if held.get(account)
        }


def test_altered_balance_or_path_is_refused(book) -> None:  # type: ignore[no-untyped-def]
    seq = book.last_seq
    trees = build_all(book, seq)
    roots = _roots(trees)
    doc = proof_document(trees, 3, seq)
    doc["proofs"][0]["balance_atoms"] += 1
    with pytest.raises(ProofInvalid, match="does not lead to the root"):
        verify_proof(doc, roots)
    doc = proof_document(trees, 3, seq)
    doc["proofs"][0]["path"][0]["sum_atoms"] += 1
    with pytest.raises(ProofInvalid):
        verify_proof(doc, roots)
    doc = proof_document(trees, 3, seq)
    doc["account"] = 5  # someone else's proof claimed as mine
    with pytest.raises(ProofInvalid, match="does not lead to the root"):
        verify_proof(doc, roots)
    doc = proof_document(trees, 3, seq)
    other = build_all(book, seq)  # same balances, other salts: another publication
    with pytest.raises(ProofInvalid, match="not the published"):
        verify_proof(doc, _roots(other))


def test_negative_sum_is_refused(book) -> None:  # type: ignore[no-untyped-def]
    """A negative sibling would let the exchange hide liabilities: the verifier refuses it
    even when the hashes were made to fit, and the builder refuses negative balances."""
    seq = book.last_seq
    trees = build_all(book, seq)
    doc = proof_document(trees, 3, seq)
    doc["proofs"][0]["path"][-1]["sum_atoms"] = -7
    with pytest.raises(ProofInvalid, match="negative"):
        verify_proof(doc, _roots(trees))
    with pytest.raises(AssertionError, match="holds -1"):
        build_tree(1, "USDT", 6, seq, {1: 10, 2: -1})


def test_dropped_user_is_caught(book) -> None:  # type: ignore[no-untyped-def]
    seq = book.last_seq
    full = build_all(book, seq)
    usdt = full[1]
    dropped = build_tree(1, "USDT", 6, seq, {a: b for a, b in usdt.balances.items() if a != 7})
    with pytest.raises(Exception, match="USDT: the tree sums to"):
        reconcile(book, seq, {0: full[0], 1: dropped})
    # the dropped user's proof (built for another tree) does not verify against this root
    doc = proof_document(full, 7, seq)
    with pytest.raises(ProofInvalid):
        verify_proof(
            doc, {"BTC": (full[0].root[0].hex(), None), "USDT": (dropped.root[0].hex(), None)}
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_liabilities_and_standalone_verifier(journal: Path, tmp_path: Path, book) -> None:  # type: ignore[no-untyped-def]
    seq = book.last_seq - 1  # before the withdrawal request: a past sequence
    out = tmp_path / "pol"
    done = _cli("liabilities", "--journal", str(journal), "--as-of", str(seq), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "reconciled" in done.stdout
    published = json.loads((out / "liabilities.json").read_text())
    assert published["as_of_seq"] == seq
    assert {a["asset"]: a["total_atoms"] for a in published["assets"]} == {
        book.assets[asset].symbol: sum(held.values())
        for asset, held in user_balances(book, seq).items()
    }
    proofs = sorted((out / "proofs").glob("*.json"), key=lambda p: int(p.stem))
    assert [int(p.stem) for p in proofs] == list(ACCOUNTS)
    for proof in proofs[:3]:  # every account is verified in process above
        done = _cli("verify-proof", str(proof), "--root", str(out / "liabilities.json"))
        assert done.returncode == 0, done.stderr
    doc = json.loads(proofs[0].read_text())
    usdt_root = next(p["root"]["hash"] for p in doc["proofs"] if p["asset"] == "USDT")
    btc_root = next(p["root"]["hash"] for p in doc["proofs"] if p["asset"] == "BTC")
    done = _cli(
        "verify-proof", str(proofs[0]), "--root", f"USDT={usdt_root}", "--root", f"BTC={btc_root}"
    )
    assert done.returncode == 0, done.stderr
    doc["proofs"][0]["balance_atoms"] += 100
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    done = _cli("verify-proof", str(tampered), "--root", str(out / "liabilities.json"))
    assert done.returncode == 3
    assert done.stderr.startswith("kootabase audit verify-proof: proof refused:")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    done = _cli("liabilities", "--journal", str(journal), "--as-of", "99999", "--out", str(out))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert LedgerBucket.CUSTODY not in USER_BUCKETS


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.update(proofs=5),
        lambda d: d.update(proofs=[7]),
        lambda d: d["proofs"][0].update(path={"side": "left"}),
        lambda d: d["proofs"][0]["path"].append(None),
        lambda d: d["proofs"][0].update(balance_atoms="12"),
        lambda d: d["proofs"][0].update(salt="zz"),
        lambda d: d["proofs"][0].update(root=[]),
        lambda d: d.update(account=-1),
        lambda d: d.pop("format"),
    ],
)
def test_malformed_proofs_are_refused_cleanly(book, tmp_path: Path, mangle) -> None:  # type: ignore[no-untyped-def]
    """Whatever the bytes, the verifier answers ProofInvalid (one line in the CLI), never
    another exception."""
    seq = book.last_seq
    trees = build_all(book, seq)
    doc = proof_document(trees, 3, seq)
    mangle(doc)
    pub = tmp_path / "liabilities.json"
    pub.write_text(json.dumps({"format": PUBLISHED_FORMAT, "as_of_seq": seq, "assets": [{}]}))
    with pytest.raises(ProofInvalid):
        verify_proof(doc, load_roots([str(pub)], doc))
    with pytest.raises(ProofInvalid):
        verify_proof(doc, _roots(trees))
