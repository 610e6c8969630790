"""Withdrawal requests: validation, per-account 24 h limits, the engine hold, and settlement.

The flow (DESIGN.md): a request is validated here (asset, address for its chain, dust, limit,
id), recorded in the custody store, then journaled as ``WithdrawRequest`` so the engine holds
the funds; a signer (`custody.signer`) sends it and reports the outcome as ``WithdrawResult``
through the journal: success settles the hold, failure releases it. Every refusal names a
stable code and leaves no hold behind.

Four eyes (`custody.approvals`): a withdrawal above its asset's ``approval_threshold_atoms``,
to an address the account never withdrew to (``approve_new_address``), or held by an AML rule
(the ``screen`` hook) is held by the engine like any other but waits in ``awaiting_approval``,
a status the signer never picks up, until two different finance staff approve it; a rejection
or the user's cancel releases the hold through the journal (``WithdrawResult(success=False)``).

Ordering for crash safety: the request row (with its destination) is written *before* the
engine hold, so a hold can never exist without a destination; `recover` finishes a request
interrupted between the two by asking the engine which withdrawals it holds, and sends it
through the same review as a fresh one (never straight to the signer when it needs eyes).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from custody.addresses import InvalidAddress, validate_address
from custody.assets import AssetRegistry
from custody.store import CustodyStore, WithdrawalRow
from engine.schema import (
    MAX_AMOUNT_ATOMS,
    CommandRejected,
    Event,
    Reject,
    WithdrawalHeld,
    WithdrawalSettled,
    WithdrawRequest,
    WithdrawResult,
)

log = structlog.get_logger(__name__)

DAY_NS = 86_400 * 1_000_000_000

Submit = Callable[[WithdrawRequest | WithdrawResult], Awaitable[Sequence[Event]]]
Screen = Callable[[int], list[str]]
"""AML's verdict on a held withdrawal: the ids of the rules that hold it for review."""

# Withdrawal statuses in the custody store, in order of progress.
REQUESTED, HELD, SIGNED, BROADCAST, MINED = "requested", "held", "signed", "broadcast", "mined"
SETTLED, FAILED, REJECTED = "settled", "failed", "rejected"
AWAITING, CANCELLED = "awaiting_approval", "cancelled"
REJECTING, CANCELLING = "rejecting", "cancelling"
"""A decision to release was recorded; the journaled release is in flight (`recover`)."""
OPEN_STATUSES = (HELD, SIGNED, BROADCAST, MINED)
FIAT_CHAIN = "BANK"
"""The "chain" of fiat withdrawals (the manual bank rail): no signer has it, so a fiat
withdrawal approved by four eyes waits ``held`` until finance marks it paid (`mark_paid`)."""
FIAT_REVIEW = "fiat"
_BANK_ACCOUNT = re.compile(r"[A-Z0-9][A-Z0-9 ./-]{5,63}")


class WithdrawalRejected(ValueError):
    """A refused request; ``code`` is stable (API error mapping), ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class WithdrawalDesk:
    def __init__(
        self,
        registry: AssetRegistry,
        store: CustodyStore,
        submit: Submit,
        *,
        clock: Callable[[], int] = time.time_ns,
        screen: Screen | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.submit = submit
        self.clock = clock
        self.screen = screen
        """Set by the gateway when AML rules are loaded (`backoffice.aml`)."""

    async def request(
        self,
        account_id: int,
        asset_id: int,
        amount_atoms: int,
        address: str,
        *,
        withdrawal_id: int | None = None,
    ) -> WithdrawalRow:
        """Validate and hold a withdrawal; returns its row (status ``held``) or raises
        `WithdrawalRejected`. ``withdrawal_id`` may come from the caller (idempotent client
        retries are refused as duplicates) or is allocated here."""
        asset = self.registry.asset(asset_id)
        if asset is None:
            raise WithdrawalRejected("UNKNOWN_ASSET", f"asset {asset_id} is not withdrawable")
        spec = self.registry.chain_of(asset)
        try:
            destination = validate_address(spec, address)
        except InvalidAddress as exc:
            raise WithdrawalRejected(
                "INVALID_ADDRESS", f"{asset.symbol} on {spec.name}: {exc}"
            ) from None
        if type(amount_atoms) is not int or not 0 < amount_atoms <= MAX_AMOUNT_ATOMS:
            raise WithdrawalRejected(
                "INVALID_AMOUNT", f"amount must be 1..{MAX_AMOUNT_ATOMS} atoms"
            )
        if amount_atoms < asset.min_withdrawal_atoms:
            raise WithdrawalRejected(
                "BELOW_MINIMUM",
                f"{amount_atoms} atoms is below the {asset.symbol} minimum "
                f"{asset.min_withdrawal_atoms} (dust)",
            )
        now = self.clock()
        if asset.daily_limit_atoms:
            used = self.store.withdrawn_since(account_id, asset_id, now - DAY_NS)
            if used + amount_atoms > asset.daily_limit_atoms:
                raise WithdrawalRejected(
                    "LIMIT_EXCEEDED",
                    f"24h limit {asset.daily_limit_atoms} atoms: {used} used, "
                    f"{amount_atoms} requested",
                )
        withdrawal_id = self._new_id(withdrawal_id)
        review = []
        if asset.approval_threshold_atoms and amount_atoms > asset.approval_threshold_atoms:
            review.append("threshold")
        if asset.approve_new_address and not self.store.used_address(
            account_id, spec.name, destination
        ):
            review.append("new_address")
        row = WithdrawalRow(
            withdrawal_id,
            account_id,
            asset_id,
            amount_atoms,
            destination,
            spec.name,
            REQUESTED,
            now,
            now,
            "",
            "",
            0,
            0,
            ",".join(review),
        )
        self.store.add_withdrawal(row)
        return await self._hold(row)

    def _new_id(self, withdrawal_id: int | None) -> int:
        if withdrawal_id is None:
            return self.store.next_withdrawal_id()
        if withdrawal_id < 1:
            raise WithdrawalRejected("INVALID_WITHDRAWAL_ID", "withdrawal ids start at 1")
        if self.store.withdrawal(withdrawal_id) is not None:
            raise WithdrawalRejected(
                "DUPLICATE_WITHDRAWAL", f"withdrawal id {withdrawal_id} exists"
            )
        return withdrawal_id

    async def request_fiat(
        self,
        account_id: int,
        asset_id: int,
        amount_atoms: int,
        bank_account: str,
        *,
        withdrawal_id: int | None = None,
    ) -> WithdrawalRow:
        """A fiat withdrawal to a bank account (the fiat rail; the caller checked that the
        asset is fiat): held by the engine, then always four eyes (review ``fiat``, plus any AML
        hold), the same approvals as a coin's (`custody.approvals`); approved, it waits
        ``held`` on `FIAT_CHAIN`, which no signer takes, until finance pays it (`mark_paid`)."""
        account = bank_account.strip().upper() if isinstance(bank_account, str) else ""
        if not _BANK_ACCOUNT.fullmatch(account):
            raise WithdrawalRejected(
                "INVALID_ADDRESS",
                "a bank account is 6..64 letters, digits, spaces and . / - (an IBAN)",
            )
        if type(amount_atoms) is not int or not 0 < amount_atoms <= MAX_AMOUNT_ATOMS:
            raise WithdrawalRejected(
                "INVALID_AMOUNT", f"amount must be 1..{MAX_AMOUNT_ATOMS} atoms"
            )
        withdrawal_id = self._new_id(withdrawal_id)
        now = self.clock()
        row = WithdrawalRow(withdrawal_id, account_id, asset_id, amount_atoms, account,
                            FIAT_CHAIN, REQUESTED, now, now, "", "", 0, 0, FIAT_REVIEW)  # fmt: skip
        self.store.add_withdrawal(row)
        return await self._hold(row)

    async def mark_paid(self, withdrawal_id: int, staff_id: str, reference: str) -> WithdrawalRow:
        """Finance sent the bank transfer of an approved fiat withdrawal: the hold is settled
        through the journal (``WithdrawResult(success=True)``). Idempotent after a crash
        between the journal and the store (`settle`)."""
        row = self.store.withdrawal(withdrawal_id)
        if row is None or row.chain != FIAT_CHAIN:
            raise WithdrawalRejected("UNKNOWN_WITHDRAWAL", f"no fiat withdrawal {withdrawal_id}")
        if row.status != HELD:
            raise WithdrawalRejected(
                "NOT_APPROVED", f"withdrawal {withdrawal_id} is {row.status}, not approved (held)"
            )
        await self.settle(withdrawal_id, True, f"paid by {staff_id}: {reference}")
        paid = self.store.withdrawal(withdrawal_id)
        assert paid is not None
        return paid

    async def _hold(self, row: WithdrawalRow) -> WithdrawalRow:
        events = await self.submit(
            WithdrawRequest(
                withdrawal_id=row.withdrawal_id,
                account_id=row.account_id,
                asset_id=row.asset_id,
                amount_atoms=row.atoms,
                address=row.address,
            )
        )
        rejected = next((e for e in events if isinstance(e, CommandRejected)), None)
        now = self.clock()
        if rejected is not None or not any(isinstance(e, WithdrawalHeld) for e in events):
            reason = Reject(rejected.reason).name if rejected is not None else "NOT_HELD"
            self.store.update_withdrawal(row.withdrawal_id, now, status=REJECTED, detail=reason)
            log.info("withdrawal_rejected", withdrawal_id=row.withdrawal_id, reason=reason)
            raise WithdrawalRejected(reason, f"the engine refused withdrawal {row.withdrawal_id}")
        review = self._review(row)
        status = AWAITING if review else HELD
        self.store.update_withdrawal(row.withdrawal_id, now, status=status, review=review)
        log.info(
            "withdrawal_held",
            withdrawal_id=row.withdrawal_id,
            account=row.account_id,
            asset=row.asset_id,
            atoms=row.atoms,
            address=row.address,
            review=review,
        )
        held = self.store.withdrawal(row.withdrawal_id)
        assert held is not None
        return held

    def _review(self, row: WithdrawalRow) -> str:
        """The reasons a held withdrawal waits for four eyes: the static ones recorded with the
        request, and the AML rules that hold it (asked after the hold, when the AML engine has
        seen the journaled ``WithdrawalHeld``)."""
        reasons = [r for r in row.review.split(",") if r]
        if self.screen is not None:
            reasons += [f"aml:{rule}" for rule in self.screen(row.withdrawal_id)]
        return ",".join(dict.fromkeys(reasons))

    async def recover(self, engine_pending: set[int]) -> None:
        """After a restart: finish requests interrupted between the store and the engine, and
        releases interrupted between a staff decision and the journal. ``engine_pending`` is
        the engine's pending withdrawal ids (its state image)."""
        for row in self.store.withdrawals(REQUESTED):
            if row.withdrawal_id in engine_pending:
                review = self._review(row)
                self.store.update_withdrawal(
                    row.withdrawal_id,
                    self.clock(),
                    status=AWAITING if review else HELD,
                    review=review,
                )
            else:
                with contextlib.suppress(WithdrawalRejected):
                    await self._hold(row)
        for status, final in ((REJECTING, REJECTED), (CANCELLING, CANCELLED)):
            for row in self.store.withdrawals(status):
                await self.release(row.withdrawal_id, final, row.detail)

    async def release(self, withdrawal_id: int, final_status: str, detail: str) -> None:
        """Release the hold of a withdrawal nobody sent (rejected by staff, cancelled by its
        owner): a journaled ``WithdrawResult(success=False)`` puts the amount back into the
        account's available balance. Idempotent like `settle`."""
        await self.settle(withdrawal_id, False, detail, final_status=final_status)

    async def settle(
        self, withdrawal_id: int, success: bool, detail: str = "", *, final_status: str = ""
    ) -> None:
        """Report the outcome through the journal: success settles, failure releases the hold.
        Re-reporting an already settled withdrawal (crash after the journal write) is a no-op."""
        events = await self.submit(WithdrawResult(withdrawal_id=withdrawal_id, success=success))
        rejected = next((e for e in events if isinstance(e, CommandRejected)), None)
        if rejected is not None and rejected.reason != Reject.UNKNOWN_WITHDRAWAL:
            raise RuntimeError(
                f"WithdrawResult {withdrawal_id} refused: {Reject(rejected.reason).name}"
            )
        assert rejected is not None or any(isinstance(e, WithdrawalSettled) for e in events)
        status = final_status or (SETTLED if success else FAILED)
        self.store.update_withdrawal(withdrawal_id, self.clock(), status=status, detail=detail)
        if success:
            log.info("withdrawal_settled", withdrawal_id=withdrawal_id)
        elif final_status:
            log.info("withdrawal_released", withdrawal_id=withdrawal_id, status=status)
        else:
            log.warning("withdrawal_failed", withdrawal_id=withdrawal_id, detail=detail)

    def status(self, withdrawal_id: int) -> WithdrawalRow | None:
        return self.store.withdrawal(withdrawal_id)

    def history(self, account_id: int) -> list[WithdrawalRow]:
        return [w for w in self.store.withdrawals() if w.account_id == account_id]
