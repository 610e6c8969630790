"""The fan-out hub on real socket transports: one joined write per subscriber per flush, the
delivered-frame counters the benchmark reports, and a closed subscriber dropped on the way."""

from __future__ import annotations

import asyncio
import socket

from marketdata.fanout import Hub, Subscriber, text_frame


def _read_all(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_flush_writes_each_group_once_and_counts_frames() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        hub = Hub()
        peers: list[socket.socket] = []
        subs: list[Subscriber] = []
        for combined in (False, False, True):
            ours, theirs = socket.socketpair()
            transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
            sub = Subscriber(transport, combined)  # type: ignore[arg-type]
            hub.set_streams(sub, {"btcusdt@trade"})
            peers.append(theirs)
            subs.append(sub)
        payloads = [b'{"e":"trade","t":1}', b'{"e":"trade","t":2}', b'{"e":"trade","t":3}']
        for p in payloads:
            hub.publish("btcusdt@trade", p)
            hub.publish("ethusdt@trade", p)  # nobody follows it: not queued
        assert hub.messages_published == 3
        await asyncio.sleep(0)  # the scheduled flush runs
        raw = b"".join(text_frame(p) for p in payloads)
        wrapped = b"".join(
            text_frame(b'{"stream":"btcusdt@trade","data":' + p + b"}") for p in payloads
        )
        assert [_read_all(s) for s in peers] == [raw, raw, wrapped]
        assert hub.frames_written == 9
        assert hub.bytes_written == 2 * len(raw) + len(wrapped)

        # A subscriber whose transport is closing is dropped at the next flush, not written.
        subs[0].transport.close()
        hub.publish("btcusdt@trade", payloads[0])
        await asyncio.sleep(0)
        assert hub.subscriber_count == 2
        assert hub.frames_written == 11
        assert hub.slow_disconnects == 0
        assert _read_all(peers[1]) == text_frame(payloads[0])
        for sub in subs[1:]:
            sub.transport.close()
        for s in peers:
            s.close()

    asyncio.run(run())
