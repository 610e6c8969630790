"""A reference client that keeps a local order book in sync: the documented procedure, run.

Diff-depth sync (the Binance procedure, with Kootabase's extensions):

1. Open ``/ws/<symbol>@depth@100ms`` (or ``@depth``) and buffer the messages.
2. GET ``/api/v3/depth?symbol=<SYMBOL>&limit=5000``; its ``lastUpdateId`` is ``L``.
3. Drop buffered messages with ``u <= L``.
4. The first message kept must have ``U <= L + 1 <= u``; if ``U > L + 1`` a message was missed:
   go back to 2.
5. Apply each message: for every ``[price, qty]`` in ``b`` and ``a`` set the level to ``qty``
   (an absolute quantity), removing it when ``qty`` is 0.
6. Every later message must continue the previous one: ``U == previous u + 1`` (``pu ==
   previous u``); otherwise a message was lost: go back to 2.
7. After applying a message, the CRC32 of the local top 10 levels (see `marketdata.wire`) must
   equal its ``cs``; otherwise the local book is wrong: go back to 2.

Update ids are journal sequences, so ``u`` also says exactly which commands the book reflects.
Used by the tests and the benchmark; a few lines of any other language do the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from marketdata.wire import checksum_of_levels

_decode = msgspec.json.Decoder().decode


class LocalBook:
    """Levels by price, with the wire strings kept for the checksum."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}

    def load(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.bids = {Decimal(p): (p, q) for p, q in bids}
        self.asks = {Decimal(p): (p, q) for p, q in asks}

    def apply(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for p, q in rows:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = (p, q)

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(bids best first, asks best first) as wire strings."""
        bids = [self.bids[k] for k in sorted(self.bids, reverse=True)[:n]]
        asks = [self.asks[k] for k in sorted(self.asks)[:n]]
        return bids, asks

    def checksum(self) -> int:
        bids, asks = self.top(10)
        return checksum_of_levels(asks, bids)


class DepthSyncClient:
    """Follows one symbol's depth stream and keeps `book` equal to the exchange's book."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        symbol: str,
        stream: str = "depth@100ms",
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.symbol = symbol.upper()
        self.stream = f"{self.symbol.lower()}@{stream}"
        self.book = LocalBook()
        self.last_u = 0
        """``u`` of the last applied message (= journal seq the local book reflects)."""
        self.synced = False
        self.resyncs = 0
        self.gaps = 0
        self.checksum_failures = 0
        self.drop_next = False
        """Test hook: drop the next diff as if the network had lost it."""
        self._fresh = False
        """True until the first message after a snapshot (step 4's looser rule) is applied."""
        self._buffer: list[dict[str, Any]] = []
        self._snapshot: asyncio.Task[dict[str, Any]] | None = None
        self.progress = asyncio.Event()

    async def _fetch_snapshot(self) -> dict[str, Any]:
        url = f"{self.base_url}/api/v3/depth"
        async with self.session.get(url, params={"symbol": self.symbol, "limit": "5000"}) as r:
            r.raise_for_status()
            return _decode(await r.read())  # type: ignore[no-any-return]

    def _resync(self) -> None:
        self.synced = False
        self.resyncs += 1
        self._buffer.clear()
        self._snapshot = asyncio.ensure_future(self._fetch_snapshot())

    async def run(self) -> None:
        """Connect and follow the stream until cancelled."""
        async with self.session.ws_connect(f"{self.base_url}/ws/{self.stream}") as ws:
            self.resyncs = -1  # the first snapshot is not a resync
            self._resync()
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                event = _decode(msg.data)
                if self.drop_next:
                    self.drop_next = False
                    continue
                self._on_event(event)
                if not self.synced and self._snapshot is not None and self._snapshot.done():
                    self._load(self._snapshot.result())
                self.progress.set()

    def _on_event(self, event: dict[str, Any]) -> None:
        if not self.synced:
            self._buffer.append(event)
            return
        if event["u"] <= self.last_u:
            return  # older than the snapshot
        if self._fresh:
            contiguous = event["U"] <= self.last_u + 1
        else:
            contiguous = event["U"] == self.last_u + 1 and event["pu"] == self.last_u
        if not contiguous:
            self.gaps += 1
            self._resync()
            self._buffer.append(event)
            return
        self._apply(event)

    def _load(self, snapshot: dict[str, Any]) -> None:
        last = snapshot["lastUpdateId"]
        kept = [e for e in self._buffer if e["u"] > last]
        self._buffer.clear()
        if kept and kept[0]["U"] > last + 1:
            self._resync()  # the snapshot is older than the first buffered message
            self._buffer.extend(kept)
            return
        self.book.load(snapshot["bids"], snapshot["asks"])
        self.last_u = last
        self.synced = True
        self._fresh = True
        for i, event in enumerate(kept):
            self._on_event(event)
            if not self.synced:
                self._buffer.extend(kept[i + 1 :])
                return

    def _apply(self, event: dict[str, Any]) -> None:
        self._fresh = False
        self.book.apply(event["b"], event["a"])
        self.last_u = event["u"]
        if self.book.checksum() != event["cs"]:
            self.checksum_failures += 1
            self._resync()

    async def wait_for(self, seq: int, timeout: float = 10.0) -> None:
        """Wait until the local book is synced and reflects journal sequence ``seq``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.synced and self.last_u >= seq):
            if self._snapshot is not None and self._snapshot.done() and not self.synced:
                self._load(self._snapshot.result())
                continue
            self.progress.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"book not synced to {seq} (at {self.last_u}, synced={self.synced})"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), min(remaining, 0.05))
