"""Run an iterator ahead of its consumer in a second thread: replay reads and parses the
journal while the engine applies the batches before.

Why: a replay of workload (b)'s journal spends about a third of its time reading, checking
(CRC32C, sequence) and parsing records (`engine.core.journalrows.scan_rows`) and the rest in
the engine (`run_batch`). Both are compiled without the GIL (``nogil``), so on a machine with a
second core the two overlap: the wall time of a replay (a node's start-up, `kootabase replay`)
drops to about the engine's share. The CPU time does not change.

Nothing about the result changes either: items reach the consumer in the source's order, one
thread applies them, and an error the source raises (a corrupt record) is raised to the
consumer after every item before it, where the serial loop raised it. At most ``depth`` items
wait (each a ~1 MB stretch of the journal and its rows), and leaving early (an error in the
consumer, a checkpoint mismatch, ``break``) stops and joins the reading thread before the
caller closes the journal under it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
"""End of the source (the queue's last item)."""

_POLL_S = 0.05
"""How often a reader blocked on a full queue checks whether the consumer left."""


class _Raised:
    """An exception of the source, carried through the queue to be raised in order."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(source: Iterable[T], depth: int = 4) -> Iterator[T]:
    """The items of ``source``, produced by a daemon thread up to ``depth`` items ahead.

    The thread starts at the first ``next()``. Exhausting or closing the generator stops
    and joins it; a ``for`` loop that raises or breaks leaves it to be closed when collected,
    so callers that then release what the source reads (a journal's files) close it
    themselves (``contextlib.closing``)."""
    assert depth >= 1
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    leaving = threading.Event()

    def offer(item: object) -> bool:
        """Queue ``item`` unless the consumer left first; False once it has."""
        while not leaving.is_set():
            try:
                items.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as error:  # handed to the consumer, in order
            offer(_Raised(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=produce, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        leaving.set()
        reader.join()


__all__ = ["read_ahead"]
