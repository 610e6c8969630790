"""The gateway's aiohttp application (`GatewayHttp`, a part of `gateway.app.Gateway`): the
routes of every API mounted on one app, ``/metrics``, ``/ready``, ``/health``, and the start-up,
shutdown and cleanup hooks that start and stop the gateway's background parts with the server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp import web_app as _aiohttp_web_app

from gateway.auth import same_secret
from gateway.malformed import SERVER_HEADER

if TYPE_CHECKING:
    from gateway.app import Gateway

GATEWAY_KEY: web.AppKey[Gateway] = web.AppKey("gateway")


class GatewayHttp:
    """The aiohttp half of `gateway.app.Gateway` (uses its config, health, bridge, metrics,
    custody, dead-man's switches and ``close``)."""

    config: Any
    health: Any
    metrics: Any
    node: Any
    aml: Any
    bridge: Any
    custody: Any
    dead_mans: Any
    marketdata: Any
    order_counts: Any
    _order_counts_task: asyncio.Task[None] | None

    def app(self) -> web.Application:
        from gateway import admin, openapi, rest, webui, wsapi

        app = web.Application(
            client_max_size=self.config.limits.max_message_bytes,
            middlewares=[rest.middleware(self)],
        )
        app[GATEWAY_KEY] = self
        rest.setup(app, self)
        wsapi.setup(app, self)
        admin.setup(app, self)
        openapi.setup(app, self)
        webui.setup(app, self)
        if self.config.backoffice:
            from backoffice import routes as backoffice_routes

            backoffice_routes.setup(app, self, self.config.backoffice_dsn)
        if self.marketdata is not None:
            from marketdata.app import setup_marketdata

            setup_marketdata(app, self.marketdata)
        if not self.config.metrics_separate:
            app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/health", self.health.handle)
        app.on_response_prepare.append(_server_header)
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    def metrics_app(self) -> web.Application:
        """``/metrics`` and ``/health`` alone, for ``--metrics-host/--metrics-port``: scrapers
        on an operations network, never the trading port."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self.health.handle)
        app.on_response_prepare.append(_server_header)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        token = self.config.metrics_token
        if token is not None:
            sent = request.headers.get("Authorization", "")
            if not same_secret(sent, f"Bearer {token}"):
                return web.Response(
                    status=401,
                    text="metrics: bearer token required\n",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    async def _ready(self, request: web.Request) -> web.Response:
        """Readiness for a load balancer: 503 once this process stopped serving (failed
        closed; in cluster mode its replica diverged or failed). The reason is in the body."""
        if not self.health.ready:
            reason = self.health.failure or self.bridge_failure or "closed"
            return web.json_response({"ready": False, "reason": reason}, status=503)
        return web.json_response({"ready": True, "lastSeq": self.last_seq})

    async def _startup(self, app: web.Application) -> None:
        if self.custody is not None:  # cluster mode: one custody gateway, before anything runs
            await self.custody.claim()
        if self.node is None:
            from gateway.cluster import attach

            await attach(self)
        if self.aml is not None:  # before the bridge: its rebuild must see a still journal
            from backoffice.routes import BACKOFFICE_KEY

            await self.aml.start(app[BACKOFFICE_KEY].store.db)
        self.bridge.start()
        self._order_counts_task = asyncio.get_running_loop().create_task(
            self.order_counts.keep_saved(lambda: self.last_seq)
        )
        self.dead_mans.start()
        self.health.start()
        if self.custody is not None:
            await self.custody.recover()
            self.custody.start()

    async def _shutdown(self, app: web.Application) -> None:
        from gateway import wsapi

        await self.dead_mans.stop()
        await wsapi.close_all(self)
        if self._order_counts_task is not None:
            self._order_counts_task.cancel()

    async def _cleanup(self, app: web.Application) -> None:
        await self.close()
        forget_middleware_chains()


def forget_middleware_chains() -> None:
    """Empty aiohttp's process-wide cache of handlers wrapped in their middlewares.

    Why: aiohttp (>= 3.10.6, aio-libs/aiohttp#9158) keeps, for speed, an LRU cache of 1024
    entries keyed by (route handler, applications), so every application that served a request
    stays reachable from the ``aiohttp.web_app`` module after its server stopped, and with it
    its gateway and the engine tables (~230 MB): tests and tools that start gateways one after
    another in one process grew without bound. Called when an application is cleaned up (its
    server no longer answers); the applications still serving in this process rebuild their
    entries on their next request (one `functools.update_wrapper` per route)."""
    cache = getattr(_aiohttp_web_app, "_cached_build_middleware", None)
    if cache is not None:  # a private name: absent in another aiohttp, nothing to forget
        cache.cache_clear()


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    """No versions in the ``Server`` header (aiohttp's default names Python's and its own)."""
    response.headers["Server"] = SERVER_HEADER
