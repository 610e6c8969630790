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
import secrets
import time
from collections.abc import Callable
from typing import Any

import structlog

from engine.filemodes import private_dir, write_private
from engine.node import EngineNode, NodeConfig
from engine.schema import EngineConfig, Event
from engine.service import bootstrap_demo
from gateway import readmodel
from gateway.auth import ReplayGuard
from gateway.bridge import Bridge
from gateway.clientids import ClientIdBook
from gateway.config import GatewayConfig
from gateway.convert import Converter
from gateway.demo import DEMO_FUNDS
from gateway.health import Health
from gateway.heldrows import ShedLog
from gateway.history.index import HistoryIndex
from gateway.httpapp import GATEWAY_KEY, GatewayHttp
from gateway.keys import KeyStore, NewKey, default_master_key_file
from gateway.metrics import Metrics
from gateway.ordercounts import DailyOrderCounts
from gateway.ratelimit import RateLimiter
from gateway.rebuild import ReadModelRebuild
from gateway.store import Store
from gateway.trading import Trading

__all__ = ["GATEWAY_KEY", "Gateway", "GatewayConfig"]
log = structlog.get_logger(__name__)


class Gateway(ReadModelRebuild, GatewayHttp):
    """One gateway process (see the module docstring); its start-up rebuild is
    `gateway.rebuild.ReadModelRebuild`, its aiohttp application `gateway.httpapp.GatewayHttp`."""

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
        self.cluster_start: Any = None
        """Cluster mode: the verified snapshot pair this replica starts from (None: none)."""
        if config.cluster is not None:
            from gateway.cluster import start_point

            self.cluster_start = start_point(self)
        self.history: Any = self._open_history() if config.local_history else None
        """The history index writer (`HistoryWriter`); None with ``--history pg``."""
        self.held_rows_cap: int | None = None
        """``--history pg``: closed rows held in memory for PostgreSQL at most (None until
        `start_pg_history`: without a DSN nothing could answer from them, none are held)."""
        self._shed_log = ShedLog()
        self.store = Store(memory_orders=config.history_memory_orders)
        self._readmodel_seq = 0
        self.start_point = (0, 0)
        """(sequence of the read-model snapshot started from (0: none), commands replayed)."""
        self.health_checks: dict[str, Callable[[], dict[str, Any]]] = {}
        self.ledger_follower: Any = None
        """The supervised ``ledger sync --follow`` child (`gateway.ledgerfollower`), if any."""
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
        self.aml: Any = None
        if config.aml_rules is not None:  # before the replay, which folds into it
            from backoffice.aml.service import GatewayAml

            self.aml = GatewayAml(self, config.aml_rules)
        if self.node is not None:
            self._replay()
        elif self.cluster_start is not None:
            from gateway.cluster import restore_read_model

            restore_read_model(self, self.cluster_start)
        if self.history is not None:
            self.store.history = HistoryIndex(self.history.index.path, readonly=True)
        self.keys = KeyStore(
            self.dir / "keys.json", config.master_key_file or default_master_key_file()
        )
        self.keys.mark_demo(self.demo_accounts)
        self.ids = ClientIdBook(self.dir / "clientids.log")
        self.metrics = Metrics()
        # Read when scraped, not set per batch (a locked set per stream message in cluster mode).
        self.metrics.last_seq.set_function(lambda: float(self.store.last_seq))
        if self.marketdata is not None:
            self.marketdata.hub.on_lag = self.metrics.marketdata_lag.observe_many
        if self.history is not None:
            self._history_metrics()
        else:
            self.metrics.held_rows.set_function(lambda: float(self.store.held.rows))
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
        self.trading.history.local = config.local_history
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
        if self.aml is not None and self.custody is not None:
            self.custody.custody.desk.screen = self.aml.engine.screen
        from gateway.deadman import DeadMansSwitches

        self.dead_mans = DeadMansSwitches(self)
        self._dms_earliest_ns = 0
        self.started_ms = time.time_ns() // 1_000_000

    def _apply(self, ts: int, events: list[Event], last: int) -> None:
        """Fold one batch into the store and hand its history rows to the index writer (with
        ``--history pg``: keep them in memory until PostgreSQL's checkpoint passes them)."""
        store = self.store
        history = self.history
        if history is not None:
            store.trim(history.durable_seq)
        else:
            cap = self.held_rows_cap
            shed = store.trim_for_pg(cap or 0)
            if shed and cap is not None:
                self.metrics.rows_shed.value += shed
                self._shed_log.shed(
                    shed, store.held.shed_through_seq, store.pg_seq, store.held.rows, cap
                )
        store.apply_events(ts, events, last)
        if self.aml is not None:
            self.aml.on_batch(ts, events, last)
        if store.new_orders or store.new_trades:
            if history is None:
                store.hold_for_pg()
            else:
                orders, trades = store.take_history()
                history.submit(last, ts, orders, trades)

    def _on_batch(self, first: int, ts: int, events: list[Event], last: int) -> None:
        self._apply(ts, events, last)
        if self.marketdata is not None:
            self.marketdata.feed_events(ts, events, last)
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
        encoded = readmodel.encode(readmodel.image(self.store, md, self.aml_image()))
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

    def aml_image(self) -> bytes:
        """The AML engine's state for a read-model snapshot (empty without AML rules)."""
        return self.aml.image() if self.aml is not None else b""

    @property
    def last_seq(self) -> int:
        """Sequence of the last command this gateway's engine has processed."""
        return self.node.last_seq if self.node is not None else self.bridge.replica.last_seq

    @property
    def bridge_failure(self) -> str | None:
        """Why the bridge (local journal or cluster replica) stopped, None while it runs."""
        return getattr(self.bridge, "failure", None)  # type: ignore[no-any-return]

    async def start_pg_history(self, dsn: str, poll_interval_s: float = 0.2) -> Any:
        """``serve --ledger-dsn``: older history answered from the ledger projection in
        PostgreSQL when it is complete enough (docs/history.md#postgresql); a `PgHistory`."""
        from gateway.history.pgreader import PgHistory

        pg = PgHistory(
            dsn,
            self.store,
            poll_interval_s=poll_interval_s,
            retention_days=self.config.history_retention_days,
        )
        await pg.start()
        self.trading.history.pg = pg
        if self.history is None:
            pg.fallback = "none: refused with -1008 (--history pg)"
            self.held_rows_cap = self.config.history_held_rows
        self.health_checks["pgHistory"] = pg.status
        return pg

    async def close(self) -> None:
        """Finish the batch in flight, then snapshot and close the node. Idempotent."""
        if self.closed:
            return
        self.closed = True
        pg, self.trading.history.pg = self.trading.history.pg, None
        if pg is not None:
            await pg.close()
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
            if self.history is not None:
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
