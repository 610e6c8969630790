"""Engine state shared by the command handlers: tables, events, buckets and postings."""

from __future__ import annotations

from enum import IntEnum

from engine.reference.model import (
    Account,
    Asset,
    Market,
    Order,
    Withdrawal,
)
from engine.schema import (
    MAX_AMOUNT_ATOMS,
    SYSTEM_ACCOUNT,
    Bucket,
    EngineConfig,
    Event,
    Posting,
    PostingReason,
    Side,
    TimeInForce,
)

MAX = MAX_AMOUNT_ATOMS
AVAILABLE = Bucket.AVAILABLE
HELD_ORDERS = Bucket.HELD_ORDERS
HELD_WITHDRAWALS = Bucket.HELD_WITHDRAWALS


class _Txn:
    """Postings sharing one txn id; the id is consumed only when a posting is emitted."""

    __slots__ = ("engine", "txn_id")

    def __init__(self, engine: EngineState) -> None:
        self.engine = engine
        self.txn_id = 0

    def post(
        self,
        reason: PostingReason,
        asset_id: int,
        debit: tuple[int, int],
        credit: tuple[int, int],
        amount: int,
    ) -> None:
        """Move `amount` atoms from the debit (account, bucket) to the credit one; 0 is a no-op."""
        assert amount >= 0, amount
        if amount == 0:
            return
        eng = self.engine
        if self.txn_id == 0:
            self.txn_id = eng.next_txn_id
            eng.next_txn_id += 1
        eng._move(debit[0], debit[1], asset_id, -amount)
        eng._move(credit[0], credit[1], asset_id, amount)
        eng._emit(
            Posting,
            txn_id=self.txn_id,
            reason=reason,
            asset_id=asset_id,
            debit_account_id=debit[0],
            debit_bucket=debit[1],
            credit_account_id=credit[0],
            credit_bucket=credit[1],
            amount_atoms=amount,
        )


class EngineState:
    """Tables of the engine and the primitives every handler uses."""

    def __init__(self, config: EngineConfig = EngineConfig()) -> None:  # noqa: B008
        self.config = config
        self.last_seq = 0
        self.next_txn_id = 1
        self.assets: dict[int, Asset] = {}
        self.markets: dict[int, Market] = {}
        self.accounts: dict[int, Account] = {}
        self.orders: dict[int, Order] = {}
        """Every open (resting) order by order_id."""
        self.gtd: dict[int, Order] = {}
        """Open GTD orders by order id (the sweep looks only at these)."""
        self.armed: set[int] = set()
        """Accounts with an armed dead-man's switch."""
        self.pending: dict[int, Withdrawal] = {}
        self.withdrawal_ids: set[int] = set()
        self.deposit_keys: set[str] = set()
        self.tier_limits: dict[tuple[int, int], int] = {}
        """(quote asset, tier) -> largest order notional in atoms (SetTierTradeLimit), > 0."""
        self._seq = 0
        self._out: list[Event] = []

    def _emit(self, event_type: type, **fields: object) -> None:
        """Append an event of the current command; enum members become plain ints."""
        plain = {k: int(v) if isinstance(v, IntEnum) else v for k, v in fields.items()}
        self._out.append(event_type(seq=self._seq, **plain))

    def tier_limit(self, account: Account, market: Market) -> int:
        """The largest order notional the account's tier may have in the market; 0 = none."""
        if account.tier < 0:
            return 0
        return self.tier_limits.get((market.quote, account.tier), 0)

    def _move(self, account_id: int, bucket: int, asset_id: int, delta: int) -> None:
        if account_id == SYSTEM_ACCOUNT:
            asset = self.assets[asset_id]
            if bucket == Bucket.FEES:
                asset.fees += delta
                assert asset.fees >= 0
            else:
                assert bucket == Bucket.CUSTODY
                asset.custody += delta
            return
        buckets = self.accounts[account_id].balances.setdefault(asset_id, [0, 0, 0])
        buckets[bucket] += delta
        assert buckets[bucket] >= 0, (account_id, asset_id, bucket, buckets[bucket])

    def _post1(
        self,
        reason: PostingReason,
        asset_id: int,
        debit: tuple[int, int],
        credit: tuple[int, int],
        amount: int,
    ) -> None:
        """A transaction of a single posting (nothing, not even a txn id, when amount is 0)."""
        _Txn(self).post(reason, asset_id, debit, credit, amount)

    def _register(self, order: Order) -> None:
        self.orders[order.order_id] = order
        if order.time_in_force == TimeInForce.GTD:
            self.gtd[order.order_id] = order
        account = self.accounts[order.account_id]
        account.orders[order.order_id] = order
        if order.client_order_id != 0:
            account.by_client_id[order.client_order_id] = order

    def _unregister(self, order: Order) -> None:
        del self.orders[order.order_id]
        self.gtd.pop(order.order_id, None)
        account = self.accounts[order.account_id]
        del account.orders[order.order_id]
        if order.client_order_id != 0:
            del account.by_client_id[order.client_order_id]

    def _release(self, market: Market, order: Order, amount: int) -> None:
        """ORDER_RELEASE of `amount` of the order's hold, as its own transaction."""
        asset = market.quote if order.side == Side.BUY else market.base
        account = order.account_id
        self._post1(
            PostingReason.ORDER_RELEASE, asset, (account, HELD_ORDERS), (account, AVAILABLE), amount
        )

    def _hold(self, market: Market, order: Order, amount: int) -> None:
        """ORDER_HOLD of `amount` more for the order, as its own transaction."""
        asset = market.quote if order.side == Side.BUY else market.base
        account = order.account_id
        self._post1(
            PostingReason.ORDER_HOLD, asset, (account, AVAILABLE), (account, HELD_ORDERS), amount
        )
