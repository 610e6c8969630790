"""File modes of everything the exchange writes: private from the first byte (issue 11).

Journal segments, snapshots, read-model images, key files and tokens hold either secrets or
the whole trading history, so they are created with their final mode (``os.open`` with 0600:
no moment at 0644 between a create and a chmod), and the data directory is 0700, which also
covers files other libraries create inside it (SQLite's). A temporary file left over from a
crash is removed first: ``O_CREAT`` alone would keep an old file's looser mode.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

PRIVATE_FILE: Final = 0o600
PRIVATE_DIR: Final = 0o700


def create_private(path: Path, *, append: bool = False) -> int:
    """A new file at ``path`` (a stale one is replaced), open for writing, mode 0600."""
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (os.O_APPEND if append else 0)
    return os.open(path, flags, PRIVATE_FILE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file at ``path`` (fsync'd)."""
    fd = create_private(path)
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(fd, view[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or tighten it to 0700 if group or others can read it."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIR)
    return path


def tighten(path: Path, mode: int) -> None:
    """Drop group/other bits from an existing file or directory (data made by older
    versions); never loosens anything."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        os.chmod(path, current & ~0o077 & (mode | 0o700))
