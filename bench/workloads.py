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
"""

from __future__ import annotations

from collections.abc import Callable

from bench.generator import Generator, SimulatorFactory, default_simulator, pick
from bench.specs import (
    BTC_USDT,
    BTC_USDT_DEEP,
    DEEP_SKEW,
    MIX_A,
    MIX_B_ISSUE3,
    SOL_USDT_DEEP,
    Record,
    Workload,
)
from engine.schema import EngineConfig

__all__ = ["WORKLOADS", "Record", "Workload", "workload_a", "workload_b"]


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


WORKLOADS: dict[str, Callable[..., Workload]] = {"a": workload_a, "b": workload_b}
