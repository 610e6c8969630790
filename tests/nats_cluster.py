"""A 3-node NATS cluster with JetStream, started by the tests on free loopback ports.

Debian's ``nats-server`` (installed by ``scripts/install-nodes.sh``; ``$NATS_SERVER_BIN``
overrides the path, `nats_server_bin`) runs three times with routes between the nodes, each
with its own JetStream store in the test's temporary directory. Nodes can be killed (SIGKILL:
the stream leader's node, mid-load) and started again on the same ports and store.

Optional ``users``: the nodes then require a user and password, with per-user publish and
subscribe permissions (issue 18: NATS is never open in cluster mode).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats

from tests.custody_nodes import free_port
from tests.tlscerts import TlsFiles

DEFAULT_BIN = "/usr/sbin/nats-server"


def nats_server_bin(explicit: str | None = None) -> str:
    """The ``nats-server`` binary the tests and ``bench cluster`` start, the first of: the
    ``explicit`` path (``bench cluster --nats-server``: an A/B of server versions),
    ``$NATS_SERVER_BIN`` (the same for the tests), ``PATH``'s, Debian's."""
    path = (
        explicit or os.environ.get("NATS_SERVER_BIN") or shutil.which("nats-server") or DEFAULT_BIN
    )
    if not Path(path).exists():
        raise RuntimeError(f"nats-server not found at {path}: run scripts/install-nodes.sh")
    return path


def nats_server_version(binary: str) -> str:
    """``v2.15.1``: what ``binary --version`` says (for the bench's report)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().rsplit(" ", 1)[-1]


@dataclass
class User:
    name: str
    password: str
    publish_deny: list[str] = field(default_factory=list)
    """Subjects this user may not publish to (everything else is allowed)."""


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    store: Path
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"


@dataclass
class NatsCluster:
    root: Path
    users: list[User] = field(default_factory=list)
    tls: TlsFiles | None = None
    """With TLS files: clients must present a certificate, routes between nodes use TLS."""
    authorization: str | None = None
    """An ``authorization`` block used as given (`engine.natsauth.authorization_conf`)
    instead of the one made from ``users``."""
    binary: str | None = None
    """The ``nats-server`` to start (None: `nats_server_bin`'s choice)."""
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(3):
            d = self.root / f"n{i + 1}"
            d.mkdir(parents=True, exist_ok=True)
            self.nodes.append(
                Node(
                    f"n{i + 1}", free_port(), free_port(), d / "js", d / "nats.conf", d / "nats.log"
                )
            )
        for node in self.nodes:
            node.tls = self.tls is not None
            node.conf.write_text(self._conf(node))

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def _conf(self, node: Node) -> str:
        routes = ", ".join(
            f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes if n is not node
        )
        auth = self.authorization or ""
        if self.users and not self.authorization:
            entries = []
            for u in self.users:
                p = ""
                if u.publish_deny:
                    p = (
                        f', permissions: {{ publish: {{ allow: [">"], '
                        f"deny: {_list(u.publish_deny)} }} }}"
                    )
                entries.append(f'{{ user: "{u.name}", password: "{u.password}"{p} }}')
            auth = "authorization { users: [\n  " + ",\n  ".join(entries) + "\n] }\n"
        tls = route_tls = ""
        if self.tls is not None:
            t = self.tls
            files = (
                f'cert_file: "{t.server_cert}", key_file: "{t.server_key}", '
                f'ca_file: "{t.ca}", verify: true'
            )
            tls = f"tls {{ {files}, timeout: 5 }}\n"
            route_tls = f", tls {{ {files}, timeout: 5 }}"
        return tls + (
            f'server_name: "{node.name}"\nlisten: "127.0.0.1:{node.port}"\n'
            f'jetstream {{ store_dir: "{node.store}", max_memory_store: 268435456, '
            f"max_file_store: 2147483648 }}\n"
            f'cluster {{ name: "kbtest", listen: "127.0.0.1:{node.cluster_port}", '
            f"routes: [{routes}]{route_tls} }}\n{auth}"
        )

    def start(self, node: Node | None = None) -> None:
        for n in [node] if node is not None else self.nodes:
            assert n.proc is None or n.proc.poll() is not None
            n.proc = subprocess.Popen(
                [nats_server_bin(self.binary), "-c", str(n.conf), "-l", str(n.log)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def kill(self, node: Node) -> None:
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def wait_ready(self, timeout_s: float = 30.0, user: User | None = None) -> None:
        """Until JetStream answers on every running node (a meta leader was elected)."""
        deadline = time.monotonic() + timeout_s

        async def probe(url: str) -> bool:
            try:
                kw: dict[str, object] = (
                    {"user": user.name, "password": user.password} if user else {}
                )
                if self.tls is not None:
                    kw["tls"] = self.client_ssl()
                nc = await nats.connect(
                    url, connect_timeout=1, allow_reconnect=False, error_cb=_quiet, **kw
                )
            except Exception:
                return False
            try:
                await nc.jetstream(timeout=1).account_info()
                return True
            except Exception:
                return False
            finally:
                await nc.close()

        pending = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        while pending:
            pending = [n for n in pending if not asyncio.run(probe(n.url))]
            if pending and time.monotonic() > deadline:
                logs = {n.name: n.log.read_text()[-2000:] for n in pending if n.log.exists()}
                raise RuntimeError(f"NATS nodes not ready: {logs}")
            if pending:
                time.sleep(0.2)

    def client_ssl(self) -> ssl.SSLContext:
        assert self.tls is not None
        ctx = ssl.create_default_context(cafile=str(self.tls.ca))
        ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return ctx

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.terminate()
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    n.proc.kill()


def _list(subjects: list[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in subjects) + "]"


async def _quiet(exc: Exception) -> None:
    """Probing a node that is still starting fails by design: not worth a traceback."""
