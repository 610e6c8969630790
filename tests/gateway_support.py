"""A real gateway on 127.0.0.1 (random port) with a real journal, run on its own thread.

Tests talk to it over real sockets from the test thread (the SDK via ``asyncio.run``, sync
websockets and urllib for raw frames), so hypothesis tests can stay synchronous while the server
keeps one event loop for its whole life.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from engine.core.compiled import CompiledEngine
from engine.journal import SegmentJournal
from engine.replay import replay
from engine.schema import Command, Event, decode_command
from gateway.admin import Admin
from gateway.app import Gateway, GatewayConfig
from gateway.client import Credentials
from gateway.demo import DEMO_FUNDS
from gateway.ratelimit import Limits
from gateway.server import Running, start

T = TypeVar("T")


@dataclass
class Accounts:
    demo: Credentials
    demo_id: int
    maker: Credentials
    maker_id: int
    ed: Credentials
    ed_id: int
    reader: Credentials
    """Read-only key (no trade permission)."""


class ServerThread:
    def __init__(
        self,
        tmp_path: Path,
        limits: Limits | None = None,
        *,
        fixture_accounts: bool = True,
        **config: Any,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.gw = Gateway(
            GatewayConfig(
                data_dir=tmp_path / "data",
                master_key_file=tmp_path / "secrets" / "master.key",
                limits=limits or Limits(),
                **config,
            )
        )
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.running: Running = self.call(start(self.gw, "127.0.0.1", 0))
        if fixture_accounts:
            self.accounts = self.call(self._accounts())

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _accounts(self) -> Accounts:
        # "demo" is a fixture account funded by operator deposits (not the --demo faucet,
        # whose keys never withdraw): the custody tests withdraw from it.
        admin = Admin(self.gw)
        demo = await admin.create_account(("read", "trade", "withdraw"))
        assert demo.secret is not None
        for asset, amount in DEMO_FUNDS.items():
            await admin.deposit(demo.account_id, asset, amount)
        maker = await admin.create_account(("read", "trade"))
        assert maker.secret is not None
        for asset, amount in (("USDT", "1000000"), ("BTC", "100"), ("ETH", "1000")):
            await admin.deposit(maker.account_id, asset, amount)
        private = Ed25519PrivateKey.generate()
        pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        ed = await admin.create_account(("read", "trade"), ed25519_public_pem=pem)
        await admin.deposit(ed.account_id, "USDT", "100000")
        await admin.deposit(ed.account_id, "BTC", "10")
        reader = self.gw.keys.create(demo.account_id, ("read",))
        assert reader.secret is not None
        return Accounts(
            demo=Credentials.hmac(demo.api_key, demo.secret),
            demo_id=demo.account_id,
            maker=Credentials.hmac(maker.api_key, maker.secret),
            maker_id=maker.account_id,
            ed=Credentials.ed25519(ed.api_key, private),
            ed_id=ed.account_id,
            reader=Credentials.hmac(reader.api_key, reader.secret),
        )

    def new_account(self, **funds: str) -> Credentials:
        """A new account with a read+trade HMAC key, funded with ``asset=amount`` deposits."""

        async def make() -> Credentials:
            admin = Admin(self.gw)
            key = await admin.create_account(("read", "trade"))
            assert key.secret is not None
            for asset, amount in funds.items():
                await admin.deposit(key.account_id, asset, amount)
            return Credentials.hmac(key.api_key, key.secret)

        return self.call(make())

    @property
    def http(self) -> str:
        return self.running.http

    @property
    def ws_api(self) -> str:
        return self.running.ws_api

    def state_hash(self) -> str:
        return self.call(self.gw.state_hash())

    def seq_and_hash(self) -> tuple[int, str]:
        """Last sequence and state hash read together on the engine thread (no batch between)."""
        return self.call(self.gw.bridge.call(lambda node: (node.last_seq, node.state_hash())))

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no command is in flight in the gateway."""
        deadline = time.monotonic() + timeout
        while self.gw.trading.inflight and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.call(self.running.runner.cleanup())
        self.call(_cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def _cancel_the_rest() -> None:
    """Cancel and await every task still on the loop (a connection's handler after cleanup...),
    as ``asyncio.run`` does before it closes its loop: a task left pending on a closed loop is
    reported "Task was destroyed but it is pending!" when the collector frees the stopped
    gateway, in whichever later test that happens."""
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


def http(
    method: str,
    url: str,
    *,
    query: str = "",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A plain HTTP request; returns (status, headers, decoded JSON or text)."""
    req = urllib.request.Request(
        url + (f"?{query}" if query else ""),
        method=method,
        data=body.encode() if body is not None else None,
        headers=headers or {},
    )
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw.decode(errors="replace")


def signed_query(
    creds: Credentials, params: dict[str, Any], *, timestamp: int | None = None
) -> str:
    params = {**params, "timestamp": timestamp or time.time_ns() // 1_000_000}
    query = urlencode(params)
    return f"{query}&{urlencode({'signature': creds.sign(query.encode())})}"


@dataclass
class Journaled:
    """One journal record with the events a fresh engine gives for it."""

    seq: int
    ts: int
    command: Command
    events: list[Event]


def journal_replay(gw: Gateway, to_seq: int | None = None) -> tuple[list[Journaled], str]:
    """Every command in the gateway's journal up to ``to_seq`` (read-only, beside the running
    node) with its events from a fresh engine, and the state hash `engine.replay` computes
    from genesis."""
    journal = SegmentJournal(gw.node.journal_dir, read_only=True)
    try:
        last = journal.last_sequence if to_seq is None else to_seq
        records = [(seq, ts, decode_command(p)) for seq, ts, p in journal.read_from(1, last)]
    finally:
        journal.close()
    by_seq: dict[int, list[Event]] = {}
    for e in CompiledEngine(gw.node.engine.config).process(records):
        by_seq.setdefault(e.seq, []).append(e)
    out = [Journaled(seq, ts, cmd, by_seq.get(seq, [])) for seq, ts, cmd in records]
    return out, replay(gw.node.journal_dir, config=gw.node.engine.config, to_seq=last).state_hash
