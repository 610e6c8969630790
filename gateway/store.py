"""The gateway's read model: markets, balances, orders and trades, built from engine events only.

The gateway must hold no business state that replay cannot rebuild (DESIGN.md), so this store
is a pure fold over ``(seq, timestamp_ns, events)`` batches: at start the whole journal is
replayed through a fresh engine into it, afterwards every acknowledged batch is applied before
any request of that batch is answered. order.status, allOrders, myTrades, account.status and
the user data stream all read from here, on the event loop's thread, never from the engine
(which is busy on its own thread).

History (issue 17): closed orders and trades leave memory for the durable history index
(`gateway.history`), which the gateway writes off the hot path, one transaction per batch. Until
the index has them (``durable_seq``) they stay here, per account, as *pending* rows, so an
acknowledged order is always readable; afterwards only a bounded cache of recently closed
orders (``memory_orders``, global) stays, for quick ``order.status``. Memory is therefore open
orders + the cache + what the writer has not committed yet, whatever the history length.

This module holds the fold of orders, trades and balances and the hand-off to the history
writer; the fold of reference data (assets, markets, account standing, tier limits, dead-man's
switches) is in `gateway.storereference`, the records it keeps in `gateway.records`, and what
requests ask of it in `gateway.storequeries`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from engine.schema import (
    CONDITIONAL_TYPES,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    OrderType,
    Posting,
    SelfTradePrevented,
    Side,
    StpMode,
    Trade,
)
from engine.schema import (
    ExpireReason as ER,
)
from gateway.heldrows import HeldBatches
from gateway.markets import Asset, Market
from gateway.memorybounds import MEMORY_ORDERS
from gateway.records import (
    CANCELED,
    EXPIRED,
    EXPIRED_IN_MATCH,
    FILLED,
    PARTIALLY_FILLED,
    AccountView,
    OrderRecord,
    PreventedMatch,
    Report,
    TradeRecord,
)
from gateway.storequeries import StoreQueries
from gateway.storereference import ReferenceFold

if TYPE_CHECKING:
    from gateway.history.reader import HistoryReader

PG_GAP_COMMANDS: Final = 50_000
"""Commands the PostgreSQL history may trail the local index with memory holding the gap
(docs/history.md#postgresql); past it, the local index answers until it catches up."""
EVICT_GUARD_COMMANDS: Final = 10_000
"""``--history pg``: an order closed within this many commands of the newest batch stays in
memory whatever the cache bound. With no local index, a request answered after its batch was
applied (a cancel naming the order it closed, an order.place) can find its order only there;
between the batch and the request's resumption the loop applies at most one socket read of
the stream (32 KB, well under a thousand commands)."""

Batch = tuple[int, int, Sequence[Any]]
_MARKET: Final = int(OrderType.MARKET)
_LIMIT_MAKER: Final = int(OrderType.LIMIT_MAKER)


class Store(ReferenceFold, StoreQueries):
    def __init__(self, *, memory_orders: int = MEMORY_ORDERS) -> None:
        assert memory_orders >= 0
        self.memory_orders = memory_orders
        self.last_seq = 0
        self.last_ts_ns = 0
        self.assets: dict[int, Asset] = {}
        self.markets: dict[int, Market] = {}
        self.by_wire: dict[str, Market] = {}
        self.accounts: dict[int, AccountView] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.watched: set[int] = set()
        """Accounts with a user data stream: only their changes are collected as reports."""
        self.reports: list[Report] = []
        self.dirty_balances: dict[int, set[int]] = {}
        self.dead_mans: dict[int, int] = {}
        """account_id -> fire_at_ns of its armed dead-man's switch (journal time), folded from
        the engine's events so a restart knows what is armed (`gateway.deadman` ticks on it)."""
        self.standing: dict[int, tuple[bool, int]] = {}
        """account_id -> (frozen, KYC tier; -1 = never set), for accounts staff touched."""
        self.tier_limits: dict[tuple[int, int], int] = {}
        """(quote asset, tier) -> largest order notional in atoms (SetTierTradeLimit), > 0."""
        self.staff_actions: list[tuple[int, int, bytes]] = []
        """(seq, ts_ns, command record) of each staff action, in order: a cluster replica's
        audit log (`backoffice.audit`), kept as it applies the stream (no local journal)."""
        self._ts = 0
        self._batch_seq = 0
        self._unwritten = True
        self.durable_seq = 0
        """The history index holds every closed order and trade of batches through this seq."""
        self.trimmed_seq = 0
        """Closed rows of batches through this seq may have left memory (for the local index);
        those of later batches are all in memory (pending or cached)."""
        self.pg_seq: int | None = None
        """The PostgreSQL projection's checkpoint while it serves history (None: it does not)."""
        self.held = HeldBatches()
        """``--history pg``: closed orders and trades in the pending lists (held for
        PostgreSQL) per batch, counted by `hold_for_pg` and `trim_for_pg`."""
        self.new_orders: list[OrderRecord] = []
        """Closed since the last `take_history` (for the index writer)."""
        self.new_trades: list[tuple[int, TradeRecord]] = []
        """(account id, trade) since the last `take_history`."""
        self._recent: deque[tuple[int, int]] = deque()
        """(batch seq, order id) of closed orders still in ``orders``, oldest first."""
        self._pending_accounts: set[int] = set()
        self.history: HistoryReader | None = None
        """The durable index (read side); None: memory only (tests of the fold alone)."""
        self._stp_ids: dict[int, int] = {}
        """market_id -> next prevented match id (0, 1, 2, ... per market, as the dialect)."""
        self._stp_last: dict[int, tuple[int, int]] = {}
        """order_id -> (quantity, other order id) of a prevention its expiry will report."""
        self._handlers = {
            **self.reference_handlers(),
            OrderAccepted: self._accepted,
            Trade: self._trade,
            OrderCancelled: self._cancelled,
            OrderExpired: self._expired,
            OrderAmended: self._amended,
            OrderTriggered: self._triggered,
            SelfTradePrevented: self._prevented,
            OrderRejected: None,
            Posting: self._posting,
        }

    # ---- folding --------------------------------------------------------------------------

    def apply(self, batches: Iterable[Batch]) -> None:
        for seq, ts, events in batches:
            self.apply_events(ts, events, seq)

    def apply_events(self, ts: int, events: Sequence[Any], through_seq: int) -> None:
        """Apply one node batch (one journal time); ``through_seq`` is its last sequence."""
        self._ts = ts
        self._batch_seq = through_seq
        self._unwritten = through_seq > self.durable_seq
        """False while a start-up replays batches the history index already holds."""
        if not self._unwritten and through_seq > self.trimmed_seq:
            self.trimmed_seq = through_seq  # its rows go to no pending list
        handlers = self._handlers
        quote_takers: list[OrderRecord] = []
        for ev in events:
            h = handlers.get(type(ev))
            if h is not None:
                r = h(ev)
                if r is not None:
                    quote_takers.append(r)
        # A market buy by quote amount ends filled when no expiry closed it in its command.
        for o in quote_takers:
            if o.is_open:
                self._close(o, FILLED, None)
        if self._stp_last:
            self._stp_last.clear()
        self.last_seq = max(self.last_seq, through_seq)
        self.last_ts_ns = ts

    def _accepted(self, ev: OrderAccepted) -> OrderRecord | None:
        o = OrderRecord(
            order_id=ev.order_id,
            account_id=ev.account_id,
            market_id=ev.market_id,
            client_order_id=ev.client_order_id,
            side=ev.side,
            order_type=ev.order_type,
            time_in_force=ev.time_in_force,
            price=ev.price_atoms,
            orig_qty=ev.qty_atoms,
            orig_quote_qty=ev.quote_qty_atoms,
            time_ns=self._ts,
            update_ns=self._ts,
        )
        if ev.order_type > _LIMIT_MAKER or ev.display_qty_atoms or ev.stp_mode:
            self._order_extras(o, ev)
        acct = self.accounts[ev.account_id]
        self.orders[o.order_id] = o
        acct.open_orders[o.order_id] = o
        if o.client_order_id:
            acct.open_client_ids[o.client_order_id] = o.order_id
        self._report(o, "NEW")
        return o if ev.quote_qty_atoms and ev.order_type == _MARKET else None

    @staticmethod
    def _order_extras(o: OrderRecord, ev: OrderAccepted) -> None:
        """Issue-3 fields; a conditional order waits for its trigger, off the book."""
        o.stop_price = ev.stop_price_atoms
        o.trailing_delta = ev.trailing_delta_bps
        o.iceberg_qty = ev.display_qty_atoms
        o.stp_mode = ev.stp_mode
        if ev.order_type in CONDITIONAL_TYPES:
            o.working_ns = -1

    def _triggered(self, ev: OrderTriggered) -> OrderRecord | None:
        """A conditional order fires: it now works as a taker at ``price_atoms`` (0 = market).
        Reported as NEW with isWorking true. A quote-budget buy (market kind) never rests, so
        like a MARKET buy by quote amount it is filled unless an expiry closes it first."""
        o = self.orders.get(ev.order_id)
        if o is None:
            return None
        o.working_ns = self._ts
        o.price = ev.price_atoms
        o.update_ns = self._ts
        self._report(o, "NEW")
        return o if o.orig_quote_qty else None

    def _prevented(self, ev: SelfTradePrevented) -> None:
        """Self-trade prevention. Prevented quantity, as the dialect counts it: DECREMENT takes
        the prevented quantity off both orders; the EXPIRE modes take the whole open quantity
        of the order(s) they expire (their OrderExpired follows). A quote-budget taker has no
        base quantity: the engine treats DECREMENT as EXPIRE_TAKER for it."""
        taker = self.orders.get(ev.taker_order_id)
        maker = self.orders.get(ev.maker_order_id)
        match_id = self._stp_ids.get(ev.market_id, 0)
        self._stp_ids[ev.market_id] = match_id + 1
        mode = ev.stp_mode
        if mode == StpMode.DECREMENT and taker is not None and not taker.orig_qty:
            mode = StpMode.EXPIRE_TAKER
        taker_qty = maker_qty = None
        if mode == StpMode.DECREMENT:
            taker_qty = maker_qty = ev.qty_atoms
        else:
            if mode in (StpMode.EXPIRE_TAKER, StpMode.EXPIRE_BOTH) and taker is not None:
                taker_qty = _open_qty(taker)
            if mode in (StpMode.EXPIRE_MAKER, StpMode.EXPIRE_BOTH) and maker is not None:
                maker_qty = _open_qty(maker)
        for o, qty, other in (
            (taker, taker_qty, ev.maker_order_id),
            (maker, maker_qty, ev.taker_order_id),
        ):
            if o is None or qty is None:
                continue
            o.prevented_qty += qty
            o.prevented_match_id = match_id
            o.update_ns = self._ts
            if mode == StpMode.DECREMENT and _open_qty(o) > 0:
                self._report(o, "TRADE_PREVENTION", (match_id, o.prevented_qty, qty, other))
            else:  # its OrderExpired follows in this command and reports the prevention
                self._stp_last[o.order_id] = (qty, other)
        if taker is not None:
            if taker.prevented_matches is None:
                taker.prevented_matches = []
            taker.prevented_matches.append(
                PreventedMatch(
                    match_id,
                    ev.maker_order_id,
                    maker.price if maker is not None else 0,
                    taker_qty,
                    maker_qty,
                )
            )

    def _fill(self, o: OrderRecord, t: Trade, maker: bool) -> None:
        o.executed += t.qty_atoms
        o.cum_quote += t.quote_atoms
        o.update_ns = self._ts
        fee = t.maker_fee_atoms if maker else t.taker_fee_atoms
        acct = self.accounts[o.account_id]
        rec = TradeRecord(
            market_id=t.market_id,
            trade_id=t.trade_id,
            order_id=o.order_id,
            price=t.price_atoms,
            qty=t.qty_atoms,
            quote=t.quote_atoms,
            commission=fee,
            is_buyer=o.side == Side.BUY,
            is_maker=maker,
            time_ns=self._ts,
        )
        if self._unwritten:
            acct.pending_trades.append((self._batch_seq, rec))
            self.new_trades.append((o.account_id, rec))
            self._pending_accounts.add(o.account_id)
        done = o.orig_qty and o.executed + o.prevented_qty >= o.orig_qty
        o.status = FILLED if done else PARTIALLY_FILLED
        if o.account_id in self.watched:
            self.reports.append(
                Report(
                    o,
                    "TRADE",
                    self._ts,
                    t.qty_atoms,
                    t.price_atoms,
                    fee,
                    t.trade_id,
                    maker,
                    (o.price, o.orig_qty, o.executed, o.cum_quote, o.status),
                    o.working_time_ns,
                )
            )
        if done:
            self._close(o, FILLED, None)

    def _trade(self, ev: Trade) -> None:
        maker = self.orders.get(ev.maker_order_id)
        taker = self.orders.get(ev.taker_order_id)
        if maker is not None:
            self._fill(maker, ev, True)
        if taker is not None:
            self._fill(taker, ev, False)

    def _cancelled(self, ev: OrderCancelled) -> None:
        o = self.orders.get(ev.order_id)
        if o is not None and o.is_open:
            self._close(o, CANCELED, "CANCELED")

    def _expired(self, ev: OrderExpired) -> None:
        o = self.orders.get(ev.order_id)
        if o is not None and o.is_open:
            if ev.reason == ER.SELF_TRADE_PREVENTED:
                last, other = self._stp_last.pop(o.order_id, (0, 0))
                self._close(o, EXPIRED_IN_MATCH, None)
                self._report(
                    o, "TRADE_PREVENTION", (o.prevented_match_id, o.prevented_qty, last, other)
                )
            else:
                self._close(o, EXPIRED, "EXPIRED")

    def _amended(self, ev: OrderAmended) -> None:
        o = self.orders.get(ev.order_id)
        if o is None:
            return
        o.price = ev.price_atoms
        o.orig_qty = o.executed + o.prevented_qty + ev.qty_atoms
        o.update_ns = self._ts
        self._report(o, "REPLACED")

    def _posting(self, ev: Posting) -> None:
        """Both sides of a posting; only customer accounts' available/held buckets (0-2) are
        shown. The sides are written out, not a call each: ~3 postings per order, and every
        replica folds every order's."""
        asset_id = ev.asset_id
        account_id, bucket = ev.debit_account_id, ev.debit_bucket
        acct = self.accounts.get(account_id) if account_id and bucket <= 2 else None
        if acct is not None:
            bal = acct.balances.get(asset_id) or _new_balance(acct, asset_id)
            bal[bucket] -= ev.amount_atoms
            acct.update_ns = self._ts
            if account_id in self.watched:
                self.dirty_balances.setdefault(account_id, set()).add(asset_id)
        account_id, bucket = ev.credit_account_id, ev.credit_bucket
        acct = self.accounts.get(account_id) if account_id and bucket <= 2 else None
        if acct is not None:
            bal = acct.balances.get(asset_id) or _new_balance(acct, asset_id)
            bal[bucket] += ev.amount_atoms
            acct.update_ns = self._ts
            if account_id in self.watched:
                self.dirty_balances.setdefault(account_id, set()).add(asset_id)

    def _close(self, o: OrderRecord, status: str, exec_type: str | None) -> None:
        o.status = status
        o.update_ns = self._ts
        acct = self.accounts[o.account_id]
        acct.open_orders.pop(o.order_id, None)
        if o.client_order_id and acct.open_client_ids.get(o.client_order_id) == o.order_id:
            del acct.open_client_ids[o.client_order_id]
        seq = self._batch_seq
        if self._unwritten:
            acct.pending_orders.append((seq, o))
            self.new_orders.append(o)
            self._pending_accounts.add(o.account_id)
        self._recent.append((seq, o.order_id))
        if exec_type is not None:
            self._report(o, exec_type)

    def _report(
        self, o: OrderRecord, exec_type: str, prevented: tuple[int, int, int, int] | None = None
    ) -> None:
        if o.account_id in self.watched:
            self.reports.append(
                Report(
                    o,
                    exec_type,
                    self._ts,
                    snapshot=(o.price, o.orig_qty, o.executed, o.cum_quote, o.status),
                    working_ns=o.working_time_ns,
                    prevented=prevented,
                )
            )

    # ---- history hand-off -----------------------------------------------------------------

    def take_history(self) -> tuple[list[OrderRecord], list[tuple[int, TradeRecord]]]:
        """Closed orders and trades since the last call, for the index writer. Closed orders
        never change again, so the writer may read them on its own thread."""
        orders, trades = self.new_orders, self.new_trades
        self.new_orders, self.new_trades = [], []
        return orders, trades

    def pg_serves(self) -> bool:
        """PostgreSQL's rows and memory together hold every closed order and trade."""
        return self.pg_seq is not None and self.pg_seq >= self.trimmed_seq

    def trim(self, durable_seq: int) -> None:
        """The index now holds every batch through ``durable_seq``: drop those rows from the
        pending lists, and closed orders beyond the memory budget from the cache; with a
        PostgreSQL history not before its checkpoint passes them (`PG_GAP_COMMANDS`)."""
        self.durable_seq = max(self.durable_seq, durable_seq)
        bound = self.durable_seq
        pg = self.pg_seq
        if pg is not None and bound - pg <= PG_GAP_COMMANDS:
            bound = min(bound, pg)
        if bound > self.trimmed_seq:
            self._drop_pending(bound)
        self._evict_closed(self.trimmed_seq)

    def _drop_pending(self, bound: int) -> int:
        """Closed rows of batches through ``bound`` leave the pending lists; returns how many."""
        self.trimmed_seq = bound
        done = []
        dropped = 0
        for account_id in self._pending_accounts:
            acct = self.accounts[account_id]
            po, pt = acct.pending_orders, acct.pending_trades
            before = len(po) + len(pt)
            while po and po[0][0] <= bound:
                po.popleft()
            while pt and pt[0][0] <= bound:
                pt.popleft()
            dropped += before - len(po) - len(pt)
            if not po and not pt:
                done.append(account_id)
        self._pending_accounts.difference_update(done)
        return dropped

    def _evict_closed(self, through_seq: int) -> None:
        """Closed orders beyond the cache bound leave ``orders``, oldest first, if they closed
        in a batch through ``through_seq``."""
        recent, orders = self._recent, self.orders
        while len(recent) > self.memory_orders and recent[0][0] <= through_seq:
            _, oid = recent.popleft()
            o = orders.get(oid)
            if o is not None and not o.is_open:
                del orders[oid]

    def hold_for_pg(self) -> None:
        """``--history pg`` (no local index): this batch's closed rows stay in the pending
        lists only, for `trim_for_pg`; nothing is handed to an index writer."""
        self.held.hold(self._batch_seq, len(self.new_orders) + len(self.new_trades))
        self.new_orders, self.new_trades = [], []

    def trim_for_pg(self, max_held_rows: int) -> int:
        """``--history pg``: `trim` bounded by the PostgreSQL checkpoint alone. Held rows leave
        memory once the checkpoint passes their batch; past ``max_held_rows`` the oldest
        batches are shed (`gateway.heldrows`), so `pg_serves` is false, and history queries
        are refused, until the checkpoint passes them. Returns the rows shed (0: none)."""
        held = self.held
        bound = self.trimmed_seq
        pg = self.pg_seq
        if pg is not None and pg > bound:
            bound = pg
        held.release_through(bound)
        shed_seq, shed = held.shed(max_held_rows)
        bound = max(bound, shed_seq)
        if bound > self.trimmed_seq:
            self._drop_pending(bound)
        self._evict_closed(min(self.trimmed_seq, self.last_seq - EVICT_GUARD_COMMANDS))
        return shed

    def drain(self) -> tuple[list[Report], dict[int, set[int]]]:
        reports, dirty = self.reports, self.dirty_balances
        self.reports, self.dirty_balances = [], {}
        return reports, dirty


def _open_qty(o: OrderRecord) -> int:
    """Base quantity still open (0 for a quote-budget order, which has none)."""
    return max(0, o.orig_qty - o.executed - o.prevented_qty) if o.orig_qty else 0


def _new_balance(acct: AccountView, asset_id: int) -> list[int]:
    """An account's first posting in an asset: its (available, held, held for withdrawal)."""
    bal = acct.balances[asset_id] = [0, 0, 0]
    return bal
