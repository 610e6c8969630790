"""Running the gateway's aiohttp app on a socket (``kootabase serve``, tests, benchmarks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.usererror import UserError
from gateway import banner
from gateway.connlimit import ConnectionCaps, GuardedSite
from gateway.demo import check_demo_allowed
from gateway.gctune import end_serving, tune_for_serving
from gateway.health import EXIT_FAIL_CLOSED
from gateway.keys import NewKey
from gateway.listen import bind_listener
from gateway.memorybounds import HELD_ROWS, MEMORY_ORDERS
from gateway.serverlog import ServerLog

if TYPE_CHECKING:  # importing the gateway compiles the engine: `serve` checks mistakes first
    from gateway.app import Gateway


@dataclass(slots=True)
class Running:
    gateway: Gateway
    runner: web.AppRunner
    host: str
    port: int
    caps: ConnectionCaps | None = None
    """Open connections per IP (`gateway.connlimit`)."""
    server_log: ServerLog | None = None
    """What the HTTP server logged about malformed requests (`gateway.serverlog`)."""

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_api(self) -> str:
        return f"ws://{self.host}:{self.port}/ws-api/v3"


async def start(
    gw: Gateway, host: str = "127.0.0.1", port: int = 8080, sock: socket.socket | None = None
) -> Running:
    """Serve ``gw`` on ``host:port``, or on an already bound ``sock`` (`gateway.listen`).

    Every connection passes the per-IP cap first (`gateway.connlimit`); aiohttp's keep-alive
    timer, which also runs while a request head is being received, is the HTTP idle and
    header timeout; its error log is `gateway.serverlog` (rate-limited, no tracebacks for
    malformed requests). The process-wide GC tuning is the caller's (`gateway.gctune`): tests
    and tools start many gateways in one process."""
    limits = gw.config.limits
    server_log = ServerLog(limits.log_lines_per_minute)
    runner = web.AppRunner(
        gw.app(),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=2.0,
        keepalive_timeout=limits.http_idle_timeout_s,
        logger=server_log,
    )
    await runner.setup()
    if sock is None:
        sock = bind_listener(host, port)
    caps = ConnectionCaps(limits.connections_per_ip)
    site = GuardedSite(runner, sock, caps)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    actual = server.sockets[0].getsockname()[1]
    info = gw.dir / "server.json"
    info.write_text(json.dumps({"host": host, "port": actual, "pid": os.getpid()}))
    running = Running(gw, runner, host, actual, caps, server_log)
    if gw.node is not None:  # cluster mode has no local journal to lock
        gw.node.journal.note_holder(url=running.http)
    return running


@contextlib.asynccontextmanager
async def running(gw: Gateway, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Running]:
    r = await start(gw, host, port)
    try:
        yield r
    finally:
        await r.runner.cleanup()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""All end the server the same clean way (SIGHUP: the terminal went away)."""


async def serve_forever(
    gw: Gateway,
    sock: socket.socket,
    on_ready: Callable[[Running, NewKey | None], None],
    ledger_dsn: str | None = None,
    metrics_sock: socket.socket | None = None,
) -> str:
    """Serve until SIGINT/SIGTERM/SIGHUP, then shut down cleanly (snapshot on close), with the
    supervised ledger follower beside it when ``ledger_dsn`` is given. Returns the name of the
    signal that stopped it."""
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, lambda s=signum: (received.append(s.name), stop.set()))
    host, port = sock.getsockname()[:2]
    r = await start(gw, host, port, sock=sock)
    thresholds = tune_for_serving()  # this process serves this gateway until it stops
    follower = None
    metrics_runner: web.AppRunner | None = None
    try:
        if metrics_sock is not None:  # /metrics and /health on the operations address
            # the same per-IP cap (shared count), idle/header timeout and rate-limited log as
            # the API port: a plain SockSite had none of them
            assert r.caps is not None
            metrics_runner = web.AppRunner(
                gw.metrics_app(),
                handle_signals=False,
                access_log=None,
                keepalive_timeout=gw.config.limits.http_idle_timeout_s,
                logger=r.server_log,
            )
            await metrics_runner.setup()
            await GuardedSite(metrics_runner, metrics_sock, r.caps).start()
        # The follower projects the local journal; a cluster gateway (no node) has none: there
        # `ledger sync --nats --follow`, one per cluster, keeps the projection read below.
        if ledger_dsn and gw.node is not None:
            from gateway.ledgerfollower import LedgerFollower

            follower = LedgerFollower(
                ledger_dsn, gw.config.data_dir / "journal", gw.metrics.registry
            )
            gw.health_checks["ledgerFollower"] = follower.status
            gw.ledger_follower = follower  # the ops overview reads its projection's lag
            follower.start()
        if ledger_dsn:  # history read from the projection, in both modes
            await gw.start_pg_history(ledger_dsn)
        # only now, with the port bound: a refused bind never creates a secret nobody saw
        on_ready(r, await gw.ensure_demo_account())
        fatal = asyncio.ensure_future(gw.health.fatal.wait())
        await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), fatal], return_when=asyncio.FIRST_COMPLETED
        )
        if fatal.done() and not stop.is_set():
            # failed closed: keep answering what can be answered (health, metrics, market
            # data, order queries "status unknown") for a moment, then exit for a restart
            received.append("fail-closed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), gw.config.fail_exit_grace_s)
    finally:
        end_serving(thresholds)  # what the server held is collectable once it stops
        if follower is not None:
            await follower.stop()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await r.runner.cleanup()
    return received[0] if received else "none"


def _check_custody_claim(dsn: str | None, stream: str) -> None:
    """Cluster mode runs custody on one gateway only (`gateway.custodylock`)."""
    from gateway.custody import custody_needs_dsn
    from gateway.custodylock import check_free

    if not dsn:
        raise custody_needs_dsn()
    asyncio.run(check_free(dsn, stream))


def run_serve_cli(args: argparse.Namespace) -> int:
    """``kootabase serve``: node + gateway + market data on one aiohttp app.

    Start-up fails fast and in one line on the ordinary mistakes: a server already running on
    the data directory (the journal's lock names its pid and URL) and a port in use are
    checked before anything slow. Without ``--demo`` it creates no account and no money. With
    ``--demo`` on a data directory without keys, the demo API key and secret are written to
    stdout once, after the port is bound (never logged, never shown again: the secret is stored
    encrypted)."""
    import structlog

    from engine.journallock import JournalLocked, holder_if_locked

    log = structlog.get_logger(__name__)
    try:
        check_demo_allowed(
            getattr(args, "demo", False),
            getattr(args, "custody_config", None),
            getattr(args, "custody_signer", False),
        )
    except ValueError as exc:
        raise UserError(str(exc), exit_code=2) from None
    # Every file this process creates is private, whatever creates it: the project's own
    # files are opened 0600 (engine.filemodes), but SQLite (history, identity store: password
    # hashes, sealed TOTP seeds), its -wal/-shm files and server.json came out 0644.
    os.umask(0o077)
    data_dir = Path(args.data_dir)
    holder = holder_if_locked(data_dir / "journal")
    if holder is not None:
        raise JournalLocked(data_dir / "journal", holder)
    sock = bind_listener(args.host, args.port)
    metrics_sock = None
    if getattr(args, "metrics_port", None) is not None:
        metrics_sock = bind_listener(args.metrics_host or args.host, args.metrics_port)
    elif getattr(args, "metrics_host", None):
        raise UserError("--metrics-host needs --metrics-port", exit_code=2)
    _check_dsns(args)
    cluster = _check_nats(args)
    if getattr(args, "history", "local") == "pg" and cluster is None:
        raise UserError(
            "--history pg needs cluster mode (--nats)",
            hint="a single-process gateway keeps its local history index",
            exit_code=2,
        )
    custody = _checked_custody(args, data_dir, cluster)
    _check_data_dir_writable(data_dir)
    log.info(
        "config",
        file=str(args.config) if getattr(args, "config", None) else None,
        effective=getattr(args, "effective_config", {}),
    )
    try:
        return _serve(args, data_dir, sock, log, cluster, custody, metrics_sock)
    finally:
        sock.close()
        if metrics_sock is not None:
            metrics_sock.close()


def _check_data_dir_writable(data_dir: Path) -> None:
    """Prove the data directory (or the nearest existing folder it would be created in) can be
    written, before the engine is imported: a path that cannot be written is one line at once,
    not a line after minutes of compiling. Leaves nothing behind (a mistake found later, such
    as a custody config typo, must not leave a new data directory)."""
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        os.rmdir(tempfile.mkdtemp(prefix=".kootabase-write-test-", dir=existing))
    except PermissionError:
        raise UserError(
            f"cannot write {data_dir}: permission denied in {existing}",
            hint="pass a --data-dir you can write",
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot create the data directory {data_dir}: {exc.strerror or exc} ({existing})",
            hint="pass a --data-dir you can write",
        ) from None


def _check_dsns(args: argparse.Namespace) -> None:
    """Connect once to each PostgreSQL DSN given, before the engine is imported (compiling it
    can take minutes) and before the node opens: a wrong DSN must not start an exchange. An
    outage after the start is the ledger follower supervisor's to retry (docs/operations.md)."""
    backoffice_dsn = getattr(args, "backoffice_dsn", None)
    if backoffice_dsn:
        from backoffice.store import check_dsn

        asyncio.run(check_dsn(backoffice_dsn))
    ledger_dsn = getattr(args, "ledger_dsn", None)
    if ledger_dsn:
        asyncio.run(_check_ledger_dsn(ledger_dsn))


def _check_nats(args: argparse.Namespace) -> Any:
    """Cluster mode: the `gateway.cluster.ClusterConfig` (None without ``--nats``), after
    reaching NATS once (credentials included) before the configuration line and the engine
    import, so an unreachable server or refused credentials is the only line printed, never
    after output that reads like a start."""
    from gateway.clustercli import cluster_config

    try:
        cluster: Any = cluster_config(args)
    except ValueError as exc:
        raise UserError(str(exc), exit_code=2) from None
    if cluster is not None:
        from engine.natsconnect import check_reachable

        asyncio.run(check_reachable(cluster.nats))
    return cluster


def _checked_custody(args: argparse.Namespace, data_dir: Path, cluster: Any) -> Any:
    """The custody config (None without ``--custody-config``), read before the node opens (a
    typo must not start an exchange); in cluster mode the one-custody claim is free; and every
    chain node is asked once (`custody.nodecheck`): a wrong config is one line before anything
    starts, a node that is down one warning line on stderr, and the start goes on."""
    path = getattr(args, "custody_config", None)
    if path is None:
        return None
    from custody.config import load_config
    from custody.nodecheck import check_nodes

    custody = load_config(Path(path), data_dir, flag="--custody-config")
    if cluster is not None:  # one custody per cluster: before anything
        _check_custody_claim(getattr(args, "backoffice_dsn", None), cluster.stream.name)
    for warning in asyncio.run(check_nodes(custody)):
        sys.stderr.write(f"kootabase serve: warning: {warning}\n")
    return custody


async def _check_ledger_dsn(dsn: str) -> None:
    """Connect once and close: an unreachable server, a wrong user or a database never created
    stops `serve` with the projection's own one-line reason instead of starting an exchange
    whose ledger follower can only fail and retry."""
    from ledger.pg.connect import connect

    try:
        conn = await connect(dsn)
    except UserError as exc:
        raise UserError(
            f"--ledger-dsn: {exc.message}",
            hint=f"{exc.hint}; or leave --ledger-dsn out to run without the projection",
        ) from None
    await conn.close()


def _metrics_token(args: argparse.Namespace) -> str | None:
    path = getattr(args, "metrics_token_file", None)
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise UserError(f"--metrics-token-file {path}: {exc.strerror}") from None
    if not token:
        raise UserError(f"--metrics-token-file {path} is empty")
    return token


def _serve(
    args: argparse.Namespace,
    data_dir: Path,
    sock: socket.socket,
    log: Any,
    cluster: Any,
    custody: Any,
    metrics_sock: socket.socket | None = None,
) -> int:
    from engine.compilenotice import announce_compilation

    announce_compilation(log)
    from gateway.app import Gateway, GatewayConfig
    from gateway.limits import limits_from_args

    if args.no_fsync:
        log.warning("fsync_disabled", detail="benchmark mode: acknowledged commands can be lost")
    limits = limits_from_args(args)
    if getattr(args, "no_rate_limits", False):
        log.warning("rate_limits_disabled", detail="load-test mode: no per-key limits")
        limits = dataclasses.replace(
            limits,
            weight_per_minute=10**9,
            orders_per_10s=10**9,
            orders_per_day=10**12,
            ban_after=10**9,
        )
    if getattr(args, "trust_snapshots", False) and getattr(args, "verify_snapshots_full", False):
        raise UserError(
            "trust-snapshots and verify-snapshots-full contradict each other",
            hint="set at most one of them (flags or config file)",
        )
    aml_rules = getattr(args, "aml_rules", None)
    if aml_rules is not None:  # a mistake in the rules is refused before anything starts
        from backoffice.aml.rules import load_rules

        aml_rules = load_rules(aml_rules)
    backoffice_dsn = getattr(args, "backoffice_dsn", None)
    config = GatewayConfig(
        data_dir=data_dir,
        fsync=not args.no_fsync,
        cluster=cluster,
        limits=limits,
        master_key_file=getattr(args, "master_key_file", None),
        custody=custody,
        custody_signer=getattr(args, "custody_signer", False),
        history_memory_orders=getattr(args, "history_memory_orders", MEMORY_ORDERS),
        history_retention_days=getattr(args, "history_retention_days", 90),
        history=getattr(args, "history", "local"),
        history_held_rows=getattr(args, "history_held_rows", HELD_ROWS),
        demo=getattr(args, "demo", False),
        metrics_separate=metrics_sock is not None,
        metrics_token=_metrics_token(args),
        backoffice_dsn=backoffice_dsn,
        aml_rules=aml_rules,
        verify_snapshot=not getattr(args, "trust_snapshots", False),
        verify_snapshot_full=getattr(args, "verify_snapshots_full", False),
    )
    started = time.monotonic()
    try:
        gw = Gateway(config)
    except PermissionError as exc:
        raise UserError(
            f"cannot write {exc.filename}: permission denied",
            hint="pass a --data-dir (or --master-key-file) you can write",
        ) from None

    def ready(r: Running, creds: NewKey | None) -> None:
        log.info("serving", http=r.http, ws_api=r.ws_api, last_seq=gw.last_seq)
        shown = banner.demo_account(creds) if creds is not None else ""
        sys.stdout.write(shown + banner.serving(r.http, r.ws_api, gw.dir / "admin.token"))
        sys.stdout.flush()

    reason = "error"
    try:
        reason = asyncio.run(
            serve_forever(gw, sock, ready, getattr(args, "ledger_dsn", None), metrics_sock)
        )
    finally:
        if not gw.closed:
            asyncio.run(gw.close())
    log.info(
        "stopped",
        signal=reason,
        last_seq=gw.last_seq,
        uptime_s=round(time.monotonic() - started, 1),
    )
    if gw.health.failure is not None:
        log.critical(
            "exiting_after_fail_closed", reason=gw.health.failure, exit_code=EXIT_FAIL_CLOSED
        )
        return EXIT_FAIL_CLOSED
    return 0
