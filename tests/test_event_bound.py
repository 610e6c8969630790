"""The per-command event-row bound (engine.core.arrays.per_command_event_bound) at its worst step.

The kernel writes event rows without bounds checks once a command's worst case fits, so the
bound must hold: the batch loop fails a command that writes more (ERR_EVENT_BOUND, the engine
raises). The worst matching step is a self-trade decrement against an iceberg: the prevention,
the maker's hold change and the iceberg's refresh, 3 rows (ROWS_PER_STEP).
"""

from __future__ import annotations

import msgspec

from engine.core.arrays import ROWS_PER_ORDER, ROWS_PER_STEP, per_command_event_bound
from engine.schema import (
    Deposit,
    IcebergRefreshed,
    OrderAccepted,
    OrderExpired,
    Posting,
    SelfTradePrevented,
    StpMode,
)
from tests.core_support import CONFIG, QX, USDT, Driver, buy, sell


def test_worst_steps_fit_an_event_buffer_of_one_bound() -> None:
    config = msgspec.structs.replace(CONFIG, max_triggers_per_command=0)
    bound = per_command_event_bound(config)
    assert bound == ROWS_PER_STEP * config.max_fills_per_order + ROWS_PER_ORDER
    d = Driver(config, event_capacity=bound)  # room for exactly one worst case
    d.run(Deposit(account_id=2, asset_id=USDT, amount_atoms=10**12, deposit_key="u2"))
    d.run(*[sell(20, 4, display_qty_atoms=QX) for _ in range(3)])
    events = d.run(buy(20, 5, account_id=2, stp_mode=StpMode.DECREMENT))
    kinds = [type(e) for e in events]
    assert kinds[0] is OrderAccepted
    steps = kinds[2 : 2 + 3 * config.max_fills_per_order]  # after the accepted's hold posting
    assert steps == [SelfTradePrevented, Posting, IcebergRefreshed] * config.max_fills_per_order
    assert kinds[2 + len(steps) :] == [OrderExpired, Posting]  # max fills, then the release
    assert len(d.eng.image().orders) == 3  # every maker decremented by one lot, still resting
