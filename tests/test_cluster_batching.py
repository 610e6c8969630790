"""Cluster mode's publisher: how requests become stream messages (real NATS on 127.0.0.1:4222).

While a batch is in flight, the next waits for its acknowledgement or for its linger deadline
(`gateway.clusterbridge`): every stream message costs every replica and NATS node the same
whatever it holds, so pipelining one-order batches multiplied the per-order CPU at moderate
load. These tests pin the rule both ways, with every request still answered in order.
"""

from __future__ import annotations

import asyncio

from engine.core.compiled import CompiledEngine
from engine.replica import Replica
from engine.schema import EngineConfig, OrderType, PlaceOrder, Side
from engine.streamlog import NatsOptions, StreamLog
from gateway.clusterbridge import ClusterBridge
from tests.cluster_support import stream_on


async def _run(
    spec_name: str, linger_s: float, n: int, interval_s: float = 0.0
) -> dict[str, object]:
    """Submit ``n`` orders one loop iteration apart (the publisher runs between any two, an
    acknowledgement takes several: flusher, server, read loop); the stream messages' sizes,
    the most batches ever in flight at once, and the engine sequences of the answers."""
    from engine.streamlog import StreamSpec

    sizes: list[int] = []
    most_inflight = 0
    bridge = ClusterBridge(
        Replica(CompiledEngine(EngineConfig())),
        lambda *_: None,
        linger_s=linger_s,
        interval_s=interval_s,
        on_commands=lambda applied: sizes.append(len(applied.commands)),
    )
    stream_log = await StreamLog.connect(NatsOptions(), StreamSpec(name=spec_name))
    await bridge.attach(stream_log)
    bridge.start()
    try:
        futures = []
        for i in range(n):
            order = PlaceOrder(
                account_id=1 + i,  # no such account: rejected by the engine, still journaled
                market_id=1,
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                price_atoms=1,
                qty_atoms=1,
            )
            futures.append(bridge.submit(order))
            await asyncio.sleep(0)
            most_inflight = max(most_inflight, len(bridge._pending))
        results = await asyncio.wait_for(asyncio.gather(*futures), 30)
    finally:
        await bridge.close()
    return {"sizes": sizes, "most_inflight": most_inflight, "seqs": [r[0] for r in results]}


def _applied_sizes(out: dict[str, object]) -> list[int]:
    sizes = out["sizes"]
    assert isinstance(sizes, list)
    return sizes


def test_a_batch_in_flight_holds_the_next_until_acknowledged() -> None:
    """A long linger: never two batches in flight, the requests arriving meanwhile go out
    together once the first is acknowledged; all answered, in submission order."""
    with stream_on() as spec:
        out = asyncio.run(_run(spec.name, linger_s=5.0, n=60))
    sizes = _applied_sizes(out)
    assert out["most_inflight"] == 1
    assert sum(sizes) == 60
    seqs = out["seqs"]
    assert seqs == sorted(seqs) and len(set(seqs)) == 60  # type: ignore[arg-type]
    assert len(sizes) < 60, f"one order per message: {sizes}"


def test_linger_zero_pipelines_at_once() -> None:
    """Linger 0 is the old rule: a batch goes out as soon as a slot is free, so with requests
    arriving faster than acknowledgements several are in flight at once."""
    with stream_on() as spec:
        out = asyncio.run(_run(spec.name, linger_s=0.0, n=60))
    assert sum(_applied_sizes(out)) == 60
    assert out["most_inflight"] > 1  # type: ignore[operator]


def test_publish_interval_gathers_what_arrives_meanwhile() -> None:
    """``--publish-interval-ms``: the first request of an idle gateway goes out at once, the
    ones arriving within the interval after it go out together as the next message."""
    with stream_on() as spec:
        out = asyncio.run(_run(spec.name, linger_s=0.0, n=60, interval_s=0.5))
    sizes = _applied_sizes(out)
    assert sum(sizes) == 60
    assert sizes[0] == 1, sizes  # not held: nothing was published before it
    assert len(sizes) == 2, f"more than one message within the interval: {sizes}"
    seqs = out["seqs"]
    assert seqs == sorted(seqs) and len(set(seqs)) == 60  # type: ignore[arg-type]
