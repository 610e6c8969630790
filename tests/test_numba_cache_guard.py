"""The stale-kernel guard of `engine.core`: numba's disk cache keys a kernel on its own file, so
the package clears its cached kernels whenever any of its sources, or engine.schema's (whose
constants the kernels freeze), changes. Runs in subprocesses with a private NUMBA_CACHE_DIR."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import engine.core


def _import_core(cache_root: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_root)}
    subprocess.run([sys.executable, "-c", "import engine.core"], check=True, env=env, timeout=60)


def test_cached_kernels_are_cleared_when_the_stamp_changes(tmp_path: Path) -> None:
    here = Path(engine.core.__file__).resolve().parent
    cache = tmp_path / f"{here.name}_{hashlib.sha1(str(here).encode()).hexdigest()}"
    cache.mkdir()
    stale = cache / "kernel.place-1.py311.nbi"
    stale.write_bytes(b"compiled from other sources")
    (cache / "kootabase-core-sources.stamp").write_text("an older tree")
    _import_core(tmp_path)
    assert not stale.exists()
    stamp = (cache / "kootabase-core-sources.stamp").read_text()
    assert stamp != "an older tree"

    kept = cache / "kernel.place-1.py311.nbi"
    kept.write_bytes(b"compiled from these sources")
    _import_core(tmp_path)  # same sources, same stamp: the cache stays
    assert kept.exists() and (cache / "kootabase-core-sources.stamp").read_text() == stamp
