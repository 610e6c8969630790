"""Errors on the wire: ``{code, msg}`` with stable negative codes modelled on the Binance dialect.

Every refusal the gateway gives is an `ApiError`; handlers raise it and the WS/REST layers turn
it into the dialect's envelope. Codes never change meaning (clients switch on them); messages
follow the dialect's wording where one exists so existing bots recognise them.

HTTP status (REST) and ``status`` (WS API) follow the dialect: 4xx for a bad request, 429 when
a rate limit is hit, 418 when the caller is banned, 5xx only when the outcome is *unknown* (the
order may or may not have been executed: never treat it as a failure).
"""

from __future__ import annotations

from typing import Any, Final

from engine.schema import Reject

UNKNOWN: Final = -1000
DISCONNECTED: Final = -1001
UNAUTHORIZED: Final = -1002
TOO_MANY_REQUESTS: Final = -1003
UNEXPECTED_RESP: Final = -1006
TIMEOUT: Final = -1007
HISTORY_UNAVAILABLE: Final = -1008
"""A history query this gateway cannot answer completely now (``serve --history pg``: no
local index, and PostgreSQL is absent, down or behind what memory holds); never a partial
answer."""
FILTER_FAILURE: Final = -1013
UNSUPPORTED_ORDER: Final = -1014
TOO_MANY_ORDERS: Final = -1015
INVALID_TIMESTAMP: Final = -1021
INVALID_SIGNATURE: Final = -1022
ILLEGAL_CHARS: Final = -1100
TOO_MANY_PARAMS: Final = -1101
MANDATORY_PARAM: Final = -1102
PARAM_NOT_REQUIRED: Final = -1106
BAD_PRECISION: Final = -1111
INVALID_TIF: Final = -1115
INVALID_ORDER_TYPE: Final = -1116
INVALID_SIDE: Final = -1117
BAD_SYMBOL: Final = -1121
BAD_COMBINATION: Final = -1128
INVALID_PARAMETER: Final = -1130
BAD_RECV_WINDOW: Final = -1131
MALFORMED_REQUEST: Final = -1199
"""An HTTP request that could not be parsed at all (`gateway.malformed`; not a Binance code)."""
NOT_FOUND: Final = -1099
ORDER_REJECTED: Final = -2010
CANCEL_REJECTED: Final = -2011
NO_SUCH_ORDER: Final = -2013
BAD_API_KEY_FMT: Final = -2014
REJECTED_MBX_KEY: Final = -2015
CANCEL_REPLACE_PARTIAL: Final = -2021
CANCEL_REPLACE_FAILED: Final = -2022
AMEND_REJECTED: Final = -2038
# Custody (``/sapi/v1/capital/...``, WS ``capital.*``): custody's stable refusal codes
# (`custody.withdrawals.WithdrawalRejected.code` and engine reasons) -> wire codes.
WITHDRAW_REJECTED: Final = -4000
"""Any other refusal of a withdrawal (the custody code is in the message)."""
WITHDRAW_INVALID_ADDRESS: Final = -4001
WITHDRAW_BELOW_MINIMUM: Final = -4002
WITHDRAW_LIMIT_EXCEEDED: Final = -4003
WITHDRAW_INSUFFICIENT_BALANCE: Final = -4004
WITHDRAW_INVALID_AMOUNT: Final = -4005
WITHDRAW_DUPLICATE: Final = -4006
WITHDRAW_UNKNOWN_COIN: Final = -4007
WITHDRAW_ACCOUNT_FROZEN: Final = -4011
"""The account is frozen by staff (engine ACCOUNT_FROZEN, or refused before journaling)."""
WITHDRAW_TIER_NOT_ALLOWED: Final = -4012
"""KYC tier 0 may not withdraw (refused before a WithdrawRequest is journaled)."""
CUSTODY_DISABLED: Final = -4008
CUSTODY_CLAIM_NOT_HELD: Final = -4013
"""Cluster mode: this gateway lost its custody claim (`gateway.custodylock`); HTTP 503 until
it holds the claim again."""
WITHDRAW_NOT_CANCELLABLE: Final = -4009
"""Only a withdrawal awaiting approval can be cancelled by its owner."""
WITHDRAW_UNKNOWN: Final = -4010
CONVERT_QUOTE_EXPIRED: Final = -4101
"""acceptQuote after the quote's validTimestamp: nothing was journaled; ask a new quote."""
CONVERT_QUOTE_UNKNOWN: Final = -4102
"""acceptQuote with a quoteId never issued to this account, or already accepted."""
CONVERT_PAIR_UNSUPPORTED: Final = -4103
CONVERT_NO_LIQUIDITY: Final = -4104
POL_NO_PROOF: Final = -4110
"""No proof of liabilities has been published for this account (yet)."""


class ApiError(Exception):
    """A refusal with a stable code; ``status`` is the HTTP / WS status to answer with."""

    def __init__(self, code: int, msg: str, status: int = 400, data: Any = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


def mandatory(name: str) -> ApiError:
    return ApiError(
        MANDATORY_PARAM,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


def illegal(name: str, legal: str) -> ApiError:
    return ApiError(
        ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def invalid(name: str) -> ApiError:
    return ApiError(INVALID_PARAMETER, f"Data sent for parameter '{name}' is not valid.")


def filter_failure(name: str) -> ApiError:
    return ApiError(FILTER_FAILURE, f"Filter failure: {name}")


def stopped(reason: str) -> ApiError:
    """The node stopped taking commands (fail closed): this request was never journaled."""
    return ApiError(
        DISCONNECTED,
        f"Internal error; unable to process your request. The server stopped taking commands "
        f"({reason}); nothing was done. Please try again after it restarts.",
        status=503,
    )


def status_unknown(reason: str) -> ApiError:
    """An order query while the node is stopped: the read model may miss what the journal
    holds, so "does not exist" could be false; the restart recovers the truth."""
    return ApiError(
        UNEXPECTED_RESP,
        f"Order status unknown: the server stopped taking commands ({reason}). Ask again "
        "after it restarts from its journal; do not resend the order.",
        status=503,
    )


def history_unavailable(reason: str) -> ApiError:
    """`HISTORY_UNAVAILABLE`: answering would need closed orders or trades this gateway does not
    hold (``--history pg``), so it refuses instead of answering incompletely."""
    return ApiError(
        HISTORY_UNAVAILABLE,
        f"Order history is not available on this server right now ({reason}). Open orders, "
        "orders closed moments ago and balances are; ask again later or another server.",
        status=503,
    )


def unknown_outcome(reason: str) -> ApiError:
    """The dialect's 5xx rule: the request may have been executed; check before retrying."""
    return ApiError(
        TIMEOUT,
        f"Timeout waiting for response from backend server. Send status unknown; "
        f"execution status unknown. ({reason})",
        status=503,
    )


BAD_SIGNATURE: Final = ApiError(INVALID_SIGNATURE, "Signature for this request is not valid.")
UNKNOWN_ORDER_SENT: Final = "Unknown order sent."

# Engine refusals (journaled and processed) mapped to the dialect. Filter failures are normally
# caught by the gateway before journaling; the engine is the authority, so they are mapped too.
_REJECT_MAP: Final[dict[int, tuple[int, str]]] = {
    Reject.INSUFFICIENT_FUNDS: (
        ORDER_REJECTED,
        "Account has insufficient balance for requested action.",
    ),
    Reject.DUPLICATE_CLIENT_ORDER_ID: (ORDER_REJECTED, "Duplicate order sent."),
    Reject.TAKER_NOT_ALLOWED: (ORDER_REJECTED, "Order would immediately match and take."),
    Reject.PRICE_OFF_TICK: (FILTER_FAILURE, "Filter failure: PRICE_FILTER"),
    Reject.INVALID_PRICE: (FILTER_FAILURE, "Filter failure: PRICE_FILTER"),
    Reject.QTY_OFF_LOT: (FILTER_FAILURE, "Filter failure: LOT_SIZE"),
    Reject.INVALID_QTY: (FILTER_FAILURE, "Filter failure: LOT_SIZE"),
    Reject.ORDER_TOO_LARGE: (FILTER_FAILURE, "Filter failure: LOT_SIZE"),
    Reject.MIN_NOTIONAL: (FILTER_FAILURE, "Filter failure: NOTIONAL"),
    Reject.NOTIONAL_OVERFLOW: (FILTER_FAILURE, "Filter failure: NOTIONAL"),
    Reject.TOO_MANY_OPEN_ORDERS: (FILTER_FAILURE, "Filter failure: MAX_NUM_ORDERS"),
    Reject.PRICE_OUTSIDE_BAND: (FILTER_FAILURE, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    Reject.BOOK_FULL: (ORDER_REJECTED, "Order book capacity reached; try another price."),
    Reject.MARKET_HALTED: (ORDER_REJECTED, "Market is closed."),
    Reject.ACCOUNT_FROZEN: (
        ORDER_REJECTED,
        "This account is frozen: no new orders, amends that add exposure or withdrawals; "
        "cancels work.",
    ),
    Reject.TIER_TRADE_LIMIT: (
        ORDER_REJECTED,
        "Order notional is above this account's KYC tier limit; verify to a higher tier.",
    ),
    Reject.MARKET_CANCEL_ONLY: (ORDER_REJECTED, "Market is in cancel-only mode."),
    Reject.MARKET_POST_ONLY: (ORDER_REJECTED, "Market is in post-only mode."),
    Reject.UNKNOWN_MARKET: (BAD_SYMBOL, "Invalid symbol."),
    Reject.UNKNOWN_ACCOUNT: (REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action."),
    Reject.INVALID_AMEND: (AMEND_REJECTED, "Order amend rejected: nothing to change."),
    # Issue 3 order types: the stop price is compared with the last trade price, which only
    # the engine knows for sure, so this one is the engine's to refuse.
    Reject.INVALID_STOP_PRICE: (ORDER_REJECTED, "Order would trigger immediately."),
    Reject.NO_REFERENCE_PRICE: (
        ORDER_REJECTED,
        "Trailing stop orders need a last trade price; this symbol has not traded yet.",
    ),
    Reject.INVALID_TRAILING_DELTA: (FILTER_FAILURE, "Filter failure: TRAILING_DELTA"),
    Reject.INVALID_DISPLAY_QTY: (FILTER_FAILURE, "IcebergQty exceeds QTY."),
    Reject.INVALID_STP_MODE: (
        FILTER_FAILURE,
        "This symbol does not allow the specified self-trade prevention mode.",
    ),
}


def from_reject(reason: int, *, cancel: bool = False) -> ApiError:
    """The wire error for an engine ``OrderRejected`` / ``CommandRejected`` reason."""
    if reason == Reject.UNKNOWN_ORDER:
        return ApiError(CANCEL_REJECTED, UNKNOWN_ORDER_SENT)
    code, msg = _REJECT_MAP.get(reason, (ORDER_REJECTED, f"Order rejected ({_name(reason)})."))
    if cancel and code == ORDER_REJECTED:
        code = CANCEL_REJECTED
    return ApiError(code, msg)


def _name(reason: int) -> str:
    try:
        return Reject(reason).name
    except ValueError:
        return str(reason)


# custody code -> (wire code, message). ``INSUFFICIENT_FUNDS`` / ``DUPLICATE_WITHDRAWAL`` /
# ``UNKNOWN_ACCOUNT`` come from the engine's refusal of the hold, the rest from custody's checks.
_WITHDRAWAL_MAP: Final[dict[str, tuple[int, str]]] = {
    "INVALID_ADDRESS": (WITHDRAW_INVALID_ADDRESS, "Invalid withdrawal address for this network."),
    "BELOW_MINIMUM": (WITHDRAW_BELOW_MINIMUM, "Withdrawal amount is below the minimum."),
    "LIMIT_EXCEEDED": (WITHDRAW_LIMIT_EXCEEDED, "Withdrawal exceeds the 24h limit."),
    "INSUFFICIENT_FUNDS": (
        WITHDRAW_INSUFFICIENT_BALANCE,
        "Account has insufficient balance for requested action.",
    ),
    "INVALID_AMOUNT": (WITHDRAW_INVALID_AMOUNT, "Withdrawal amount is not valid."),
    "DUPLICATE_WITHDRAWAL": (WITHDRAW_DUPLICATE, "Duplicate withdrawOrderId."),
    "INVALID_WITHDRAWAL_ID": (WITHDRAW_DUPLICATE, "Invalid withdrawOrderId."),
    "UNKNOWN_ASSET": (WITHDRAW_UNKNOWN_COIN, "Coin is not supported for withdrawal."),
    "UNKNOWN_ACCOUNT": (REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action."),
    "NOT_AWAITING_APPROVAL": (
        WITHDRAW_NOT_CANCELLABLE,
        "Only a withdrawal awaiting approval can be cancelled.",
    ),
    "UNKNOWN_WITHDRAWAL": (WITHDRAW_UNKNOWN, "No such withdrawal."),
    "ACCOUNT_FROZEN": (WITHDRAW_ACCOUNT_FROZEN, "This account is frozen: no withdrawals."),
    "TIER_NOT_ALLOWED": (
        WITHDRAW_TIER_NOT_ALLOWED,
        "Verify your identity first: KYC tier 0 may not withdraw.",
    ),
}


def from_withdrawal(code: str, detail: str) -> ApiError:
    """The wire error for a custody `WithdrawalRejected` (``code``, ``message``)."""
    wire, msg = _WITHDRAWAL_MAP.get(code, (WITHDRAW_REJECTED, f"Withdrawal rejected ({code})."))
    return ApiError(wire, f"{msg} ({detail})")
