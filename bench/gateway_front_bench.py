"""The WS order-entry front's CPU per order, in one process: ``python -m bench.gateway_front_bench
[--orders 61440]``, one JSON line.

Why beside `bench.gateway_bench`: on a shared two-core machine the end-to-end bench's server CPU
per order moves by +-20 % from run to run with the other jobs, more than a change to the front
is worth. Here a real gateway (fsync'd journal, market data, history index) gets the bench's
orders (8 logged-on sessions, LIMIT GTC BUY/SELL at one price, 64 outstanding each) straight
into the WS API's request handler (`gateway.wsapi._dispatch`); each session's transport is a
byte sink, so sockets and aiohttp's frame parsing are left out. Windows of 4,096 orders are
timed on the loop thread (`time.thread_time`), split into the request side (decode, validation,
rate limits, queueing), the answers (`gateway.bridge.answer_batch`: rendering, encoding,
queueing frames) and the flushes; the minimum over the windows is the figure least disturbed
by other processes (contention only ever adds), the median is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.gateway_bench import funded_gateway

WINDOW_ORDERS = 4_096
CLIENTS = 8
OUTSTANDING = 64
_TAILS = tuple(
    (
        f',"method":"order.place","params":{{"symbol":"BTCUSDT","side":"{side}","type":"LIMIT",'
        '"timeInForce":"GTC","quantity":"0.0010","price":"30000.00"}}'
    )
    for side in ("BUY", "SELL")
)


class _Sink:
    """A session's transport that only counts what it is given."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


async def _measure(orders: int) -> dict[str, Any]:
    import gateway.bridge as bridge_module
    from gateway import wsapi

    spent = {"request": 0.0, "answer": 0.0, "flush": 0.0}
    answer_batch, flush = bridge_module.answer_batch, wsapi.Session._flush

    def timed_answers(*args: Any) -> None:
        t = time.thread_time()
        answer_batch(*args)
        spent["answer"] += time.thread_time() - t

    def timed_flush(session: Any) -> None:
        t = time.thread_time()
        flush(session)
        spent["flush"] += time.thread_time() - t

    bridge_module.answer_batch = timed_answers  # type: ignore[assignment]
    wsapi.Session._flush = timed_flush  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="kootabase-gwfront-") as tmp:
        gw, _, creds = await funded_gateway(Path(tmp), True, CLIENTS)
        sessions = []
        for api_key, _secret in creds:
            session = wsapi.Session(gw, None, "127.0.0.1", _Sink())  # type: ignore[arg-type]
            session.key = gw.keys.get(api_key)
            sessions.append(session)
        sent = 0

        async def run(n: int) -> None:
            nonlocal sent
            end = sent + n
            while sent < end:
                t = time.thread_time()
                for session in sessions:
                    for _ in range(OUTSTANDING):
                        wsapi._dispatch(session, f'{{"id":{sent}{_TAILS[sent & 1]}')
                        sent += 1
                spent["request"] += time.thread_time() - t
                while gw.trading.inflight:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.01)  # the flushes

        await run(WINDOW_ORDERS)  # warm-up: memos, first batches
        per_order: dict[str, list[float]] = {k: [] for k in ("loop", "process", *spent)}
        for _ in range(max(1, orders // WINDOW_ORDERS)):
            spent.update(dict.fromkeys(spent, 0.0))
            t0, c0 = time.thread_time(), time.process_time()
            await run(WINDOW_ORDERS)
            per_order["loop"].append(time.thread_time() - t0)
            per_order["process"].append(time.process_time() - c0)
            for k, v in spent.items():
                per_order[k].append(v)
        out: dict[str, Any] = {"orders": sent - WINDOW_ORDERS}
        for k, values in per_order.items():
            values.sort()
            us = [v / WINDOW_ORDERS * 1e6 for v in values]
            out[f"{k}_us_min"] = round(us[0], 2)
            out[f"{k}_us_median"] = round(us[len(us) // 2], 2)
        out["bytes_out"] = sum(s._transport.bytes for s in sessions)  # type: ignore[attr-defined]
        return out


def run_cli(doc: str, measure: Callable[[int], Awaitable[dict[str, Any]]], orders: int) -> None:
    """``--orders N`` (default ``orders``), one JSON line of ``measure(N)`` (also
    `bench.gateway_request_bench`'s)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=orders)
    args = parser.parse_args()
    from engine.logsetup import configure_logging

    configure_logging("warning")
    print(json.dumps(asyncio.run(measure(args.orders))), flush=True)
    os._exit(0)  # the gateway's threads and server are not worth an orderly stop here


def main() -> None:
    run_cli(__doc__, _measure, 61_440)


if __name__ == "__main__":
    main()
