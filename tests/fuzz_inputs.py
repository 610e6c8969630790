"""Hypothesis strategies for the whole-surface fuzz test (tests/test_gateway_fuzz_surface.py):
arbitrary bytes and text, JSON of every shape (deep nesting included), and requests that look
almost right: known method and parameter names with values chosen to sit on parser edges
(Unicode digits, trailing newlines, huge numbers, wrong types, lone surrogates...).
"""

from __future__ import annotations

import json
import os
from typing import Any, Final

from hypothesis import strategies as st

TOTAL_REQUESTS: Final = int(os.environ.get("KOOTABASE_FUZZ_EXAMPLES", "10000"))
"""Generated requests across the whole-surface fuzz tests (CI default 10,000)."""

PARAM_NAMES: Final = (
    "symbol",
    "symbols",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "stopPrice",
    "trailingDelta",
    "icebergQty",
    "newClientOrderId",
    "origClientOrderId",
    "orderId",
    "cancelOrderId",
    "cancelOrigClientOrderId",
    "cancelNewClientOrderId",
    "cancelReplaceMode",
    "newQty",
    "newOrderRespType",
    "selfTradePreventionMode",
    "cancelRestrictions",
    "recvWindow",
    "timestamp",
    "apiKey",
    "signature",
    "limit",
    "startTime",
    "endTime",
    "fromId",
    "subscriptionId",
    "timeoutMs",
    "coin",
    "address",
    "amount",
    "network",
    "withdrawOrderId",
    "omitZeroBalances",
    "cancelOnDisconnect",
    "interval",
    "streams",
    "windowSize",
    "type",
)
EDGE_STRINGS: Final = (
    "",
    " ",
    "0",
    "-1",
    "1",
    "01",
    "1e5",
    "1.",
    ".5",
    "0.0000",
    "NaN",
    "Infinity",
    "null",
    "true",
    "²",
    "１",
    "٣",
    "1\n",
    "\n",
    "1 ",
    "\x00",
    "\t1",
    "a" * 200,
    "9" * 40,
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "BTCUSDT",
    "btcusdt",
    "BTCUſDT",
    "BTC-USDT",
    "LIMIT",
    "BUY",
    "SELL",
    "GTC",
    "MARKET",
    "FULL",
    "x-" + "q" * 40,
    "kb1",
    "kb1\n",
    "%00",
    "%",
    "&",
    "=",
    "🙂",
    "\ud800",
    "é",
    "[]",
    "{}",
    "[[[[",
    '"',
    "\\",
    "1m",
    "5m",
    "btcusdt@trade",
    "STOP_ON_FAILURE",
    "ALLOW_FAILURE",
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EDGE_STRINGS)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
param_values = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=5), scalars, max_size=2)
)
params = st.dictionaries(st.sampled_from(PARAM_NAMES), param_values, max_size=8)


@st.composite
def deep_json(draw: st.DrawFn) -> str:
    """Nested arrays/objects from a few levels to far past any decoder's recursion limit."""
    depth = draw(st.sampled_from([15, 16, 17, 40, 999, 1_001, 5_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")]))
    return opener * depth + "1" + closer * depth


def dumps(value: Any) -> str:
    """JSON text, lone surrogates and all (escaped as ``\\ud800``)."""
    return json.dumps(value, ensure_ascii=True)


form_text = st.lists(
    st.tuples(
        st.sampled_from(PARAM_NAMES) | st.text(max_size=8),
        st.sampled_from(EDGE_STRINGS) | st.text(max_size=20),
    ),
    max_size=8,
).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv))
"""A form/query string, not percent-encoded on purpose (the server sees raw bytes)."""
raw_query = form_text | st.text(alphabet='abc=&%0123+;[]{}"\\', max_size=60)


signatures = (
    st.sampled_from(EDGE_STRINGS)
    | st.text(max_size=100)
    | st.text(alphabet="0123456789abcdefABCDEF+/=-_", max_size=100)
)
"""Values for ``signature`` sent with a valid key and timestamp."""
header_values = st.binary(max_size=80).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").strip()
) | st.sampled_from([b"Bearer ", b"Bearer \xff\xfe", b"Bearer a.b.c", b"Bearer \xc3\xa9"])
"""Header values of any bytes (but CR/LF): secrets and tokens are compared as bytes."""
BACKOFFICE_NAMES: Final = (
    "email",
    "password",
    "totp",
    "code",
    "refresh_token",
    "token",
    "all",
    "permissions",
    "label",
    "ip_allow",
    "reason",
    "tier",
    "state",
    "amount",
    "comment",
)
backoffice_bodies = (
    st.dictionaries(
        st.sampled_from(BACKOFFICE_NAMES) | st.text(max_size=8),
        scalars | st.lists(scalars, max_size=3),
        max_size=5,
    )
    | json_values
)
"""JSON bodies for the back-office and operator routes (lone surrogates included)."""
