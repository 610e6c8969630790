"""Defaults of the gateway's in-memory history bounds, in one place the CLI can read without
importing the store (and so numpy, msgspec structures and the engine's schema) for ``--help``.

`gateway.store.Store` applies them, `gateway.config.GatewayConfig` carries them, and
``serve --history-memory-orders`` / ``--history-held-rows`` default to them
(docs/history.md).
"""

from __future__ import annotations

from typing import Final

MEMORY_ORDERS: Final = 50_000
"""Default bound of the recently-closed-order cache (all accounts together; ~0.5 KB each)."""
HELD_ROWS: Final = 200_000
"""``--history pg``: closed orders and trades held for PostgreSQL at most (~0.5 KB each)."""
