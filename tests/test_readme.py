"""The README's quickstart works as written: its commands are taken from README.md itself and
run against a real server, so the README cannot drift from what works.

The server is started with the exact command ``make run`` runs (read from ``make -n run``), on
a free port and a fresh data directory (the options are appended: argparse keeps the last
value). The quickstart's signed ``curl`` orders run in bash, its SDK example in this Python;
both must end with a FILLED order.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.custody_nodes import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEFAULT_ADDRESS = "127.0.0.1:8080"
START_TIMEOUT_S = 300.0
"""First start compiles the engine with numba when its cache is cold (a minute or more)."""


@dataclass(frozen=True, slots=True)
class Block:
    lang: str
    text: str


def quickstart_blocks() -> list[Block]:
    """Fenced code blocks of the README's ``## Quickstart`` section, in order."""
    text = README.read_text()
    match = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.M | re.S)
    assert match is not None, "README.md has no '## Quickstart' section"
    return [
        Block(lang, body)
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", match.group(1), re.M | re.S)
    ]


def blocks(lang: str) -> list[str]:
    return [b.text for b in quickstart_blocks() if b.lang == lang]


def serve_command() -> list[str]:
    """The serve command of ``make run``, for this interpreter's virtualenv."""
    venv = Path(sys.prefix)
    out = subprocess.run(
        ["make", "-n", "run", f"VENV={venv}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    lines = [line for line in out.splitlines() if " serve" in line and "kootabase" in line]
    assert len(lines) == 1, f"make run no longer runs one `kootabase serve`:\n{out}"
    argv = shlex.split(lines[0])
    assert Path(argv[0]) == venv / "bin" / "kootabase", argv
    return argv


class Server:
    """``make run``'s command as a child process; stdout collected by a reader thread."""

    def __init__(self, argv: list[str], tmp_path: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        self.proc = subprocess.Popen(
            [*argv, "--data-dir", str(tmp_path / "data"), "--port", str(self.port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: object, sink: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            sink.append(line)

    def wait_for(self, needle: str) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = "".join(self.stdout)
            if needle in text:
                return text
            assert self.proc.poll() is None, (
                f"server exited {self.proc.returncode}:\n{''.join(self.stderr)[-3000:]}"
            )
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} on stdout after {START_TIMEOUT_S} s")

    def stop(self) -> int:
        """Ctrl-C, as the README says to stop it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(serve_command(), tmp_path)
    try:
        yield s
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(timeout=30)


def test_quickstart_shape() -> None:
    """The quickstart starts with `make run`, shows its output, and ends with `make test`,
    both real Makefile targets."""
    sh = blocks("sh")
    assert sh[0].strip() == "make run"
    assert sh[-1].strip() == "make test"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert len(blocks("text")) == 1 and len(blocks("python")) == 1


def test_quickstart_runs(server: Server, tmp_path: Path) -> None:
    out = server.wait_for("next  ")
    # what the README says `make run` prints, line for line (the key and secret vary; the
    # test's port and data directory stand in for make run's)
    shown = out.replace(f"127.0.0.1:{server.port}", DEFAULT_ADDRESS)
    shown = shown.replace(str(tmp_path / "data"), "data")
    expected = blocks("text")[0].splitlines()
    got = [line for line in shown.splitlines() if line.strip() or not expected]
    assert len(got) == len([line for line in expected if line.strip()]), shown
    for want, line in zip([line for line in expected if line.strip()], got, strict=True):
        if "<64 letters and digits>" in want:
            prefix = want.split("<", 1)[0]
            assert line.startswith(prefix) and re.fullmatch(r"[A-Za-z0-9]{64}", line[len(prefix) :])
        else:
            assert line == want, (line, want)
    api_key = re.search(r"API key\s*:\s*(\S+)", out)
    secret = re.search(r"secret\s*:\s*(\S+)", out)
    assert api_key and secret, out
    env = {**os.environ, "KB_API_KEY": api_key.group(1), "KB_SECRET": secret.group(1)}
    address = f"127.0.0.1:{server.port}"

    # the signed curl orders, as written (the export of the placeholders left out)
    curl = blocks("sh")[1]
    assert DEFAULT_ADDRESS in curl and "openssl dgst -sha256 -hmac" in curl
    script = "\n".join(
        line for line in curl.splitlines() if not line.startswith("export KB_API_KEY=")
    )
    assert len(script.splitlines()) == len(curl.splitlines()) - 1, "export line not found"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DEFAULT_ADDRESS, address)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    sell, buy = (json.loads(line) for line in done.stdout.splitlines() if line.strip())
    assert (sell["side"], sell["status"], sell["fills"]) == ("SELL", "NEW", [])
    assert (buy["side"], buy["status"], buy["executedQty"]) == ("BUY", "FILLED", "0.01000000")
    assert buy["fills"][0]["price"] == "30000.000000"

    # the SDK example, as written
    example = blocks("python")[0]
    assert DEFAULT_ADDRESS in example
    path = tmp_path / "quickstart.py"
    path.write_text(example.replace(DEFAULT_ADDRESS, address))
    done = subprocess.run(
        [sys.executable, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "SELL NEW []", lines
    assert lines[1].startswith("BUY FILLED [{"), lines
    assert server.stop() == 0, "".join(server.stderr)[-3000:]
    assert "Traceback" not in "".join(server.stderr)


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.*)$", markdown, re.M)
    }


def test_doc_links_resolve() -> None:
    """Every relative link in README.md and docs/*.md names a file (and heading) that exists."""
    broken = []
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
