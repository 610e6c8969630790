"""The cyclic garbage collector paused around a CPU-bound loop that allocates nothing cyclic.

A replay builds numpy row arrays and small tuples by the million; the collector would walk the
young generation again and again for no garbage it could find, a cost that varies with what
else the process holds. ``kootabase replay`` and ``kootabase bench replay`` both time their
loop with it paused, so the two report the same work.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Collect once, then disable the collector until the block ends; afterwards it is as it
    was (a caller that had it disabled keeps it disabled)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
