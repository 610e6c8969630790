"""Custody through the gateway (issue 7): deposit addresses and withdrawals in the dialect's
``/sapi/v1/capital/...`` style, over REST and the WS API.

Optional: enabled when the gateway is given a custody config (``kootabase serve
--custody-config FILE``). Custody reaches the engine only through the gateway's bridge (the
`bridge_submitter` adapter), so its commands are journaled and group-committed with everything
else, and the read model (``/api/v3/account``) sees a withdrawal hold before the request is
answered. Refusals keep custody's stable codes, mapped to negative wire codes in
`gateway.errors` (``WITHDRAW_*``); a refused request leaves no hold behind (custody validates
before the engine hold, and the engine refuses atomically).

Amounts on the wire are decimal strings in the engine's precision for the asset (ETH: 9
decimals); ``withdrawOrderId`` (optional) is the custody withdrawal id, a positive integer:
a retry with the same id is refused as a duplicate, never executed twice.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import structlog

from engine.schema import Command, Event
from gateway import errors
from gateway.markets import atoms_to_decimal, parse_decimal
from gateway.params import get_int, get_str

if TYPE_CHECKING:
    from custody.config import CustodyConfig
    from custody.service import Custody, EngineSubmit
    from custody.store import DepositRow, WithdrawalRow
    from gateway.app import Gateway

log = structlog.get_logger(__name__)

# The dialect's numeric statuses for the history endpoints (docs/api.md, "Deposit and
# withdrawal history"): a withdrawal is Awaiting Approval (2) while four eyes are needed,
# Processing (4) until its transaction is sent ("broadcast" included), Completed (6) once the
# transaction is in a block ("mined", and "settled" when the hold is settled after the chain's
# confirmations; confirmNo tells them apart), Failure (5), Rejected (3: by the engine or by
# staff) or Cancelled (1: by its owner while it waited). A deposit is pending (0) until
# credited (1); one below the engine's unit is a wrong deposit (7), one the engine refused is
# rejected (2).
_WITHDRAW_STATUS: Final = {
    "requested": 4,
    "held": 4,
    "signed": 4,
    "broadcast": 4,
    "mined": 6,
    "settled": 6,
    "failed": 5,
    "rejected": 3,
    "awaiting_approval": 2,
    "rejecting": 3,
    "cancelling": 1,
    "cancelled": 1,
}
_DEPOSIT_STATUS: Final = {
    "pending": 0,
    "orphaned": 0,
    "over_limit": 0,  # confirmed, waiting for room under the tier's 24 h limit: pending to the user
    "credited": 1,
    "dust": 7,
    "rejected": 2,
}
_FINAL_WITHDRAWAL: Final = frozenset({"settled", "failed", "rejected", "cancelled"})


def _utc(ns: int) -> str:
    """The dialect's withdraw-history time format, ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 1_000_000_000))


def bridge_submitter(gw: Gateway) -> EngineSubmit:
    """Custody's ``submit(command) -> events`` over the gateway's bridge (journaled, batched).
    Commands naming an account are counted in flight for it (read-your-writes)."""

    async def submit(command: Command) -> Sequence[Event]:
        account_id = getattr(command, "account_id", None)
        if isinstance(account_id, int):
            _, _, events = await gw.trading.execute(account_id, command)
        else:
            _, _, events = await gw.bridge.submit(command)
        return events

    return submit


def custody_needs_dsn() -> Exception:
    from engine.usererror import UserError

    return UserError(
        "custody in cluster mode needs --backoffice-dsn",
        hint="the shared PostgreSQL holds the claim that lets one gateway of the cluster run "
        "custody (docs/custody.md)",
        exit_code=2,
    )


class JournalDecisions:
    """`custody.approvals.DecisionLog` of a gateway: its journal (embedded), or the staff
    records its read model keeps from the stream (cluster mode, no local journal)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def last_seq(self) -> int:
        node = self.gw.node
        return node.journal.last_sequence if node is not None else self.gw.store.last_seq

    def journaled(self, withdrawal_id: int, staff_id: str, after_seq: int) -> bool:
        from backoffice.audit import has_decision

        node = self.gw.node
        if node is None:
            actions = self.gw.store.staff_actions
            start = bisect.bisect_right(actions, after_seq, key=lambda r: r[0])
            return has_decision(actions[start:], withdrawal_id, staff_id)
        last = node.journal.last_sequence
        if after_seq >= last:
            return False
        records = node.journal.read_from(max(after_seq + 1, node.journal.first_sequence), last)
        return has_decision(records, withdrawal_id, staff_id)


class GatewayCustody:
    """The custody service as the gateway exposes it (one per gateway, optional)."""

    def __init__(
        self,
        gw: Gateway,
        config: CustodyConfig | Path,
        *,
        signer: bool = False,
        poll_s: float = 2.0,
    ) -> None:
        from custody.approvals import Approvals
        from custody.config import load_config
        from custody.service import Custody

        if isinstance(config, Path):
            config = load_config(config, gw.config.data_dir)
        self.gw = gw
        self.custody: Custody = Custody(
            config, bridge_submitter(gw), signer=signer, tier_of=gw.store.tier
        )
        self.approvals = Approvals(self.custody.desk, JournalDecisions(gw))
        """Four eyes (`custody.approvals`): staff decide through the operator API."""
        self.poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._claim: Any = None
        """Cluster mode: the held one-custody-per-stream claim (`gateway.custodylock`)."""

    def start(self) -> None:
        if self.poll_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.custody.run(self.poll_s), name="custody"
            )

    async def claim(self) -> None:
        """Cluster mode: take the one-custody-per-stream claim before custody does anything
        (`gateway.custodylock`); losing it later stops the chain watcher and refuses custody
        actions until the claim is taken back (and `recover` ran again)."""
        cluster, dsn = self.gw.config.cluster, self.gw.config.backoffice_dsn
        if cluster is None:
            return
        from gateway.custodylock import ClaimKeeper

        if not dsn:
            raise custody_needs_dsn()
        self._claim = ClaimKeeper(dsn, cluster.stream.name, self._stop_watcher, self._regained)
        await self._claim.acquire()
        self.gw.health_checks["custody"] = self._claim.status

    def _stop_watcher(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _regained(self) -> None:
        """The claim is held again: settle what may be pending, then watch the chains again."""
        await self.recover()
        self.start()

    def refuse_without_claim(self) -> None:
        """`errors.ApiError` (503, ``CUSTODY_CLAIM_NOT_HELD``) while a cluster gateway does not
        hold the custody claim; custody actions that write call this first."""
        refusal = self._claim.refusal() if self._claim is not None else None
        if refusal is not None:
            raise errors.ApiError(errors.CUSTODY_CLAIM_NOT_HELD, refusal, status=503)

    def claim_refusal(self) -> str | None:
        """Why custody must not act now (None: it may), for the operator API's envelope."""
        return self._claim.refusal() if self._claim is not None else None

    async def recover(self) -> None:
        """At start (and when a lost claim is taken back), before custody answers: settle
        four-eyes decisions a crash left between the journal and the store, and finish
        withdrawals a crash interrupted (a request between the store and the engine hold; a
        rejection or cancel before its journaled release). In cluster mode this runs after
        the replica caught up with the stream, so the staff records it reads back are whole.
        The engine's pending withdrawals come from its state image."""
        node = self.gw.node
        engine = node.engine if node is not None else self.gw.bridge.replica.engine
        await self.approvals.recover()  # first: a recovered rejection is released here
        pending = {w.withdrawal_id for w in engine.image().pending_withdrawals}
        await self.custody.desk.recover(pending)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.custody.close()
        if self._claim is not None:
            await self._claim.close()

    # ---- helpers -----------------------------------------------------------------------------

    def _asset(self, params: Mapping[str, Any], *, fiat: bool = False) -> tuple[int, str, int]:
        """(asset_id, symbol, engine decimals) of ``coin``, which custody must handle (or,
        with ``fiat``, a fiat asset of the bank rail: `backoffice.fiat.FIAT_SYMBOLS`)."""
        from backoffice.fiat import FIAT_SYMBOLS

        coin = get_str(params, "coin", required=True)
        assert coin is not None
        a = next((x for x in self.gw.store.assets.values() if x.symbol == coin), None)
        known = a is not None and self.custody.registry.asset(a.asset_id) is not None
        if a is not None and not known and fiat and a.symbol in FIAT_SYMBOLS:
            return a.asset_id, a.symbol, a.decimals
        if a is None or not known:
            raise errors.ApiError(
                errors.WITHDRAW_UNKNOWN_COIN,
                f"Coin {coin!r} is not supported for deposit or withdrawal.",
            )
        return a.asset_id, a.symbol, a.decimals

    def _decimals(self, asset_id: int) -> int:
        return self.gw.store.assets[asset_id].decimals

    # ---- the API -----------------------------------------------------------------------------

    def deposit_address(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        self.refuse_without_claim()  # a new address is an index allocated in the store
        asset_id, symbol, _ = self._asset(params)
        network = get_str(params, "network", required=False)
        addr = self.custody.deposit_address(account_id, asset_id)
        if network is not None and network != addr.chain:
            raise errors.invalid("network")
        return {
            "address": addr.address,
            "coin": symbol,
            "tag": "",
            "url": "",
            "network": addr.chain,
        }

    async def withdraw(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """A coin to its chain, or a fiat asset to a bank account (network ``BANK``, the
        address an IBAN), which always waits for four eyes and is paid by finance."""
        from custody.withdrawals import FIAT_CHAIN, WithdrawalRejected

        self.refuse_without_claim()
        asset_id, _, decimals = self._asset(params, fiat=True)
        custodied = self.custody.registry.asset(asset_id)
        address = get_str(params, "address", required=True)
        assert address is not None
        amount = params.get("amount")
        if amount is None or amount == "":
            raise errors.mandatory("amount")
        atoms = parse_decimal("amount", amount, decimals)
        network = get_str(params, "network", required=False)
        chain = custodied.chain if custodied is not None else FIAT_CHAIN
        if network is not None and network != chain:
            raise errors.invalid("network")
        withdrawal_id = get_int(params, "withdrawOrderId", lo=1)
        standing = self._standing_refusal(account_id, asset_id, atoms)
        if standing is not None:
            raise errors.from_withdrawal(*standing)
        desk = self.custody.desk
        try:
            if custodied is None:
                row = await desk.request_fiat(
                    account_id, asset_id, atoms, address, withdrawal_id=withdrawal_id
                )
            else:
                row = await self.custody.request_withdrawal(
                    account_id, asset_id, atoms, address, withdrawal_id=withdrawal_id
                )
        except WithdrawalRejected as exc:
            raise errors.from_withdrawal(exc.code, exc.message) from None
        return {"id": str(row.withdrawal_id)}

    async def cancel_withdrawal(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """The owner cancels a withdrawal awaiting approval: the hold is released (journaled)."""
        from backoffice.errors import ActionRefused

        withdrawal_id = get_int(params, "id", lo=1)
        if withdrawal_id is None:
            raise errors.mandatory("id")
        self.refuse_without_claim()
        try:
            row = await self.approvals.cancel(withdrawal_id, account_id)
        except ActionRefused as exc:
            raise errors.from_withdrawal(exc.code, exc.message) from None
        return self._withdrawal(row)

    def _standing_refusal(
        self, account_id: int, asset_id: int, atoms: int
    ) -> tuple[str, str] | None:
        """Refusals by the account's standing, before anything is journaled: frozen (the
        engine would refuse the hold too), KYC tier 0, and the tier's 24 h limit for the asset
        (`custody.assets.CustodyAsset.tier_daily_limit_atoms`): the engine records tiers but
        does not judge them. -1, no tier ever set, is an operator-made account."""
        from custody.withdrawals import DAY_NS

        store = self.gw.store
        if store.frozen(account_id):
            return "ACCOUNT_FROZEN", f"account {account_id} is frozen by staff"
        tier = store.tier(account_id)
        if tier == 0:
            return "TIER_NOT_ALLOWED", f"account {account_id} is KYC tier 0"
        custodied = self.custody.registry.asset(asset_id)
        limits = custodied.tier_daily_limit_atoms if custodied is not None else []
        limit = limits[tier] if 0 <= tier < len(limits) else 0
        if limit:
            since = time.time_ns() - DAY_NS
            used = self.custody.store.withdrawn_since(account_id, asset_id, since)
            if used + atoms > limit:
                return (
                    "LIMIT_EXCEEDED",
                    f"tier {tier} 24h limit {limit} atoms: {used} used, {atoms} requested",
                )
        return None

    def withdraw_history(self, account_id: int, params: Mapping[str, Any]) -> list[Any]:
        rows = self.custody.withdrawals(account_id)
        if params.get("coin"):
            asset_id = self._asset(params, fiat=True)[0]
            rows = [r for r in rows if r.asset_id == asset_id]
        rows = history_page(rows, params, lambda r: r.created_ns)
        return [self._withdrawal(r) for r in rows]

    def deposit_history(self, account_id: int, params: Mapping[str, Any]) -> list[Any]:
        rows = self.custody.deposits(account_id)
        if params.get("coin"):
            asset_id = self._asset(params)[0]
            rows = [r for r in rows if r.asset_id == asset_id]
        rows = history_page(rows, params, lambda r: r.seen_ns)
        return [self._deposit(r) for r in rows]

    def _confirmations(self, chain: str, height: int) -> tuple[int, int]:
        """(confirmations of a block at ``height`` as far as custody has scanned, capped at
        the chain's policy; the policy). 0 for height 0 (not in a block)."""
        spec = self.custody.registry.chains.get(chain)
        if spec is None:  # the bank rail (fiat withdrawals): no blocks
            return 0, 0
        required = spec.confirmations
        tip = self.custody.store.tip(chain)
        if height <= 0 or tip is None or tip[0] < height:
            return 0, required
        return min(tip[0] - height + 1, required), required

    def _withdrawal(self, r: WithdrawalRow) -> dict[str, Any]:
        confirmed, _ = self._confirmations(r.chain, r.mined_height)
        if r.status == "settled":
            confirmed = self._confirmations(r.chain, 1 << 62)[1]
        out = {
            "id": str(r.withdrawal_id),
            "withdrawOrderId": str(r.withdrawal_id),
            "amount": atoms_to_decimal(r.atoms, self._decimals(r.asset_id)),
            "transactionFee": "0",
            "coin": self.gw.store.assets[r.asset_id].symbol,
            "status": _WITHDRAW_STATUS.get(r.status, 4),
            "address": r.address,
            "txId": r.txid,
            "applyTime": _utc(r.created_ns),
            "network": r.chain,
            "transferType": 0,
            "confirmNo": confirmed,
            "walletType": 0,
            "info": r.status if not r.detail else f"{r.status}: {r.detail}",
            "custodyStatus": r.status,
        }
        if r.status in _FINAL_WITHDRAWAL:
            out["completeTime"] = _utc(r.updated_ns)
        return out

    def _deposit(self, r: DepositRow) -> dict[str, Any]:
        parts = r.key.split(":")
        confirmed, required = self._confirmations(r.chain, r.height)
        if r.status == "orphaned":
            confirmed = 0
        elif r.status != "pending":
            confirmed = required
        out = {
            "id": r.key,
            "amount": atoms_to_decimal(r.atoms, self._decimals(r.asset_id)),
            "coin": self.gw.store.assets[r.asset_id].symbol,
            "network": r.chain,
            "status": _DEPOSIT_STATUS.get(r.status, 7),
            "address": self.custody.deposit_address(r.account_id, r.asset_id).address,
            "addressTag": "",
            "txId": parts[1] if len(parts) > 1 else "",
            "insertTime": r.seen_ns // 1_000_000,
            "transferType": 0,
            "confirmTimes": f"{confirmed}/{required}",
            "unlockConfirm": required,
            "walletType": 0,
            "info": r.status,
            "custodyStatus": r.status,
        }
        if r.credited_ns:
            out["completeTime"] = r.credited_ns // 1_000_000
        return out


HISTORY_LIMIT: Final = 1000
R = TypeVar("R")


def history_page(
    rows: Sequence[R], params: Mapping[str, Any], ns_of: Callable[[R], int]
) -> list[R]:
    """Deposit or withdrawal history rows (oldest first in ``rows``) as the dialect pages them:
    ``startTime``/``endTime`` (ms, inclusive) bound the time, ``limit`` (1..1000, default 1000)
    and ``offset`` page, newest first. With ``startTime`` the page is the *oldest* rows from
    it, so a client syncing forward (``since`` = last seen + 1, ccxt's ``fetch_deposits``)
    never skips rows between pages; without it, the newest."""
    from gateway.tradequeries import MAX_TIME_MS

    start_ms = get_int(params, "startTime", lo=0, hi=MAX_TIME_MS)
    end_ms = get_int(params, "endTime", lo=0, hi=MAX_TIME_MS)
    limit = get_int(params, "limit", default=HISTORY_LIMIT, lo=1, hi=HISTORY_LIMIT)
    offset = get_int(params, "offset", default=0, lo=0) or 0
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise errors.ApiError(
            errors.INVALID_PARAMETER, "startTime must be less than or equal to endTime."
        )
    low = -1 if start_ms is None else start_ms * 1_000_000
    high = None if end_ms is None else end_ms * 1_000_000 + 999_999
    kept = [r for r in rows if ns_of(r) >= low and (high is None or ns_of(r) <= high)]
    kept.sort(key=ns_of)  # stable: rows with one time keep their store order
    n = limit or HISTORY_LIMIT
    if start_ms is not None:
        page = kept[offset : offset + n]
    else:
        page = kept[max(0, len(kept) - offset - n) : max(0, len(kept) - offset)]
    return page[::-1]


def require(gw: Gateway) -> GatewayCustody:
    if gw.custody is None:
        raise errors.ApiError(errors.CUSTODY_DISABLED, "Custody is not enabled on this server.")
    return gw.custody
