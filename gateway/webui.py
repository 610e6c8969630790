"""The trading page and the operations console (issue 16), served from the front end's build.

The pages are TypeScript built by Vite into ``web/dist`` (``scripts/build-web.sh``; ``make
run`` and ``make test`` build it when missing; the build is not committed). This module only
serves those files: ``/`` (trading), ``/console`` (operations) and ``/web/assets/<name>``
(content-hashed, so cached for a year). Everything the pages do goes through the public APIs
(REST, WS API, market-data streams) and the operator's ``/admin`` endpoints, like any client.

Every page and asset answer carries a Content-Security-Policy that allows scripts, styles and
connections from this origin only and no inline script, and refuses framing. The pages keep
their credentials in ``sessionStorage`` and send them as headers (an API key's signature, a
bearer token, the admin token): no cookie is ever set, so a cross-site request carries none
and there is nothing for CSRF to ride on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from gateway.app import Gateway

WEB_DIST: Final = Path(__file__).resolve().parent.parent / "web" / "dist"
"""Where ``npm run build`` puts the pages (a source checkout: the project is installed
editable, so this is the checkout's ``web/dist``)."""

CSP: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PAGES: Final = {"/": "index.html", "/console": "console.html"}
ASSET_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,80}(?:\.[A-Za-z0-9]{1,8}){1,2}$")
CONTENT_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".map": "application/json",
}
NOT_BUILT: Final = (
    "The web pages are not built. From the project's folder run `make web` (needs node and "
    "npm), or `make run`, which builds them when missing.\n"
)


def setup(app: web.Application, gw: Gateway, dist: Path = WEB_DIST) -> None:
    """Add the pages' routes (GET only; nothing else under these paths)."""

    def page(name: str) -> web.Response:
        path = dist / name
        try:
            body = path.read_bytes()
        except OSError:
            return web.Response(status=503, text=NOT_BUILT, headers=SECURITY_HEADERS)
        return web.Response(
            body=body,
            content_type="text/html",
            charset="utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )

    async def pages(request: web.Request) -> web.Response:
        return page(PAGES[request.path])

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        suffix = name[name.rfind(".") :]
        if not ASSET_NAME.fullmatch(name) or suffix not in CONTENT_TYPES:
            raise web.HTTPNotFound(text="no such asset\n")
        try:
            body = (dist / "assets" / name).read_bytes()
        except OSError:
            raise web.HTTPNotFound(text="no such asset\n") from None
        return web.Response(
            body=body,
            headers={
                **SECURITY_HEADERS,
                "Content-Type": CONTENT_TYPES[suffix],
                "Cache-Control": "public, max-age=31536000, immutable",
            },
        )

    for path in PAGES:
        app.router.add_get(path, pages)
    app.router.add_get("/web/assets/{name}", asset)
