"""``order.cancelReplace`` / ``POST /api/v3/order/cancelReplace``: one journaled command.

The cancel and the new order travel as one engine ``CancelReplaceOrder``, so the engine runs
the cancel first and the new order sees the hold it freed (a bid holding most of a balance can
be moved), nothing runs in between, and whether the new order is attempted after a refused
cancel (``cancelReplaceMode``) is decided by the engine, deterministically, on replay too.

What the gateway refuses before journaling, nothing changed: parameters and filters of the new
order (the dialect evaluates filters before the cancel), and, under STOP_ON_FAILURE, a target
the store proves unknown (the -2022 shape). Outcomes use the dialect's shapes: both halves
succeed -> the plain result; one fails -> -2021 "partially failed" (HTTP 409); the cancel fails
and the new order fails or is not attempted -> -2022 (HTTP 400). Both carry ``data`` with
``cancelResult``, ``newOrderResult``, ``cancelResponse`` and ``newOrderResponse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from engine.schema import CancelReason, CancelReplaceOrder, OrderCancelled, OrderRejected
from gateway import errors, wire
from gateway.orderparams import refuse_cancel_restrictions
from gateway.params import get_enum

if TYPE_CHECKING:
    from gateway.trading import Trading


REPLACE_MODES: Final = frozenset({"STOP_ON_FAILURE", "ALLOW_FAILURE"})
PARTIAL_MSG: Final = "Order cancel-replace partially failed."
FAILED_MSG: Final = "Order cancel-replace failed."


def _failure(
    cancel_ok: bool, new_result: str, cancel_response: Any, new_response: Any
) -> errors.ApiError:
    data = {
        "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
        "newOrderResult": new_result,
        "cancelResponse": cancel_response,
        "newOrderResponse": new_response,
    }
    if cancel_ok or new_result == "SUCCESS":
        return errors.ApiError(errors.CANCEL_REPLACE_PARTIAL, PARTIAL_MSG, 409, data)
    return errors.ApiError(errors.CANCEL_REPLACE_FAILED, FAILED_MSG, 400, data)


async def cancel_replace(tr: Trading, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
    mode = get_enum(
        params,
        "cancelReplaceMode",
        REPLACE_MODES,
        errors.INVALID_PARAMETER,
        "Data sent for parameter 'cancelReplaceMode' is not valid.",
    )
    allow_failure = mode == "ALLOW_FAILURE"
    refuse_cancel_restrictions(params)
    # No funds or duplicate-id pre-check: the cancel frees both, and only the engine knows.
    m, place, cid, resp = tr.build_place(account_id, params, precheck=False)
    oid, coid, cid_str = tr._target(
        account_id, m, params, "cancelOrderId", "cancelOrigClientOrderId"
    )
    if (
        not allow_failure
        and tr._quiet(account_id)
        and tr._open_target(account_id, m, oid, coid) is None
    ):
        unknown = errors.ApiError(errors.CANCEL_REJECTED, errors.UNKNOWN_ORDER_SENT).body()
        raise _failure(False, "NOT_ATTEMPTED", unknown, None)
    if cid is not None:
        tr.ids.remember(cid, place.client_order_id)
    seq, ts, events = await tr.execute(
        account_id,
        CancelReplaceOrder(
            place=place,
            cancel_order_id=oid,
            cancel_client_order_id=coid,
            allow_failure=allow_failure,
        ),
    )
    # The cancel half's outcome is its first OrderRejected or OrderCancelled(USER) (a sweep's
    # cancels, earlier in the same events, have other reasons); the placement's events follow.
    cancel_response: Any = None
    cancel_ok = False
    rest = len(events)
    for i, ev in enumerate(events):
        if type(ev) is OrderRejected:
            cancel_response = errors.from_reject(ev.reason, cancel=True).body()
        elif type(ev) is OrderCancelled and ev.reason == CancelReason.USER:
            cancel_ok = True
            cancel_response = wire.cancelled(
                tr.store.known(account_id, ev.order_id), m, tr.ids, cid_str, ts
            )
        else:
            continue
        rest = i + 1
        break
    assert cancel_response is not None, "a CancelReplaceOrder always reports its cancel half"
    if not cancel_ok and not allow_failure:
        raise _failure(False, "NOT_ATTEMPTED", cancel_response, None)
    try:
        new_response: Any = tr._placed(m, seq, ts, events[rest:], resp)
    except errors.ApiError as exc:
        if exc.status >= 500:
            raise
        raise _failure(cancel_ok, "FAILURE", cancel_response, exc.body()) from None
    if not cancel_ok:
        raise _failure(False, "SUCCESS", cancel_response, new_response)
    return {
        "cancelResult": "SUCCESS",
        "newOrderResult": "SUCCESS",
        "cancelResponse": cancel_response,
        "newOrderResponse": new_response,
    }
