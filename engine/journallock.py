"""The journal's writer lock: one writer per journal directory, and who that writer is.

The lock is a ``flock`` on ``<journal>/LOCK`` (released by the kernel when the holder dies, so
it is never stale). The holder writes what a second process needs to say something useful into
the file: its pid and, once a server is listening, its URL. A second ``kootabase serve`` on the
same data directory then fails with "a server is already running (pid 1234,
http://127.0.0.1:8080)" instead of a bare "locked".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Final

from engine.usererror import UserError

LOCK_NAME: Final = "LOCK"
MAX_NOTE_BYTES: Final = 4_096
"""Bound of the holder note read back from the lock file."""


class JournalLocked(UserError, RuntimeError):
    """Another process holds the journal's writer lock (it is a ``RuntimeError`` as before)."""

    def __init__(self, directory: Path, holder: dict[str, object]) -> None:
        self.directory = directory
        self.holder = holder
        pid, url = holder.get("pid"), holder.get("url")
        if url:
            who = f"a server is already running on this data directory (pid {pid}, {url})"
        elif pid:
            who = f"another kootabase process (pid {pid}) is using this data directory"
        else:
            who = "another kootabase process is using this data directory"
        super().__init__(
            f"journal {directory} is already open by another writer: {who}",
            hint="stop it first, or pass another --data-dir",
        )


def read_holder(directory: Path) -> dict[str, object]:
    """The note the current holder wrote (empty when none can be read)."""
    try:
        with open(directory / LOCK_NAME, "rb") as fh:
            raw = fh.read(MAX_NOTE_BYTES)
        note = json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def holder_if_locked(directory: Path) -> dict[str, object] | None:
    """The holder's note if a writer holds the lock now, else None (creates nothing)."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_holder(directory)
    finally:
        os.close(fd)  # closing releases a shared lock we may have taken
    return None


class WriterLock:
    """Held from construction to `release`; raises `JournalLocked` when another writer has it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._note: dict[str, object] = {"pid": os.getpid()}
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalLocked(directory, read_holder(directory)) from None
        self._fd: int | None = fd
        self._write()

    def note(self, **info: object) -> None:
        """Add to what a second process is told about this holder (e.g. ``url=...``)."""
        self._note.update(info)
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self._note, sort_keys=True).encode()
        assert len(data) <= MAX_NOTE_BYTES, len(data)
        with contextlib.suppress(OSError):  # the note is advice; the flock is the lock
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Clear the note and release the lock; idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)
