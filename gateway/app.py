"""The gateway: one engine node, its read model, auth, limits, and the aiohttp application.

Start-up order (all before the first request): open the node (snapshot + journal tail),
bootstrap the demo markets on a new data directory, then rebuild the read model (orders, trades,
balances) and market data from events, so nothing the gateway answers depends on state that
replay could not rebuild. The rebuild starts from the newest read-model snapshot that has an
engine snapshot at the same sequence and that the history index covers (`gateway.readmodel`):
the engine image is loaded into a replay engine and only the journal tail is replayed, so the
start-up time follows the live state and the tail, not the history's length. Without such a
snapshot (first start, deleted files) the whole journal is replayed, which also rebuilds the
history index. Gateway-only files live in ``<data_dir>/gateway/``: ``keys.json`` (API keys,
secrets encrypted), ``clientids.log`` (display strings of long client order ids),
``admin.token``, ``history.sqlite3`` (the history index), ``readmodel/`` (read-model
snapshots) and, while running, ``server.json`` (where the admin CLI finds the server).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from engine.core.compiled import CompiledEngine
from engine.filemodes import private_dir, write_private
from engine.node import EngineNode, NodeConfig
from engine.schema import EngineConfig, Event, decode_command
from engine.service import bootstrap_demo
from engine.snapshot import SnapshotError, read_snapshot
from gateway import readmodel
from gateway.auth import ReplayGuard
from gateway.bridge import Bridge
from gateway.clientids import ClientIdBook
from gateway.convert import Converter
from gateway.demo import DEMO_FUNDS, check_demo_allowed
from gateway.health import Health
from gateway.history.index import HistoryIndex, HistoryIndexError
from gateway.history.writer import COMMIT_INTERVAL_S, HistoryWriter
from gateway.keys import KeyStore, NewKey, default_master_key_file
from gateway.metrics import Metrics
from gateway.ordercounts import DailyOrderCounts
from gateway.ratelimit import Limits, RateLimiter
from gateway.store import MEMORY_ORDERS, Store
from gateway.trading import Trading
from marketdata import snapshot as md_snapshot

log = structlog.get_logger(__name__)
REPLAY_CHUNK = 4_096
REPLAY_MAX_UNWRITTEN = 200_000
"""Rows the history writer may lag behind a replay before the replay waits for it."""
GATEWAY_KEY: web.AppKey[Gateway] = web.AppKey("gateway")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    data_dir: Path
    master_key_file: Path | None = None
    fsync: bool = True
    limits: Limits = field(default_factory=Limits)
    demo: bool = False
    """``serve --demo``: on a data directory without API keys, create a demo account funded by
    journaled demo deposits (``Deposit.demo``) and a read/trade key (never withdraw). Off by
    default: nothing creates money except a journaled deposit from a real source."""
    marketdata: bool = True
    snapshot_every: int = 100_000
    custody: Any = None
    """Custody (optional): a ``custody.toml`` path or a `custody.config.CustodyConfig`; enables
    ``/sapi/v1/capital/...`` and the ``capital.*`` WS API methods (`gateway.custody`)."""
    custody_signer: bool = False
    """Run the withdrawal signer in this process (reads the hot keys)."""
    custody_poll_s: float = 2.0
    """Chain polling interval (deposits, signer); 0 = do not poll (tests drive it)."""
    metrics_separate: bool = False
    """``/metrics`` only on the separate listener (`Gateway.metrics_app`), not the API port."""
    metrics_token: str | None = None
    """When set, ``/metrics`` requires ``Authorization: Bearer <token>``."""
    verify_snapshot: bool = True
    """Check at start that the newest snapshot belongs to the journal's history (its journal
    anchor, `engine.node.NodeConfig.verify_snapshot`); ``serve --trust-snapshots`` turns it
    off."""
    verify_snapshot_full: bool = False
    """Also replay the journal from genesis to the snapshot and require its state hash
    (``serve --verify-snapshots-full``; grows with history length)."""
    fail_exit_grace_s: float = 3.0
    """After failing closed, ``serve`` answers what it can this long, then exits (75)."""
    cluster: Any = None
    """Cluster mode (a `gateway.cluster.ClusterConfig`): the log is a JetStream stream and this
    gateway runs a replica of the engine over it; the data directory then holds only the
    gateway's own files (keys, client ids, admin token)."""
    history_memory_orders: int = MEMORY_ORDERS
    """Recently closed orders cached in memory (all accounts); older ones are read from the
    history index (docs/history.md)."""
    history_retention_days: int = 90
    """Cancelled/expired orders that never traded are dropped from the history index this
    many days (journal time) after they closed; 0 keeps them forever. Orders that traded and
    all trades are kept forever."""
    history_commit_interval_s: float = COMMIT_INTERVAL_S
    """The history index commits at most this often while rows trickle in (its rows are
    answered from memory until then); larger is less disk traffic beside the journal's fsync."""

    backoffice: bool = True
    """Mount the back office (``/api/v1/auth/...``, ``/api/v1/me...``: users and sessions)."""
    backoffice_dsn: str | None = None
    """PostgreSQL DSN of the identity store; None: SQLite in ``<data_dir>/backoffice/``."""
    aml_rules: Any = None
    """AML rules (a TOML path or a `backoffice.aml.rules.RuleSet`); needs the back office,
    whose store keeps the cases (`backoffice.aml.service`)."""

    def __post_init__(self) -> None:
        check_demo_allowed(self.demo, self.custody, self.custody_signer)


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.dir = config.data_dir / "gateway"
        private_dir(config.data_dir)
        private_dir(self.dir)
        self.node: EngineNode | None = None
        if config.cluster is None:
            self.node = EngineNode(
                NodeConfig(
                    data_dir=config.data_dir,
                    fsync=config.fsync,
                    verify_snapshot=config.verify_snapshot,
                    verify_snapshot_full=config.verify_snapshot_full,
                    snapshot_every=config.snapshot_every,
                )
            )
        try:
            self._open()
        except BaseException:
            if self.node is not None:
                self.node.close(snapshot=False)
            raise

    @property
    def engine_config(self) -> EngineConfig:
        """The bounds the engine enforces (open orders per account, ...): its own config."""
        if self.node is not None:
            return self.node.engine.config
        return self.bridge.replica.engine.config  # type: ignore[no-any-return]

    def _open(self) -> None:
        config = self.config
        if self.node is not None:
            bootstrap_demo(self.node)
        self.demo_accounts: set[int] = (
            self.node.engine.demo_deposit_accounts() if self.node is not None else set()
        )
        """Accounts credited by the demo faucet (from the engine's deposit keys at start)."""
        self.history = self._open_history()
        self.store = Store(memory_orders=config.history_memory_orders)
        self._readmodel_seq = 0
        self.start_point = (0, 0)
        """(sequence of the read-model snapshot started from (0: none), commands replayed)."""
        self.health_checks: dict[str, Callable[[], dict[str, Any]]] = {}
        """Supervised parts (name -> status with an ``ok`` flag), for a health endpoint."""
        self.marketdata: Any = None
        if config.marketdata:
            try:
                from marketdata.service import MarketDataService
            except ImportError:  # market data not built in this checkout
                log.warning("marketdata_unavailable")
            else:
                self.marketdata = MarketDataService(
                    ws_heartbeat_s=config.limits.ws_heartbeat_s,
                    max_connection_s=config.limits.max_connection_s,
                )
        if self.node is not None:
            self._replay()
        self.store.history = HistoryIndex(self.history.index.path, readonly=True)
        self.keys = KeyStore(
            self.dir / "keys.json", config.master_key_file or default_master_key_file()
        )
        self.keys.mark_demo(self.demo_accounts)
        self.ids = ClientIdBook(self.dir / "clientids.log")
        self.metrics = Metrics()
        self._history_metrics()
        self.limiter = RateLimiter(config.limits)
        self.order_counts = DailyOrderCounts(
            self.dir / "order_counts.json", self.limiter.orders_day
        )
        self.order_counts.restore(
            self.node.journal if self.node is not None else None, time.time_ns() // 1_000_000
        )
        self._order_counts_task: asyncio.Task[None] | None = None
        self.replays = ReplayGuard()
        self.bridge: Any
        if self.node is not None:
            self.bridge = Bridge(
                self.node,
                self._on_batch,
                observe=self.metrics.observe_batch,
                ack_timeout_s=config.limits.ack_timeout_s,
                on_failure=lambda reason: self.health.fail(reason),
            )
        else:
            from gateway.cluster import cluster_bridge

            self.bridge = cluster_bridge(self)
        self.trading = Trading(self.store, self.bridge, self.ids)
        self.converter = Converter(self)
        self.health = Health(self)
        token_file = self.dir / "admin.token"
        if not token_file.exists():
            write_private(token_file, (secrets.token_hex(32) + "\n").encode())
        self.admin_token = token_file.read_text().strip()
        self.first_start: NewKey | None = None
        self.demo_account_allowed = True
        """Cluster mode: only the gateway that found the stream empty creates it."""
        self.closed = False
        from gateway.userstream import UserStreams

        self.user_streams = UserStreams(self)
        self.custody: Any = None
        if config.custody is not None:
            from gateway.custody import GatewayCustody

            self.custody = GatewayCustody(
                self, config.custody, signer=config.custody_signer, poll_s=config.custody_poll_s
            )
        self.aml: Any = None
        if config.aml_rules is not None:
            from backoffice.aml.service import GatewayAml

            self.aml = GatewayAml(self, config.aml_rules)
        from gateway.deadman import DeadMansSwitches

        self.dead_mans = DeadMansSwitches(self)
        self._dms_earliest_ns = 0
        self.started_ms = time.time_ns() // 1_000_000

    def _open_history(self) -> HistoryWriter:
        """The history index; one that cannot be used, or that covers more of the journal
        than the journal holds (a journal restored from an older backup), is derived data:
        it is set aside and rebuilt by the replay."""
        path = self.dir / "history.sqlite3"
        cfg = self.config

        def open_writer() -> HistoryWriter:
            return HistoryWriter(
                path,
                retention_days=cfg.history_retention_days,
                commit_interval_s=cfg.history_commit_interval_s,
            )

        try:
            writer = open_writer()
        except HistoryIndexError as exc:
            self._set_aside(path, str(exc))
            return open_writer()
        last = self.node.journal.last_sequence if self.node is not None else None
        if last is not None and writer.durable_seq > last:
            writer.close()
            self._set_aside(path, f"index covers seq {writer.durable_seq}, journal ends at {last}")
            return open_writer()
        return writer

    def _history_metrics(self) -> None:
        """The history index's position and the writer's health on ``/metrics`` (read when
        scraped): a growing lag or failure count means closed orders pile up in memory."""
        from prometheus_client import Gauge

        r, h = self.metrics.registry, self.history
        Gauge(
            "kootabase_history_indexed_seq",
            "last sequence whose closed orders and trades the history index holds",
            registry=r,
        ).set_function(lambda: float(h.durable_seq))
        Gauge(
            "kootabase_history_unwritten_rows",
            "closed orders and trades handed to the history writer and not yet committed",
            registry=r,
        ).set_function(lambda: float(h.queued_rows()))
        Gauge(
            "kootabase_history_write_failures",
            "history index writes that failed (retried)",
            registry=r,
        ).set_function(lambda: float(h.failures))

    @staticmethod
    def _set_aside(path: Path, reason: str) -> None:
        aside = path.with_suffix(f".unusable-{int(time.time())}")
        log.error("history_index_unusable", error=reason, moved_to=str(aside))
        path.rename(aside)
        for extra in ("-wal", "-shm"):
            path.with_name(path.name + extra).unlink(missing_ok=True)

    def _start_point(self) -> tuple[readmodel.ReadModelImage | None, CompiledEngine]:
        """The newest read-model snapshot usable with an engine snapshot at its sequence."""
        last = self.node.journal.last_sequence
        covered = self.history.durable_seq
        for img_seq in readmodel.candidates(self.dir / "readmodel"):
            if img_seq > last or img_seq > covered:
                continue  # the index or the journal does not reach it: not consistent
            try:
                snap = read_snapshot(self.node.snapshot_dir / f"{img_seq:020d}.snap")
                img = readmodel.read(self.dir / "readmodel" / f"{img_seq:020d}.rms")
            except (OSError, ValueError, SnapshotError) as exc:
                log.warning("readmodel_start_point_skipped", seq=img_seq, reason=str(exc))
                continue
            return img, CompiledEngine.from_image(snap.image)
        return None, CompiledEngine(self.node.engine.config)

    def _replay(self) -> None:
        """Rebuild the read model (and market data) from the newest consistent snapshot plus
        the journal tail (or the whole journal), with events; the history index follows."""
        started = time.perf_counter()
        assert self.node is not None
        journal = self.node.journal
        last = journal.last_sequence
        img, engine = self._start_point()
        first = journal.first_sequence
        if img is not None:
            self.store = readmodel.restore(img, memory_orders=self.config.history_memory_orders)
            self._readmodel_seq = img.last_seq
            first = img.last_seq + 1
            if self.marketdata is not None:
                if img.marketdata is not None:
                    md_snapshot.restore(self.marketdata.state, img.marketdata)
                else:
                    self._replay_marketdata(img.last_seq)
        run: list[tuple[int, int, Any]] = []
        if first <= last:
            for seq, ts, payload in journal.read_from(first, last):
                if run and (ts != run[-1][1] or len(run) >= REPLAY_CHUNK):
                    self._replay_run(engine, run)
                    run = []
                run.append((seq, ts, decode_command(payload)))
        if run:
            self._replay_run(engine, run)
        self.start_point = (img.last_seq if img else 0, max(0, last - first + 1))
        log.info(
            "gateway_replayed",
            last_seq=last,
            from_snapshot=self.start_point[0],
            replayed=self.start_point[1],
            seconds=round(time.perf_counter() - started, 3),
        )

    def _replay_run(self, engine: CompiledEngine, run: list[tuple[int, int, Any]]) -> None:
        events = engine.process(run)
        ts, last = run[-1][1], run[-1][0]
        self._apply(ts, events, last)
        if self.marketdata is not None:
            self.marketdata.state.apply_events(ts, events, last)
        if (
            self.history.submitted_seq - self.history.durable_seq > 0
            and self.history.queued_rows() > REPLAY_MAX_UNWRITTEN
        ):
            self.history.flush(self.history.submitted_seq)

    def _replay_marketdata(self, through_seq: int) -> None:
        """A snapshot written without market data: rebuild market data from the journal's
        start through ``through_seq`` (the tail follows with the store)."""
        engine = CompiledEngine(self.node.engine.config)
        journal = self.node.journal
        run: list[tuple[int, int, Any]] = []

        def flush() -> None:
            events = engine.process(run)
            self.marketdata.state.apply_events(run[-1][1], events, run[-1][0])

        for seq, ts, payload in journal.read_from(journal.first_sequence, through_seq):
            if run and (ts != run[-1][1] or len(run) >= REPLAY_CHUNK):
                flush()
                run = []
            run.append((seq, ts, decode_command(payload)))
        if run:
            flush()

    def _apply(self, ts: int, events: list[Event], last: int) -> None:
        """Fold one batch into the store and hand its history rows to the index writer."""
        store = self.store
        store.trim(self.history.durable_seq)
        store.apply_events(ts, events, last)
        if store.new_orders or store.new_trades:
            orders, trades = store.take_history()
            self.history.submit(last, ts, orders, trades)

    def _on_batch(self, first: int, ts: int, events: list[Event], last: int) -> None:
        self._apply(ts, events, last)
        if self.aml is not None:
            self.aml.on_batch(ts, events)
        if self.marketdata is not None:
            self.marketdata.feed_events(ts, events, last)
        self.metrics.last_seq.set(last)
        self.user_streams.publish()
        if self.node is None and self.store.dead_mans:
            # Cluster mode: switches armed through other gateways arrive here; this gateway's
            # ticker must know them too, so a switch fires even if the gateway that armed it
            # died (any gateway may publish the Tick; duplicates are harmless).
            earliest = min(self.store.dead_mans.values())
            if earliest != self._dms_earliest_ns:
                self._dms_earliest_ns = earliest
                self.dead_mans.wake()
        node = self.node
        if node is not None and node.last_snapshot_seq == last > self._readmodel_seq:
            self.snapshot_readmodel()

    def snapshot_readmodel(self, *, quiet: bool = False) -> None:
        """Snapshot the read model at the store's sequence (when the engine snapshots, and at
        shutdown). The image is taken and encoded here, between batches; the history writer
        stores it once the index covers its sequence, so the loop never waits for the writer
        (measured under load: the wait was 0.2-0.6 s of stalled order entry per snapshot)."""
        seq = self.store.last_seq
        md = self.marketdata.state if self.marketdata is not None else None
        encoded = readmodel.encode(readmodel.image(self.store, md))
        directory = self.dir / "readmodel"
        self.history.after(
            seq,
            lambda: readmodel.store_encoded(directory, encoded, quiet=quiet),
            "readmodel_snapshot",
        )
        self._readmodel_seq = seq

    # ---- demo bootstrap ---------------------------------------------------------------------

    async def ensure_demo_account(self) -> NewKey | None:
        """``--demo`` on a data directory without keys: a demo account, funded by journaled
        demo deposits, and its read/trade key (shown once by the CLI). Called by
        `gateway.server.serve_forever` only after the port is bound, so a busy port never
        creates a secret nobody saw."""
        if not self.config.demo or len(self.keys.listing()) or not self.demo_account_allowed:
            return None
        from gateway.admin import Admin

        admin = Admin(self)
        account_id = await admin.new_account()
        self.demo_accounts.add(account_id)
        self.keys.mark_demo({account_id})
        for asset, amount in DEMO_FUNDS.items():
            await admin.deposit(account_id, asset, amount, f"demo:{account_id}:{asset}", demo=True)
        new = self.keys.create(account_id, ("read", "trade"))
        self.first_start = new
        return new

    # ---- the aiohttp application ------------------------------------------------------------

    def app(self) -> web.Application:
        from gateway import admin, openapi, rest, webui, wsapi

        app = web.Application(
            client_max_size=self.config.limits.max_message_bytes,
            middlewares=[rest.middleware(self)],
        )
        app[GATEWAY_KEY] = self
        rest.setup(app, self)
        wsapi.setup(app, self)
        admin.setup(app, self)
        openapi.setup(app, self)
        webui.setup(app, self)
        if self.config.backoffice:
            from backoffice import routes as backoffice_routes

            backoffice_routes.setup(app, self, self.config.backoffice_dsn)
        if self.marketdata is not None:
            from marketdata.app import setup_marketdata

            setup_marketdata(app, self.marketdata)
        if not self.config.metrics_separate:
            app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/health", self.health.handle)
        app.on_response_prepare.append(_server_header)
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    def metrics_app(self) -> web.Application:
        """``/metrics`` and ``/health`` alone, for ``--metrics-host/--metrics-port``: scrapers
        on an operations network, never the trading port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self.health.handle)
        app.on_response_prepare.append(_server_header)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        token = self.config.metrics_token
        if token is not None:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return web.Response(
                    status=401,
                    text="metrics: bearer token required\n",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    @property
    def last_seq(self) -> int:
        """Sequence of the last command this gateway's engine has processed."""
        return self.node.last_seq if self.node is not None else self.bridge.replica.last_seq

    @property
    def bridge_failure(self) -> str | None:
        """Why the bridge (local journal or cluster replica) stopped, None while it runs."""
        return getattr(self.bridge, "failure", None)  # type: ignore[no-any-return]

    async def _ready(self, request: web.Request) -> web.Response:
        """Readiness for a load balancer: 503 once this process stopped serving (failed
        closed; in cluster mode its replica diverged or failed). The reason is in the body."""
        if not self.health.ready:
            reason = self.health.failure or self.bridge_failure or "closed"
            return web.json_response({"ready": False, "reason": reason}, status=503)
        return web.json_response({"ready": True, "lastSeq": self.last_seq})

    async def _startup(self, app: web.Application) -> None:
        if self.node is None:
            from gateway.cluster import attach

            await attach(self)
        if self.aml is not None:  # before the bridge: its rebuild must see a still journal
            from backoffice.routes import BACKOFFICE_KEY

            await self.aml.start(app[BACKOFFICE_KEY].store.db)
        self.bridge.start()
        self._order_counts_task = asyncio.get_running_loop().create_task(
            self.order_counts.keep_saved(lambda: self.last_seq)
        )
        self.dead_mans.start()
        self.health.start()
        if self.custody is not None:
            await self.custody.recover()
            self.custody.start()

    async def _shutdown(self, app: web.Application) -> None:
        from gateway import wsapi

        await self.dead_mans.stop()
        await wsapi.close_all(self)
        if self._order_counts_task is not None:
            self._order_counts_task.cancel()

    async def _cleanup(self, app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish the batch in flight, then snapshot and close the node. Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self.health.stop()
        self.dead_mans.close()
        if self.aml is not None:
            await self.aml.close()
        if self.custody is not None:
            await self.custody.close()
        failed = self.bridge_failure is not None  # write nothing more after failing closed
        await self.bridge.close()
        if not failed:
            self.order_counts.save(self.last_seq, time.time_ns() // 1_000_000)
        self.user_streams.close()
        self.ids.close()
        try:
            if (
                not failed
                and self.node is not None
                and self.store.last_seq == self.node.last_seq > self._readmodel_seq
            ):
                self.snapshot_readmodel(quiet=True)
        finally:
            self.history.close()
            if self.store.history is not None:
                self.store.history.close()  # type: ignore[attr-defined]
                self.store.history = None
        if self.node is not None:
            self.node.close(snapshot=not failed)
        (self.dir / "server.json").unlink(missing_ok=True)

    async def state_hash(self) -> str:
        """Engine state hash, computed on the engine thread between batches (tests)."""
        return await self.bridge.call(lambda engine: engine.state_hash())


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    """No versions in the ``Server`` header (aiohttp's default names Python's and its own)."""
    response.headers["Server"] = "kootabase"
