"""The compiled matching core: numba kernels over flat numpy arrays.

`engine.core.compiled.CompiledEngine` is the entry point; it implements
docs/engine-semantics.md exactly like the reference model (engine/reference).

Numba's on-disk cache (``cache=True``) keys each function on its own source file only, so an
edit to a helper in another module would leave a stale compiled caller behind. Importing this
package therefore stamps the cache with a hash of every module of the package (and of
``engine.schema``, whose constants the kernels freeze) and clears the package's cached kernels
when the stamp does not match.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _guard_numba_cache() -> None:
    here = Path(__file__).resolve().parent
    digest = hashlib.blake2b(digest_size=16)
    # The kernels also freeze constants of engine.schema (codes, kinds, field layouts) at
    # compile time, so its sources count too, and `journalrows` compiles the journal's
    # record scan (and its format's constants) into its own kernel.
    sources = sorted(here.glob("*.py")) + sorted((here.parent / "schema").glob("*.py"))
    sources += [here.parent / "journalscan.py", here.parent / "journalformat.py"]
    for path in sources:
        digest.update(f"{path.parent.name}/{path.name}".encode())
        digest.update(path.read_bytes())
    stamp = digest.hexdigest()
    # Where numba puts this package's cache: next to the sources, or in NUMBA_CACHE_DIR under
    # "<dirname>_<sha1 of the directory path>" (numba.core.caching.UserProvidedCacheLocator).
    dirs = [here / "__pycache__"]
    custom = os.environ.get("NUMBA_CACHE_DIR")
    if custom:
        hashed = hashlib.sha1(str(here).encode()).hexdigest()
        dirs.append(Path(custom) / f"{here.name}_{hashed}")
    for cache_dir in dirs:
        stamp_file = cache_dir / "kootabase-core-sources.stamp"
        try:
            if stamp_file.exists() and stamp_file.read_text() == stamp:
                continue
            if cache_dir.is_dir():
                for pattern in ("*.nbi", "*.nbc"):
                    for cached in cache_dir.glob(pattern):
                        cached.unlink(missing_ok=True)
            cache_dir.mkdir(parents=True, exist_ok=True)
            stamp_file.write_text(stamp)
        except OSError:
            pass  # a read-only tree: numba then compiles in memory or uses its own cache dir


_guard_numba_cache()
