"""The direct NATS paths of cluster mode (`engine.natsdirect`), on the machine's real NATS.

The replica's push consumer and the publishers' PubAcks bypass nats-py's per-message
dispatch. These tests pin that nothing of what nats-py derived changes: the same
`StreamMessage` for every stored message as the audit path (nats-py's own `Msg`) reads, the
same header value for any header block, and the same outcomes of a publish: stored, a
duplicate, no stream, a JetStream error, no answer in time.
"""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client

from engine.natsdirect import header_value
from engine.replica import FORMAT_HEADER, StreamMessage
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from tests.cluster_support import stream_on

HEADER_BLOCKS = [
    b"NATS/1.0\r\nNats-Msg-Id: a\r\nKb-Format: 1\r\n\r\n",
    b"NATS/1.0\r\nKb-Format:1\r\n\r\n",
    b"NATS/1.0\r\n Kb-Format :\t2 \r\n\r\n",
    b"NATS/1.0\r\nKb-Format: 1\r\nKb-Format: 2\r\n\r\n",  # the last one wins
    b"NATS/1.0\r\nkb-format: 1\r\n\r\n",  # names are case-sensitive
    b"NATS/1.0\r\nKb Format: 1\r\n\r\n",
    b"NATS/1.0\r\nKb-Format\r\n\r\n",  # no colon: not a header line
    b"NATS/1.0\r\nKb-Format: \xff1\r\n\r\n",
    b"NATS/1.0\r\nKb-Format: a:b\r\n\r\n",
    b"NATS/1.0\r\nX: Kb-Format: 3\r\n\r\n",
    b"NATS/1.0\r\n\r\n",
    b"",
]


@pytest.mark.parametrize("raw", HEADER_BLOCKS)
def test_header_value_is_what_nats_py_parses(raw: bytes) -> None:
    parsed = Client._parse_header_lines(raw[10:]) if len(raw) > 2 else {}
    assert header_value(raw or None, FORMAT_HEADER) == parsed.get(FORMAT_HEADER)


async def _follow_and_read(name: str) -> tuple[list[StreamMessage], list[StreamMessage]]:
    sl = await StreamLog.connect(NatsOptions(), StreamSpec(name=name))
    try:
        for i in range(40):  # with this build's format, another format, and none at all
            fmt = "1" if i % 3 else "other"
            await sl.publish(b"x" * i, f"m{i}", fmt=fmt)
        await sl.nc.publish(sl.spec.subject, b"no headers")
        await sl.nc.flush()
        got: list[StreamMessage] = []
        sub = await sl.follow(1, got.append)
        for _ in range(200):
            if len(got) >= 41:
                break
            await asyncio.sleep(0.02)
        await sl.unfollow(sub)
        read = [m async for m in sl.read(1, 41)]
        return got, read
    finally:
        await sl.close()


def test_follow_delivers_what_the_audit_path_reads() -> None:
    """Every message once, in order, with the stream's sequence, its stored timestamp, its
    format header (or none) and its body: equal to nats-py's ordered-consumer read."""
    with stream_on() as spec:
        got, read = asyncio.run(_follow_and_read(spec.name))
    assert [m.stream_seq for m in got] == list(range(1, 42))
    assert got == read
    assert got[0].format == "other" and got[1].format == "1" and got[-1].format is None


async def _publish_outcomes(name: str) -> dict[str, object]:
    sl = await StreamLog.connect(NatsOptions(), StreamSpec(name=name))
    out: dict[str, object] = {}
    try:
        first = await sl.publish(b"a", "same-id", fmt="1")
        again = await sl.publish(b"a", "same-id", fmt="1")
        out["first"], out["again"] = (
            (first.stream_seq, first.duplicate),
            (
                again.stream_seq,
                again.duplicate,
            ),
        )
        acks = sl._acks
        assert acks is not None
        for label, subject, headers in (
            ("no stream", f"kb.{name}.nobody", {}),
            ("wrong stream", sl.spec.subject, {"Nats-Expected-Stream": name + "X"}),
        ):
            try:
                await acks.publish(subject, b"b", headers, 2.0)
                out[label] = "stored"
            except Exception as exc:
                out[label] = exc
        silent = await sl.nc.subscribe(f"kb.{name}.silent")  # listens, never answers
        try:
            await acks.publish(f"kb.{name}.silent", b"c", {}, 0.2)
            out["silent"] = "stored"
        except Exception as exc:
            out["silent"] = exc
        await silent.unsubscribe()
        out["last"] = await sl.last_sequence()
    finally:
        await sl.close()
    return out


def test_publish_outcomes_are_those_of_js_publish() -> None:
    with stream_on() as spec:
        out = asyncio.run(_publish_outcomes(spec.name))
    assert out["first"] == (1, False)
    assert out["again"] == (1, True)  # Nats-Msg-Id dedup: one copy, reported duplicate
    assert isinstance(out["no stream"], nats.js.errors.NoStreamResponseError)
    assert isinstance(out["wrong stream"], nats.js.errors.APIError)
    assert isinstance(out["silent"], nats.errors.TimeoutError)
    assert out["last"] == 1  # none of the failed publishes was stored
