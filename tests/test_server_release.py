"""A stopped gateway gives its memory back to the process.

Why: tests, benchmarks and tools start many gateways in one process. `gateway.server.start`
used to `gc.freeze` the heap (a serving-process tuning, `gateway.gctune`), which pinned every
gateway alive at the time (with its ~230 MB of prefaulted engine tables) for the rest of the
process: the suite in one process grew to 24 GB and was OOM-killed. The gateway and its helpers
form reference cycles, so only the cyclic collector frees them, and it never looks at frozen
objects. And aiohttp caches each route handler wrapped in its middlewares in a process-wide
LRU cache (1024 entries) whose keys hold the application, so every gateway that answered a
request stayed reachable from it after stopping (`gateway.httpapp`).
"""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

from gateway.gctune import YOUNG_THRESHOLD, end_serving, tune_for_serving
from tests.gateway_support import ServerThread, http

CYCLES = 3
GROWTH_BOUND_MB = 120
"""RSS growth allowed over the cycles after the first (a kept server is ~230 MB each)."""


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_stopped_servers_are_freed_and_rss_does_not_grow(tmp_path: Path) -> None:
    survivors: list[weakref.ref[object]] = []
    rss_mb: list[float] = []
    for i in range(CYCLES + 1):
        server = ServerThread(tmp_path / str(i), fixture_accounts=False)
        assert server.gw.node is not None
        # requests through the middleware: aiohttp caches each (handler, apps) it wrapped
        for path in ("/api/v3/ping", "/api/v3/time", "/health"):
            assert http("GET", server.http + path)[0] == 200
        # the engine's biggest table: what the leak kept resident
        survivors += [weakref.ref(server.gw), weakref.ref(server.gw.node.engine._a.ords)]
        server.stop()
        del server
        gc.collect()
        rss_mb.append(_rss_mb())
    alive = [ref() for ref in survivors if ref() is not None]
    assert not alive, f"{len(alive)} of {len(survivors)} stopped gateways/engine tables alive"
    assert gc.get_freeze_count() == 0
    growth_mb = rss_mb[-1] - rss_mb[0]
    assert growth_mb < GROWTH_BOUND_MB, f"RSS after each stopped server (MB): {rss_mb}"


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_serving_gc_tunes_while_serving_and_then_lets_go() -> None:
    before = gc.get_threshold()
    kept = _Cycle()
    ref = weakref.ref(kept)
    thresholds = tune_for_serving()
    try:
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
        del kept
        gc.collect()
        assert ref() is not None, "frozen while serving: the collector skips it"
    finally:
        end_serving(thresholds)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None, "a cycle alive while serving is collectable once serving ends"
