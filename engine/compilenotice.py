"""Saying why the first start is slow: numba compiles the engine's kernels once, then caches.

`engine.core` keeps its compiled kernels on disk (next to the sources, or under
``NUMBA_CACHE_DIR``) and clears them when any of its sources changes. Without them, importing
`engine.core.compiled` compiles every kernel, which takes a minute or more; a server that is
silent for that long looks hung, so ``kootabase serve`` announces it first.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Final

COLD_COMPILE_S: Final = (60, 180)
"""Seconds to compile every kernel without a cache (measured ~100 s on 2 busy cores)."""


def _cache_dir() -> Path:
    import engine.core  # runs the stale-cache guard first

    here = Path(engine.core.__file__).resolve().parent
    custom = os.environ.get("NUMBA_CACHE_DIR")
    if custom:  # numba.core.caching.UserProvidedCacheLocator's layout
        return Path(custom) / f"{here.name}_{hashlib.sha1(str(here).encode()).hexdigest()}"
    return here / "__pycache__"


def kernels_cached() -> bool:
    """Whether compiled kernels are on disk for the current sources."""
    cache = _cache_dir()
    return cache.is_dir() and next(cache.glob("*.nbi"), None) is not None


def announce_compilation(log: Any) -> None:
    """Log one line before a cold compile (nothing when the cache is warm)."""
    if not kernels_cached():
        low, high = COLD_COMPILE_S
        log.info(
            "compiling_engine",
            detail=f"first start: compiling the matching engine with "
            f"numba, about {low}-{high} s; later starts use the on-disk cache",
        )
