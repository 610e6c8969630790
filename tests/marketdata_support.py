"""Shared helpers for the market-data tests: a funded engine node and random order flow."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from engine.node import EngineNode, NodeConfig
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    OrderType,
    PlaceOrder,
    StateImage,
)
from engine.service import BTC, DEMO_COMMANDS, ETH, USDT
from marketdata.book import BUY, SELL
from marketdata.service import MarketDataService
from marketdata.state import MarketDataState

ACCOUNTS = range(1, 7)
# market_id -> (mid price in ticks, tick atoms, lot atoms)
MARKETS = {0: (3_000_000, 10_000, 10_000), 1: (200_000, 10_000, 100_000)}


def funding() -> list[Command]:
    commands: list[Command] = []
    for a in ACCOUNTS:
        commands += [
            CreateAccount(account_id=a),
            Deposit(account_id=a, asset_id=USDT, amount_atoms=10**16, deposit_key=f"u{a}"),
            Deposit(account_id=a, asset_id=BTC, amount_atoms=10**14, deposit_key=f"b{a}"),
            Deposit(account_id=a, asset_id=ETH, amount_atoms=10**16, deposit_key=f"e{a}"),
        ]
    return commands


def make_node(data_dir: Path, clock: Callable[[], int] | None = None) -> EngineNode:
    config = NodeConfig(data_dir=data_dir, fsync=False, snapshot_every=0)
    return EngineNode(config) if clock is None else EngineNode(config, clock)


def start(node: EngineNode, service: MarketDataService) -> None:
    service.feed_from_node(node, list(DEMO_COMMANDS))
    service.feed_from_node(node, funding())


def random_commands(
    rng: random.Random, image: StateImage, n: int, *, issue3: bool = False
) -> list[Command]:
    """A mix of every order kind, cancels, amends (both kinds) and cancel-alls; with ``issue3``
    also stop/take-profit and trailing orders (market and limit), icebergs and self-trade
    prevention modes, and cancels aimed at waiting conditional orders."""
    resting = [(o.order_id, o.account_id, o.market_id) for o in image.orders]
    if issue3:
        resting += [(o.order_id, o.account_id, o.market_id) for o in image.conditional_orders]
    out: list[Command] = []
    for _ in range(n):
        r = rng.random()
        if r >= 0.61 and len(resting) < 60:
            r = rng.random() * 0.61  # let the book grow before cancels and amends thin it
        account = rng.choice(ACCOUNTS)
        market = rng.choice(list(MARKETS))
        mid, tick, lot = MARKETS[market]
        side = rng.randint(0, 1)
        price = (mid + rng.randint(-12, 12)) * tick
        qty = rng.randint(1, 40) * lot
        if issue3 and r < 0.61 and rng.random() < 0.45:
            out.append(_issue3_order(rng, account, market, side, price, qty))
            continue
        if r < 0.45:
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=market,
                    side=side,
                    order_type=OrderType.LIMIT,
                    price_atoms=price,
                    qty_atoms=qty,
                )
            )
        elif r < 0.52:
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=market,
                    side=side,
                    order_type=OrderType.LIMIT,
                    time_in_force=rng.choice([1, 2]),
                    price_atoms=price,
                    qty_atoms=qty,
                )
            )
        elif r < 0.57:
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=market,
                    side=side,
                    order_type=OrderType.LIMIT_MAKER,
                    price_atoms=price,
                    qty_atoms=qty,
                )
            )
        elif r < 0.61:
            out.append(
                PlaceOrder(
                    account_id=account,
                    market_id=market,
                    side=side,
                    order_type=OrderType.MARKET,
                    qty_atoms=qty,
                )
            )
        elif r < 0.79 and resting:
            oid, acct, mkt = rng.choice(resting)
            out.append(CancelOrder(account_id=acct, market_id=mkt, order_id=oid))
        elif r < 0.98 and resting:
            oid, acct, mkt = rng.choice(resting)
            mid, tick, lot = MARKETS[mkt]
            new_price = rng.choice([0, (mid + rng.randint(-12, 12)) * tick])
            new_qty = rng.choice([0, rng.randint(1, 40) * lot])
            out.append(
                AmendOrder(
                    account_id=acct,
                    market_id=mkt,
                    order_id=oid,
                    new_price_atoms=new_price,
                    new_qty_atoms=new_qty,
                )
            )
        elif r < 0.99:
            out.append(CancelAll(account_id=account, market_id=rng.choice([-1, 0, 1])))
    return out


def _issue3_order(
    rng: random.Random, account: int, market: int, side: int, price: int, qty: int
) -> PlaceOrder:
    """A conditional order, an iceberg, or an order with a self-trade prevention mode."""
    mid, tick, lot = MARKETS[market]
    stp = rng.choice([0, 1, 2, 3, 4, 4])
    kind = rng.random()
    if kind < 0.35:  # iceberg (GTC limit or post-only), visible slices of 1..4 lots
        order_type = rng.choice([OrderType.LIMIT] * 4 + [OrderType.LIMIT_MAKER])
        return PlaceOrder(
            account_id=account,
            market_id=market,
            side=side,
            order_type=order_type,
            price_atoms=price,
            qty_atoms=qty,
            display_qty_atoms=rng.randint(1, 4) * lot if qty > lot else 0,
            stp_mode=stp,
        )
    if kind < 0.55:  # plain orders that take with a self-trade prevention mode
        order_type = rng.choice([OrderType.LIMIT, OrderType.MARKET])
        return PlaceOrder(
            account_id=account,
            market_id=market,
            side=side,
            order_type=order_type,
            time_in_force=rng.choice([0, 0, 1]),
            price_atoms=price if order_type == OrderType.LIMIT else 0,
            qty_atoms=qty,
            stp_mode=stp,
        )
    order_type = rng.choice(
        [
            OrderType.STOP_MARKET,
            OrderType.STOP_LIMIT,
            OrderType.TAKE_PROFIT_MARKET,
            OrderType.TAKE_PROFIT_LIMIT,
            OrderType.TRAILING_STOP_MARKET,
            OrderType.TRAILING_STOP_LIMIT,
        ]
    )
    limit = order_type in (
        OrderType.STOP_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP_LIMIT,
    )
    trailing = order_type in (OrderType.TRAILING_STOP_MARKET, OrderType.TRAILING_STOP_LIMIT)
    quote = 0
    if not limit and side == BUY:  # market-kind conditional buys spend a quote budget
        base_decimals = 8 if market == 0 else 9  # BTC, ETH (gwei)
        quote, qty = qty * mid * tick // 10**base_decimals, 0
    return PlaceOrder(
        account_id=account,
        market_id=market,
        side=side,
        order_type=order_type,
        time_in_force=rng.choice([0, 0, 0, 1, 2]) if limit else 0,
        price_atoms=price if limit else 0,
        qty_atoms=qty,
        quote_qty_atoms=quote,
        stop_price_atoms=0 if trailing else (mid + rng.randint(-12, 12)) * tick,
        trailing_delta_bps=rng.choice([1, 5, 20]) if trailing else 0,
        limit_offset_atoms=rng.choice([0, tick, 5 * tick])
        if order_type == OrderType.TRAILING_STOP_LIMIT
        else 0,
        stp_mode=stp,
    )


def l3_of_state(state: MarketDataState) -> list[tuple[int, int, int, int, int]]:
    """(order_id, market, side, price, qty) in the engine image's book order."""
    out = []
    for market_id in sorted(state.markets):
        book = state.markets[market_id].book
        for side in (BUY, SELL):
            out += [(oid, market_id, side, p, q) for oid, p, q in book.orders(side)]
    return out


def l3_of_image(image: StateImage) -> list[tuple[int, int, int, int, int]]:
    """What market data must show: an iceberg's visible slice, not its hidden quantity."""
    return [
        (o.order_id, o.market_id, o.side, o.price_atoms, o.visible_qty_atoms) for o in image.orders
    ]


def l2_of_image(image: StateImage, market_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """(bids, asks) as price -> total visible qty."""
    sides: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for o in image.orders:
        if o.market_id == market_id:
            sides[o.side][o.price_atoms] = sides[o.side].get(o.price_atoms, 0) + o.visible_qty_atoms
    return sides
