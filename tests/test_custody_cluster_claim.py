"""Cluster mode runs custody on one gateway per stream (`gateway.custodylock`): the claim is a
PostgreSQL advisory lock in the shared back-office database, so a second custody gateway is
refused with one line before anything starts, and a holder killed with SIGKILL frees it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.usererror import UserError
from gateway.custodylock import CustodyClaim, check_free, lock_key
from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import free_port, unreachable_ltc_config

HOLDER = """
import asyncio, sys, asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", int(sys.argv[2]))
    print("held", flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"""


def _free(dsn: str, stream: str) -> bool:
    try:
        asyncio.run(check_free(dsn, stream))
    except UserError:
        return False
    return True


def test_one_claim_per_stream_and_a_killed_holder_frees_it(empty_db: str) -> None:
    stream = f"S_{uuid.uuid4().hex[:8]}"

    async def held_twice() -> None:
        claim = await CustodyClaim.acquire(empty_db, stream)
        try:
            with pytest.raises(UserError, match=f"already runs custody for stream {stream}"):
                await check_free(empty_db, stream)
            with pytest.raises(UserError):
                await CustodyClaim.acquire(empty_db, stream)
            await check_free(empty_db, f"{stream}_other")  # another cluster: its own claim
        finally:
            await claim.release()

    asyncio.run(held_twice())
    assert _free(empty_db, stream)

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, empty_db, str(lock_key(stream))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not _free(empty_db, stream)
        holder.kill()  # SIGKILL: no clean close, PostgreSQL sees the socket go
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _free(empty_db, stream):
            assert time.monotonic() < deadline, "a killed holder kept the custody claim"
            time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_serve_refuses_a_second_custody_gateway_before_anything_starts(
    tmp_path: Path, empty_db: str
) -> None:
    stream = f"S_{uuid.uuid4().hex[:8]}"
    config = tmp_path / "custody.toml"
    config.write_text(unreachable_ltc_config(free_port()))
    data = tmp_path / "data"
    serve = ("serve", "--log-level", "warning", "--data-dir", str(data), "--port", "0")
    serve = (*serve, "--custody-config", str(config))
    cluster = ("--nats", "nats://127.0.0.1:4222", "--stream", stream)
    line = assert_one_line(run_cli(*serve, *cluster), code=2)
    assert "custody in cluster mode needs --backoffice-dsn" in line, line

    async def with_claim() -> subprocess.CompletedProcess[str]:
        claim = await CustodyClaim.acquire(empty_db, stream)
        try:
            argv = (*serve, *cluster, "--backoffice-dsn", empty_db)
            return await asyncio.to_thread(run_cli, *argv)
        finally:
            await claim.release()

    line = assert_one_line(asyncio.run(with_claim()), code=1)
    assert f"another gateway already runs custody for stream {stream}" in line, line
    assert not data.exists()


def test_a_second_custody_gateway_of_a_cluster_fails_to_start(
    tmp_path: Path, empty_db: str
) -> None:
    """The gateway itself holds the claim while it runs (serve's check is only the early,
    clear refusal): a second custody gateway on the stream fails at start with the same
    line, and starts once the first has stopped."""
    from custody.config import load_config
    from gateway.app import Gateway
    from gateway.cluster import ClusterConfig
    from gateway.config import GatewayConfig
    from gateway.server import start
    from tests.cluster_support import stream_on

    (tmp_path / "custody.toml").write_text(unreachable_ltc_config(free_port()))

    def gateway(name: str, spec: Any) -> Gateway:
        return Gateway(
            GatewayConfig(
                data_dir=tmp_path / name,
                master_key_file=tmp_path / "secrets" / "master.key",
                cluster=ClusterConfig(stream=spec),
                backoffice_dsn=empty_db,
                custody=load_config(tmp_path / "custody.toml", tmp_path / name),
                custody_poll_s=0,
                marketdata=False,
            )
        )

    async def scenario(spec: Any) -> None:
        first = gateway("a", spec)
        running = await start(first, "127.0.0.1", 0)
        try:
            second = gateway("b", spec)
            with pytest.raises(UserError, match=f"already runs custody for stream {spec.name}"):
                await start(second, "127.0.0.1", 0)
            await second.close()
        finally:
            await running.runner.cleanup()
        third = gateway("c", spec)
        running = await start(third, "127.0.0.1", 0)
        await running.runner.cleanup()

    with stream_on() as spec:
        asyncio.run(scenario(spec))
