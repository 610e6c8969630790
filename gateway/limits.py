"""The server's limits (rates, connections, timeouts) and the ``kootabase serve`` flags that set
them: one table, so the flags, their defaults and the ``serve --config`` keys derived from them
(`gateway.serveconfig`) cannot drift apart. docs/security.md lists them with their meaning.

Kept free of heavy imports: the CLI builds its parser from this module at every start.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Final


@dataclass(frozen=True, slots=True)
class Limits:
    weight_per_minute: int = 6_000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    connections_per_ip: int = 300
    """Open TCP connections per client IP, on every endpoint (`gateway.connlimit`)."""
    ban_after: int = 50
    """Refused (429) requests in one window before the caller is banned."""
    ban_seconds: float = 120.0
    max_ban_seconds: float = 3 * 86_400.0
    max_message_bytes: int = 64 * 1024
    ws_heartbeat_s: float = 20.0
    """Ping interval; a peer that does not answer a ping within it is closed."""
    idle_timeout_s: float = 600.0
    """A WS API connection that sends no request for this long is closed."""
    max_connection_s: float = 86_400.0
    """Any WebSocket connection (WS API, market data) is closed after this long."""
    http_idle_timeout_s: float = 30.0
    """An HTTP connection must send a complete request head within this long, when it opens
    and between keep-alive requests, or it is closed (slowly trickled headers, silent
    sockets)."""
    body_timeout_s: float = 10.0
    """A request body must arrive within this long once its head has (else 408)."""
    log_lines_per_minute: int = 20
    """Lines about malformed or failed HTTP requests written per minute; more are counted."""
    ack_timeout_s: float = 10.0
    """After this an order request is answered 'status unknown' (5xx)."""
    tick_interval_s: float = 0.05
    """Minimum spacing of the ``Tick`` commands the gateway journals while a dead-man's switch
    is armed and due (`gateway.deadman`): bounds both how late a switch fires on an idle
    exchange and how fast ticks can grow the journal."""
    dead_mans_min_ms: int = 100
    """Shortest ``deadMansSwitch.set`` timeout (0 disarms). A shorter one could elapse before
    the command is even journaled, which the engine refuses."""
    dead_mans_max_ms: int = 86_400_000
    """Longest ``deadMansSwitch.set`` timeout (24 h): a switch is a liveness check, not a
    scheduled cancel."""


FLAGS: Final[tuple[tuple[str, str, str], ...]] = (
    # (flag, Limits field, help)
    (
        "--weight-per-minute",
        "weight_per_minute",
        "REQUEST_WEIGHT per IP and per API key per minute",
    ),
    ("--orders-per-10s", "orders_per_10s", "new orders per account per 10 seconds"),
    (
        "--orders-per-day",
        "orders_per_day",
        "new orders per account per UTC day (kept across restarts)",
    ),
    (
        "--connections-per-ip",
        "connections_per_ip",
        "open TCP connections per client IP, every endpoint",
    ),
    ("--ban-after", "ban_after", "refused requests in one minute before a temporary ban (418)"),
    ("--ban-seconds", "ban_seconds", "first ban length; doubles on each repeat"),
    ("--ws-idle-timeout", "idle_timeout_s", "seconds a WS API connection may send nothing"),
    ("--max-connection-seconds", "max_connection_s", "lifetime of any WebSocket connection"),
    (
        "--http-idle-timeout",
        "http_idle_timeout_s",
        "seconds an HTTP connection gets to send a complete request head",
    ),
    ("--body-timeout", "body_timeout_s", "seconds a request body gets to arrive"),
    (
        "--log-lines-per-minute",
        "log_lines_per_minute",
        "log lines about malformed HTTP requests per minute",
    ),
)


def _positive(kind: type) -> object:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text}")
        return value  # type: ignore[no-any-return]

    parse.__name__ = kind.__name__
    return parse


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """The limit flags of ``kootabase serve``, in their own help section."""
    defaults = Limits()
    kinds = {f.name: f.type for f in fields(Limits)}
    group = parser.add_argument_group(
        "limits", "rate limits, connection caps and timeouts (docs/security.md)"
    )
    for flag, name, text in FLAGS:
        default = getattr(defaults, name)
        kind = int if kinds[name] in (int, "int") else float
        group.add_argument(
            flag,
            dest=name,
            type=_positive(kind),
            default=default,  # type: ignore[arg-type]
            metavar="N" if kind is int else "S",
            help=f"{text} (default: {default:g})",
        )


def limits_from_args(args: argparse.Namespace) -> Limits:
    """`Limits` with every flag given on the command line or in the config file applied."""
    return Limits(
        **{
            name: getattr(args, name)
            for _, name, _ in FLAGS
            if getattr(args, name, None) is not None
        }
    )
