"""The answer to an HTTP request aiohttp cannot parse, in the dialect's JSON envelope.

aiohttp answers a request it cannot parse (a request line or header over 8 KiB, a bad method,
broken chunked encoding...) from its own request handler, before any route or middleware runs,
with a ``text/plain`` body. Clients of this API parse every error as ``{code, msg}``, so
`JsonErrorRequestHandler` keeps aiohttp's status and connection handling (the connection is
closed: after a parse error nothing more can be read from it) and only changes the body:
``MALFORMED_REQUEST`` with the parser's one-line reason, or ``UNKNOWN`` for a 500 (a handler
raised: a bug, whose traceback goes to the server log, never to the client).

aiohttp has no public switch for its request handler class; `handler_for` builds one from the
`web.Server` exactly as ``Server.__call__`` does (its ``_kwargs`` and ``_loop``).
``tests/test_gateway_exhaustion.py`` pins the behaviour, so an aiohttp change shows there.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.auth import new_origin
from gateway.errors import MALFORMED_REQUEST, UNKNOWN

SERVER_HEADER: Final = "kootabase"
"""Every answer's ``Server`` header: no versions (aiohttp's default names Python's and its own,
and its own error answers bypass the app's ``on_response_prepare``)."""
REASON_CHARS: Final = 200
"""The parser's reason is cut to this many characters (it may quote the offending bytes)."""


def body(status: int, message: str | None) -> bytes:
    """The JSON body for a request aiohttp refused with ``status`` (``message``: its reason)."""
    if status >= 500:
        out = {"code": UNKNOWN, "msg": "An unknown error occurred while processing the request."}
    else:
        reason = (message or HTTPStatus(status).phrase).splitlines()[0][:REASON_CHARS]
        out = {"code": MALFORMED_REQUEST, "msg": f"Malformed HTTP request: {reason}"}
    return json.dumps(out).encode()


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's request handler with a JSON body on the responses it makes itself, and the
    connection's ``origin`` number (`gateway.auth.new_origin`: one handler per connection)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origin = new_origin()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs; raises if half-sent
        resp = web.Response(
            status=plain.status, body=body(plain.status, message), content_type="application/json"
        )
        resp.headers["Server"] = SERVER_HEADER
        resp.force_close()
        return resp


def handler_for(server: web.Server) -> RequestHandler:
    """A new connection's request handler for ``server`` (what ``server()`` would return)."""
    return JsonErrorRequestHandler(server, loop=server._loop, **server._kwargs)
