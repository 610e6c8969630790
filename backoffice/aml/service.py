"""AML in the gateway: the rules engine fed by every batch, cases written to the back office's
store, actions carried out (hold through custody's ``screen`` hook, freeze through the log).

- **State at start**: the AML engine's state rides in the gateway's read-model snapshot
  (`backoffice.aml.image`, keyed by the rules' hash), so a start folds only the tail the
  read model replays (embedded: the journal tail; cluster: the stream after the Object Store
  pair). Without a usable image (first start, other rules) the embedded gateway replays the
  journal up to the snapshot through a private engine (`_rebuild`); a cluster replica skips
  snapshot pairs made with other rules (`gateway.cluster.start_point`).
- **Live** (`on_batch`, from ``Gateway._apply`` before requests are answered): the batch's
  events are folded synchronously, so when custody's withdrawal request returns from the
  engine hold, the engine already knows whether a rule holds it (`AmlEngine.screen`). Case
  writes and freezes are carried out in order by one task.
- **Cluster mode**: every replica folds every event and sees every hit (deterministically:
  the destination address travels in the log). The case table's primary key (the case id
  ``<rule>@<seq>``) elects the one replica that acts: only the replica whose insert created
  the case freezes. The freeze is published as a system batch whose identity derives from the
  case id (`freeze_origin`), so a retry (a crash between the insert and the freeze, retried at
  the next start of any gateway) is dropped by the stream's duplicate window and the replicas'
  anti-replay window. Holds need no publication: the gateway that journaled the withdrawal
  request screens it with its own replica's verdict.
- **Freeze**: ``SetAccountFrozen`` for the account (the actor is ``aml:<case id>``), and the
  withdrawal that matched waits for four eyes too; the case remembers whether the freeze was
  carried out (``action_done``), and start retries the ones that were not.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from backoffice.aml import image
from backoffice.aml.cases import CaseStore
from backoffice.aml.engine import AmlEngine, Hit
from backoffice.aml.rules import RuleSet, load_rules
from backoffice.db import Db
from engine.usererror import UserError

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)
REPLAY_CHUNK = 4_096
Freeze = Callable[[int, str], Awaitable[None]]
"""``freeze(account_id, case_id)``: journal the account's freeze, naming the case."""


def freeze_origin(case_id: str) -> int:
    """The batch origin of a case's freeze (batch number 1): 63 bits of BLAKE2b over the case id
    (``<rule>@<seq>``), never 0 (the demo bootstrap's). Every replica derives the same
    ``Nats-Msg-Id`` for the same case, so the freeze is stored and run once."""
    digest = hashlib.blake2b(f"aml-freeze:{case_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") & ((1 << 63) - 1)) or 1


class GatewayAml:
    def __init__(self, gw: Gateway, rules: Path | RuleSet) -> None:
        if not gw.config.backoffice:
            raise UserError("AML rules need the back office: its store keeps the cases")
        if gw.config.cluster is not None and not gw.config.backoffice_dsn:
            raise UserError(
                "AML rules in cluster mode need --backoffice-dsn",
                hint="every gateway must open cases in one shared PostgreSQL store",
            )
        self.gw = gw
        self.rules = load_rules(rules) if isinstance(rules, Path) else rules
        self.engine = AmlEngine(self.rules, self._address_of)
        self.cases: CaseStore | None = None
        self.freeze: Freeze | None = self._journal_freeze
        self._pending: deque[Hit] = deque()
        """Hits whose case is not written yet (the head is being written): in the image."""
        self._failed: list[Hit] = []
        """Hits whose case write failed: in the image too, so the next start retries them."""
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.start_replayed = 0
        """Commands replayed by the private rebuild at start (0: the snapshot's image served)."""

    def _address_of(self, withdrawal_id: int) -> str | None:
        """A destination from the custody store, for withdrawals journaled before the command
        carried it; None while the start-up replay runs (custody opens after it)."""
        custody = getattr(self.gw, "custody", None)
        if custody is None:
            return None
        row = custody.custody.store.withdrawal(withdrawal_id)
        return None if row is None else row.address

    # ---- state in the read-model snapshot ----------------------------------------------------

    def image(self) -> bytes:
        """The engine's state and its unwritten hits, between batches."""
        return image.encode(self.engine, [*self._failed, *self._pending])

    def restore(self, data: bytes) -> bool:
        """Start from a snapshot's image; False (nothing changed) if it is absent or was made
        with other rules."""
        pending = image.restore(self.engine, data)
        if pending is None:
            return False
        self._pending.extend(pending)
        return True

    @property
    def rules_hash(self) -> str:
        return image.rules_hash(self.rules)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, db: Db) -> None:
        self.cases = CaseStore(db)
        log.info(
            "aml_started",
            last_seq=self.engine.last_seq,
            pending_hits=len(self._pending),
            replayed=self.start_replayed,
        )
        await self._pending_actions()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="aml")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _rebuild(self, through_seq: int | None = None) -> list[Hit]:
        """Fold the journal (through ``through_seq``; None: all of it) into the AML engine as
        it is; returns the hits. Embedded only: the fallback when no snapshot image serves."""
        from engine.core.compiled import CompiledEngine
        from engine.schema import decode_command

        node = self.gw.node
        assert node is not None
        engine = CompiledEngine(node.engine.config)
        journal = node.journal
        first = journal.first_sequence
        last = journal.last_sequence if through_seq is None else through_seq
        hits: list[Hit] = []
        run: list[tuple[int, int, Any]] = []

        def flush() -> None:
            hits.extend(self.engine.feed(run[-1][1], engine.process(run)))
            self.engine.last_seq = run[-1][0]

        if first <= last:
            for seq, ts, payload in journal.read_from(first, last):
                if run and (ts != run[-1][1] or len(run) >= REPLAY_CHUNK):
                    flush()
                    run = []
                run.append((seq, ts, decode_command(payload)))
        if run:
            flush()
        self.start_replayed = max(0, last - first + 1)
        return hits

    def rebuild_through(self, seq: int) -> None:
        """Start without a usable image: fold the journal through ``seq`` (where the read
        model's snapshot stands; its tail follows through `on_batch`); every hit's case is
        opened at `start` unless it exists (a lost case write is repaired)."""
        self._pending.extend(self._rebuild(seq))

    # ---- live --------------------------------------------------------------------------------

    def on_batch(self, ts_ns: int, events: list[Any], last_seq: int) -> None:
        hits = self.engine.feed(ts_ns, events)
        self.engine.last_seq = last_seq
        for hit in hits:
            log.warning(
                "aml_hit",
                case=hit.case_id,
                account=hit.account_id,
                withdrawal=hit.withdrawal_id,
                action=hit.action,
            )
            self._pending.append(hit)
        if hits and self._wake is not None:
            self._wake.set()

    async def idle(self) -> None:
        """Wait until every queued hit is written and acted on (tests, shutdown)."""
        while self._pending:
            await asyncio.sleep(0.01)

    async def _drain(self) -> None:
        assert self._wake is not None
        while True:
            while self._pending:
                hit = self._pending[0]
                try:
                    assert self.cases is not None
                    if await self.cases.open_case(hit) and hit.action == "freeze":
                        await self._freeze(hit.account_id, hit.case_id)
                except Exception as exc:  # kept for the next start (in the snapshot image too)
                    log.error("aml_case_write_failed", case=hit.case_id, error=str(exc)[:200])
                    self._failed.append(hit)
                self._pending.popleft()
            self._wake.clear()
            await self._wake.wait()

    async def _pending_actions(self) -> None:
        assert self.cases is not None
        for case in await self.cases.pending_actions():
            try:
                await self._freeze(int(case["account_id"]), str(case["case_id"]))
            except Exception as exc:  # never stop the venue from starting; retried next start
                log.error("aml_freeze_failed", case=case["case_id"], error=str(exc)[:200])

    async def _journal_freeze(self, account_id: int, case_id: str) -> None:
        """``SetAccountFrozen`` naming the case as the actor (``aml:<case id>``), so the audit
        shows which rule froze the account: through the gateway's journaled path, or in
        cluster mode as a system batch whose identity derives from the case id."""
        from engine.schema import SetAccountFrozen
        from gateway.admin import Admin

        command = SetAccountFrozen(account_id=account_id, frozen=True, staff_id=f"aml:{case_id}")
        if self.gw.node is None:
            await self.gw.bridge.publish_system(1, [command], origin=freeze_origin(case_id))
            return
        await Admin(self.gw).standing(command)

    async def _freeze(self, account_id: int, case_id: str) -> None:
        assert self.cases is not None
        if self.freeze is None:
            log.error("aml_freeze_unavailable", account=account_id, case=case_id)
            return
        await self.freeze(account_id, case_id)
        await self.cases.action_done(case_id)
        log.warning("aml_account_frozen", account=account_id, case=case_id)
