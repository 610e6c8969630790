"""The chain-agnostic deposit scanner: block-by-block progress, reorg rollback to the common
ancestor, crediting after N confirmations through journaled Deposit commands.

Why one scanner for every chain: the money rules are the same everywhere (money rule 4: a
deposit is credited at most once, reorgs included); only "read a block and find our outputs"
differs, and that is a `ChainSource`.

Progress is the set of scanned blocks, each stored with its hash and parent hash together with
the deposits found in it (one SQLite transaction per block), so a restart resumes after the last
stored block: nothing is missed and nothing is scanned twice. A deposit is credited by
submitting ``Deposit`` to the engine and only then marked credited; a crash in between is
harmless because the engine refuses the key a second time (DUPLICATE_DEPOSIT), which the
scanner reads as "credited already".

Reorgs: before scanning forward the scanner checks that its newest stored block is still on the
node's chain; if not it walks back to the common ancestor and forgets the blocks above it (their
uncredited deposits become ``orphaned``). A reorg that removes a block with N or more
confirmations is beyond the policy's safety margin: the scanner raises `DeepReorg`, records an
operator alert and halts that chain (`WatcherHalted`) until an operator resolves it. It never
absorbs such a reorg silently.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from custody.assets import ChainSpec
from custody.store import CustodyStore, DepositRow
from engine.schema import CommandRejected, Deposit, Event, Reject

log = structlog.get_logger(__name__)

Submit = Callable[[Deposit], Awaitable[Sequence[Event]]]
"""Journal one command through the engine node and return its events."""
DepositLimit = Callable[[int, int], int]
"""(account_id, asset_id) -> what the account's KYC tier may be credited of the asset over 24 h,
engine atoms; 0 = no limit."""
DAY_NS = 86_400_000_000_000
OVER_LIMIT = "over_limit"
"""A confirmed deposit waiting for room under the account's tier 24 h deposit limit."""


class DeepReorg(RuntimeError):
    """A reorg removed a block at least ``confirmations`` deep: operator action needed."""


class WatcherHalted(RuntimeError):
    """The chain has an unresolved deep-reorg alert; scanning is stopped until it is resolved."""


@dataclass(frozen=True, slots=True)
class Found:
    """An output or log paying one of our deposit addresses."""

    key: str
    """Idempotency key: ``chain:tx:index`` (vout, or the log index; -1 for a native ETH value)."""
    account_id: int
    asset_id: int
    chain_amount: int


@dataclass(frozen=True, slots=True)
class ScannedBlock:
    height: int
    hash: str
    parent: str
    found: list[Found]


class ChainSource(Protocol):
    """What the scanner needs from a node."""

    async def tip_height(self) -> int: ...

    async def hash_at(self, height: int) -> str | None:
        """Hash of the node's block at ``height`` on its best chain; None above its tip."""
        ...

    async def block(self, height: int) -> ScannedBlock: ...


@dataclass(frozen=True, slots=True)
class ScanReport:
    scanned: int
    credited: list[str]
    rolled_back: int
    tip: int


class DepositScanner:
    def __init__(
        self,
        spec: ChainSpec,
        source: ChainSource,
        store: CustodyStore,
        submit: Submit,
        *,
        registry_scale: Callable[[int], int],
        start_height: int = 0,
        clock: Callable[[], int] = time.time_ns,
        deposit_limit: DepositLimit | None = None,
    ) -> None:
        """``registry_scale(asset_id)`` gives chain units per engine atom for that asset."""
        self.deposit_limit = deposit_limit
        self.spec = spec
        self.source = source
        self.store = store
        self.submit = submit
        self.scale = registry_scale
        self.start_height = start_height
        self.clock = clock

    @property
    def chain(self) -> str:
        return self.spec.name

    async def scan(self, *, max_blocks: int | None = None) -> ScanReport:
        """Check for a reorg, scan up to ``max_blocks`` new blocks, credit what is confirmed."""
        if self.store.open_alerts(self.chain):
            raise WatcherHalted(f"{self.chain}: unresolved operator alert; see custody alerts")
        rolled = await self._check_reorg(allow_deep=False)
        scanned = await self._scan_forward(max_blocks)
        credited = await self._credit()
        tip = self.store.tip(self.chain)
        return ScanReport(scanned, credited, rolled, tip[0] if tip else -1)

    async def resolve_deep_reorg(self, alert_id: int) -> int:
        """Operator action after investigating a deep reorg: accept the node's chain (roll back
        to the common ancestor) and resume. Credited deposits stay credited in the engine; the
        operator settles any loss outside the watcher. Returns the blocks rolled back."""
        rolled = await self._check_reorg(allow_deep=True)
        self.store.acknowledge_alert(alert_id)
        log.warning("deep_reorg_resolved", chain=self.chain, alert_id=alert_id, rolled_back=rolled)
        return rolled

    async def _check_reorg(self, *, allow_deep: bool) -> int:
        ours = self.store.tip(self.chain)
        if ours is None:
            return 0
        height, our_hash = ours
        tip = await self.source.tip_height()
        if height <= tip and await self.source.hash_at(height) == our_hash:
            return 0
        ancestor = min(height, tip)
        while ancestor >= self.start_height:
            stored = self.store.block_hash(self.chain, ancestor)
            if stored is not None and stored == await self.source.hash_at(ancestor):
                break
            ancestor -= 1
        depth = height - ancestor
        if depth >= self.spec.confirmations and not allow_deep:
            credited = [
                d for d in self.store.deposits(self.chain, "credited") if d.height > ancestor
            ]
            detail = (
                f"reorg of depth {depth} at height {ancestor + 1} (our tip {height} "
                f"{our_hash}, node tip {tip}) exceeds the {self.spec.confirmations}-"
                f"confirmation policy; credited deposits in removed blocks: "
                f"{[d.key for d in credited]}"
            )
            self.store.add_alert(self.chain, "deep_reorg", detail, self.clock())
            log.critical(
                "deep_reorg",
                chain=self.chain,
                depth=depth,
                fork_height=ancestor + 1,
                credited_at_risk=[d.key for d in credited],
            )
            raise DeepReorg(f"{self.chain}: {detail}")
        self.store.rollback_to(self.chain, ancestor)
        log.warning("reorg_rolled_back", chain=self.chain, depth=depth, ancestor=ancestor)
        return depth

    async def _scan_forward(self, max_blocks: int | None) -> int:
        ours = self.store.tip(self.chain)
        height = self.start_height if ours is None else ours[0] + 1
        tip = await self.source.tip_height()
        scanned = 0
        while height <= tip and (max_blocks is None or scanned < max_blocks):
            block = await self.source.block(height)
            prev = self.store.block_hash(self.chain, height - 1)
            if prev is not None and block.parent != prev:
                log.info("reorg_during_scan", chain=self.chain, height=height)
                break  # the next scan walks back to the common ancestor
            rows = [self._row(block, f) for f in block.found]
            self.store.add_block(self.chain, block.height, block.hash, block.parent, rows)
            for r in rows:
                log.info(
                    "deposit_seen",
                    chain=self.chain,
                    key=r.key,
                    account=r.account_id,
                    asset=r.asset_id,
                    atoms=r.atoms,
                    dust=r.dust,
                    height=r.height,
                )
            scanned += 1
            height += 1
        return scanned

    def _row(self, block: ScannedBlock, f: Found) -> DepositRow:
        atoms, dust = divmod(f.chain_amount, self.scale(f.asset_id))
        return DepositRow(
            f.key,
            self.chain,
            block.height,
            block.hash,
            f.account_id,
            f.asset_id,
            f.chain_amount,
            atoms,
            dust,
            "pending",
            seen_ns=self.clock(),
        )

    def _over_limit(self, d: DepositRow) -> bool:
        """Would crediting ``d`` take the account over its tier's 24 h deposit limit? Then it
        waits (``over_limit``; the first time logged and listed for compliance) and is tried
        again on every pass: a day later, or once the account's tier is raised, it goes in.
        The whole deposit waits: it is one credit under one key, never split."""
        limit = self.deposit_limit(d.account_id, d.asset_id) if self.deposit_limit else 0
        if limit <= 0:
            return False
        used = self.store.credited_atoms(d.account_id, d.asset_id, self.clock() - DAY_NS)
        if used + d.atoms <= limit:
            return False
        if d.status != OVER_LIMIT:
            detail = f"over the tier's 24 h deposit limit ({used} + {d.atoms} > {limit} atoms)"
            self.store.set_deposit_status(d.key, OVER_LIMIT, detail)
            log.warning(
                "deposit_over_tier_limit",
                chain=self.chain,
                key=d.key,
                account=d.account_id,
                atoms=d.atoms,
                credited_24h=used,
                limit=limit,
            )
        return True

    async def _credit(self) -> list[str]:
        ours = self.store.tip(self.chain)
        if ours is None:
            return []
        credited: list[str] = []
        waiting = self.store.deposits(self.chain, "pending")
        waiting += self.store.deposits(self.chain, OVER_LIMIT)
        for d in sorted(waiting, key=lambda d: (d.height, d.key)):
            if ours[0] - d.height + 1 < self.spec.confirmations:
                continue
            if d.atoms == 0:
                # below one engine atom: kept by the exchange, named by reconciliation
                self.store.set_deposit_status(d.key, "dust", "below one engine atom")
                log.warning(
                    "deposit_below_engine_unit",
                    chain=self.chain,
                    key=d.key,
                    chain_amount=d.chain_amount,
                )
                continue
            if self._over_limit(d):
                continue
            events = await self.submit(
                Deposit(
                    account_id=d.account_id,
                    asset_id=d.asset_id,
                    amount_atoms=d.atoms,
                    deposit_key=d.key,
                )
            )
            rejected = next((e for e in events if isinstance(e, CommandRejected)), None)
            if rejected is None or rejected.reason == Reject.DUPLICATE_DEPOSIT:
                self.store.set_deposit_status(d.key, "credited", credited_ns=self.clock())
                credited.append(d.key)
                log.info(
                    "deposit_credited",
                    chain=self.chain,
                    key=d.key,
                    account=d.account_id,
                    asset=d.asset_id,
                    atoms=d.atoms,
                    replayed=rejected is not None,
                )
            else:
                reason = Reject(rejected.reason).name
                self.store.set_deposit_status(d.key, "rejected", reason)
                log.error(
                    "deposit_rejected_by_engine",
                    chain=self.chain,
                    key=d.key,
                    reason=reason,
                    account=d.account_id,
                )
        return credited
