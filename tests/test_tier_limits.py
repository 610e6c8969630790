"""Tier trade limits in both engines (SetTierTradeLimit; docs/engine-semantics.md, "Tier trade
limits").

KYC tier 0 "may deposit and trade up to a limit": the limit is journaled state, so the engine
refuses an order above it (TIER_TRADE_LIMIT) and a replay refuses the same orders. Each scenario
runs through the compiled core and the reference model, which must emit the same events (the
differential streams, tests/streams.py, mix the command in too).
"""

from __future__ import annotations

import msgspec

from engine.core.compiled import CompiledEngine
from engine.reference import ReferenceEngine
from engine.schema import (
    IMAGE_DECODER,
    AmendOrder,
    CreateAsset,
    CreateMarket,
    Deposit,
    OrderAccepted,
    OrderAmended,
    OrderType,
    PlaceOrder,
    Reject,
    SetAccountTier,
    SetTierTradeLimit,
    TierTradeLimitImage,
    TierTradeLimitSet,
    TimeInForce,
    encode_image,
    state_hash,
)
from engine.schema import CreateAccount as NewAccount
from tests.test_account_standing import Both, _rejected

USDT = 10**6
BTC = 10**8
PRICE = 100 * USDT  # 100 USDT per BTC: 1 BTC costs 10**8 USDT atoms


def _order(
    side: int = 0,
    qty_atoms: int = BTC,
    *,
    account: int = 1,
    market: int = 0,
    otype: int = OrderType.LIMIT,
    price_atoms: int = PRICE,
    quote_qty_atoms: int = 0,
    tif: int = TimeInForce.GTC,
) -> PlaceOrder:
    return PlaceOrder(
        account_id=account,
        market_id=market,
        side=side,
        order_type=otype,
        time_in_force=tif,
        price_atoms=price_atoms,
        qty_atoms=qty_atoms,
        quote_qty_atoms=quote_qty_atoms,
    )


def _limit(tier: int, atoms: int, asset: int = 1) -> SetTierTradeLimit:
    return SetTierTradeLimit(
        tier=tier, asset_id=asset, max_order_notional_atoms=atoms, staff_id="c"
    )


def _accepted(events: list) -> bool:
    return any(isinstance(x, OrderAccepted) for x in events)


def test_limit_applies_to_the_tier_in_the_quote_asset_at_place_and_amend() -> None:
    e = Both()
    (ev,) = e.run(_limit(0, 1_000 * USDT))
    assert ev == TierTradeLimitSet(
        seq=e.seq, tier=0, asset_id=1, max_order_notional_atoms=1_000 * USDT, staff_id="c"
    )
    # no tier (operator-made account): never limited
    assert _accepted(e.run(_order(qty_atoms=20 * BTC)))
    e.run(SetAccountTier(account_id=1, tier=0, staff_id="s"))
    assert _rejected(e.run(_order(qty_atoms=10 * BTC + 10_000))) == Reject.TIER_TRADE_LIMIT
    assert _rejected(e.run(_order(1, 10 * BTC + 10_000, price_atoms=200 * USDT))) == (
        Reject.TIER_TRADE_LIMIT  # sells too: the notional at the limit price
    )
    assert _accepted(e.run(_order(qty_atoms=10 * BTC)))  # exactly the limit
    resting = e.seq
    # a market buy by budget is valued at its budget
    budget = _order(otype=OrderType.MARKET, qty_atoms=0, price_atoms=0, tif=TimeInForce.IOC)
    over = msgspec.structs.replace(budget, quote_qty_atoms=1_000 * USDT + 1)
    assert _rejected(e.run(over)) == Reject.TIER_TRADE_LIMIT
    assert _accepted(e.run(msgspec.structs.replace(budget, quote_qty_atoms=1_000 * USDT)))
    # a market order by quantity before any trade cannot be valued
    sell = _order(1, BTC, otype=OrderType.MARKET, price_atoms=0, tif=TimeInForce.IOC)
    assert _rejected(e.run(sell)) == Reject.TIER_TRADE_LIMIT
    # amends: more exposure above the limit refused, a pure decrease always allowed
    up = AmendOrder(account_id=1, market_id=0, order_id=resting, new_qty_atoms=11 * BTC)
    assert _rejected(e.run(up)) == Reject.TIER_TRADE_LIMIT
    e.run(_limit(0, 100 * USDT))  # lowered: the resting order stays
    down = AmendOrder(account_id=1, market_id=0, order_id=resting, new_qty_atoms=5 * BTC)
    assert any(isinstance(x, OrderAmended) for x in e.run(down))
    reprice = AmendOrder(account_id=1, market_id=0, order_id=resting, new_price_atoms=99 * USDT)
    assert _rejected(e.run(reprice)) == Reject.TIER_TRADE_LIMIT
    # another tier, or the limit lifted: not limited
    e.run(SetAccountTier(account_id=1, tier=1, staff_id="s"))
    assert _accepted(e.run(_order(qty_atoms=2 * BTC)))
    e.run(SetAccountTier(account_id=1, tier=0, staff_id="s"))
    assert _rejected(e.run(_order(qty_atoms=2 * BTC))) == Reject.TIER_TRADE_LIMIT
    e.run(_limit(0, 0))
    assert _accepted(e.run(_order(qty_atoms=2 * BTC)))
    assert e.compiled.image() == e.reference.image()
    assert e.compiled.image().tier_trade_limits == []


def test_market_order_valued_at_last_trade_and_new_markets_copy_the_limit() -> None:
    e = Both()
    e.run(NewAccount(account_id=2))
    e.run(Deposit(account_id=2, asset_id=0, amount_atoms=10 * BTC, deposit_key="b2"))
    e.run(SetAccountTier(account_id=1, tier=0, staff_id="s"))
    e.run(_limit(0, 150 * USDT))
    e.run(_order(1, BTC, account=2))  # account 2 (no tier) rests a sell at 100
    assert _accepted(e.run(_order(0, BTC // 2, otype=OrderType.LIMIT, tif=TimeInForce.IOC)))
    # last trade 100: a market sell of 1.5 BTC is 150 USDT, 1.5001 BTC is over
    sell = _order(1, 3 * BTC // 2, otype=OrderType.MARKET, price_atoms=0, tif=TimeInForce.IOC)
    assert _accepted(e.run(sell))
    more = msgspec.structs.replace(sell, qty_atoms=3 * BTC // 2 + 10_000)
    assert _rejected(e.run(more)) == Reject.TIER_TRADE_LIMIT
    # a market created later in the same quote asset copies the limit
    e.run(CreateAsset(asset_id=2, symbol="ETH", decimals=18))
    e.run(
        CreateMarket(
            market_id=1,
            symbol="ETHUSDT",
            base_asset_id=2,
            quote_asset_id=1,
            tick_size_atoms=10_000,
            lot_size_atoms=10**16,
            min_notional_atoms=0,
            maker_fee_ppm=0,
            taker_fee_ppm=0,
        )
    )
    big = _order(0, 2 * 10**18, market=1)  # 2 units at 100: 200 USDT
    assert _rejected(e.run(big)) == Reject.TIER_TRADE_LIMIT
    assert _accepted(e.run(msgspec.structs.replace(big, qty_atoms=10**18)))
    # a limit in another quote asset does not apply here
    e.run(_limit(0, 0))
    e.run(_limit(0, 1, asset=0))
    assert _accepted(e.run(big))
    assert e.compiled.image() == e.reference.image()


def test_refusals_and_the_image_round_trip() -> None:
    e = Both()
    assert _rejected(e.run(_limit(4, 5))) == Reject.INVALID_TIER
    assert _rejected(e.run(_limit(-1, 5))) == Reject.INVALID_TIER
    assert _rejected(e.run(_limit(0, 5, asset=3))) == Reject.UNKNOWN_ASSET
    assert _rejected(e.run(_limit(0, -1))) == Reject.INVALID_AMOUNT
    assert _rejected(e.run(_limit(0, 2**62))) == Reject.INVALID_AMOUNT
    before = e.compiled.image()
    raw = msgspec.msgpack.decode(encode_image(before))
    assert len(raw) == 12  # no flags, no limits: the encoding of images before both fields
    e.run(_limit(2, 7 * USDT))
    e.run(_limit(0, 3 * USDT))
    e.run(_limit(1, 9, asset=0))
    image = e.compiled.image()
    assert image.tier_trade_limits == [
        TierTradeLimitImage(0, 1, 9),
        TierTradeLimitImage(1, 0, 3 * USDT),
        TierTradeLimitImage(1, 2, 7 * USDT),
    ]
    assert image == e.reference.image()
    assert len(msgspec.msgpack.decode(encode_image(image))) == 14
    assert IMAGE_DECODER.decode(encode_image(image)) == image
    for restored in (CompiledEngine.from_image(image), ReferenceEngine.from_image(image)):
        assert restored.image() == image
        assert state_hash(restored.image()) == state_hash(image)
    # a restored compiled core enforces the limits (its markets row carries them)
    e2 = CompiledEngine.from_image(image)
    e2.process([(e.seq + 1, 0, SetAccountTier(account_id=1, tier=0, staff_id="s"))])
    (ev,) = e2.process([(e.seq + 2, 0, _order(qty_atoms=BTC))])
    assert ev.reason == Reject.TIER_TRADE_LIMIT
