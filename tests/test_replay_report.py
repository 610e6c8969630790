"""``kootabase replay`` times its loop as ``kootabase bench replay`` does: the collector paused
during the loop and restored after (also when the caller had it off), CPU time reported beside
wall time, the first result line's wording unchanged up to the added CPU figure."""

from __future__ import annotations

import gc
import re
from pathlib import Path

from engine.replay import replay
from tests.cli_support import run_cli


def test_replay_pauses_the_collector_during_the_loop_only(demo_dir: Path) -> None:
    seen: list[bool] = []
    for enabled_before in (True, False):
        (gc.enable if enabled_before else gc.disable)()
        try:
            result = replay(
                demo_dir / "journal", on_progress=lambda _n: seen.append(gc.isenabled())
            )
            assert gc.isenabled() is enabled_before
        finally:
            gc.enable()
        assert result.commands == result.last_seq == 9
        assert result.cpu_seconds > 0 and result.seconds > 0
    assert seen and not any(seen)


def test_replay_reports_wall_and_cpu_time(demo_dir: Path) -> None:
    proc = run_cli("--log-level", "error", "replay", "--journal", str(demo_dir / "journal"))
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert re.fullmatch(
        r"replayed seq 1\.\.9: 9 commands in \d+\.\d{3} s \([\d,]+ commands/s\); "
        r"CPU \d+\.\d{3} s \([\d,]+ commands/s of CPU time\)",
        first,
    ), first
