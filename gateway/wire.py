"""Rendering the read model in the dialect's JSON shapes (integers become decimal strings here).

Times are journal times in milliseconds (the sequencer's clock), so a replayed gateway answers
with the same ``transactTime``/``time`` values as the live one did.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from engine.schema import CONDITIONAL_TYPES
from gateway import wireviews
from gateway.clientids import ClientIdBook
from gateway.dialect import SIDE_NAMES, STP_NAMES, TIF_NAMES, TYPE_NAMES
from gateway.markets import Market, atoms_to_decimal
from gateway.records import AccountView, OrderRecord, PreventedMatch, Report, TradeRecord
from gateway.store import Store
from gateway.wireviews import AckResult, Fill, PlacedResult

SIDES: Final = SIDE_NAMES
TYPES: Final = TYPE_NAMES
TIFS: Final = TIF_NAMES


def ms(ns: int) -> int:
    return ns // 1_000_000


def order(o: OrderRecord, m: Market, ids: ClientIdBook) -> dict[str, Any]:
    """order.status / GET /api/v3/order shape, as a dict for the answers that extend it (the
    schema is `wireviews.OrderView`; pages render through `wireviews.orders_json`)."""
    out: dict[str, Any] = msgspec.to_builtins(wireviews.order_views((o,), m, ids)[0])
    return out


def _working_ms(ns: int) -> int:
    return -1 if ns == -1 else ms(ns)


def order_result(
    o: OrderRecord,
    m: Market,
    ids: ClientIdBook,
    resp_type: str,
    transact_ns: int,
    fills: list[tuple[int, int, int, int]],
) -> AckResult | PlacedResult:
    """order.place result in ACK, RESULT or FULL form; ``fills`` are (price, qty, fee, trade id).
    A Struct (the hot path of order entry): encode it, or ``msgspec.to_builtins`` for a dict."""
    cid = o.client_order_id
    client_id = f"kb{o.order_id}" if cid == 0 else ids.display(cid, o.order_id)
    if resp_type == "ACK":
        return AckResult(m.wire, o.order_id, -1, client_id, transact_ns // 1_000_000)
    price, qty = m.price, m.qty
    out = PlacedResult(
        m.wire,
        o.order_id,
        -1,
        client_id,
        transact_ns // 1_000_000,
        price(o.price),
        qty(o.orig_qty),
        qty(o.executed),
        price(o.orig_quote_qty),
        price(o.cum_quote),
        o.status,
        TIFS.get(o.time_in_force, "GTC"),
        TYPES.get(o.order_type, "LIMIT"),
        SIDES.get(o.side, "BUY"),
        _working_ms(o.working_time_ns),
        STP_NAMES.get(o.stp_mode, "NONE"),
    )
    if o.order_type in CONDITIONAL_TYPES:
        out.stop_price = price(o.stop_price)
    if o.iceberg_qty:
        out.iceberg_qty = qty(o.iceberg_qty)
    if o.trailing_delta:
        out.trailing_delta = o.trailing_delta
        out.trailing_time = ms(o.time_ns)
    if o.prevented_match_id >= 0:
        out.prevented_quantity = qty(o.prevented_qty)
    if resp_type == "FULL":
        fee_asset = m.quote.symbol
        out.fills = [
            Fill(price(p), qty(q), price(fee), fee_asset, trade_id) for p, q, fee, trade_id in fills
        ]
        if o.prevented_matches:
            out.prevented_matches = [_prevented_match(p, m) for p in o.prevented_matches]
    return out


def _prevented_match(p: PreventedMatch, m: Market) -> dict[str, Any]:
    out: dict[str, Any] = {
        "preventedMatchId": p.match_id,
        "makerOrderId": p.maker_order_id,
        "price": m.price(p.price),
    }
    if p.taker_qty is not None:
        out["takerPreventedQuantity"] = m.qty(p.taker_qty)
    if p.maker_qty is not None:
        out["makerPreventedQuantity"] = m.qty(p.maker_qty)
    return out


def cancelled(
    o: OrderRecord, m: Market, ids: ClientIdBook, orig_client_id: str | None, transact_ns: int
) -> dict[str, Any]:
    out = order(o, m, ids)
    for k in ("time", "updateTime", "isWorking", "workingTime", "trailingTime"):
        out.pop(k, None)
    if o.order_type not in CONDITIONAL_TYPES:
        del out["stopPrice"]  # present only if the order has one (the dialect)
    if not o.iceberg_qty:
        del out["icebergQty"]
    out["origClientOrderId"] = orig_client_id or out["clientOrderId"]
    out["transactTime"] = ms(transact_ns)
    return out


def trade(t: TradeRecord, m: Market) -> dict[str, Any]:
    """myTrades shape as a dict (the schema is `wireviews.TradeView`)."""
    out: dict[str, Any] = msgspec.to_builtins(wireviews.trade_views((t,), m)[0])
    return out


def balances(store: Store, acct: AccountView, *, omit_zero: bool = False) -> list[dict[str, Any]]:
    out = []
    for asset_id, a in sorted(store.assets.items()):
        b = acct.balances.get(asset_id, [0, 0, 0])
        if omit_zero and not any(b):
            continue
        out.append(
            {
                "asset": a.symbol,
                "free": atoms_to_decimal(b[0], a.decimals),
                "locked": atoms_to_decimal(b[1] + b[2], a.decimals),
            }
        )
    return out


def account(
    store: Store, account_id: int, can_trade: bool, can_withdraw: bool, omit_zero: bool = False
) -> dict[str, Any]:
    acct = store.accounts[account_id]
    m = next(iter(store.markets.values()), None)
    maker = m.maker_fee_ppm if m else 0
    taker = m.taker_fee_ppm if m else 0
    return {
        "makerCommission": maker // 100,
        "takerCommission": taker // 100,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": f"{maker / 1e6:.8f}",
            "taker": f"{taker / 1e6:.8f}",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": can_trade,
        "canWithdraw": can_withdraw,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": ms(acct.update_ns),
        "accountType": "SPOT",
        "balances": balances(store, acct, omit_zero=omit_zero),
        "permissions": ["SPOT"],
        "uid": account_id,
    }


def execution_report(r: Report, m: Market, ids: ClientIdBook, now_ms: int) -> dict[str, Any]:
    o = r.order
    price, orig, executed, cum_quote, status = r.snapshot
    working = status in ("NEW", "PARTIALLY_FILLED") and r.working_ns != -1
    out = {
        "e": "executionReport",
        "E": now_ms,
        "s": m.wire,
        "c": ids.display(o.client_order_id, o.order_id),
        "S": SIDES.get(o.side, "BUY"),
        "o": TYPES.get(o.order_type, "LIMIT"),
        "f": TIFS.get(o.time_in_force, "GTC"),
        "q": m.qty(orig),
        "p": m.price(price),
        "P": m.price(o.stop_price),
        "F": m.qty(o.iceberg_qty),
        "g": -1,
        "C": "",
        "x": r.exec_type,
        "X": status,
        "r": "NONE",
        "i": o.order_id,
        "l": m.qty(r.last_qty),
        "z": m.qty(executed),
        "L": m.price(r.last_price),
        "n": m.quote_amount(r.commission),
        "N": m.quote.symbol if r.commission else None,
        "T": ms(r.time_ns),
        "t": r.trade_id,
        "I": 0,
        "w": working,
        "m": r.is_maker,
        "M": False,
        "O": ms(o.time_ns),
        "Z": m.quote_amount(cum_quote),
        "Y": m.quote_amount(r.last_qty * r.last_price // 10**m.base.decimals),
        "Q": m.quote_amount(o.orig_quote_qty),
        "V": STP_NAMES.get(o.stp_mode, "NONE"),
    }
    if r.working_ns != -1:
        out["W"] = ms(r.working_ns)  # the dialect: only once the order works
    if o.trailing_delta:
        out["d"] = o.trailing_delta
        out["D"] = ms(o.time_ns)
    if r.prevented is not None:
        match_id, total, last, other = r.prevented
        out.update({"v": match_id, "A": m.qty(total), "B": m.qty(last), "U": other})
    return out


def account_position(
    store: Store, account_id: int, assets: set[int], ts_ms: int, now_ms: int
) -> dict[str, Any]:
    acct = store.accounts[account_id]
    out = []
    for asset_id in sorted(assets):
        a = store.assets[asset_id]
        b = acct.balances.get(asset_id, [0, 0, 0])
        out.append(
            {
                "a": a.symbol,
                "f": atoms_to_decimal(b[0], a.decimals),
                "l": atoms_to_decimal(b[1] + b[2], a.decimals),
            }
        )
    return {"e": "outboundAccountPosition", "E": now_ms, "u": ts_ms, "B": out}
