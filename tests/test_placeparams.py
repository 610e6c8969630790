"""order.place's typed fast path (`gateway.placeparams`) against the dict path
(`Trading.build_place`, `gateway.orderparams.parse_order`) on generated requests.

The fast path may only accept, and only what the dict path accepts, as the same engine command,
client id and response type; everything else it hands to the dict path, so every refusal keeps
its code and message. The second test pins that the usual orders do take it (else the gain is
silently gone). The WS-level answers (typed path, fallback, signed requests) are pinned in
tests/test_gateway_ws.py."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine.core.compiled import CompiledEngine
from engine.schema import EngineConfig
from engine.service import DEMO_COMMANDS
from gateway import errors, placeparams
from gateway.clientids import ClientIdBook
from gateway.dialect import ORDER_TYPES, SIDES, STP_MODES, TIFS
from gateway.store import Store
from gateway.trading import Trading

ACCOUNT = 7


@pytest.fixture(scope="module")
def trading() -> Trading:
    engine, store = CompiledEngine(EngineConfig()), Store()
    n = len(DEMO_COMMANDS)
    events = engine.process([(i + 1, i + 1, c) for i, c in enumerate(DEMO_COMMANDS)])
    store.apply_events(n, events, n)
    return Trading(store, None, ClientIdBook(None))  # type: ignore[arg-type]  # no submits


def _junk(*good: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from([*good, "", None, 0, 1, True, 1.5, [], {}, "x", " BUY", "0"])


_DECIMAL = st.one_of(
    st.sampled_from(
        [
            *("30000.00", "30000.001", "0.0010", "0.001", "1", "0.1", "5", "10", "100.5"),
            *("1e3", "0", "0.0", "00.10", "-1", "1.", ".5", " 1", "1\n", "²", "9" * 30),
        ]
    ),
    st.from_regex(r"[0-9]{1,6}(\.[0-9]{0,9})?", fullmatch=True),
    _junk(),
)
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "symbol": _junk("BTCUSDT", "ETHUSDT", "LTCUSDT", "btcusdt", "X" * 129),
    "side": _junk(*SIDES, "buy"),
    "type": _junk(*ORDER_TYPES, "LIMIT ", "OCO"),
    "timeInForce": _junk(*TIFS, "GTD", "gtc"),
    "quantity": _DECIMAL,
    "quoteOrderQty": _DECIMAL,
    "price": _DECIMAL,
    "stopPrice": _DECIMAL,
    "icebergQty": _DECIMAL,
    "trailingDelta": _junk(100, "100", -1, 10**30, "0"),
    "newClientOrderId": _junk("abc", "a" * 10, "b" * 36, "c" * 37, "bad id", "kb12"),
    "newOrderRespType": _junk("ACK", "RESULT", "FULL", "full"),
    "selfTradePreventionMode": _junk(*STP_MODES, "TRANSFER"),
    "timestamp": _junk(1_700_000_000_000),
    "recvWindow": _junk(5000),
    "extra": _junk("anything"),
}


_WELL_FORMED = [
    {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.0010", "price": "30000.00"},
    {"type": "LIMIT", "timeInForce": "IOC", "quantity": "1", "price": "10.5"},
    {"type": "LIMIT", "timeInForce": "FOK", "quantity": "0.0001", "price": "50000"},
    {"type": "LIMIT_MAKER", "quantity": "0.5", "price": "20000"},
    {"type": "MARKET", "quantity": "0.01"},
    {"type": "MARKET", "quoteOrderQty": "100"},
    {
        "type": "STOP_LOSS_LIMIT",
        "timeInForce": "GTC",
        "quantity": "1",
        "price": "9",
        "stopPrice": "10",
    },
    {"type": "TAKE_PROFIT", "quoteOrderQty": "100", "stopPrice": "31000"},
]


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed order (mostly) with up to three parameters changed, added or dropped:
    near misses, where a fast path would most likely go wrong."""
    out: dict[str, Any] = {
        "symbol": draw(st.sampled_from(["BTCUSDT", "ETHUSDT", "LTCUSDT"])),
        "side": draw(st.sampled_from(list(SIDES))),
        **draw(st.sampled_from(_WELL_FORMED)),
    }
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(list(_FIELDS)))
        if draw(st.integers(0, 3)) == 0:
            out.pop(name, None)
        else:
            out[name] = draw(_FIELDS[name])
    return out


def _dict_path(trading: Trading, raw: bytes) -> Any:
    try:
        return trading.build_place(ACCOUNT, msgspec.json.decode(raw), precheck=False)
    except errors.ApiError as exc:
        return exc.code, exc.msg


@settings(max_examples=3_000, deadline=None)
@given(request=_requests())
def test_typed_path_accepts_only_what_the_dict_path_accepts_and_builds_the_same(
    trading: Trading, request: dict[str, Any]
) -> None:
    raw = msgspec.json.encode(request)
    typed = placeparams.decode(raw)
    built = None if typed is None else trading.build_place_typed(ACCOUNT, typed, precheck=False)
    event(
        "typed path" if built is not None else "dict path"
    )  # `pytest --hypothesis-show-statistics`
    if built is not None:
        assert built == _dict_path(trading, raw), request


@pytest.mark.parametrize("order", _WELL_FORMED[:6])
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"newClientOrderId": "my-1", "newOrderRespType": "ACK"},
        {"timestamp": 1, "recvWindow": 5000},
    ],
)
def test_usual_orders_take_the_typed_path(
    trading: Trading, order: dict[str, Any], extra: dict[str, Any]
) -> None:
    request = {"symbol": "BTCUSDT", "side": "BUY", **order, **extra}
    raw = msgspec.json.encode(request)
    typed = placeparams.decode(raw)
    assert typed is not None
    built = trading.build_place_typed(ACCOUNT, typed, precheck=False)
    assert built is not None and built == _dict_path(trading, raw)


def test_signed_requests_and_misfits_take_the_dict_path() -> None:
    usual = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
    for request in (
        {**usual, "signature": "00"},
        {**usual, "signature": None},
        {**usual, "quantity": 1},
        {**usual, "side": "buy"},
        {**usual, "selfTradePreventionMode": "TRANSFER"},
        {k: v for k, v in usual.items() if k != "symbol"},
        {**usual, "strategyId": 1},  # unknown: ignored by the dict path
    ):
        assert placeparams.decode(msgspec.json.encode(request)) is None, request
    for value in (b"1e999", b"-1e309", b"[1e400]", b'"\\ud800"'):  # the dict decoder refuses
        for name in (b"x", b"timestamp", b"price", b"trailingDelta"):
            raw = msgspec.json.encode(usual)[:-1] + b',"%b":%b}' % (name, value)
            with pytest.raises(msgspec.DecodeError):
                msgspec.json.decode(raw)
            assert placeparams.decode(raw) is None, raw
