"""``kootabase marketdata --nats URL``: a market-data-only replica of the cluster's stream.

Order entry stays on the gateways; this process runs its own engine replica over the command
stream (`engine.follower.Follower`: hash cross-check included), starting from the newest
verified engine and market-data snapshot the gateways stored (`gateway.clustersnap`), and
feeds every batch's events to a `MarketDataService`, which serves the same REST and WS
market-data endpoints as a gateway (books, trades, klines, tickers, diff streams). Subscribers
scale out by adding these, without touching order entry. It publishes no command and stores no
snapshot: the NATS ``replica`` user (records checkpoints, loads snapshots) is enough
(docs/operations.md).

It catches up with the stream before it listens, so its first answer is current. ``/ready`` is
200 while its replica is healthy, 503 once it stopped (divergence, failure).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal

import structlog
from aiohttp import web

from engine.follower import Follower
from engine.replica import Applied
from engine.streamlog import StreamLog, options_from_args
from gateway.clusterstart import load_start_point
from marketdata import snapshot as md_snapshot
from marketdata.app import create_app
from marketdata.service import MarketDataService

log = structlog.get_logger(__name__)


async def serve(args: argparse.Namespace) -> None:
    options, spec = options_from_args(args, "kootabase-marketdata")
    service = MarketDataService()
    app = create_app(service)

    def feed(applied: Applied) -> None:
        if applied.events:
            service.feed_events(applied.ts_ns, applied.events, applied.last_seq)

    follower = Follower(None, f"md-{secrets.token_hex(4)}", "marketdata", feed)

    async def ready(request: web.Request) -> web.Response:
        if not follower.healthy:
            return web.json_response({"ready": False, "reason": follower.failure}, status=503)
        return web.json_response({"ready": True, "lastSeq": follower.replica.last_seq})

    app.router.add_get("/ready", ready)
    stream_log = await StreamLog.connect(options, spec, create=False)
    try:
        start = await load_start_point(stream_log, need_marketdata=True, need_history=False)
    except Exception as exc:  # e.g. a user without snapshot reads: replay the stream instead
        log.warning("cluster_start_point_unavailable", error=repr(exc))
        start = None
    if start is not None:  # verified engine + market data at one point: only the tail to apply
        assert start.readmodel.marketdata is not None
        md_snapshot.restore(service.state, start.readmodel.marketdata)
        follower.replica = start.replica
        follower.snapshot_stream_seq = start.stream_seq
    # reads snapshots, never stores one: the ``replica`` NATS role may not (engine.natsauth)
    await follower.attach(stream_log, snapshot_every=0)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    log.info(
        "marketdata_serving",
        host=args.host,
        port=args.port,
        stream=spec.name,
        last_seq=follower.replica.last_seq,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await follower.close()


def run_cli(args: argparse.Namespace) -> int:
    try:
        options_from_args(args, "kootabase-marketdata")
    except ValueError as exc:
        raise SystemExit(f"kootabase marketdata: {exc}") from None
    asyncio.run(serve(args))
    return 0
