"""Order entry (place, cancel, amend), shared by the WS API and REST; the queries are its base,
`gateway.tradequeries`.

Validation happens here, before anything is journaled: a request that the gateway can prove the
engine would refuse (off-grid decimals, unknown symbol, missing parameters, an unknown order to
cancel, a duplicate client order id, a balance that cannot cover the hold) is answered at once
and changes nothing: not the engine state, not even the journal's sequence. Only a request that
passes goes to the bridge; the engine stays the authority and its refusals are mapped too.

Store-based pre-checks (unknown order, duplicate client id, balance) are skipped while the
account has commands in flight: the store is then behind the engine, and a false refusal is
worse than a journaled one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CancelReason,
    Command,
    Event,
    MarketState,
    OrderCancelled,
    OrderRejected,
    PlaceOrder,
    Reject,
    Side,
    Trade,
)
from gateway import clientids, errors, replace, wire
from gateway.bridge import Bridge, Reply, Result, future_reply
from gateway.clientids import CLIENT_ID_RE, ClientIdBook
from gateway.markets import Market
from gateway.orderparams import OrderSpec, parse_order, refuse_cancel_restrictions
from gateway.params import MAX_STR_LEN, get_enum, get_int
from gateway.placeparams import PlaceParams, fast_spec
from gateway.records import OrderRecord
from gateway.store import Store
from gateway.tradequeries import TradingQueries
from gateway.wireviews import AckResult, PlacedResult

RESP_TYPES: Final = frozenset({"ACK", "RESULT", "FULL"})
_STOPPED: Final = frozenset({MarketState.HALTED, MarketState.CANCEL_ONLY})
"""Market states the engine refuses an order for before it looks at the account's standing."""
Answer = Callable[[Any, "BaseException | None"], None]
"""(result, None) or (None, error): how the WS fast path hands a rendered answer back."""


def _fee(n: int, ppm: int) -> int:
    return (n // 1_000_000) * ppm + (n % 1_000_000) * ppm // 1_000_000


class Trading(TradingQueries):
    """Order entry (place, cancel, amend, cancel-replace) over the queries of its base."""

    def __init__(self, store: Store, bridge: Bridge, ids: ClientIdBook) -> None:
        super().__init__(store, bridge, ids)
        self.inflight: dict[int, int] = {}
        """account id -> commands queued or in the engine (the store is behind for it)."""

    # ---- plumbing -------------------------------------------------------------------------

    def submit_cb(self, account_id: int, command: Command, reply: Reply) -> None:
        """Queue ``command``; ``reply`` is called once it is durable, processed and applied
        (or with the 5xx 'unknown' error after the bridge's ack timeout)."""
        self._track(account_id)

        def settle(seq: int, ts: int, events: list[Event], error: BaseException | None) -> None:
            self._settled(account_id)
            reply(seq, ts, events, error)

        self.bridge.submit_cb(command, settle)

    def _track(self, account_id: int) -> None:
        """One more command of the account queued or in the engine."""
        inflight = self.inflight
        inflight[account_id] = inflight.get(account_id, 0) + 1

    def _settled(self, account_id: int) -> None:
        """One command of the account answered (the store has caught up with it)."""
        inflight = self.inflight
        n = inflight[account_id] - 1
        if n:
            inflight[account_id] = n
        else:
            del inflight[account_id]

    def submit(self, account_id: int, command: Command) -> asyncio.Future[Result]:
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.submit_cb(account_id, command, future_reply(fut))
        return fut

    async def execute(self, account_id: int, command: Command) -> Result:
        return await self.submit(account_id, command)

    def _quiet(self, account_id: int) -> bool:
        """True when the store is current for this account (no command in flight)."""
        return account_id not in self.inflight

    def _target(
        self,
        account_id: int,
        m: Market,
        params: Mapping[str, Any],
        id_name: str = "orderId",
        cid_name: str = "origClientOrderId",
    ) -> tuple[int, int, str | None]:
        """(order_id, client_order_id, client string) of a cancel/amend target."""
        oid = get_int(params, id_name, lo=1)
        cid = self._client_id(params, cid_name)
        if oid is None and cid is None:
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                f"Param '{cid_name}' or '{id_name}' must be sent, but both were empty/null!",
            )
        if oid is not None:
            return oid, 0, cid[0] if cid else None
        assert cid is not None
        if self.store.open_by_client_id(account_id, cid[1]) is None:
            auto = clientids.AUTO_RE.fullmatch(cid[0])
            if auto is not None:
                return int(auto.group(1)), 0, cid[0]
        return 0, cid[1], cid[0]

    def _open_target(self, account_id: int, m: Market, oid: int, cid: int) -> OrderRecord | None:
        o = (
            self.store.order_of(account_id, oid)
            if oid
            else self.store.open_by_client_id(account_id, cid)
        )
        if o is None or not o.is_open or o.market_id != m.market_id:
            return None
        return o

    # ---- new orders -----------------------------------------------------------------------

    def build_place(
        self,
        account_id: int,
        params: Mapping[str, Any],
        *,
        precheck: bool = True,
    ) -> tuple[Market, PlaceOrder, str | None, str]:
        m = self.market(params)
        assert m is not None
        spec = parse_order(m, params)
        cid = self._client_id(params, "newClientOrderId")
        resp = params.get("newOrderRespType")
        if type(resp) is not str or resp not in RESP_TYPES:  # absent (the default) or refused
            resp = get_enum(
                params,
                "newOrderRespType",
                RESP_TYPES,
                errors.INVALID_PARAMETER,
                "Data sent for parameter 'newOrderRespType' is not valid.",
                required=False,
                default=spec.default_response,
            )
        cmd = self._command(account_id, m, spec, cid, precheck)
        return m, cmd, cid[0] if cid else None, resp

    def _command(
        self,
        account_id: int,
        m: Market,
        spec: OrderSpec,
        cid: tuple[str, int] | None,
        precheck: bool,
    ) -> PlaceOrder:
        cmd = spec.command(account_id, m.market_id, cid[1] if cid else 0)
        if precheck and self._quiet(account_id):
            self._precheck(account_id, m, cmd, cid)
        return cmd

    def _precheck(
        self, account_id: int, m: Market, cmd: PlaceOrder, cid: tuple[str, int] | None
    ) -> None:
        """Refusals the store can prove (the account is quiet): unknown account, frozen by
        staff (after the market's halt or cancel-only, as the engine checks), duplicate client
        order id, funds. The hold mirrors the engine's (docs/engine-semantics.md,
        Holds): sells hold the quantity, quote-budget buys (MARKET, STOP_LOSS/TAKE_PROFIT)
        the budget, limit-kind buys (stops and icebergs included) notional plus worst fee."""
        acct = self.store.accounts.get(account_id)
        if acct is None:
            raise errors.ApiError(
                errors.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401
            )
        if self.store.frozen(account_id) and m.state not in _STOPPED:  # the engine's order
            raise errors.from_reject(Reject.ACCOUNT_FROZEN)
        if cid is not None and cid[1] in acct.open_client_ids:
            raise errors.ApiError(errors.ORDER_REJECTED, "Duplicate order sent.")
        if cmd.side == Side.SELL:
            need, asset = cmd.qty_atoms, m.base.asset_id
        elif cmd.price_atoms == 0:  # market kinds: the budget; by qty: unknown before the dry run
            need, asset = cmd.quote_qty_atoms, m.quote.asset_id
        else:
            n = m.notional(cmd.price_atoms, cmd.qty_atoms)
            need = n + _fee(n, max(m.maker_fee_ppm, m.taker_fee_ppm))
            asset = m.quote.asset_id
        if need > acct.balances.get(asset, [0])[0]:
            raise errors.ApiError(
                errors.ORDER_REJECTED, "Account has insufficient balance for requested action."
            )

    def place_submit(self, account_id: int, params: Mapping[str, Any], answer: Answer) -> None:
        """Validate and queue an order; ``answer`` gets the rendered result (the WS fast path:
        no task and no future per request, a direct call when the batch is acknowledged).
        Validation errors raise here, before anything is queued."""
        m, cmd, cid, resp = self.build_place(account_id, params)
        self._queue_place(account_id, m, cmd, cid, resp, answer)

    def place_submit_typed(
        self, account_id: int, p: PlaceParams, raw: msgspec.Raw, answer: Answer
    ) -> None:
        """`place_submit` for params decoded by `gateway.placeparams`: whatever
        `build_place_typed` leaves goes to `place_submit` with ``raw`` decoded as a dict, so
        its answer (any refusal among it) is the dict path's, word for word."""
        built = self.build_place_typed(account_id, p)
        if built is None:
            self.place_submit(account_id, msgspec.json.decode(raw), answer)
            return
        self._queue_place(account_id, *built, answer)

    def build_place_typed(
        self, account_id: int, p: PlaceParams, *, precheck: bool = True
    ) -> tuple[Market, PlaceOrder, str | None, str] | None:
        """`build_place` of a well-formed order from the Struct's attributes, or None when
        the dict path must decide (`placeparams.fast_spec`). The store's prechecks raise as
        in `build_place`: they come after every parameter check there too."""
        symbol = p.symbol
        m = self.store.market(symbol) if len(symbol) <= MAX_STR_LEN else None
        spec = None if m is None else fast_spec(m, p)
        cid_str = p.newClientOrderId
        if m is None or spec is None or not (cid_str is None or CLIENT_ID_RE.fullmatch(cid_str)):
            return None
        cid = None if cid_str is None else (cid_str, clientids.encode(cid_str))
        cmd = self._command(account_id, m, spec, cid, precheck)
        return m, cmd, cid_str, p.newOrderRespType or spec.default_response

    def _queue_place(
        self,
        account_id: int,
        m: Market,
        cmd: PlaceOrder,
        cid: str | None,
        resp: str,
        answer: Answer,
    ) -> None:
        if cid is not None:
            self.ids.remember(cid, cmd.client_order_id)
        self._track(account_id)
        self.bridge.submit_cb(cmd, _PlaceReply(self, account_id, m, resp, answer))

    async def place(
        self, account_id: int, params: Mapping[str, Any], *, test: bool = False
    ) -> dict[str, Any] | AckResult | PlacedResult:
        m, cmd, cid, resp = self.build_place(account_id, params)
        if test:
            return {}
        if cid is not None:
            self.ids.remember(cid, cmd.client_order_id)
        seq, ts, events = await self.execute(account_id, cmd)
        return self._placed(m, seq, ts, events, resp)

    def _placed(
        self, m: Market, seq: int, ts: int, events: list[Event], resp: str
    ) -> AckResult | PlacedResult:
        fills = []
        for ev in events:
            if type(ev) is OrderRejected:
                raise errors.from_reject(ev.reason)
            if type(ev) is Trade and ev.taker_order_id == seq:
                fills.append((ev.price_atoms, ev.qty_atoms, ev.taker_fee_atoms, ev.trade_id))
        o = self.store.orders.get(seq)
        if o is None and self.store.history is not None:  # closed and moved to the index
            o = self.store.history.order(seq)
        if o is None:
            raise errors.ApiError(errors.UNKNOWN, "Order accepted but not found.", 500)
        return wire.order_result(o, m, self.ids, resp, ts, fills)

    # ---- cancel / amend -------------------------------------------------------------------

    async def cancel(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        m = self.market(params)
        assert m is not None
        refuse_cancel_restrictions(params)
        oid, cid, cid_str = self._target(account_id, m, params)
        if self._quiet(account_id) and self._open_target(account_id, m, oid, cid) is None:
            raise errors.ApiError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_SENT)
        _, ts, events = await self.execute(
            account_id,
            CancelOrder(
                account_id=account_id, market_id=m.market_id, order_id=oid, client_order_id=cid
            ),
        )
        for ev in events:
            if type(ev) is OrderRejected:
                raise errors.from_reject(ev.reason, cancel=True)
            # The reason tells the command's own cancel from the journal-time sweep's (a due
            # dead-man's switch of any account fires first, in the same command's events).
            if type(ev) is OrderCancelled and ev.reason == CancelReason.USER:
                o = self.store.known(account_id, ev.order_id)
                return wire.cancelled(o, m, self.ids, cid_str, ts)
        raise errors.ApiError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_SENT)

    async def cancel_all(self, account_id: int, params: Mapping[str, Any]) -> list[Any]:
        m = self.market(params)
        assert m is not None
        acct = self.store.accounts.get(account_id)
        if self._quiet(account_id) and (
            acct is None or not any(o.market_id == m.market_id for o in acct.open_orders.values())
        ):
            raise errors.ApiError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_SENT)
        _, ts, events = await self.execute(
            account_id, CancelAll(account_id=account_id, market_id=m.market_id)
        )
        out = []
        for ev in events:
            if type(ev) is OrderRejected:
                raise errors.from_reject(ev.reason, cancel=True)
            if type(ev) is OrderCancelled and ev.reason == CancelReason.CANCEL_ALL:  # see cancel
                out.append(
                    wire.cancelled(self.store.known(account_id, ev.order_id), m, self.ids, None, ts)
                )
        return out

    async def amend_keep_priority(
        self, account_id: int, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        m = self.market(params)
        assert m is not None
        oid, cid, _ = self._target(account_id, m, params)
        new_qty = m.parse_qty(
            params.get("newQty")
            if params.get("newQty") not in (None, "")
            else _raise(errors.mandatory("newQty")),
            "newQty",
        )
        o = self._open_target(account_id, m, oid, cid)
        if o is None:
            if self._quiet(account_id):
                raise errors.ApiError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_SENT)
            open_qty = 0
        else:
            if not o.is_working:
                raise errors.ApiError(
                    errors.AMEND_REJECTED,
                    "Order amend is not supported for a stop order that has not triggered.",
                )
            if new_qty >= o.orig_qty:
                raise errors.ApiError(
                    errors.AMEND_REJECTED, "Order amend (quantity increase) is not supported."
                )
            done = o.executed + o.prevented_qty  # what is no longer open
            if new_qty <= done:
                raise errors.ApiError(
                    errors.AMEND_REJECTED,
                    "newQty must be greater than the executed (and self-trade prevented) quantity.",
                )
            open_qty = new_qty - done
            m.check_notional(o.price, open_qty)
            oid, cid = o.order_id, 0
        if o is None:
            raise errors.ApiError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_SENT)
        seq, ts, events = await self.execute(
            account_id,
            AmendOrder(
                account_id=account_id,
                market_id=m.market_id,
                order_id=oid,
                client_order_id=cid,
                new_qty_atoms=open_qty,
            ),
        )
        for ev in events:
            if type(ev) is OrderRejected:
                raise errors.from_reject(ev.reason, cancel=True)
        order = wire.order(self.store.known(account_id, o.order_id), m, self.ids)
        return {"transactTime": wire.ms(ts), "executionId": seq, "amendedOrder": order}

    async def cancel_replace(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """``order.cancelReplace``: one journaled CancelReplaceOrder (`gateway.replace`)."""
        return await replace.cancel_replace(self, account_id, params)


class _PlaceReply:
    """The bridge's reply to a fast-path order (`Trading.place_submit`): settles the account's
    in-flight count, renders the answer and hands it on. One object per order instead of
    two closures and a call level (order entry's hot path)."""

    __slots__ = ("account_id", "answer", "market", "resp", "trading")

    def __init__(
        self, trading: Trading, account_id: int, market: Market, resp: str, answer: Answer
    ) -> None:
        self.trading = trading
        self.account_id = account_id
        self.market = market
        self.resp = resp
        self.answer = answer

    def __call__(self, seq: int, ts: int, events: list[Event], error: BaseException | None) -> None:
        trading = self.trading
        trading._settled(self.account_id)
        if error is not None:
            self.answer(None, error)
            return
        try:
            result = trading._placed(self.market, seq, ts, events, self.resp)
        except Exception as exc:  # a refusal (ApiError) or a rendering bug (500)
            self.answer(None, exc)
            return
        self.answer(result, None)


def _raise(exc: Exception) -> Any:
    raise exc
