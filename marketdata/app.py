"""Mounting market data on an aiohttp application.

The gateway builds the main app and calls `setup_marketdata(app, service)`, which adds the
routes at the root (``/api/v3/...``, ``/ws``, ``/stream``) and starts/stops the service's
timers with the app. `create_app` makes a stand-alone app (tests, benchmark).
"""

from __future__ import annotations

from aiohttp import web

from marketdata import rest, ws
from marketdata.rest import SERVICE_KEY
from marketdata.service import MarketDataService


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v3/depth", rest.depth),
        web.get("/api/v3/depthL3", rest.depth_l3),
        web.get("/api/v3/trades", rest.trades),
        web.get("/api/v3/aggTrades", rest.agg_trades),
        web.get("/api/v3/avgPrice", rest.avg_price),
        web.get("/api/v3/klines", rest.klines),
        web.get("/api/v3/uiKlines", rest.klines),
        web.get("/api/v3/ticker/24hr", rest.ticker_24hr),
        web.get("/api/v3/ticker/bookTicker", rest.book_ticker),
        web.get("/api/v3/ticker/price", rest.price_ticker),
        web.get("/ws", ws.raw_stream),
        web.get("/ws/{streams:.+}", ws.raw_stream),
        web.get("/stream", ws.combined_stream),
    ]


def setup_marketdata(
    app: web.Application, service: MarketDataService, *, start_timers: bool = True
) -> None:
    """Add the market-data routes to ``app`` and tie the service's timers to its lifetime.

    ``start_timers=False`` leaves pacing to the caller (tests call `MarketDataService.tick`)."""
    app[SERVICE_KEY] = service
    app.add_routes(routes())
    if not start_timers:
        return

    async def _start(_: web.Application) -> None:
        service.start()

    async def _stop(_: web.Application) -> None:
        await service.stop()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)


def create_app(service: MarketDataService, *, start_timers: bool = True) -> web.Application:
    app = web.Application()
    setup_marketdata(app, service, start_timers=start_timers)
    return app
