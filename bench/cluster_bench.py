"""``kootabase bench cluster``: order entry in cluster mode, on this machine (repository only).

Setups, each on a fresh stream: 3 NATS nodes (``nats-server`` started here, JetStream) with the
command stream at R3, and the same with R1; two ``kootabase serve --nats`` gateways. The load
is open loop over WS (bench/wsload.py, the lean client of ``bench gateway``), spread over
connections to both gateways: a fixed offered rate (latency) and then closed loop with a window
per connection (saturation). CPU per order is read from /proc for every process: the load
generator, each gateway, each NATS node.

Everything shares the machine's cores with everything else, so the numbers are the floor of
what the design does, not a capacity claim; docs/scaling.md explains what moves with more
cores. Failover pauses are measured by tests/test_cluster_failover.py (the same processes,
SIGKILLed under load) and reported there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.gateway_bench import _client, _cpu_seconds, _Load, _pct, drive

OFFERED = 5_000


@dataclass
class ClusterResult:
    setup: str
    offered: int | None
    orders: int
    seconds: float
    orders_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_order: dict[str, float] = field(default_factory=dict)
    """Process -> CPU microseconds (user + system) per acknowledged order."""
    stream_messages: int = 0
    """Stream messages appended during the load (batches; the warm-up's excluded)."""
    orders_per_message: float = 0.0
    load_avg_1m: float = 0.0
    """The machine's 1-minute load average at the end of the load (other work on it)."""
    client_late_p99_ms: float = 0.0
    client_late_max_ms: float = 0.0
    """Open loop: how late the load generator wrote orders after their scheduled time (p99
    and worst, per write): its own share of the latencies, which run from the scheduled
    time, so a starved generator shows here and not as a slow server."""
    nats_server: str = ""
    """The nats-server version the three nodes ran (``--nats-server``: an A/B of versions)."""


async def _load(
    conns: list[Any],
    ids: list[int],
    offered: int | None,
    seconds: float,
    pids: dict[str, int],
    setup: str,
    stream: Any = None,
    probe: Path | None = None,
    nats_server: str = "",
) -> ClusterResult:
    load = _Load(conns, ids, 32, 20.0)
    seq0 = await stream.last_sequence() if stream is not None else 0
    cpu0 = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    began = time.perf_counter()
    elapsed = await drive(load, offered, seconds)
    if probe is not None:  # the window the probe's report reads (same clock as the gateways')
        window = {"t0": began, "t1": time.perf_counter(), "offered": offered}
        (probe / "window.json").write_text(json.dumps(window))
    n = len(load.latencies)
    messages = await stream.last_sequence() - seq0 if stream is not None else 0
    cpu = {
        name: round((_cpu_seconds(pid) - cpu0[name]) / max(n, 1) * 1e6, 1)
        for name, pid in pids.items()
    }
    return ClusterResult(
        setup,
        offered,
        n,
        round(elapsed, 3),
        round(n / elapsed, 1),
        round(_pct(load.latencies, 0.5), 3),
        round(_pct(load.latencies, 0.99), 3),
        load.errors,
        cpu,
        messages,
        round(n / messages, 1) if messages else 0.0,
        round(os.getloadavg()[0], 1),
        round(_pct(load.send_late_s, 0.99), 3) if load.send_late_s else 0.0,
        round(max(load.send_late_s, default=0.0) * 1000, 3),
        nats_server,
    )


def _run_setup(
    replicas: int,
    seconds: float,
    clients: int,
    root: Path,
    gateway_args: list[str],
    offered: int = OFFERED,
    probe: Path | None = None,
    nats_server: str | None = None,
) -> list[ClusterResult]:
    from engine.streamlog import NatsOptions, StreamLog, StreamSpec
    from tests.cluster_procs import GatewayProc
    from tests.cluster_support import unique_stream
    from tests.nats_cluster import NatsCluster, nats_server_bin, nats_server_version

    binary = nats_server_bin(nats_server)
    version = nats_server_version(binary)
    cluster = NatsCluster(root / f"nats-r{replicas}", binary=binary)
    cluster.start()
    gateways: list[GatewayProc] = []
    try:
        cluster.wait_ready()
        spec = unique_stream("B")
        g1, g2 = (
            GatewayProc(
                root / f"r{replicas}-g{i}",
                cluster.urls,
                spec.name,
                replicas=replicas,
                extra=list(gateway_args),
                env=_probe_env(probe),
            )
            for i in (1, 2)
        )
        g1.start()
        g2.start(keys_from=g1)
        gateways = [g1, g2]
        assert g1.creds is not None and g1.creds.secret is not None
        key, secret = g1.creds.api_key, g1.creds.secret
        pids = {"loadgen": os.getpid()}
        for i, g in enumerate(gateways, 1):
            assert g.proc is not None
            pids[f"gateway{i}"] = g.proc.pid
        for n in cluster.nodes:
            assert n.proc is not None
            pids[f"nats-{n.name}"] = n.proc.pid
        setup = f"R{replicas}: 3 NATS nodes ({version}), 2 gateways"
        if gateway_args:
            setup += " (" + " ".join(gateway_args) + ")"

        async def body() -> list[ClusterResult]:
            conns = [
                await _client("127.0.0.1", gateways[i % 2].port, key, secret)
                for i in range(clients)
            ]
            ids = [0] * len(conns)
            stream = await StreamLog.connect(
                NatsOptions(servers=tuple(cluster.urls.split(","))),
                StreamSpec(spec.name, replicas),
                create=False,
            )
            try:
                await _load(conns, ids, 1_000, 1.0, pids, setup)  # warm-up (JIT, caches)
                return [
                    await _load(conns, ids, offered, seconds, pids, setup, stream, probe, version),
                    await _load(conns, ids, None, seconds, pids, setup, stream, None, version),
                ]
            finally:
                await stream.close()
                for conn in conns:
                    await conn.close()

        return asyncio.run(body())
    finally:
        for g in gateways:
            g.stop()
        cluster.stop()


def _probe_env(probe: Path | None) -> dict[str, str]:
    """A gateway's environment that loads `bench/tailprobe` (its ``sitecustomize``)."""
    if probe is None:
        return {}
    probe_dir = Path(__file__).resolve().parent / "tailprobe"
    repo = probe_dir.parent.parent
    return {"KB_TAILPROBE": str(probe), "PYTHONPATH": os.pathsep.join((str(repo), str(probe_dir)))}


def _clear_probe_dir(probe: Path) -> None:
    """Create ``probe`` or empty it of an earlier run's files (before any process starts)."""
    from engine.usererror import UserError

    try:
        probe.mkdir(parents=True, exist_ok=True)
        for old in probe.glob("probe-*.txt"):
            old.unlink()
    except OSError as exc:
        raise UserError(
            f"cannot use {probe} for the probe's files: {exc.strerror}",
            hint="pass a --probe directory you can write",
        ) from None


def run(
    seconds: float = 5.0,
    clients: int = 8,
    replicas: tuple[int, ...] = (3, 1),
    gateway_args: tuple[str, ...] = (),
    offered: int = OFFERED,
    probe: Path | None = None,
    nats_server: str | None = None,
) -> list[ClusterResult]:
    if probe is not None:
        _clear_probe_dir(probe)
    with tempfile.TemporaryDirectory(prefix="kootabase-clusterbench-") as tmp:
        return [
            result
            for r in replicas
            for result in _run_setup(
                r, seconds, clients, Path(tmp), list(gateway_args), offered, probe, nats_server
            )
        ]


def run_cli(args: argparse.Namespace) -> int:
    if args.nats_server is not None and not os.access(args.nats_server, os.X_OK):
        from engine.usererror import UserError

        raise UserError(
            f"--nats-server {args.nats_server}: not an executable file",
            hint="pass the path of a nats-server binary",
        )
    results = run(
        seconds=args.seconds,
        clients=args.clients,
        replicas=tuple(args.replicas or (3, 1)),
        gateway_args=tuple(args.gateway_arg or ()),
        offered=args.offered,
        probe=Path(args.probe) if args.probe else None,
        nats_server=args.nats_server,
    )
    if args.json:
        sys.stdout.write(json.dumps([asdict(r) for r in results], indent=2) + "\n")
        return 0
    for r in results:
        offered = f"{r.offered:,}/s" if r.offered else "saturation"
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in r.cpu_us_per_order.items())
        sys.stdout.write(
            f"{r.setup:32} {offered:>11} {r.orders_per_s:>9,.0f} orders/s  "
            f"p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:8.2f} ms  errors {r.errors}\n"
            f"{'':44}CPU us/order: {cpu}\n"
            f"{'':44}{r.stream_messages} stream messages ({r.orders_per_message:g} orders "
            f"each), load average {r.load_avg_1m:g}\n"
        )
    return 0
