"""Deterministic benchmark workloads for the matching engine.

A workload is four things: an `EngineConfig`, *setup* records (assets, markets, accounts,
deposits: admin commands, which only go through ``Engine.process``), *prefill* records (the
resting orders that build the book) and the *stream* (the commands a benchmark times). Setup
and prefill run before any clock starts. Everything derives from ``(name, seed, commands)``
through one `random.Random` (Mersenne Twister, seeded from a string, so neither
``PYTHONHASHSEED`` nor the machine changes it): the same arguments always give the same
records, byte for byte (`Workload.digest`).

**(a) exchange-core mix** (`workload_a`), after the single-pair throughput test of
exchange-core (Java): one market (BTC-USDT), 1,000 funded accounts, a prefilled book of 1,000
resting orders over ~750 price levels, then a stream of

- 9 % GTC limit orders, passive (bids below the mid, asks above it: they never cross),
- 3 % IOC limit orders that cross the touch and take liquidity,
- 6 % cancels of an open order,
- 82 % moves: ``AmendOrder`` with a new price on the same side (priority lost, never crosses).

**(b) crypto mix, deep book** (`workload_b`): two markets (BTC-USDT 60 %, SOL-USDT 40 % of
the flow), 10,000 accounts, a prefilled book of 100,000 resting orders (denser near the
touch), then a stream of

- 40 % GTC limit: 35 % passive, 5 % marketable (priced through the touch: fill, then rest),
- 10 % IOC/FOK limit: 6 % IOC, 4 % FOK (an unfillable FOK expires; that is not a rejection),
- 10 % market: 4 % sell by quantity, 3 % buy by quantity, 3 % buy by quote amount,
- 25 % cancels,
- 15 % amends: 10 % price moves (same side, non-crossing), 5 % quantity decreases (priority kept).

Since issue 3 those shares are scaled to 85 % and the stream adds 10 % conditional orders
(stop-market sells by quantity and buys by quote budget, stop-limit and take-profit-limit,
triggers a few ticks from the last trade price, so they fire as the price wanders) and 5 %
iceberg limit orders (passive, a third of the size displayed).

Why a scratch engine: every generated cancel or amend must target an order that is still
open, otherwise the benchmark would time the reject path. Passive orders, cancels and moves
have a known effect, so the generator applies them to its `BookModel` at once; which makers a
taker consumed depends on price-time priority, so after every command that can trade the
generator runs the pending records through a scratch engine and applies the ``Trade`` events
(as exchange-core's generator simulates its own book). The model therefore follows the engine's
real semantics, and the rejections the scratch engine reports are the workload's rejections.

Book depth stays stable by feedback, not by luck: a taker's size grows when the book is
deeper than its prefilled size and shrinks when it is shallower.

**(c) insert-only** (`workload_c`), a published C++ order book's own benchmark stream, so the
compiled engine can be compared with it on its home ground: ``commands`` GTC limit orders from
glibc ``srand(3)``/``rand()`` (`bench.crand`, bit-identical to the C library), order ``i`` a
buy when ``i`` is even; per order the price draw comes first, then the quantity draw: buys at
``1880 + rand() % 10`` ticks, sells at ``1884 + rand() % 10``, quantity ``rand() % 10 + 1``
lots of 100 units. Buys come from 16 accounts, sells from 16 others (no self-trades). At 2M
orders and seed 3: 917,708 trades and 987,103 orders resting on 14 levels (very deep queues).
Here the engine also keeps balances, holds, fees, postings and events, which the C++ book
does not. No scratch engine is needed: the stream does not depend on what traded.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

import numpy as np

from bench.crand import glibc_rand
from bench.generator import Generator, SimulatorFactory, default_simulator, pick
from bench.specs import (
    BTC_USDT,
    BTC_USDT_DEEP,
    DEEP_SKEW,
    MIX_A,
    MIX_B_ISSUE3,
    SOL_USDT_DEEP,
    TS_STEP_NS,
    Record,
    Workload,
)
from engine.schema import (
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)

__all__ = ["WORKLOADS", "Record", "Workload", "insert_only_draws", "workload_a", "workload_b",
           "workload_c"]  # fmt: skip


def workload_a(
    seed: int = 0,
    commands: int = 1_000_000,
    *,
    accounts: int = 1_000,
    resting: int = 1_000,
    simulator: SimulatorFactory = default_simulator,
) -> Workload:
    """The exchange-core mix (module docstring): shallow book, moves dominate."""
    gen = Generator("a", seed, EngineConfig(), [BTC_USDT], accounts, simulator)
    setup = gen.setup()
    prefill = gen.prefill([resting])
    levels = gen.total_levels()
    gen.counting = True
    m = BTC_USDT
    for _ in range(commands):
        kind = pick(gen.rng, MIX_A)
        done = (
            (kind == "ioc" and gen.place_taker(m, "ioc", consume=1.0))
            or (kind == "cancel" and gen.cancel())
            or (kind == "move" and gen.move())
        )
        if not done:  # also the fallback when the book (or one side) is empty
            gen.place_passive(m, gen.rng.randrange(2), "gtc")
        gen.note_depth()
    return gen.finish("a", seed, setup, prefill, levels)


def workload_b(
    seed: int = 0,
    commands: int = 500_000,
    *,
    accounts: int = 10_000,
    resting: int = 100_000,
    simulator: SimulatorFactory = default_simulator,
) -> Workload:
    """The crypto mix on a deep book (module docstring)."""
    markets = [BTC_USDT_DEEP, SOL_USDT_DEEP]
    gen = Generator("b", seed, EngineConfig(), markets, accounts, simulator)
    setup = gen.setup()
    btc = int(resting * BTC_USDT_DEEP.weight)
    prefill = gen.prefill([btc, resting - btc])
    levels = gen.total_levels()
    gen.counting = True
    # takers are 25 % of the flow, adds 40 %, cancels 25 %: each taker should remove ~0.6 makers
    # (about 0.4 of a maker's mean size: many fills are partial)
    consume = 0.4
    for _ in range(commands):
        kind = pick(gen.rng, MIX_B_ISSUE3)
        m = gen.market()
        if kind == "conditional":
            done = gen.place_conditional(m)
        elif kind == "iceberg":
            gen.place_passive(m, gen.rng.randrange(2), "iceberg", DEEP_SKEW, iceberg=True)
            done = True
        elif kind == "gtc":
            gen.place_passive(m, gen.rng.randrange(2), "gtc", DEEP_SKEW)
            done = True
        elif kind == "cancel":
            done = gen.cancel()
        elif kind == "amend_price":
            done = gen.move("amend_price", DEEP_SKEW)
        elif kind == "amend_qty":
            done = gen.reduce()
        else:
            done = gen.place_taker(m, kind, consume)
        if not done:
            gen.place_passive(m, gen.rng.randrange(2), "gtc", DEEP_SKEW)
        gen.note_depth()
    return gen.finish("b", seed, setup, prefill, levels)


INSERT_ONLY_SEED = 3
"""The C++ benchmark's ``srand(3)``: the default seed of workload (c)."""
INSERT_ONLY_ACCOUNTS = 16
"""Buyers are accounts 1..16, sellers 17..32."""
INSERT_ONLY_CONFIG = EngineConfig(max_orders=1 << 20, max_open_orders_per_account=1 << 16)
"""~987k orders rest at 2M, up to 31,063 on one account: the bound leaves 2x room."""
_INSERT_TICK_ATOMS = 100  # quote (2 decimals): one price unit is one tick, 1.00 quote
_INSERT_LOT_ATOMS = 100  # base (2 decimals): 100 quantity units are one lot, 1.00 base


def insert_only_draws(seed: int, orders: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, price_ticks, qty_lots) of the insert-only stream, one entry per order.

    Two ``rand()`` draws per order, price first: exactly the C++ benchmark's loop.
    """
    draws = glibc_rand(seed, 2 * orders).reshape(orders, 2) % 10
    side = (np.arange(orders, dtype=np.int64) & 1).astype(np.int64)  # even i: BUY (0)
    price = np.where(side == Side.BUY, 1880, 1884) + draws[:, 0]
    qty = draws[:, 1] + 1
    return side, price, qty


def workload_c(seed: int = INSERT_ONLY_SEED, commands: int = 2_000_000) -> Workload:
    """The insert-only stream of a C++ order book's benchmark (module docstring)."""
    setup: list[Record] = []

    def emit(command: object) -> None:
        seq = len(setup) + 1
        setup.append((seq, seq * TS_STEP_NS, command))  # type: ignore[arg-type]

    emit(CreateAsset(asset_id=1, symbol="USD", decimals=2))
    emit(CreateAsset(asset_id=2, symbol="XBT", decimals=2))
    emit(CreateMarket(market_id=1, symbol="XBT-USD", base_asset_id=2, quote_asset_id=1,
                      tick_size_atoms=_INSERT_TICK_ATOMS, lot_size_atoms=_INSERT_LOT_ATOMS,
                      min_notional_atoms=1, maker_fee_ppm=100, taker_fee_ppm=200))  # fmt: skip
    for account in range(1, 2 * INSERT_ONLY_ACCOUNTS + 1):
        emit(CreateAccount(account_id=account))
        buyer = account <= INSERT_ONLY_ACCOUNTS
        emit(Deposit(account_id=account, asset_id=1 if buyer else 2,
                     amount_atoms=10**12 if buyer else 10**10,
                     deposit_key=f"bench-c:{account}"))  # fmt: skip
    side, price, qty = insert_only_draws(seed, commands)
    first = len(setup) + 1
    stream: list[Record] = []
    append = stream.append
    limit, gtc = int(OrderType.LIMIT), int(TimeInForce.GTC)
    paused = gc.isenabled()
    gc.disable()  # millions of new tuples would trigger full collections for nothing
    try:
        for i, (s, p, q) in enumerate(
            zip(side.tolist(), price.tolist(), qty.tolist(), strict=True)
        ):
            seq = first + i
            account = 1 + (i >> 1) % INSERT_ONLY_ACCOUNTS + (INSERT_ONLY_ACCOUNTS if s else 0)
            append((seq, seq * TS_STEP_NS,
                    PlaceOrder(account_id=account, market_id=1, side=s, order_type=limit,
                               time_in_force=gtc, price_atoms=p * _INSERT_TICK_ATOMS,
                               qty_atoms=q * _INSERT_LOT_ATOMS)))  # fmt: skip
    finally:
        if paused:
            gc.enable()
    buys = int(commands - int(side.sum()))
    return Workload(
        name="c", seed=seed, config=INSERT_ONLY_CONFIG, setup=setup, prefill=[], stream=stream,
        mix={"gtc_buy": buys, "gtc_sell": commands - buys}, rejected=0,
        resting_after_prefill=0, levels_after_prefill=0, resting_at_end=-1, levels_at_end=-1,
        min_resting=0, max_resting=-1, simulator="none (the stream does not depend on fills)",
    )  # fmt: skip


WORKLOADS: dict[str, Callable[..., Workload]] = {
    "a": workload_a,
    "b": workload_b,
    "c": workload_c,
}
