"""Garbage-collector settings for a serving process.

Why: the read model keeps every order, trade and balance of the exchange as Python objects, so
the heap grows for as long as the server runs. CPython's cyclic collector walks whole
generations, and with the default thresholds (700 allocations per young collection) a busy
gateway spent about half of its CPU per order in the collector (measured: 95 -> 45 us of CPU
per order in-process, `kootabase bench gateway`'s saturation doubled) and caused the long ack
latency tails. The objects the gateway allocates per request are acyclic and die young; the
long-lived ones are never garbage. So:

- after start-up (journal replay built the read model), everything alive is moved to the
  permanent generation (`gc.freeze`): the collector never walks it again;
- young collections run every ``young_threshold`` allocations instead of 700, so a request's
  temporaries are usually freed by reference counting before the collector ever looks.

Cycles are still collected, just less often; memory is not traded for it beyond a few MB of
young objects.

These are process-wide settings, so only the owner of a serving process applies them
(`gateway.server.serve_forever`, a benchmark's child process), never `gateway.server.start`,
which tests and tools call for many gateways in one process. A frozen object is never
collected, and a gateway and its helpers form reference cycles: a gateway alive at a
`gc.freeze` stayed resident (~230 MB of engine tables) after it stopped, invisible to
`gc.get_objects` and `gc.get_referrers`, which do not look at the permanent generation.
`end_serving` unfreezes when serving ends, so what the server held is collectable.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 100


def tune_for_serving() -> tuple[int, int, int]:
    """Freeze what start-up built and raise the young-generation threshold; returns the
    thresholds before, for `end_serving`."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
    return thresholds


def end_serving(thresholds: tuple[int, int, int]) -> None:
    """Undo `tune_for_serving` when the server stops: unfreeze, so the stopped gateway's
    cycles are collectable, and restore the thresholds."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)
