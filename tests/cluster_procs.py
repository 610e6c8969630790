"""Gateway processes in cluster mode and an order-entry load that survives their failures.

Each gateway is a real ``kootabase serve --nats ...`` process (so it can be SIGKILLed). The
first one found the stream empty and prints the demo account's credentials; the others share
its API keys (a copy of its key file, the same master key). `Load` drives WS clients that move
to another gateway when theirs goes away, and records every answer: an order counts as
acknowledged only with an ``orderId``; a dropped connection or a 5xx is "status unknown".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from gateway.client import ClientError, Credentials, WsApiClient
from tests.custody_nodes import free_port

REPO = Path(__file__).resolve().parent.parent


@dataclass
class GatewayProc:
    root: Path
    nats: str
    stream: str
    replicas: int = 3
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of the process (``bench cluster --probe``'s tail probe)."""
    log_level: str = "warning"
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    creds: Credentials | None = None

    def start(self, keys_from: GatewayProc | None = None, timeout_s: float = 60.0) -> None:
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        if keys_from is not None:
            (data / "gateway").mkdir(parents=True, exist_ok=True)
            shutil.copy(
                keys_from.root / "data" / "gateway" / "keys.json", data / "gateway" / "keys.json"
            )
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "--log-level",
                self.log_level,
                "serve",
                "--nats",
                self.nats,
                "--stream",
                self.stream,
                "--replicas",
                str(self.replicas),
                "--data-dir",
                str(data),
                "--port",
                str(self.port),
                "--master-key-file",
                str(self.root.parent / "master.key"),
                "--no-rate-limits",
                *(["--demo"] if keys_from is None else []),
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.root / "stderr.log", "w"),  # noqa: SIM115
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **self.env},
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1)
                break
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        "gateway exited: " + (self.root / "stderr.log").read_text()[-3000:]
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError("gateway not ready") from None
                time.sleep(0.1)
        if keys_from is None:
            out = ""
            assert self.proc.stdout is not None
            while "WS API" not in out:
                out += self.proc.stdout.readline()
            key = re.search(r"API key\s*:\s*(\S+)", out)
            secret = re.search(r"secret\s*:\s*(\S+)", out)
            assert key and secret, out
            self.creds = Credentials.hmac(key.group(1), secret.group(1))
        else:
            self.creds = keys_from.creds

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws-api/v3"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Load:
    """``clients`` WS clients, each placing IOC limit orders (nothing rests: no open-order
    limit is reached) one after another for ``seconds``
    (paced at ``rate_per_client``/s), moving to the next gateway in ``urls`` on failure."""

    urls: list[str]
    creds: Credentials
    clients: int = 4
    rate_per_client: float = 100.0
    acked: dict[str, int] = field(default_factory=dict)
    """client order id -> order id, for every acknowledged order."""
    ack_times: list[float] = field(default_factory=list)
    ack_urls: list[str] = field(default_factory=list)
    """The gateway that answered each of ``ack_times`` (a pause of one gateway's replica hides
    in the all-clients gap while the other gateway answers)."""
    unknown: list[str] = field(default_factory=list)
    """Orders whose outcome the client was not told (5xx, or the connection dropped)."""
    refused: list[tuple[str, int]] = field(default_factory=list)
    switches: int = 0
    resume_after: list[float] | None = None
    """Set to a list that will hold the time of a failure (a kill): the load then runs past its
    ``seconds`` until acknowledgements have flowed again for `RESUMED_S` after that time (at
    most ``max_seconds``), so a pause that ends late is measured instead of cut off."""
    max_seconds: float = 30.0
    _resumed: dict[str, float] = field(default_factory=dict)
    """Gateway URL -> its first acknowledgement after the failure (``resume_after``)."""
    RESUMED_S = 1.0

    async def run(self, seconds: float) -> None:
        start = time.monotonic()
        self._stop = start + seconds
        self._hard_stop = start + max(seconds, self.max_seconds)
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))

    def _running(self) -> bool:
        now = time.monotonic()
        if now < self._stop:
            return True
        if now >= self._hard_stop or self.resume_after is None:
            return False
        if not self.resume_after:
            return True  # the failure has not happened yet
        # every gateway's clients must have been answered again, each for RESUMED_S: one
        # gateway's replica may resume seconds after the other's
        return any(
            url not in self._resumed or now - self._resumed[url] < self.RESUMED_S
            for url in self.urls
        )

    async def _client(self, i: int) -> None:
        n = 0
        url_index = i % len(self.urls)
        while self._running():
            url = self.urls[url_index]
            try:
                async with WsApiClient.connect(url, self.creds, open_timeout=2) as c:
                    while self._running():
                        n += 1
                        cid = f"c{i}-{n}"
                        try:
                            r = await asyncio.wait_for(
                                c.place_order(
                                    "BTCUSDT",
                                    "BUY",
                                    "LIMIT",
                                    quantity="0.0010",
                                    price=f"{10_000 + n % 50}.00",
                                    time_in_force="IOC",
                                    client_order_id=cid,
                                ),
                                30,
                            )
                        except ClientError as exc:
                            if exc.status >= 500:
                                self.unknown.append(cid)
                            else:
                                self.refused.append((cid, exc.code))
                            continue
                        except BaseException:
                            self.unknown.append(cid)
                            raise
                        self.acked[cid] = int(r["orderId"])
                        now = time.monotonic()
                        self.ack_times.append(now)
                        self.ack_urls.append(url)
                        if self.resume_after and now > self.resume_after[0]:
                            self._resumed.setdefault(url, now)
                        await asyncio.sleep(1 / self.rate_per_client)
            except Exception:  # the gateway went away (or never answered): try the next one
                url_index = (url_index + 1) % len(self.urls)
                self.switches += 1
                await asyncio.sleep(0.05)

    def pause_after_s(self, at: float, url: str | None = None) -> float:
        """From the last acknowledgement before ``at`` to the first after it, or to the
        largest gap later than that (whichever is longer); infinite if none came after.
        With ``url``: that gateway's acknowledgements only."""
        times = sorted(
            t for t, u in zip(self.ack_times, self.ack_urls, strict=True) if url in (None, u)
        )
        before = [t for t in times if t <= at]
        after = [t for t in times if t > at]
        if not after:
            return float("inf")
        start = before[-1] if before else at
        gaps = [b - a for a, b in itertools.pairwise([start, *after])]
        return max(gaps)

    def resumed_at(self, at: float, url: str) -> float | None:
        """When ``url``'s longest gap after ``at`` (`pause_after_s`) ended: its clients'
        first acknowledgement after the pause (None: no acknowledgement after ``at``)."""
        times = sorted(t for t, u in zip(self.ack_times, self.ack_urls, strict=True) if u == url)
        before = [t for t in times if t <= at]
        after = [t for t in times if t > at]
        if not after:
            return None
        edges = list(itertools.pairwise([before[-1] if before else at, *after]))
        return max(edges, key=lambda e: e[1] - e[0])[1]


def gateways_ready(*gws: GatewayProc) -> list[bool]:
    out = []
    for g in gws:
        with contextlib.suppress(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{g.port}/ready", timeout=1)
            out.append(True)
            continue
        out.append(False)
    return out
