"""Gateway over real sockets, in the Binance Spot dialect: rate limits (429 then 418), the
order-count limit, restart rebuilding orders from the journal, the accounts CLI offline and
against a running server, and idle connections closed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from engine.node import EngineNode, NodeConfig
from gateway.client import ClientError, WsApiClient
from gateway.ratelimit import Limits
from tests.gateway_support import ServerThread, http


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# ---- limits, restart, admin CLI -------------------------------------------------------------


def test_rate_limit_429_then_ban_418(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, Limits(weight_per_minute=30, ban_after=3, orders_per_10s=2))
    try:
        statuses = []
        for _ in range(40):
            status, headers, data = http("GET", s.http + "/api/v3/exchangeInfo")
            statuses.append(status)
            if status in (418, 429):
                assert "Retry-After" in headers and data["code"] == -1003
        assert 429 in statuses and statuses[-1] == 418
        with pytest.raises(InvalidStatus) as refused:  # the ban covers the WS API too
            ws_connect(s.ws_api)
        assert refused.value.response.status_code == 418
    finally:
        s.stop()


def test_order_count_limit(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, Limits(orders_per_10s=2))
    acc = s.accounts

    async def body() -> None:
        async with WsApiClient.connect(s.ws_api, acc.maker) as c:
            await c.logon()
            codes = []
            for _ in range(3):
                try:
                    await c.place_order(
                        "BTCUSDT",
                        "BUY",
                        "LIMIT",
                        quantity="0.01",
                        price="10000",
                        time_in_force="GTC",
                    )
                    codes.append(0)
                except ClientError as exc:
                    codes.append(exc.code)
            assert codes == [0, 0, -1015]

    try:
        run(body())
    finally:
        s.stop()


def test_restart_rebuilds_orders_from_the_journal(tmp_path: Path) -> None:
    s = ServerThread(tmp_path)
    acc = s.accounts
    long_id = "ccxt-" + "q" * 25

    async def place() -> int:
        async with WsApiClient.connect(s.ws_api, acc.maker) as c:
            await c.logon()
            o = await c.place_order(
                "BTCUSDT",
                "BUY",
                "LIMIT",
                quantity="0.01",
                price="12345.67",
                time_in_force="GTC",
                client_order_id=long_id,
            )
            return int(o["orderId"])

    oid = run(place())
    before = s.state_hash()
    s.stop()
    s2 = ServerThread(tmp_path, fixture_accounts=False)  # same data dir: replay
    try:
        assert s2.gw.first_start is None
        assert s2.state_hash() == before
        o = s2.gw.store.orders[oid]
        assert o.is_open and s2.gw.ids.display(o.client_order_id, oid) == long_id

        async def check() -> None:
            async with WsApiClient.connect(s2.ws_api, acc.maker) as c:
                await c.logon()
                st = await c.order_status("BTCUSDT", client_order_id=long_id)
                assert st["orderId"] == oid and st["price"] == "12345.670000"

        run(check())
    finally:
        s2.stop()


def _json_out(text: str) -> Any:
    """The CLI's JSON document (unconfigured structlog may print log lines before it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line[:1] in ("{", "["))
    return json.loads("\n".join(lines[start:]))


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI's main, without re-pointing the process's logging at the captured stderr."""
    from gateway.cli import main

    monkeypatch.setattr("engine.logsetup.configure_logging", lambda level: None)
    return main


def test_accounts_cli_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Any) -> None:
    main = cli

    data = tmp_path / "data"
    mk = ["--master-key-file", str(tmp_path / "mk")]
    # only `serve` creates an exchange: the accounts CLI refuses a directory that is not one
    assert main(["accounts", "create", "--data-dir", str(data), *mk]) == 1
    assert not data.exists()
    EngineNode(NodeConfig(data_dir=data, fsync=False)).close()
    assert main(["accounts", "create", "--data-dir", str(data), *mk]) == 0
    created = _json_out(capsys.readouterr().out)
    assert created["secret"] and created["account_id"] == 1
    assert (
        main(
            [
                "accounts",
                "deposit",
                "--data-dir",
                str(data),
                *mk,
                "--account",
                "1",
                "--asset",
                "usdt",
                "--amount",
                "12.5",
            ]
        )
        == 0
    )
    assert _json_out(capsys.readouterr().out)["amount"] == "12.500000"
    assert main(["accounts", "list", "--data-dir", str(data), *mk]) == 0
    listed = _json_out(capsys.readouterr().out)
    assert listed[0]["balances"]["USDT"]["free"] == "12.500000"
    assert "secret" not in json.dumps(listed)


def test_accounts_cli_reaches_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Any
) -> None:
    main = cli

    s = ServerThread(tmp_path)
    try:
        args = ["--data-dir", str(tmp_path / "data")]
        assert (
            main(
                ["accounts", "deposit", *args, "--account", "1", "--asset", "BTC", "--amount", "1"]
            )
            == 0
        )
        assert _json_out(capsys.readouterr().out)["seq"] > 0
        assert main(["accounts", "create", *args, "--permissions", "read"]) == 0
        new = _json_out(capsys.readouterr().out)
        assert s.gw.keys.get(new["api_key"]) is not None
        status, _, _ = http("GET", s.http + "/admin/accounts")
        assert status == 403
    finally:
        s.stop()


def test_idle_connection_is_closed(tmp_path: Path) -> None:
    s = ServerThread(tmp_path, Limits(idle_timeout_s=0.5), fixture_accounts=False)
    try:
        with ws_connect(s.ws_api) as ws:
            ws.send(json.dumps({"id": 1, "method": "ping"}))
            assert json.loads(ws.recv(timeout=5))["status"] == 200
            with pytest.raises(Exception):  # noqa: B017 - closed by the server (1001)
                ws.recv(timeout=5)
            assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1001
    finally:
        s.stop()


def test_usage_echo_bytes_are_the_encoded_usage() -> None:
    """The WS API echoes usages pre-encoded (`Window.describe_json`): the same bytes as encoding
    `describe`, for every window and any count."""
    import msgspec

    from gateway.ratelimit import RateLimiter

    limiter = RateLimiter(Limits(weight_per_minute=6000, orders_per_10s=77, orders_per_day=10**12))
    windows = (limiter.ip_weight, limiter.key_weight, limiter.orders_10s, limiter.orders_day)
    for window in windows:
        for count in (0, 1, 99, 10**12 + 1):
            assert window.describe_json(count) == msgspec.json.encode(window.describe(count))
