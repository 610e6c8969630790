"""`GatewayConfig`: everything ``kootabase serve`` (and the tests and benchmarks) pass to one
gateway process. A frozen value, so a running gateway's settings cannot drift from what it was
started with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.demo import check_demo_allowed
from gateway.history.writer import COMMIT_INTERVAL_S
from gateway.memorybounds import HELD_ROWS, MEMORY_ORDERS
from gateway.ratelimit import Limits


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
    history: str = "local"
    """``serve --history``: ``local`` keeps the history index (SQLite) in this gateway;
    ``pg`` (cluster mode only) keeps none and answers history from the PostgreSQL projection
    of ``serve --ledger-dsn`` alone (docs/history.md, "Without a local index")."""
    history_held_rows: int = HELD_ROWS
    """``--history pg``: closed orders and trades held in memory while PostgreSQL's checkpoint
    has not passed them, at most; past it they are dropped and history queries that would need
    them are refused (-1008) until the checkpoint passes the point where they were dropped."""

    backoffice: bool = True
    """Mount the back office (``/api/v1/auth/...``, ``/api/v1/me...``: users and sessions)."""
    backoffice_dsn: str | None = None
    """PostgreSQL DSN of the identity store; None: SQLite in ``<data_dir>/backoffice/``."""
    aml_rules: Any = None
    """AML rules (a TOML path or a `backoffice.aml.rules.RuleSet`); needs the back office,
    whose store keeps the cases (`backoffice.aml.service`)."""

    def __post_init__(self) -> None:
        check_demo_allowed(self.demo, self.custody, self.custody_signer)
        assert self.history in HISTORY_MODES, self.history
        assert self.history == "local" or self.cluster is not None, "checked by serve"

    @property
    def local_history(self) -> bool:
        """This gateway keeps the SQLite history index (``--history local``)."""
        return self.history == "local"


HISTORY_MODES = ("local", "pg")
