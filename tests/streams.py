"""Hypothesis strategies for random engine command streams.

A stream starts with a fixed-shape setup (assets, markets with drawn fee rates and min notional,
funded accounts) and continues with a random mix of every command kind, valid and invalid:
orders of every type and time in force, cancels and amends aimed at real and unknown order ids
and client order ids, cancel-alls, deposits (some duplicated), withdrawals and their results.
Prices sit on a narrow band of ticks so orders cross often; a small share of values are off the
grid, zero, negative or beyond the engine's integer bounds.
"""

from __future__ import annotations

import msgspec
from hypothesis import strategies as st

from engine.schema import (
    MAX_AMOUNT_ATOMS,
    AmendOrder,
    CancelAll,
    CancelOnDisconnect,
    CancelOrder,
    CancelReplaceOrder,
    Command,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    OrderType,
    PlaceOrder,
    RejectStreamMessage,
    SetAccountFrozen,
    SetAccountTier,
    SetDeadMansSwitch,
    SetMarketState,
    SetTierTradeLimit,
    Side,
    Tick,
    TimeInForce,
    WithdrawRequest,
    WithdrawResult,
)

Record = tuple[int, int, Command]

BTC, USDT, ETH = 0, 1, 2
ACCOUNTS = (1, 2, 3, 4)
# (market_id, base, quote, tick_size_atoms, lot_size_atoms, mid price in ticks)
MARKETS = (
    (0, BTC, USDT, 10_000, 10_000, 100),  # BTC-USDT: 0.01 USDT tick, 0.0001 BTC lot, qtl 1
    (1, ETH, USDT, 10_000, 10**14, 50),  # ETH-USDT: qtl 1
    (2, ETH, BTC, 100, 10**16, 30),  # ETH-BTC: 1e-6 BTC tick, 0.01 ETH lot, qtl 1
)
ISSUE3_CONFIGS = (
    EngineConfig(
        max_accounts=16, max_assets=4, max_markets=4, max_orders=4096, max_levels_per_side=1024
    ),
    EngineConfig(
        max_accounts=8,
        max_assets=4,
        max_markets=4,
        max_orders=24,
        max_levels_per_side=6,
        max_open_orders_per_account=8,
        max_fills_per_order=5,
        max_triggers_per_command=2,
    ),
)
"""Engines for consumers of ``issue3`` streams: roomy, and small enough that the bounds (open
orders, levels, fills, triggers per command) are reached by short streams."""
_FEE_PPM = st.sampled_from([0, 0, 100, 1_000, 2_500, 7_000])
_ODD_INT = st.sampled_from([0, -1, -(10**6), MAX_AMOUNT_ATOMS, MAX_AMOUNT_ATOMS + 1, 2**63 - 1])


@st.composite
def setup_commands(draw: st.DrawFn, issue3: bool = False) -> list[Command]:
    commands: list[Command] = [
        CreateAsset(asset_id=BTC, symbol="BTC", decimals=8),
        CreateAsset(asset_id=USDT, symbol="USDT", decimals=6),
        CreateAsset(asset_id=ETH, symbol="ETH", decimals=18),
    ]
    if issue3 and draw(st.booleans()):  # a limit set before its markets exist: they copy it
        commands.append(_tier_limit(draw))
    for market_id, base, quote, tick, lot, _mid in MARKETS:
        rules = (
            {
                "price_band_bps": draw(st.sampled_from([0, 0, 500, 2_000])),
                "market_protection_bps": draw(st.sampled_from([0, 0, 300, 1_000])),
                "max_order_qty_atoms": draw(st.sampled_from([0, 0, 10 * lot])),
            }
            if issue3
            else {}
        )
        commands.append(
            CreateMarket(
                market_id=market_id,
                symbol=f"M{market_id}",
                base_asset_id=base,
                quote_asset_id=quote,
                tick_size_atoms=tick,
                lot_size_atoms=lot,
                min_notional_atoms=draw(st.sampled_from([0, 0, 150, 1_000])),
                maker_fee_ppm=draw(_FEE_PPM),
                taker_fee_ppm=draw(_FEE_PPM),
                **rules,
            )
        )
    for account_id in ACCOUNTS:
        commands.append(CreateAccount(account_id=account_id))
        if issue3 and draw(st.integers(0, 2)) == 0:  # KYC tiers meet tier trade limits
            commands.append(
                SetAccountTier(account_id=account_id, tier=draw(st.integers(0, 1)), staff_id="s")
            )
        for asset_id, lot in ((BTC, 10_000), (USDT, 1), (ETH, 10**14)):
            units = draw(st.integers(0, 40_000))
            if units:
                commands.append(
                    Deposit(
                        account_id=account_id,
                        asset_id=asset_id,
                        amount_atoms=units * lot,
                        deposit_key=f"setup-{account_id}-{asset_id}",
                    )
                )
    return commands


def _tier_limit(draw: st.DrawFn) -> SetTierTradeLimit:
    """Mostly a limit in reach of the generated orders' notionals (~100 to 1,200 quote atoms,
    market buys up to 3,000,000), sometimes lifted (0) or refused (tier, asset, amount)."""
    return SetTierTradeLimit(
        tier=draw(st.sampled_from([0, 0, 1, 1, 2, 3, -1, 4])),
        asset_id=draw(st.sampled_from([USDT, USDT, USDT, BTC, ETH, 9])),
        max_order_notional_atoms=draw(st.sampled_from([300, 800, 1_500, 50_000, 0, -1])),
        staff_id="staff-a",
    )


def _value(draw: st.DrawFn, grid: int, low: int, high: int) -> int:
    """A value on the grid most of the time; off-grid, zero, negative or huge sometimes."""
    roll = draw(st.integers(0, 29))
    if roll == 0:
        return draw(_ODD_INT)
    if roll == 1:
        return draw(st.integers(low, high)) * grid + draw(st.integers(1, max(1, grid - 1)))
    return draw(st.integers(low, high)) * grid


def _market(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    if draw(st.integers(0, 49)) == 0:
        return (draw(st.sampled_from([3, 63, -1, 10**6])), BTC, USDT, 1, 1, 1)
    return draw(st.sampled_from(MARKETS))


def _account(draw: st.DrawFn) -> int:
    if draw(st.integers(0, 49)) == 0:
        return draw(st.sampled_from([0, 5, -3, 2**40]))
    return draw(st.sampled_from(ACCOUNTS))


def _client_order_id(draw: st.DrawFn) -> int:
    return draw(st.sampled_from([0, 0, 0, 1, 2, 3, 7, -1]))


def _place(draw: st.DrawFn, issue3: bool) -> PlaceOrder:
    market_id, _base, _quote, tick, lot, mid = _market(draw)
    side = draw(st.sampled_from([Side.BUY, Side.SELL, Side.BUY, Side.SELL, 2]))
    order_type = draw(
        st.sampled_from(
            [OrderType.LIMIT] * 6 + [OrderType.MARKET, OrderType.MARKET, OrderType.LIMIT_MAKER, 7]
        )
    )
    tif = draw(st.sampled_from([TimeInForce.GTC] * 5 + [TimeInForce.IOC, TimeInForce.FOK, 3]))
    price = _value(draw, tick, max(1, mid - 8), mid + 8)
    qty = _value(draw, lot, 1, 12)
    quote_qty = 0
    if order_type == OrderType.MARKET:
        price = draw(st.sampled_from([0] * 20 + [tick]))
        if side == Side.BUY and draw(st.booleans()):
            quote_qty = draw(st.integers(1, 3_000)) * draw(st.sampled_from([1, 1, 10, 1000]))
            qty = draw(st.sampled_from([0] * 20 + [lot]))
    extra: dict[str, int] = {}
    roll = draw(st.integers(0, 19)) if issue3 else 99
    if roll < 6:  # conditional orders (issue 3)
        order_type = draw(st.sampled_from(list(range(3, 9))))
        tif = draw(st.sampled_from([TimeInForce.GTC] * 3 + [TimeInForce.IOC, TimeInForce.FOK]))
        if order_type in (3, 5, 7):
            price = draw(st.sampled_from([0] * 10 + [tick]))
            if side == Side.BUY:
                quote_qty = draw(st.integers(1, 3_000)) * draw(st.sampled_from([1, 10, 1000]))
                qty = draw(st.sampled_from([0] * 10 + [lot]))
        if order_type in (7, 8):
            extra["trailing_delta_bps"] = draw(st.sampled_from([1, 50, 300, 1_000, 0, 10_000]))
            if order_type == 8:
                extra["limit_offset_atoms"] = draw(st.sampled_from([0, tick, 3 * tick, 5]))
        else:
            extra["stop_price_atoms"] = _value(draw, tick, max(1, mid - 8), mid + 8)
    elif roll < 9:  # icebergs
        extra["display_qty_atoms"] = _value(draw, lot, 1, 4)
    if issue3 and draw(st.integers(0, 3)) == 0:
        extra["stp_mode"] = draw(st.sampled_from([1, 2, 3, 4, 4, 5]))
    if issue3 and draw(st.integers(0, 5)) == 0:
        tif = TimeInForce.GTD
        extra["expire_at_ns"] = draw(st.sampled_from([1, 3, 8, 20, -1])) * 1_000
    return PlaceOrder(
        account_id=_account(draw),
        market_id=market_id,
        side=side,
        order_type=order_type,
        time_in_force=tif,
        price_atoms=price,
        qty_atoms=qty,
        quote_qty_atoms=quote_qty,
        client_order_id=_client_order_id(draw),
        **extra,
    )


def _target(draw: st.DrawFn, placed: list[int]) -> tuple[int, int]:
    """(order_id, client_order_id) aimed at a placed order, a client id, or nothing real."""
    roll = draw(st.integers(0, 9))
    if placed and roll < 7:
        return draw(st.sampled_from(placed)), 0
    if roll < 9:
        return 0, _client_order_id(draw)
    return draw(st.sampled_from([0, 10**9, -5])), 0


def _cancel_replace(
    draw: st.DrawFn, place: PlaceOrder, placed: list[int], owners: dict[int, tuple[int, int]]
) -> CancelReplaceOrder:
    """Mostly aimed at an earlier order of its own account and market (so the cancel often
    succeeds and its freed hold funds the new order), sometimes at anything."""
    order_id, client_order_id = _target(draw, placed)
    if owners and draw(st.integers(0, 3)) > 0:
        order_id = draw(st.sampled_from(sorted(owners)))
        client_order_id = 0
        account_id, market_id = owners[order_id]
        place = msgspec.structs.replace(place, account_id=account_id, market_id=market_id)
        if draw(st.booleans()):  # by client order id instead (the order's own, if it had one)
            order_id, client_order_id = 0, _client_order_id(draw)
    return CancelReplaceOrder(
        place=place,
        cancel_order_id=order_id,
        cancel_client_order_id=client_order_id,
        allow_failure=draw(st.booleans()),
    )


@st.composite
def command_streams(
    draw: st.DrawFn, max_commands: int = 60, *, issue3: bool = False
) -> list[Record]:
    """(seq, timestamp_ns, command) records: the setup, then up to ``max_commands`` commands.

    ``issue3`` adds the issue-3 vocabulary: market rules (bands, protection, max size),
    conditional and trailing orders, icebergs, GTD, self-trade prevention, market states,
    Tick, dead-man's switches and cancel-on-disconnect. Off by default so that consumers whose
    event handling predates them (the ledger's order tracker) keep their streams."""
    commands = draw(setup_commands(issue3))
    placed: list[int] = []
    owners: dict[int, tuple[int, int]] = {}
    """placed seq -> (account, market) of the order, for cancel-replaces aimed at it."""
    withdrawals: list[int] = []
    for _ in range(draw(st.integers(1, max_commands))):
        seq = len(commands) + 1
        kind = draw(st.integers(0, 99))
        command: Command
        if kind < 50:
            command = _place(draw, issue3)
            if command.expire_at_ns:  # GTD times are drawn relative to this command's time
                command = msgspec.structs.replace(
                    command, expire_at_ns=command.expire_at_ns + 1_000 * seq
                )
            if issue3 and draw(st.integers(0, 5)) == 0:
                command = _cancel_replace(draw, command, placed, owners)
            owners[seq] = (command.account_id, command.market_id)
            placed.append(seq)
        elif kind < 65:
            market_id = _market(draw)[0]
            order_id, client_order_id = _target(draw, placed)
            command = CancelOrder(
                account_id=_account(draw),
                market_id=market_id,
                order_id=order_id,
                client_order_id=client_order_id,
            )
        elif kind < 85:
            market_id, _b, _q, tick, lot, mid = _market(draw)
            order_id, client_order_id = _target(draw, placed)
            change = draw(st.sampled_from(["price", "qty", "both"]))
            command = AmendOrder(
                account_id=_account(draw),
                market_id=market_id,
                order_id=order_id,
                client_order_id=client_order_id,
                new_price_atoms=_value(draw, tick, max(1, mid - 8), mid + 8)
                if change != "qty"
                else 0,
                new_qty_atoms=_value(draw, lot, 1, 12) if change != "price" else 0,
            )
        elif kind < 90:
            command = CancelAll(
                account_id=_account(draw),
                market_id=draw(st.sampled_from([-1, -1, 0, 1, 2, 9])),
            )
        elif kind < 92 and issue3:
            kind2 = draw(st.integers(0, 15))
            if kind2 < 3:
                command = SetMarketState(
                    market_id=_market(draw)[0],
                    state=draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4])),
                )
            elif kind2 < 6:
                command = Tick()
            elif kind2 < 8:
                command = SetDeadMansSwitch(
                    account_id=_account(draw),
                    fire_at_ns=draw(st.sampled_from([0, -1, 1, 2, 5, 30])) * 1_000 + 1_000 * seq,
                )
            elif kind2 < 9:
                command = CancelOnDisconnect(account_id=_account(draw))
            elif kind2 < 13:  # frozen accounts then meet places, amends and withdrawals
                command = SetAccountFrozen(
                    account_id=_account(draw),
                    frozen=draw(st.sampled_from([True, True, False])),
                    staff_id=draw(st.sampled_from(["staff-a", "staff-b"])),
                )
            elif kind2 < 14:
                command = SetAccountTier(
                    account_id=_account(draw),
                    tier=draw(st.sampled_from([-1, 0, 1, 2, 3, 4])),
                    staff_id="staff-a",
                )
            elif kind2 < 15:
                command = _tier_limit(draw)
            else:  # a replica's record of a stream message it could not run (cluster mode)
                command = RejectStreamMessage(
                    stream_seq=draw(st.integers(1, 10**6)), reason=draw(st.integers(1, 6))
                )
        elif kind < 94:
            key = draw(st.sampled_from(["a", "b", "setup-1-1", f"k{seq}"]))
            command = Deposit(
                account_id=_account(draw),
                asset_id=draw(st.sampled_from([BTC, USDT, ETH, 9])),
                amount_atoms=draw(st.sampled_from([0, 1, 5_000, 10**8, 10**18, -4])),
                deposit_key=key,
            )
        elif kind < 97:
            withdrawal_id = draw(st.sampled_from([*withdrawals[-3:], seq, seq, 0]))
            withdrawals.append(withdrawal_id)
            command = WithdrawRequest(
                withdrawal_id=withdrawal_id,
                account_id=_account(draw),
                asset_id=draw(st.sampled_from([BTC, USDT, ETH, 9])),
                amount_atoms=draw(st.sampled_from([1, 700, 10**6, 10**14, 0])),
            )
        else:
            command = WithdrawResult(
                withdrawal_id=draw(st.sampled_from([*withdrawals[-3:], 12345])),
                success=draw(st.booleans()),
            )
        commands.append(command)
    return [(seq, 1_000 * seq, command) for seq, command in enumerate(commands, start=1)]
