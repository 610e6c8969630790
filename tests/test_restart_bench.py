"""`kootabase bench restart` on a small history: the node it times comes back at the end of
the journal from the snapshot plus exactly the tail, checked by the anchor."""

from __future__ import annotations

from pathlib import Path

from bench.restart_bench import build, run


def test_restart_bench_replays_only_the_tail(tmp_path: Path) -> None:
    built = build(tmp_path / "data", 4_000, 700, 1, accounts=40, resting=400)
    assert built["snapshot_seq"] == 3_300
    result = run(tmp_path / "data", 1)
    assert (result["last_seq"], result["tail_replayed"]) == (4_000, 700)
    assert result["snapshot_check"] == "anchor"
    assert result["cpu_seconds"] > 0 and result["snapshot_bytes"] > 0
