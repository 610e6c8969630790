"""The first connection to NATS, bounded and explained in one line.

nats-py retries a failed first connect for as long as it is allowed to (our options reconnect
forever, which is right once connected). So the first connect is bounded
(`NatsOptions.first_connect_s`) and its failure is one `UserError` naming the URLs and what
went wrong in words ("connection refused", "host name not found"), not an exception's repr.
A server that refuses the credentials is not worth waiting for: that answer is final at once
(a retry sends the same credentials), and says to check them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats
from nats.aio.client import Client

from engine.neterrors import describe as network_error
from engine.usererror import UserError

if TYPE_CHECKING:
    from engine.streamlog import NatsOptions

CREDENTIALS_HINT = (
    "check the NATS credentials: --nats-user with $KOOTABASE_NATS_PASSWORD, --nats-creds or "
    "--nats-nkey (and the server's authorization block)"
)
REACH_HINT = "check --nats (host and port) and that the NATS servers run"


def refused_credentials(exc: BaseException) -> bool:
    """The server's answer to wrong or missing credentials (``-ERR 'Authorization
    Violation'``, an expired or revoked user JWT)."""
    if isinstance(exc, nats.errors.AuthorizationError):
        return True
    text = str(exc).lower()
    return "authorization violation" in text or "authentication" in text


def describe(exc: BaseException) -> str:
    """What went wrong, in words (no exception class names, no reprs)."""
    if refused_credentials(exc):
        return "the server refused the credentials"
    if isinstance(exc, OSError | TimeoutError):
        return network_error(exc)
    if isinstance(exc, nats.errors.TimeoutError):
        return "no answer (timed out)"
    return _server_text(exc) or "no answer"


def _server_text(exc: BaseException) -> str:
    """nats-py's text of a server error without its decoration (``nats: 'Authorization
    Violation'`` -> ``Authorization Violation``)."""
    return str(exc).strip().removeprefix("nats:").strip(" '\"")


async def first_connect(
    options: NatsOptions,
    *,
    after_error: Callable[[Exception], Awaitable[None]],
    client: Client | None = None,
    **callbacks: Any,
) -> Client:
    """Connect with ``options`` within ``options.first_connect_s`` or raise `UserError`;
    ``after_error`` gets the errors once connected (before, they explain the failure).
    ``client``: connect this (unconnected) client instead of a new plain one (the stream
    log's `engine.natsdirect.DirectClient`)."""
    connected = False
    errors: list[Exception] = []
    refused: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

    async def error(exc: Exception) -> None:
        if connected:
            await after_error(exc)
            return
        errors[:] = [exc]
        if refused_credentials(exc) and not refused.done():
            refused.set_result(exc)

    where = ",".join(options.servers)

    async def connect() -> Client:
        nc = client if client is not None else Client()
        await nc.connect(**options.connect_kwargs(), error_cb=error, **callbacks)
        return nc

    task = asyncio.ensure_future(connect())
    try:
        done, _ = await asyncio.wait(
            {task, refused}, timeout=options.first_connect_s, return_when="FIRST_COMPLETED"
        )
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task in done and task.exception() is None:
        connected = True
        return task.result()
    if refused in done:
        given = options.creds_file or options.nkey_seed_file or options.user
        what = "refused the credentials" if given else "needs credentials (none were given)"
        raise UserError(
            f"NATS at {where} {what}: {_server_text(refused.result())}", hint=CREDENTIALS_HINT
        )
    last = errors[-1] if errors else (task.exception() if task in done else None)
    why = f": {describe(last)}" if last is not None else ""
    raise UserError(
        f"cannot reach NATS at {where} within {options.first_connect_s:g} s{why}",
        hint=REACH_HINT,
    )


async def check_reachable(options: NatsOptions) -> None:
    """Connect once and close: `UserError` (one line) when NATS cannot be reached or refuses
    the credentials. Start-up checks this before it prints or opens anything."""

    async def ignore(exc: Exception) -> None:
        return None

    nc = await first_connect(options, after_error=ignore)
    await nc.close()
