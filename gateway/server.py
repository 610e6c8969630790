"""Running the gateway's aiohttp app on a socket (``kootabase serve``, tests, benchmarks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gateway.app import Gateway
from gateway.gctune import tune_for_serving
from gateway.keys import NewKey


@dataclass(slots=True)
class Running:
    gateway: Gateway
    runner: web.AppRunner
    host: str
    port: int

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_api(self) -> str:
        return f"ws://{self.host}:{self.port}/ws-api/v3"


async def start(gw: Gateway, host: str = "127.0.0.1", port: int = 8080) -> Running:
    runner = web.AppRunner(gw.app(), handle_signals=False, access_log=None,
                           shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    tune_for_serving()
    server = site._server
    assert server is not None and server.sockets
    actual = server.sockets[0].getsockname()[1]
    info = gw.dir / "server.json"
    info.write_text(json.dumps({"host": host, "port": actual, "pid": os.getpid()}))
    return Running(gw, runner, host, actual)


@contextlib.asynccontextmanager
async def running(gw: Gateway, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Running]:
    r = await start(gw, host, port)
    try:
        yield r
    finally:
        await r.runner.cleanup()


async def serve_forever(gw: Gateway, host: str, port: int,
                        on_ready: Callable[[Running, NewKey | None], None]) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly (snapshot on close)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    r = await start(gw, host, port)
    try:
        on_ready(r, gw.first_start)
        await stop.wait()
    finally:
        await r.runner.cleanup()


def run_serve_cli(args: argparse.Namespace) -> int:
    """``kootabase serve``: node + gateway + market data on one aiohttp app.

    The demo API key and secret are written to stdout once, at the first start of a data
    directory (they are never logged and cannot be shown again: the secret is stored
    encrypted)."""
    import structlog

    from gateway.app import GatewayConfig

    log = structlog.get_logger(__name__)
    if args.no_fsync:
        log.warning("fsync_disabled", detail="benchmark mode: acknowledged commands can be lost")
    from gateway.clustercli import cluster_config

    try:
        cluster = cluster_config(args)
    except ValueError as exc:
        sys.stderr.write(f"kootabase serve: {exc}\n")
        return 2
    config = GatewayConfig(data_dir=Path(args.data_dir), fsync=not args.no_fsync, cluster=cluster,
                           master_key_file=getattr(args, "master_key_file", None),
                           custody=getattr(args, "custody_config", None),
                           custody_signer=getattr(args, "custody_signer", False))
    gw = Gateway(config)

    def ready(r: Running, creds: NewKey | None) -> None:
        log.info("serving", http=r.http, ws_api=r.ws_api, last_seq=gw.last_seq)
        if creds is not None:
            sys.stdout.write(
                "\nDemo account created (shown once; the secret is stored encrypted):\n"
                f"  account id : {creds.account_id}\n"
                f"  API key    : {creds.api_key}\n"
                f"  secret     : {creds.secret}\n"
                f"  REST       : {r.http}/api/v3\n"
                f"  WS API     : {r.ws_api}\n\n")
            sys.stdout.flush()

    follower = _start_ledger_follower(args.ledger_dsn, config.data_dir) if getattr(
        args, "ledger_dsn", None) else None
    try:
        asyncio.run(serve_forever(gw, args.host, args.port, ready))
    finally:
        if not gw.closed:
            asyncio.run(gw.close())
        if follower is not None:
            follower.terminate()
            follower.wait(timeout=30)
    return 0


def _start_ledger_follower(dsn: str, data_dir: Path) -> subprocess.Popen[bytes]:
    """The PostgreSQL projection runs in its own process: it replays the journal (read-only)
    through its own engine, which is CPU work that must not share the gateway's event loop."""
    import structlog

    cmd = [sys.executable, "-m", "gateway.cli", "ledger", "sync", "--dsn", dsn,
           "--journal", str(data_dir / "journal"), "--follow", "2"]
    structlog.get_logger(__name__).info("ledger_follower_started", journal=str(data_dir))
    return subprocess.Popen(cmd)
