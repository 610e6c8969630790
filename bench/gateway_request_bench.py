"""The WS order-entry request side alone, per order: ``python -m bench.gateway_request_bench
[--orders 200000]``, one JSON line.

`bench.gateway_front_bench` times the whole loop thread; its request side (decode, validation,
rate limits, queueing) moves by more than a change to it is worth on the shared two-core machine.
Here the bench's order frames go through `gateway.wsapi._dispatch` on a logged-on session of a
real gateway, with the bridge's queue replaced by a sink: nothing reaches the engine and nothing
is answered, so what is timed is the request side only, as with 64 orders outstanding (the
store-based prechecks skipped, the account being in flight). Rounds of 10,000 orders are timed
on the loop thread (`time.thread_time`); the minimum round is the figure least disturbed by
other processes (contention only ever adds), the median is printed beside it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.gateway_bench import funded_gateway
from bench.gateway_front_bench import _TAILS, _Sink, run_cli

ROUND_ORDERS = 10_000


async def _measure(orders: int) -> dict[str, Any]:
    import gateway
    from gateway import wsapi

    with tempfile.TemporaryDirectory(prefix="kootabase-gwreq-") as tmp:
        gw, _, creds = await funded_gateway(Path(tmp), False, 1)
        gw.trading.bridge.submit_cb = lambda command, reply: None  # the sink
        session = wsapi.Session(gw, None, "127.0.0.1", _Sink())  # type: ignore[arg-type]
        session.key = gw.keys.get(creds[0][0])
        frames = [f'{{"id":{i}{_TAILS[i & 1]}' for i in range(ROUND_ORDERS)]
        rounds, refused = [], 0
        for _ in range(1 + max(1, orders // ROUND_ORDERS)):  # the first warms memos up
            t = time.thread_time()
            for frame in frames:
                wsapi._dispatch(session, frame)
            rounds.append((time.thread_time() - t) / ROUND_ORDERS * 1e6)
            refused += len(session._outbox) // 2  # header and payload per answer
            session._outbox.clear()
        us = sorted(rounds[1:])
        return {
            "orders": len(us) * ROUND_ORDERS,
            "request_us_min": round(us[0], 3),
            "request_us_median": round(us[len(us) // 2], 3),
            "answered_at_once": refused,  # refusals: 0 when every order was queued
            "gateway": os.path.dirname(gateway.__file__),
        }


def main() -> None:
    run_cli(__doc__, _measure, 200_000)


if __name__ == "__main__":
    main()
