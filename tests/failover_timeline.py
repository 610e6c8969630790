"""What a stream leader's SIGKILL pause is made of, on one clock (test support).

`tests/test_cluster_failover.py` kills the stream leader's NATS node under load; the longest
gap between acknowledgements alone cannot say how much of it is nats-server's Raft election
(a 4-9 s timer we cannot change) and how much is Kootabase's (the gateways' publish retries,
the replica's consumer re-created after the old one died with the leader). This module puts
the milestones on the wall clock of this machine (every process shares it):

- the JetStream advisory ``STREAM.LEADER_ELECTED`` seen on a surviving node (`Advisories`),
- the surviving nodes' own log lines (new stream leader, new metadata leader),
- the gateways' JSON log lines (first publish accepted after retries, consumer re-created),
- the load's first acknowledgement after the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nats

_NATS_LINE = re.compile(r"^\[\d+\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+) \[\w+\] (.*)$")


@dataclass
class Advisories:
    """JetStream advisories of one node, timestamped on arrival (``time.time()``), from a
    thread of their own so the test's event loop (the load) is not shared."""

    url: str
    events: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(ready)), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"no advisory subscription on {self.url}")

    async def _run(self, ready: threading.Event) -> None:
        nc = await nats.connect(self.url, connect_timeout=2)

        async def record(msg: Any) -> None:
            self.events.append((time.time(), msg.subject))

        try:
            await nc.subscribe("$JS.EVENT.ADVISORY.>", cb=record)
            await nc.flush()
            ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def first(self, prefix: str, after: float) -> float | None:
        times = [t for t, s in self.events if s.startswith(prefix) and t > after]
        return min(times) if times else None


def nats_log_lines(log: Path, after: float) -> list[tuple[float, str]]:
    """(time, message) of a nats-server log file's lines after ``after`` (its timestamps
    are local time with microseconds)."""
    out = []
    if not log.exists():
        return out
    for line in log.read_text(errors="replace").splitlines():
        m = _NATS_LINE.match(line)
        if m is None:
            continue
        t = datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S.%f").timestamp()
        if t > after:
            out.append((t, m.group(2)))
    return out


def gateway_events(stderr_log: Path, after: float) -> list[tuple[float, str, dict[str, Any]]]:
    """(time, event, fields) of a gateway's JSON log lines after ``after``."""
    out = []
    for line in stderr_log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
            t = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError):
            continue
        if t > after:
            out.append((t, str(rec.get("event")), rec))
    return out


def _first(times: list[float]) -> float | None:
    return min(times) if times else None


def decompose(
    kill_wall: float,
    first_ack_wall: list[float | None],
    stream: str,
    advisories: Advisories,
    node_logs: list[Path],
    gateway_logs: list[Path],
) -> dict[str, Any]:
    """Milestones in seconds after the kill, per gateway where they differ (``first_ack_wall``:
    each gateway's first acknowledgement after the kill). ``election_s``: the stream's new
    leader (the advisory, else the nodes' logs); ``ours_s``: from it until every gateway
    acknowledged again; ``after_leaders_s``: the same from the later of the stream's and the
    metadata leader's elections."""
    server = [e for log in node_logs for e in nats_log_lines(log, kill_wall)]
    name = f"> {stream}'"  # not the stream's KV bucket or Object Store (KV_KB_<stream>_HASH)
    leader_log = _first([t for t, m in server if "new stream leader" in m and name in m])
    meta_log = _first(
        [
            t
            for t, m in server
            if "new JetStream cluster metadata leader" in m or "new metadata leader" in m
        ]
    )
    elected = advisories.first(f"$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{stream}", kill_wall)
    elected = elected if elected is not None else leader_log
    gws = [gateway_events(log, kill_wall) for log in gateway_logs]

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - kill_wall, 3)

    out: dict[str, Any] = {
        "election_s": rel(elected),
        "stream_leader_log_s": rel(leader_log),
        "meta_leader_s": rel(meta_log),
        "publish_ok_s": [rel(_first([t for t, e, _ in g if e == "publish_resumed"])) for g in gws],
        "resubscribed_s": [
            rel(_first([t for t, e, _ in g if e == "replica_resubscribed"])) for g in gws
        ],
        "watch_failures": [sum(1 for _, e, _ in g if e == "replica_watch_failed") for g in gws],
        "first_ack_s": [rel(t) for t in first_ack_wall],
    }
    resumed = None if None in first_ack_wall else max(t for t in first_ack_wall if t is not None)
    out["ours_s"] = None if elected is None or resumed is None else round(resumed - elected, 3)
    # creating a consumer needs the metadata leader too: when it died with the stream leader,
    # its own election (as random) may end later
    leaders = None if elected is None else max(elected, meta_log or elected)
    out["after_leaders_s"] = (
        None if leaders is None or resumed is None else round(resumed - leaders, 3)
    )
    return out
