"""Convert (getQuote / acceptQuote / orderStatus) and the proof-of-liabilities endpoint against a
real gateway (real journal, engine, sockets): the quote or better or nothing, expired and
reused quotes refused with their codes and nothing journaled, fees shown up front."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from engine.journal import SegmentJournal
from gateway.admin import Admin
from gateway.client import Credentials
from ledger.liabilities import build_all, published_document, reconcile, write_outputs
from ledger.polverify import verify_proof
from ledger.reports import replay_book
from tests.gateway_support import ServerThread, http, signed_query

FEE = Decimal("0.001")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("convert"))
    try:
        yield s
    finally:
        s.stop()


def call(
    server: ServerThread, creds: Credentials, method: str, path: str, **params: Any
) -> tuple[int, Any]:
    text = signed_query(creds, params)
    headers = {"X-MBX-APIKEY": creds.api_key}
    if method == "POST":
        status, _, body = http(method, server.http + path, body=text, headers=headers)
    else:
        status, _, body = http(method, server.http + path, query=text, headers=headers)
    return status, body


def place(server: ServerThread, side: str, price: str, qty: str) -> int:
    status, body = call(
        server,
        server.accounts.maker,
        "POST",
        "/api/v3/order",
        symbol="BTCUSDT",
        side=side,
        type="LIMIT",
        timeInForce="GTC",
        price=price,
        quantity=qty,
    )
    assert status == 200, body
    return int(body["orderId"])


def cancel(server: ServerThread, order_id: int) -> None:
    status, body = call(
        server, server.accounts.maker, "DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order_id
    )
    assert status == 200, body


def balances(server: ServerThread, creds: Credentials) -> dict[str, Decimal]:
    status, body = call(server, creds, "GET", "/api/v3/account")
    assert status == 200, body
    return {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in body["balances"]}


def quote(server: ServerThread, creds: Credentials, **params: Any) -> dict[str, Any]:
    status, body = call(server, creds, "POST", "/sapi/v1/convert/getQuote", **params)
    assert status == 200, body
    return body


def accept(server: ServerThread, creds: Credentials, quote_id: str) -> tuple[int, Any]:
    return call(server, creds, "POST", "/sapi/v1/convert/acceptQuote", quoteId=quote_id)


@pytest.fixture(scope="module")
def book(server: ServerThread) -> dict[str, int]:
    """Bids 30000 x 0.01 and 29900 x 0.01; asks 30100 x 0.01 and 30200 x 0.02."""
    return {
        "bid1": place(server, "BUY", "30000", "0.01"),
        "bid2": place(server, "BUY", "29900", "0.01"),
        "ask1": place(server, "SELL", "30100", "0.01"),
        "ask2": place(server, "SELL", "30200", "0.02"),
    }


def test_sell_quote_then_the_quote_or_better(server: ServerThread, book: dict[str, int]) -> None:
    user = server.new_account(BTC="1", USDT="1000")
    q = quote(server, user, fromAsset="BTC", toAsset="USDT", fromAmount="0.02")
    # the limit is the worst level reached; the fee is shown and already deducted
    assert (q["symbol"], q["side"], Decimal(q["price"])) == ("BTCUSDT", "SELL", Decimal(29900))
    assert Decimal(q["fromAmount"]) == Decimal("0.02")
    assert Decimal(q["fee"]) == Decimal("598") * FEE and q["feeAsset"] == "USDT"
    assert Decimal(q["toAmount"]) == Decimal("598") - Decimal(q["fee"])
    assert q["validTimestamp"] > time.time() * 1000
    before = balances(server, user)
    status, done = accept(server, user, q["quoteId"])
    assert status == 200 and done["orderStatus"] == "SUCCESS", done
    after = balances(server, user)
    got = after["USDT"] - before["USDT"]
    assert got == Decimal("599") * (1 - FEE) > Decimal(q["toAmount"])  # better: 300 + 299
    assert before["BTC"] - after["BTC"] == Decimal("0.02")
    status, st = call(server, user, "GET", "/sapi/v1/convert/orderStatus", orderId=done["orderId"])
    assert status == 200 and st["orderStatus"] == "SUCCESS"
    assert Decimal(st["toAmount"]) == got and Decimal(st["fromAmount"]) == Decimal("0.02")
    status, st2 = call(server, user, "GET", "/sapi/v1/convert/orderStatus", quoteId=q["quoteId"])
    assert status == 200 and st2 == st
    other = server.new_account(USDT="1")
    status, body = call(server, other, "GET", "/sapi/v1/convert/orderStatus", orderId=st["orderId"])
    assert (status, body["code"]) == (400, -2013)
    status, body = accept(server, user, q["quoteId"])  # a quote is used once
    assert (status, body["code"]) == (400, -4102)
    place(server, "BUY", "30000", "0.01")  # restore the book for the next tests
    place(server, "BUY", "29900", "0.01")


def test_buy_quote_fails_whole_when_the_book_moved_away(
    server: ServerThread, book: dict[str, int]
) -> None:
    user = server.new_account(USDT="2000")
    q = quote(server, user, fromAsset="USDT", toAsset="BTC", toAmount="0.01")
    assert (q["side"], Decimal(q["price"])) == ("BUY", Decimal(30100))
    assert Decimal(q["fromAmount"]) == Decimal(301) * (1 + FEE)
    cancel(server, book["ask1"])  # only 30200 is left: worse than the quote
    before = balances(server, user)
    seq_before, _ = server.seq_and_hash()
    status, done = accept(server, user, q["quoteId"])
    assert status == 200 and done["orderStatus"] == "FAIL", done
    assert balances(server, user) == before, "a failed conversion moves nothing"
    assert server.seq_and_hash()[0] == seq_before + 1  # the FOK order itself is journaled
    book["ask1"] = place(server, "SELL", "30100", "0.01")


def test_buy_by_budget_and_sell_by_target(server: ServerThread, book: dict[str, int]) -> None:
    user = server.new_account(BTC="1", USDT="2000")
    q = quote(server, user, fromAsset="USDT", toAsset="BTC", fromAmount="700")
    # 0.01 at 30100, then up to 0.02 at 30200: the most lots whose cost at 30200 fits 700
    assert Decimal(q["price"]) == Decimal(30200)
    qty = Decimal(q["toAmount"])
    assert qty * 30200 * (1 + FEE) <= 700 < (qty + Decimal("0.0001")) * 30200 * (1 + FEE)
    q = quote(server, user, fromAsset="BTC", toAsset="USDT", toAmount="450")
    qty = Decimal(q["fromAmount"])
    assert Decimal(q["price"]) == Decimal(29900)
    assert qty * 29900 * (1 - FEE) >= 450 > (qty - Decimal("0.0001")) * 29900 * (1 - FEE)
    assert Decimal(q["toAmount"]) >= 450


def test_expired_quote_is_refused_and_journals_nothing(
    server: ServerThread, book: dict[str, int]
) -> None:
    user = server.new_account(BTC="1")
    q = quote(server, user, fromAsset="BTC", toAsset="USDT", fromAmount="0.01")
    conv = server.gw.converter
    real_clock = conv.clock_ms
    conv.clock_ms = lambda: real_clock() + 10_001  # the gateway's clock, 10 s later
    try:
        seq_before, hash_before = server.seq_and_hash()
        status, body = accept(server, user, q["quoteId"])
        assert (status, body["code"]) == (400, -4101) and "expired" in body["msg"]
        assert server.seq_and_hash() == (seq_before, hash_before)
    finally:
        conv.clock_ms = real_clock
    status, body = accept(server, user, q["quoteId"])
    assert (status, body["code"]) == (400, -4102)


def test_refusals_have_stable_codes(server: ServerThread, book: dict[str, int]) -> None:
    poor = server.new_account(USDT="10")
    cases = [
        ({"fromAsset": "USDT", "toAsset": "BTC", "toAmount": "0.01"}, -2010),  # funds
        ({"fromAsset": "USDT", "toAsset": "ETH", "toAmount": "1"}, -4104),  # empty book
        ({"fromAsset": "BTC", "toAsset": "ETH", "fromAmount": "1"}, -4103),  # no market
        ({"fromAsset": "USDT", "toAsset": "BTC", "toAmount": "1", "fromAmount": "1"}, -1128),
        ({"fromAsset": "USDT", "toAsset": "BTC"}, -1128),
        ({"fromAsset": "USDT", "toAsset": "BTC", "toAmount": "0.00001"}, -1013),  # lot
        ({"fromAsset": "USDT", "toAsset": "BTC", "toAmount": "5"}, -4104),  # deeper than book
        ({"fromAsset": "USDT", "toAsset": "BTC", "toAmount": "0.01", "validTime": "9s"}, -1130),
    ]
    seq_before, _ = server.seq_and_hash()
    for params, code in cases:
        status, body = call(server, poor, "POST", "/sapi/v1/convert/getQuote", **params)
        assert (status, body["code"]) == (400, code), (params, body)
    status, body = accept(server, poor, "123")
    assert (status, body["code"]) == (400, -4102)
    assert server.seq_and_hash()[0] == seq_before


def test_liabilities_proof_endpoint(server: ServerThread, book: dict[str, int]) -> None:
    user = server.new_account(BTC="0.5", USDT="123")
    status, body = call(server, user, "GET", "/sapi/v1/audit/liabilitiesProof")
    assert status == 200 and body == {"asOfSeq": None, "proof": None, "published": None}
    server.wait_idle()
    journal_dir = server.gw.node.journal_dir
    with SegmentJournal(journal_dir, read_only=True) as j:
        seq = j.last_sequence
    book_ = replay_book(journal_dir, to_seq=seq)
    trees = build_all(book_, seq)
    out = server.gw.config.data_dir / "liabilities" / str(seq)
    write_outputs(
        out, trees, seq, published_document(trees, seq, "00" * 32, reconcile(book_, seq, trees))
    )
    status, body = call(server, user, "GET", "/sapi/v1/audit/liabilitiesProof")
    assert status == 200 and body["asOfSeq"] == seq
    account_id = server.gw.keys.get(user.api_key).account_id
    assert body["proof"]["account"] == account_id
    roots = {a["asset"]: (a["root"], a["total_atoms"]) for a in body["published"]["assets"]}
    done = verify_proof(body["proof"], roots)
    assert {v.asset: v.balance_atoms for v in done} == {"BTC": 50_000_000, "USDT": 123_000_000}
    status, body = call(server, user, "GET", "/sapi/v1/audit/liabilitiesProof", asOf=seq + 10**6)
    assert (status, body["code"]) == (400, -4110)
    assert json.loads((out / "liabilities.json").read_text())["as_of_seq"] == seq


def _bo(server: ServerThread, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    req = urllib.request.Request(
        server.http + path,
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_liabilities_proof_for_a_logged_in_user(server: ServerThread, book: dict[str, int]) -> None:
    """The back office's user session gets the same proof as a signed API key request."""
    creds = {"email": "pol@example.com", "password": "correct horse battery"}
    status, user = _bo(server, "/api/v1/auth/signup", creds)
    assert status == 201, user
    status, tokens = _bo(server, "/api/v1/auth/login", creds)
    assert status == 200, tokens
    token = tokens["access_token"]
    account_id = user["account_id"]
    server.call(Admin(server.gw).deposit(account_id, "USDT", "77"))
    server.wait_idle()
    with SegmentJournal(server.gw.node.journal_dir, read_only=True) as j:
        seq = j.last_sequence
    book_ = replay_book(server.gw.node.journal_dir, to_seq=seq)
    trees = build_all(book_, seq)
    published = published_document(trees, seq, "00" * 32, reconcile(book_, seq, trees))
    write_outputs(server.gw.config.data_dir / "liabilities" / str(seq), trees, seq, published)
    status, body = _bo(server, "/api/v1/me/liabilities-proof", token=token)
    assert status == 200 and body["asOfSeq"] == seq, body
    roots = {a["asset"]: (a["root"], a["total_atoms"]) for a in body["published"]["assets"]}
    done = verify_proof(body["proof"], roots)
    assert [(v.account, v.asset, v.balance_atoms) for v in done] == [
        (account_id, "USDT", 77_000_000)
    ]
    status, body = _bo(server, f"/api/v1/me/liabilities-proof?asOf={seq + 10**6}", token=token)
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    status, body = _bo(server, "/api/v1/me/liabilities-proof")
    assert status == 401
