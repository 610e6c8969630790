"""Issue 11, item 1: no money from nowhere, demo mode, and API key rotation/revocation.

Every test runs the real ``kootabase serve`` CLI as a child process on a fresh data dir.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
from pathlib import Path

from engine.journal import SegmentJournal
from engine.node import EngineNode, NodeConfig
from engine.schema import CreateAccount, Deposit, decode_command
from engine.service import USDT, bootstrap_demo
from gateway.client import Credentials
from gateway.keys import KeyStore
from tests.gateway_support import signed_query
from tests.serve_process import ServeProcess, kootabase


def _deposits(data_dir: Path) -> list[Deposit]:
    with SegmentJournal(data_dir / "journal", read_only=True) as journal:
        commands = [
            decode_command(p)
            for _, _, p in journal.read_from(journal.first_sequence, journal.last_sequence)
        ]
    return [c for c in commands if isinstance(c, Deposit)]


def _demo_credentials(text: str) -> tuple[int, Credentials]:
    account = re.search(r"account id\s+: (\d+)", text)
    key = re.search(r"API key\s+: (\S+)", text)
    secret = re.search(r"secret\s+: (\S+)", text)
    assert account and key and secret, text
    return int(account.group(1)), Credentials.hmac(key.group(1), secret.group(1))


def _account(serve: ServeProcess, creds: Credentials) -> tuple[int, dict]:
    return serve.get("/api/v3/account?" + signed_query(creds, {}), {"X-MBX-APIKEY": creds.api_key})


def _wait_stdout(serve: ServeProcess, needle: str) -> str:
    import time

    deadline = time.monotonic() + 30
    while needle not in serve.stdout() and time.monotonic() < deadline:
        time.sleep(0.05)
    return serve.stdout()


def test_serve_without_demo_creates_no_account_and_no_money(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = ServeProcess(data, tmp_path / "master.key")
    try:
        listed = kootabase("accounts", "list", "--data-dir", str(data))
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
        assert "secret" not in serve.stdout()
    finally:
        assert serve.stop() == 0
    assert _deposits(data) == []


def test_demo_funds_are_journaled_demo_deposits_and_the_key_cannot_withdraw(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = ServeProcess(data, tmp_path / "master.key", "--demo")
    try:
        account_id, creds = _demo_credentials(_wait_stdout(serve, "secret"))
        status, acct = _account(serve, creds)
        assert status == 200, acct
        assert acct["canTrade"] is True and acct["canWithdraw"] is False
        usdt = next(b for b in acct["balances"] if b["asset"] == "USDT")
        assert usdt["free"].startswith("1000000")
        keys = json.loads(kootabase("accounts", "keys", "list", "--data-dir", str(data)).stdout)
        assert [(k["account_id"], k["permissions"], k["demo"]) for k in keys] == [
            (account_id, ["read", "trade"], True)
        ]
    finally:
        assert serve.stop() == 0
    deposits = _deposits(data)
    assert deposits and all(d.demo and d.is_demo for d in deposits)
    # a restart with --demo on a data dir that has keys creates nothing more
    again = ServeProcess(data, tmp_path / "master.key", "--demo")
    try:
        assert "secret" not in again.stdout()
    finally:
        again.stop()
    assert len(_deposits(data)) == len(deposits)


def test_demo_with_custody_is_refused_in_one_line(tmp_path: Path) -> None:
    for extra in (["--custody-config", str(tmp_path / "custody.toml")], ["--custody-signer"]):
        done = kootabase(
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
            "--master-key-file",
            str(tmp_path / "master.key"),
            "--demo",
            *extra,
        )
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "--demo cannot be combined with --custody" in lines[0], lines
        assert not (tmp_path / "data" / "journal").exists()


def test_demo_secret_is_not_lost_to_a_busy_port(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        failed = ServeProcess(data, tmp_path / "master.key", "--demo", port=port, wait=False)
        assert failed.proc.wait(timeout=240) != 0
        assert "secret" not in failed.stdout()
    store = KeyStore(data / "gateway" / "keys.json", tmp_path / "master.key")
    assert store.listing() == [], "a key was made whose secret nobody saw"
    serve = ServeProcess(data, tmp_path / "master.key", "--demo")
    try:
        _, creds = _demo_credentials(_wait_stdout(serve, "secret"))
        assert _account(serve, creds)[0] == 200
    finally:
        serve.stop()


def test_keys_rotate_and_revoke_survive_a_restart(tmp_path: Path) -> None:
    data, master = tmp_path / "data", tmp_path / "master.key"
    serve = ServeProcess(data, master)
    try:
        made = kootabase("accounts", "create", "--data-dir", str(data))
        assert made.returncode == 0, made.stderr
        first = json.loads(made.stdout)
        a = Credentials.hmac(first["api_key"], first["secret"])
        assert _account(serve, a)[0] == 200
        rotated = kootabase("accounts", "keys", "rotate", first["api_key"], "--data-dir", str(data))
        assert rotated.returncode == 0, rotated.stderr
        second = json.loads(rotated.stdout)
        b = Credentials.hmac(second["api_key"], second["secret"])
        assert second["account_id"] == first["account_id"]
        assert second["permissions"] == first["permissions"]
        status, err = _account(serve, a)
        assert (status, err["code"]) == (401, -2015)
        assert _account(serve, b)[0] == 200
        revoked = kootabase(
            "accounts", "keys", "revoke", second["api_key"], "--data-dir", str(data)
        )
        assert revoked.returncode == 0, revoked.stderr
        assert _account(serve, b)[0] == 401
        again = kootabase("accounts", "keys", "revoke", second["api_key"], "--data-dir", str(data))
        assert again.returncode != 0 and "no active API key" in again.stderr
    finally:
        assert serve.stop() == 0
    # stopped: the CLI works on the data dir itself, and the revocations held
    listed = json.loads(
        kootabase(
            "accounts", "keys", "list", "--data-dir", str(data), "--master-key-file", str(master)
        ).stdout
    )
    assert [k["revoked_ms"] is not None for k in listed] == [True, True]
    serve = ServeProcess(data, master)
    try:
        assert _account(serve, a)[0] == 401
        assert _account(serve, b)[0] == 401
    finally:
        serve.stop()


def test_old_data_dir_demo_money_is_reported_apart_and_cannot_withdraw(tmp_path: Path) -> None:
    """A data dir as the code before issue 11 left it: demo deposits keyed ``demo:...``
    without the flag, and a demo key holding ``withdraw``."""
    data, master = tmp_path / "data", tmp_path / "master.key"
    with EngineNode(NodeConfig(data_dir=data)) as node:
        bootstrap_demo(node)
        node.submit(
            [
                CreateAccount(account_id=1),
                Deposit(
                    account_id=1,
                    asset_id=USDT,
                    amount_atoms=1_000_000 * 10**6,
                    deposit_key="demo:1:USDT",
                ),
            ]
        )
    old = KeyStore(data / "gateway" / "keys.json", master).create(1, ("read", "trade", "withdraw"))
    assert old.secret is not None
    tb = kootabase("ledger", "trial-balance", "--journal", str(data / "journal"), "--csv")
    assert tb.returncode == 0, tb.stderr
    assert "USDT,0,CUSTODY of which DEMO,,,-1000000000000,-1000000.000000" in tb.stdout
    serve = ServeProcess(data, master)
    try:
        status, acct = _account(serve, Credentials.hmac(old.api_key, old.secret))
        assert status == 200 and acct["canWithdraw"] is False
    finally:
        serve.stop()


def test_revoking_a_key_ends_what_its_logged_on_ws_session_may_do(tmp_path: Path) -> None:
    """A WS session that logged on with a key loses every permission when the key is revoked
    (the session holds the key object; revocation marks it)."""
    import asyncio

    import pytest

    from gateway.admin import Admin
    from gateway.client import WsApiClient
    from gateway.client.ws import ClientError
    from tests.gateway_support import ServerThread

    s = ServerThread(tmp_path, fixture_accounts=False)
    try:
        creds = s.new_account(USDT="1000")

        async def session() -> None:
            async with WsApiClient.connect(s.ws_api, creds) as client:
                await client.logon()
                assert (await client.account())["canTrade"] is True
                revoked = await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(_revoke(Admin(s.gw), creds.api_key), s.loop)
                )
                assert revoked["api_key"] == creds.api_key
                with pytest.raises(ClientError) as err:
                    await client.account()
                assert err.value.code == -2015

        asyncio.run(session())
    finally:
        s.stop()


async def _revoke(admin: object, api_key: str) -> dict:
    return admin.keys("keys/revoke", {"api_key": api_key})  # type: ignore[attr-defined]


def test_user_data_streams_end_with_their_key_and_belong_to_their_connection(
    tmp_path: Path,
) -> None:
    """A user data stream opened by a key stops the moment that key is revoked (it kept
    streaming the account's orders and balances), a revoked session cannot subscribe again,
    and ``userDataStream.unsubscribe`` ends only the calling connection's subscriptions
    (without an id it ended every connection's subscriptions of the account)."""
    import asyncio

    import pytest

    from gateway.admin import Admin
    from gateway.client import WsApiClient
    from gateway.client.ws import ClientError
    from tests.gateway_support import ServerThread

    s = ServerThread(tmp_path, fixture_accounts=False)
    try:
        trader = s.new_account(USDT="1000")
        key = s.gw.keys.get(trader.api_key)
        assert key is not None
        readers = []
        for _ in range(2):
            new = s.gw.keys.create(key.account_id, ("read",))
            assert new.secret is not None
            readers.append(Credentials.hmac(new.api_key, new.secret))

        async def drain(client: WsApiClient, timeout: float) -> int:
            got = 0
            with contextlib.suppress(TimeoutError):
                while True:
                    await client.next_event(timeout)
                    got += 1
            return got

        async def scenario() -> None:
            async with (
                WsApiClient.connect(s.ws_api, trader) as t,
                WsApiClient.connect(s.ws_api, readers[0]) as a,
                WsApiClient.connect(s.ws_api, readers[1]) as b,
            ):
                for client in (a, b):
                    await client.logon()
                    await client.subscribe_user_data()

                async def order() -> None:
                    await t.place_order(
                        "BTCUSDT",
                        "BUY",
                        "LIMIT",
                        quantity="0.01",
                        price="10000",
                        time_in_force="GTC",
                    )

                await order()
                assert await drain(a, 1.0) > 0 and await drain(b, 1.0) > 0
                await b.request("userDataStream.unsubscribe")
                await order()
                assert await drain(a, 1.0) > 0, "b's unsubscribe ended a's stream"
                assert await drain(b, 0.5) == 0
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(
                        _revoke(Admin(s.gw), readers[0].api_key), s.loop
                    )
                )
                await order()
                assert await drain(a, 1.0) == 0, "a revoked key's stream kept streaming"
                with pytest.raises(ClientError) as err:
                    await a.subscribe_user_data()
                assert err.value.code == -2015

        asyncio.run(scenario())
    finally:
        s.stop()
