"""AML in the gateway: the rules engine fed by every batch, cases written to the back office's
store, actions carried out (hold through custody's ``screen`` hook, freeze through the journal).

- **Start** (`GatewayAml.start`, before the bridge takes commands): the whole journal is
  replayed through a private compiled engine and folded into the AML engine, and every hit's
  case is opened unless it exists. So the AML state and the cases are a function of the
  journal: a crash that lost a case write, or a case table restored from an old backup, is
  repaired here. The cost is one replay of the journal at start (the gateway's own replay may
  start from a snapshot; AML has no snapshot yet).
- **Live** (`on_batch`, from ``Gateway._on_batch`` before requests are answered): the batch's
  events are folded synchronously, so when custody's withdrawal request returns from the
  engine hold, the engine already knows whether a rule holds it (`AmlEngine.screen`). Case
  writes and freezes are queued and carried out in order by one task.
- **Freeze**: a hit whose rule says ``freeze`` journals ``SetAccountFrozen`` for the account
  (the actor is ``aml:<case id>``), and the withdrawal that matched waits for four eyes too;
  the case remembers whether the freeze was carried out (``action_done``), and start retries
  the ones that were not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

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


class GatewayAml:
    def __init__(self, gw: Gateway, rules: Path | RuleSet) -> None:
        if gw.node is None:
            raise UserError(
                "AML rules need the embedded journal",
                hint="cluster mode does not run the AML engine yet",
            )
        if not gw.config.backoffice:
            raise UserError("AML rules need the back office: its store keeps the cases")
        self.gw = gw
        self.rules = load_rules(rules) if isinstance(rules, Path) else rules
        self.engine = AmlEngine(self.rules, self._address_of)
        self.cases: CaseStore | None = None
        self.freeze: Freeze | None = self._journal_freeze
        self._queue: asyncio.Queue[Hit] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        if gw.custody is not None:
            gw.custody.custody.desk.screen = self.engine.screen

    def _address_of(self, withdrawal_id: int) -> str | None:
        custody = self.gw.custody
        if custody is None:
            return None
        row = custody.custody.store.withdrawal(withdrawal_id)
        return None if row is None else row.address

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, db: Db) -> None:
        self.cases = CaseStore(db)
        hits = self._rebuild()
        opened = 0
        for hit in hits:
            opened += await self.cases.open_case(hit)
        log.info("aml_rebuilt", hits=len(hits), opened=opened, last_seq=self.engine.last_seq)
        await self._pending_actions()
        self._task = asyncio.get_running_loop().create_task(self._drain(), name="aml")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _rebuild(self) -> list[Hit]:
        """Fold the whole journal (as it is now) into a fresh AML engine; returns its hits."""
        from engine.core.compiled import CompiledEngine
        from engine.schema import decode_command

        node = self.gw.node
        assert node is not None
        engine = CompiledEngine(node.engine.config)
        journal = node.journal
        first, last = journal.first_sequence, journal.last_sequence
        hits: list[Hit] = []
        run: list[tuple[int, int, Any]] = []

        def flush() -> None:
            hits.extend(self.engine.feed(run[-1][1], engine.process(run)))

        if first <= last:
            for seq, ts, payload in journal.read_from(first, last):
                if run and (ts != run[-1][1] or len(run) >= REPLAY_CHUNK):
                    flush()
                    run = []
                run.append((seq, ts, decode_command(payload)))
        if run:
            flush()
        return hits

    # ---- live --------------------------------------------------------------------------------

    def on_batch(self, ts_ns: int, events: list[Any]) -> None:
        for hit in self.engine.feed(ts_ns, events):
            log.warning(
                "aml_hit",
                case=hit.case_id,
                account=hit.account_id,
                withdrawal=hit.withdrawal_id,
                action=hit.action,
            )
            self._queue.put_nowait(hit)

    async def idle(self) -> None:
        """Wait until every queued hit is written and acted on (tests, shutdown)."""
        await self._queue.join()

    async def _drain(self) -> None:
        while True:
            hit = await self._queue.get()
            try:
                assert self.cases is not None
                await self.cases.open_case(hit)
                if hit.action == "freeze":
                    await self._freeze(hit.account_id, hit.case_id)
            except Exception as exc:  # the next start's rebuild opens the case again
                log.error("aml_case_write_failed", case=hit.case_id, error=str(exc)[:200])
            finally:
                self._queue.task_done()

    async def _pending_actions(self) -> None:
        assert self.cases is not None
        for case in await self.cases.pending_actions():
            try:
                await self._freeze(int(case["account_id"]), str(case["case_id"]))
            except Exception as exc:  # never stop the venue from starting; retried next start
                log.error("aml_freeze_failed", case=case["case_id"], error=str(exc)[:200])

    async def _journal_freeze(self, account_id: int, case_id: str) -> None:
        """``SetAccountFrozen`` through the gateway's journaled path, naming the case as the
        actor (``aml:<case id>``): the audit shows which rule froze the account."""
        from engine.schema import SetAccountFrozen
        from gateway.admin import Admin

        command = SetAccountFrozen(account_id=account_id, frozen=True, staff_id=f"aml:{case_id}")
        await Admin(self.gw).standing(command)

    async def _freeze(self, account_id: int, case_id: str) -> None:
        assert self.cases is not None
        if self.freeze is None:
            log.error("aml_freeze_unavailable", account=account_id, case=case_id)
            return
        await self.freeze(account_id, case_id)
        await self.cases.action_done(case_id)
        log.warning("aml_account_frozen", account=account_id, case=case_id)
