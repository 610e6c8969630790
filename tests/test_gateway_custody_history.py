"""Deposit and withdrawal history through the gateway against a real anvil, with the signer on:
``insertTime``/``applyTime`` are real times, ``confirmTimes``/``confirmNo`` count the chain's
confirmations, and a withdrawal's statuses tell broadcast (Processing, 4) from mined
(Completed, 6) from settled (Completed with every confirmation and a ``completeTime``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import Credentials
from tests.custody_nodes import CONFIRMATIONS, ETH_CHAIN, Anvil, eth_custody_config, run_anvil
from tests.gateway_support import ServerThread, http, signed_query

ETHER = 10**18


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with run_anvil() as node:
        yield node


def custody_config(tmp: Path, anvil: Anvil) -> Any:
    return eth_custody_config(
        tmp,
        anvil,
        "gateway-custody-history",
        hot_key=True,
        stuck_after_s=3600,
        min_withdrawal_atoms=1_000,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, anvil: Anvil) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("gwch")
    s = ServerThread(tmp, custody=custody_config(tmp, anvil), custody_signer=True, custody_poll_s=0)
    yield s
    s.stop()


def rest(server: ServerThread, method: str, path: str, creds: Credentials, **params: Any) -> Any:
    status, _, data = http(
        method,
        server.http + path,
        query=signed_query(creds, params),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 200, (path, data)
    return data


def poll(server: ServerThread) -> None:
    server.call(server.gw.custody.custody.poll())


def test_deposit_history_times_and_confirmations(server: ServerThread, anvil: Anvil) -> None:
    demo = server.accounts.demo
    addr = rest(server, "GET", "/sapi/v1/capital/deposit/address", demo, coin="ETH")["address"]
    t0 = time.time_ns() // 1_000_000
    frm = anvil.rpc("eth_accounts")[1]
    txid = anvil.rpc("eth_sendTransaction", {"from": frm, "to": addr, "value": hex(3 * ETHER)})
    poll(server)  # seen in its block: one confirmation of CONFIRMATIONS
    t1 = time.time_ns() // 1_000_000
    (row,) = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", demo, coin="ETH")
    assert (row["status"], row["custodyStatus"]) == (0, "pending")
    assert row["confirmTimes"] == f"1/{CONFIRMATIONS}"
    assert row["unlockConfirm"] == CONFIRMATIONS
    assert t0 <= row["insertTime"] <= t1
    assert row["txId"] == txid and row["address"] == addr and "completeTime" not in row
    anvil.mine(1)
    poll(server)
    (row,) = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", demo, coin="ETH")
    assert (row["status"], row["confirmTimes"]) == (0, f"2/{CONFIRMATIONS}")
    anvil.mine(CONFIRMATIONS)
    poll(server)
    (row,) = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", demo, coin="ETH")
    assert (row["status"], row["custodyStatus"]) == (1, "credited")
    assert row["confirmTimes"] == f"{CONFIRMATIONS}/{CONFIRMATIONS}"
    assert row["amount"] == "3.000000000"
    assert t1 <= row["completeTime"] <= time.time_ns() // 1_000_000
    assert row["insertTime"] <= t1  # the first sighting, kept


def test_withdrawal_history_broadcast_mined_settled(server: ServerThread, anvil: Anvil) -> None:
    demo = server.accounts.demo
    custody = server.gw.custody.custody
    hot = custody.signers[ETH_CHAIN].address
    anvil.rpc(
        "eth_sendTransaction",
        {"from": anvil.rpc("eth_accounts")[2], "to": hot, "value": hex(10 * ETHER)},
    )
    to = anvil.rpc("eth_accounts")[5]

    def history() -> dict[str, Any]:
        (row,) = [
            h
            for h in rest(server, "GET", "/sapi/v1/capital/withdraw/history", demo)
            if h["id"] == "41"
        ]
        return row

    t0 = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    anvil.rpc("evm_setAutomine", False)
    try:
        rest(
            server,
            "POST",
            "/sapi/v1/capital/withdraw/apply",
            demo,
            coin="ETH",
            address=to,
            amount="1",
            withdrawOrderId="41",
        )
        row = history()
        assert (row["status"], row["custodyStatus"], row["confirmNo"]) == (4, "held", 0)
        assert t0 <= row["applyTime"] <= time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        poll(server)  # signed and sent, not in a block
        row = history()
        assert (row["status"], row["custodyStatus"], row["confirmNo"]) == (4, "broadcast", 0)
        assert row["txId"].startswith("0x") and "completeTime" not in row
        anvil.mine(1)
        poll(server)  # in a block: one confirmation
        row = history()
        assert (row["status"], row["custodyStatus"], row["confirmNo"]) == (6, "mined", 1)
        assert "completeTime" not in row
        anvil.mine(CONFIRMATIONS)
        poll(server)
    finally:
        anvil.rpc("evm_setAutomine", True)
    row = history()
    assert (row["status"], row["custodyStatus"]) == (6, "settled")
    assert row["confirmNo"] == CONFIRMATIONS and row["completeTime"] >= row["applyTime"]
    assert row["amount"] == "1.000000000" and row["address"].lower() == to.lower()


def test_store_from_before_the_time_columns_is_upgraded_in_place(tmp_path: Path) -> None:
    """A custody store written before ``seen_ns``/``credited_ns`` existed opens, keeps its rows
    (times unknown: 0) and records times from then on."""
    import sqlite3

    from custody.store import CustodyStore

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE deposits (key TEXT PRIMARY KEY, chain TEXT NOT NULL, height INTEGER NOT "
        "NULL, block_hash TEXT NOT NULL, account_id INTEGER NOT NULL, asset_id INTEGER NOT NULL,"
        " chain_amount TEXT NOT NULL, atoms INTEGER NOT NULL, dust TEXT NOT NULL, status TEXT "
        "NOT NULL, detail TEXT NOT NULL DEFAULT '');"
        "INSERT INTO deposits VALUES ('c:tx:0', 'c', 5, 'h', 1, 2, '10', 10, '0', 'pending', '');"
    )
    db.commit()
    db.close()
    store = CustodyStore(path)
    try:
        (row,) = store.deposits()
        assert (row.key, row.status, row.seen_ns, row.credited_ns) == ("c:tx:0", "pending", 0, 0)
        store.set_deposit_status("c:tx:0", "credited", credited_ns=123)
        (row,) = store.deposits()
        assert (row.status, row.credited_ns) == ("credited", 123)
    finally:
        store.close()


def test_deposit_history_pages_forward_from_start_time(server: ServerThread, anvil: Anvil) -> None:
    """``startTime``/``endTime``/``limit``/``offset`` on the history (they were ignored: every
    row came back whatever the window), and with ``startTime`` the page is the oldest rows from
    it, so ccxt's ``fetch_deposits(code, since, limit)`` syncing forward misses none."""
    creds = server.new_account()
    addr = rest(server, "GET", "/sapi/v1/capital/deposit/address", creds, coin="ETH")["address"]
    frm = anvil.rpc("eth_accounts")[2]
    for k in range(5):
        anvil.rpc("eth_sendTransaction", {"from": frm, "to": addr, "value": hex((k + 1) * ETHER)})
        poll(server)  # one sighting per poll: distinct insertTimes
        time.sleep(0.005)
    every = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", creds, coin="ETH")
    assert [r["amount"] for r in every] == [f"{k}.000000000" for k in (5, 4, 3, 2, 1)]
    times = [r["insertTime"] for r in reversed(every)]
    assert times == sorted(times)

    def page(**params: Any) -> list[str]:
        rows = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", creds, **params)
        return [r["amount"][0] for r in rows]

    assert page(startTime=times[0], limit=2) == ["2", "1"]  # the oldest two, newest first
    assert page(startTime=times[2], limit=2) == ["4", "3"]
    assert page(startTime=times[0], limit=2, offset=2) == ["4", "3"]
    assert page(limit=2) == ["5", "4"]  # no startTime: the newest
    assert page(startTime=times[1], endTime=times[3]) == ["4", "3", "2"]
    status, _, data = http(
        "GET",
        server.http + "/sapi/v1/capital/deposit/hisrec",
        query=signed_query(creds, {"startTime": times[3], "endTime": times[1]}),
        headers={"X-MBX-APIKEY": creds.api_key},
    )
    assert (status, data["code"]) == (400, -1130)

    import ccxt

    ex = ccxt.binance(
        {
            "apiKey": creds.api_key,
            "secret": creds.secret,
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    for name, url in list(ex.urls["api"].items()):
        if isinstance(url, str):
            ex.urls["api"][name] = server.http + "/" + url.split("/", 3)[3]
    ex.load_markets()
    seen: list[float] = []
    since = times[0]
    for _ in range(5):
        got = ex.fetch_deposits("ETH", since, 2)
        if not got:
            break
        seen += [d["amount"] for d in got]
        since = got[-1]["timestamp"] + 1
    assert seen == [1.0, 2.0, 3.0, 4.0, 5.0]
