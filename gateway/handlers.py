"""WS API methods: name -> (weight, permission, counts as an order, handler).

Weights follow the dialect's order of magnitude (1 for order entry, 4-20 for queries, 20 for
exchangeInfo); ``permission`` None means public, "read" USER_DATA, "trade" TRADE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gateway import auth, errors, fees, placeparams
from gateway.keys import ApiKey
from gateway.params import get_bool, get_int

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.trading import Answer
    from gateway.wsapi import Session

Handler = Callable[["Session", "ApiKey | None", dict[str, Any]], Awaitable[Any]]


Submit = Callable[["Session", "ApiKey", dict[str, Any], "Answer"], None]


@dataclass(frozen=True, slots=True)
class TypedParams:
    """A method's params decoded into a Struct (`gateway.placeparams`): ``decode`` gives the
    Struct or None (the method then takes the dict path, whose errors are the answers);
    ``submit`` is `MethodSpec.submit` for the Struct, with the raw params for its own fallback."""

    decode: Callable[[msgspec.Raw], Any]
    submit: Callable[[Session, ApiKey, Any, msgspec.Raw, Answer], None]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    weight: int
    permission: str | None
    orders: bool
    fn: Handler
    submit: Submit | None = None
    """Fast path: validate and queue synchronously; the answer comes from the batch loop."""
    typed: TypedParams | None = None
    """Fast path for well-formed params, decoded typed; the others take ``submit``."""
    single_use: bool = False
    """A signed request for it is accepted once (the replay guard, `gateway.auth`): methods
    that change state, and ``session.logon`` (a replayed logon would open a session)."""

    def __post_init__(self) -> None:
        if self.permission in auth.SINGLE_USE_PERMISSIONS:
            object.__setattr__(self, "single_use", True)


def exchange_info(gw: Gateway, symbols: list[str] | None = None) -> dict[str, Any]:
    limits = gw.config.limits
    max_open = gw.engine_config.max_open_orders_per_account
    markets = list(gw.store.markets.values())
    if symbols is not None:
        wanted = set(symbols)
        markets = [m for m in markets if m.wire in wanted]
        if len(markets) != len(wanted):
            raise errors.ApiError(errors.BAD_SYMBOL, "Invalid symbol.")
    return {
        "timezone": "UTC",
        "serverTime": auth.now_ms(),
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits.weight_per_minute,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": limits.orders_per_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": limits.orders_per_day,
            },
            {
                "rateLimitType": "CONNECTIONS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": limits.connections_per_ip,
            },
        ],
        # The engine bounds open orders per account across all symbols (EngineConfig).
        "exchangeFilters": [{"filterType": "EXCHANGE_MAX_NUM_ORDERS", "maxNumOrders": max_open}],
        "symbols": [m.exchange_info(max_open) for m in markets],
    }


def _symbols(params: dict[str, Any]) -> list[str] | None:
    if "symbol" in params:
        s = params["symbol"]
        if not isinstance(s, str):
            raise errors.illegal("symbol", "string")
        return [s]
    if "symbols" in params:
        s = params["symbols"]
        if not isinstance(s, list) or not all(isinstance(x, str) for x in s) or len(s) > 100:
            raise errors.illegal("symbols", "array of strings")
        return s
    return None


def _acct(key: ApiKey | None) -> int:
    assert key is not None
    return key.account_id


async def ping(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return {}


async def time_(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return {"serverTime": auth.now_ms()}


async def exchange_info_m(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return exchange_info(s.gw, _symbols(p))


def _session_status(s: Session) -> dict[str, Any]:
    return {
        "apiKey": s.key.api_key if s.key else None,
        "authorizedSince": s.authorized_since if s.key else None,
        "connectedSince": s.connected_since,
        "returnRateLimits": True,
        "serverTime": auth.now_ms(),
        "userDataStream": bool(s.subscriptions),
        "cancelOnDisconnect": s.cancel_on_disconnect,
    }


async def logon(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    if "signature" not in p:
        raise errors.mandatory("signature")
    assert key is not None
    s.key = key
    s.authorized_since = auth.now_ms()
    s.cancel_on_disconnect = get_bool(p, "cancelOnDisconnect")
    return _session_status(s)


async def status(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return _session_status(s)


async def logout(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    if s.key is not None:
        s.gw.user_streams.drop(s)
        s.subscriptions.clear()
    s.key = None
    s.cancel_on_disconnect = False
    return _session_status(s)


async def place(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.place(_acct(key), p)


def place_submit(s: Session, key: ApiKey, p: dict[str, Any], answer: Answer) -> None:
    s.gw.trading.place_submit(key.account_id, p, answer)


def place_submit_typed(
    s: Session, key: ApiKey, p: placeparams.PlaceParams, raw: msgspec.Raw, answer: Answer
) -> None:
    s.gw.trading.place_submit_typed(key.account_id, p, raw, answer)


async def test(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.place(_acct(key), p, test=True)


async def cancel(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.cancel(_acct(key), p)


async def cancel_replace(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.cancel_replace(_acct(key), p)


async def amend(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.amend_keep_priority(_acct(key), p)


async def order_status(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.order_status(_acct(key), p)


async def open_orders(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return s.gw.trading.open_orders(_acct(key), p)


async def cancel_all(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.cancel_all(_acct(key), p)


async def all_orders(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.all_orders(_acct(key), p)


async def my_trades(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return await s.gw.trading.my_trades(_acct(key), p)


async def account(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    assert key is not None
    return s.gw.trading.account(key.account_id, p, key.can("trade"), key.can("withdraw"))


async def commission(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    return fees.commission(s.gw.store, p)


async def subscribe(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    if s.key is None:
        raise errors.ApiError(errors.NOT_FOUND, "Not found, unauthenticated, or unauthorized.", 401)
    sub_id = s.gw.user_streams.subscribe(s.key, s)
    s.subscriptions.add(sub_id)
    return {"subscriptionId": sub_id}


async def unsubscribe(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    """This session's subscriptions only (all of them without ``subscriptionId``): another
    connection of the same account keeps its own."""
    if s.key is not None:
        sub_id = get_int(p, "subscriptionId")
        mine = set(s.subscriptions) if sub_id is None else {sub_id} & s.subscriptions
        for i in mine:
            s.gw.user_streams.end(i)
        s.subscriptions -= mine
    return {}


async def dead_mans_switch(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    """Extension: cancel all the account's orders unless refreshed within ``timeoutMs`` (0
    disarms). Journaled as the engine's SetDeadMansSwitch and fired by the engine on journal
    time, so replay cancels the same orders (`gateway.deadman`)."""
    return await s.gw.dead_mans.set(_acct(key), p)


async def deposit_address(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    """Extension (the dialect's ``GET /sapi/v1/capital/deposit/address``): ``coin``."""
    from gateway import custody

    return custody.require(s.gw).deposit_address(_acct(key), p)


async def withdraw_apply(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    """Extension (``POST /sapi/v1/capital/withdraw/apply``): ``coin``, ``address``, ``amount``,
    optional ``withdrawOrderId`` (positive integer) and ``network``."""
    from gateway import custody

    return await custody.require(s.gw).withdraw(_acct(key), p)


async def withdraw_cancel(s: Session, key: ApiKey | None, p: dict[str, Any]) -> Any:
    """Extension (``POST /sapi/v1/capital/withdraw/cancel``): ``id`` of a withdrawal awaiting
    approval; its hold is released (journaled) and its status becomes Cancelled (1)."""
    from gateway import custody

    return await custody.require(s.gw).cancel_withdrawal(_acct(key), p)


WS_METHODS: Final[dict[str, MethodSpec]] = {
    "ping": MethodSpec(1, None, False, ping),
    "time": MethodSpec(1, None, False, time_),
    "exchangeInfo": MethodSpec(20, None, False, exchange_info_m),
    "session.logon": MethodSpec(2, "read", False, logon, single_use=True),
    "session.status": MethodSpec(2, None, False, status),
    "session.logout": MethodSpec(2, None, False, logout),
    "order.place": MethodSpec(
        1, "trade", True, place, place_submit, TypedParams(placeparams.decode, place_submit_typed)
    ),
    "order.test": MethodSpec(1, "trade", False, test),
    "order.cancel": MethodSpec(1, "trade", False, cancel),
    "order.cancelReplace": MethodSpec(1, "trade", True, cancel_replace),
    "order.amend.keepPriority": MethodSpec(4, "trade", True, amend),
    "order.status": MethodSpec(4, "read", False, order_status),
    "openOrders.status": MethodSpec(6, "read", False, open_orders),
    "openOrders.cancelAll": MethodSpec(1, "trade", False, cancel_all),
    "allOrders": MethodSpec(20, "read", False, all_orders),
    "myTrades": MethodSpec(20, "read", False, my_trades),
    "account.status": MethodSpec(20, "read", False, account),
    "account.commission": MethodSpec(20, "read", False, commission),
    "userDataStream.subscribe": MethodSpec(2, None, False, subscribe),
    "userDataStream.unsubscribe": MethodSpec(2, None, False, unsubscribe),
    "deadMansSwitch.set": MethodSpec(1, "trade", False, dead_mans_switch),
    "capital.deposit.address": MethodSpec(10, "read", False, deposit_address),
    "capital.withdraw.apply": MethodSpec(1, "withdraw", False, withdraw_apply),
    "capital.withdraw.cancel": MethodSpec(1, "withdraw", False, withdraw_cancel),
}
