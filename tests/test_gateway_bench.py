"""The gateway benchmark's lean load generator against real servers.

Short loads only (well under 20 s in all): what is checked is that the lean WebSocket client
really places orders the server acknowledges, that rejections are counted, and that a server that
stops answering makes a load raise instead of hang.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from pathlib import Path

import pytest
from websockets.speedups import apply_mask as c_apply_mask

from bench import gateway_bench, wsload
from gateway.admin import Admin
from gateway.ratelimit import Limits
from tests.gateway_support import ServerThread


def test_accept_key_is_rfc6455() -> None:
    # the worked example of RFC 6455 section 1.3
    assert wsload.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_pure_mask_matches_the_c_one() -> None:
    for n in (0, 1, 3, 4, 5, 125, 126, 1000):
        data, mask = os.urandom(n), os.urandom(4)
        assert wsload.apply_mask_pure(data, mask) == c_apply_mask(data, mask)
        assert wsload.apply_mask_pure(wsload.apply_mask_pure(data, mask), mask) == data


@pytest.mark.timeout(60)
def test_short_run_acknowledges_every_order() -> None:
    began = time.monotonic()
    fixed, saturation = gateway_bench.run(clients=2, seconds=0.5, loads=(500,), warmup=0)
    assert fixed.offered == 500 and saturation.offered is None
    assert fixed.orders == 250  # every scheduled order was answered
    assert saturation.orders >= 2 * 64  # at least the first window of each connection
    for r in (fixed, saturation):
        assert r.errors == 0  # all answered with status 200
        assert 0 < r.p50_ms <= r.p99_ms <= r.p999_ms < math.inf
        assert r.orders_per_s > 0
        assert 0 <= r.client_us_per_order < math.inf
        assert 0 <= r.server_us_per_order < math.inf
    assert time.monotonic() - began < 20


def _load_in_process(
    tmp_path: Path, *, idle_s: float = 0.0, limits: Limits | None = None
) -> gateway_bench.LoadResult:
    """50 orders (200/s for 0.25 s) from an account without funds, on an in-process server,
    after ``idle_s`` seconds of an idle connection."""
    server = ServerThread(tmp_path, limits, fixture_accounts=False)
    try:
        broke = server.call(Admin(server.gw).create_account(("read", "trade")))
        assert broke.secret is not None
        port = server.running.port

        async def load() -> gateway_bench.LoadResult:
            conn = await gateway_bench._client("127.0.0.1", port, broke.api_key, broke.secret)
            try:
                await asyncio.sleep(idle_s)
                return await gateway_bench._run_load([conn], [0], 200, 0.25, os.getpid())
            finally:
                await conn.close()

        return asyncio.run(load())
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_rejected_orders_are_counted_as_errors(tmp_path: Path) -> None:
    result = _load_in_process(tmp_path)  # no deposit: every order fails its balance check
    assert result.orders == 50
    assert result.errors == 50


@pytest.mark.timeout(60)
def test_pings_are_answered(tmp_path: Path) -> None:
    # the server pings every 0.2 s and drops a peer whose pong does not come within 0.1 s
    result = _load_in_process(tmp_path, idle_s=1.0, limits=Limits(ws_heartbeat_s=0.2))
    assert result.orders == 50


@pytest.mark.timeout(60)
def test_load_raises_when_the_server_stops_answering() -> None:
    with gateway_bench.serving(1, fsync=False) as (pid, port, creds):

        async def load() -> None:
            conn = await gateway_bench._client("127.0.0.1", port, *creds[0])
            os.kill(pid, signal.SIGSTOP)
            try:
                await gateway_bench._run_load([conn], [0], 200, 0.2, pid, stall_s=0.5)
            finally:
                os.kill(pid, signal.SIGCONT)
                await conn.close(0.1)

        began = time.monotonic()
        with pytest.raises(TimeoutError, match="stopped answering"):
            asyncio.run(load())
        assert time.monotonic() - began < 5
