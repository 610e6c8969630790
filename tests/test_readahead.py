"""`engine.readahead.read_ahead`: the source's items in order, its error in its place, and no
reading thread left behind however the consumer leaves."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from engine.readahead import read_ahead


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead"]


class Source:
    """A generator that records how far it got and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.produced = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[int]:
        try:
            for i in range(self.count):
                if i == self.fail_at:
                    raise ValueError(f"corrupt record at {i}")
                self.produced += 1
                yield i
        finally:
            self.closed.set()


@pytest.mark.parametrize("depth", [1, 2, 4, 100])
def test_items_arrive_in_order(depth: int) -> None:
    source = Source(1_000)
    assert list(read_ahead(source, depth)) == list(range(1_000))
    assert source.closed.is_set()
    assert _readers() == []


def test_the_error_comes_after_every_item_before_it() -> None:
    got: list[int] = []
    with pytest.raises(ValueError, match="corrupt record at 37"):
        for item in read_ahead(Source(100, fail_at=37), depth=3):
            got.append(item)
    assert got == list(range(37))
    assert _readers() == []


def test_an_empty_source() -> None:
    assert list(read_ahead(Source(0))) == []
    assert _readers() == []


def test_leaving_early_stops_the_reader_and_closes_the_source() -> None:
    source = Source(1_000_000)
    items = read_ahead(source, depth=2)
    with contextlib.closing(items):
        for item in items:
            if item == 5:
                break
    assert _readers() == []
    assert source.closed.is_set()
    # the reader ran at most the queue's depth (and the item in its hands) past the consumer
    assert source.produced <= 6 + 2 + 1


def test_an_error_in_the_consumer_stops_the_reader() -> None:
    source = Source(1_000_000)
    items = read_ahead(source, depth=2)
    with pytest.raises(RuntimeError), contextlib.closing(items):
        for item in items:
            if item == 3:
                raise RuntimeError("checkpoint mismatch")
    assert _readers() == []
    assert source.closed.is_set()


def test_nothing_starts_before_the_first_item_is_asked_for() -> None:
    source = Source(10)
    items = read_ahead(source)
    assert _readers() == [] and source.produced == 0
    items.close()
    assert source.produced == 0
