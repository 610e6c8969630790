"""The withdrawal signer's chain-independent loop: sign, store, broadcast, track, settle.

The signer is the only component holding a hot key; it is separate from the watchers (which
hold only xpubs) and is configured per chain. One pass of `Signer.process` moves every open
withdrawal of its chain one step:

- ``held``: build and sign a transaction, **store it before broadcasting** (status ``signed``),
  then broadcast (``broadcast``). A definite refusal before anything reached the network (hot
  wallet short of funds, the node rejects the transaction) fails the withdrawal: the hold is
  released through the journal.
- ``signed``: a crash happened between storing and broadcasting: re-broadcast the *stored*
  bytes. The same transaction is sent again, never a new one, so it can never pay twice.
- ``broadcast``/``mined``: look for any attempt in a block; after N confirmations report
  success (the hold settles); a mined but failed transaction (a reverted ERC-20 call) reports
  failure (the hold is released; the exchange paid the gas). A transaction unmined for
  ``stuck_after_ns`` is replaced with higher fees where the chain allows (Ethereum: same
  nonce), otherwise re-broadcast.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from custody.assets import AssetRegistry, ChainSpec
from custody.store import Attempt, CustodyStore, WithdrawalRow
from custody.withdrawals import BROADCAST, HELD, MINED, SIGNED, WithdrawalDesk

log = structlog.get_logger(__name__)


class CannotSend(RuntimeError):
    """A definite refusal before anything was broadcast: the withdrawal fails cleanly."""


class NotYet(RuntimeError):
    """Cannot be sent now but will be (the hot wallet's coins are change of our own
    unconfirmed withdrawals): the withdrawal stays held and is tried again next pass."""


class Ambiguous(RuntimeError):
    """The broadcast may or may not have reached the node (timeout, connection lost)."""


@dataclass(frozen=True, slots=True)
class TxState:
    txid: str
    mined_height: int
    success: bool
    fee_chain: int
    """Network fee paid, in the chain's native unit (wei, satoshi)."""


class Signer(ABC):
    def __init__(
        self,
        spec: ChainSpec,
        registry: AssetRegistry,
        store: CustodyStore,
        desk: WithdrawalDesk,
        *,
        stuck_after_ns: int = 120 * 1_000_000_000,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.spec = spec
        self.registry = registry
        self.store = store
        self.desk = desk
        self.stuck_after_ns = stuck_after_ns
        self.clock = clock

    @property
    def chain(self) -> str:
        return self.spec.name

    # ---- chain-specific ------------------------------------------------------------------

    @abstractmethod
    async def sign_new(self, w: WithdrawalRow) -> Attempt:
        """Build, sign and *store* (`CustodyStore.add_attempt`) a transaction; `CannotSend`
        if it cannot be built (funds, fees, estimation refused)."""

    @abstractmethod
    async def broadcast(self, raw: str) -> None:
        """Send raw bytes; ok if the node already knows them. `CannotSend` for a definite
        refusal, `Ambiguous` if the outcome is unknown."""

    @abstractmethod
    async def find_mined(self, w: WithdrawalRow, attempts: list[Attempt]) -> TxState | None: ...

    @abstractmethod
    async def tip_height(self) -> int: ...

    async def abandon(self, w: WithdrawalRow, attempt: Attempt) -> None:
        """Undo the bookkeeping of a signed transaction that never reached the network
        (nothing to undo by default)."""
        return None

    async def bump(self, w: WithdrawalRow, attempts: list[Attempt]) -> Attempt | None:
        """A replacement with higher fees (stored), or None where the chain has none."""
        return None

    # ---- the loop ------------------------------------------------------------------------

    async def process(self) -> None:
        """One pass; nothing at all while the chain has an unresolved operator alert (a deep
        reorg): confirmations and coins cannot be trusted until an operator resolved it
        (``kootabase custody alerts resolve``)."""
        alerts = self.store.open_alerts(self.chain)
        if alerts:
            log.warning("signer_halted", chain=self.chain, alerts=[a[0] for a in alerts])
            return
        for w in self.store.withdrawals(chain=self.chain):
            if w.status == HELD:
                await self._send(w)
            elif w.status == SIGNED:
                attempts = self.store.attempts(w.withdrawal_id)
                await self._broadcast(w, attempts[-1], first=len(attempts) == 1)
            elif w.status in (BROADCAST, MINED):
                await self._track(w)

    async def _send(self, w: WithdrawalRow) -> None:
        try:
            attempt = await self.sign_new(w)
        except NotYet as exc:
            log.info("withdrawal_waiting", withdrawal_id=w.withdrawal_id, reason=str(exc))
            return
        except CannotSend as exc:
            await self.desk.settle(w.withdrawal_id, False, f"not sent: {exc}")
            return
        log.info("withdrawal_signed", withdrawal_id=w.withdrawal_id, txid=attempt.txid)
        await self._broadcast(w, attempt, first=True)

    async def _broadcast(self, w: WithdrawalRow, attempt: Attempt, *, first: bool) -> None:
        try:
            await self.broadcast(attempt.raw)
        except Ambiguous as exc:
            log.warning("broadcast_ambiguous", withdrawal_id=w.withdrawal_id, error=str(exc))
            return  # stays `signed`: the next pass re-broadcasts the same bytes
        except CannotSend as exc:
            if first:
                await self.abandon(w, attempt)
                await self.desk.settle(w.withdrawal_id, False, f"refused by node: {exc}")
            else:
                log.warning("replacement_refused", withdrawal_id=w.withdrawal_id, error=str(exc))
                self.store.update_withdrawal(w.withdrawal_id, self.clock(), status=BROADCAST)
            return
        self.store.update_withdrawal(
            w.withdrawal_id, self.clock(), status=BROADCAST, txid=attempt.txid
        )
        log.info(
            "withdrawal_broadcast",
            withdrawal_id=w.withdrawal_id,
            txid=attempt.txid,
            attempt=attempt.attempt,
        )

    async def _track(self, w: WithdrawalRow) -> None:
        attempts = self.store.attempts(w.withdrawal_id)
        state = await self.find_mined(w, attempts)
        now = self.clock()
        if state is None:
            if w.status == MINED:  # reorged out: back to the mempool
                self.store.update_withdrawal(w.withdrawal_id, now, status=BROADCAST, mined_height=0)
                log.warning("withdrawal_unmined_by_reorg", withdrawal_id=w.withdrawal_id)
            if now - attempts[-1].created_ns >= self.stuck_after_ns:
                replacement = await self.bump(w, attempts)
                if replacement is not None:
                    log.warning(
                        "withdrawal_replaced",
                        withdrawal_id=w.withdrawal_id,
                        txid=replacement.txid,
                        attempt=replacement.attempt,
                    )
                    await self._broadcast(w, replacement, first=False)
                else:
                    await self._broadcast(w, attempts[-1], first=False)
            return
        if w.status != MINED or w.mined_height != state.mined_height:
            self.store.update_withdrawal(
                w.withdrawal_id,
                now,
                status=MINED,
                txid=state.txid,
                mined_height=state.mined_height,
                fee_chain=state.fee_chain,
            )
        if not state.success:
            await self.desk.settle(w.withdrawal_id, False, f"transaction {state.txid} failed")
            return
        if await self.tip_height() - state.mined_height + 1 >= self.spec.confirmations:
            await self.desk.settle(w.withdrawal_id, True)
