"""Ordinary mistakes at the ``kootabase`` command line (issue 12): one line on stderr, no
traceback, a non-zero exit; every case runs the real command in a subprocess, as a user would.
Here: replay and the journal.
"""

from __future__ import annotations

from pathlib import Path

from tests.cli_support import assert_one_line, make_data_dir, run_cli

# ---- replay ------------------------------------------------------------------------------------


def test_replay_missing_journal(tmp_path: Path) -> None:
    assert_one_line(
        run_cli("replay", "--journal", str(tmp_path / "missing")), "does not exist", "--journal"
    )
    assert not (tmp_path / "missing").exists()


def test_a_data_dir_given_as_the_journal(demo_dir: Path) -> None:
    for argv in (["replay"], ["ledger", "balances"]):
        assert_one_line(
            run_cli(*argv, "--journal", str(demo_dir)),
            "is a data directory, not a journal",
            f"--journal {demo_dir}/journal",
        )


def test_replay_reversed_range_and_past_the_end(demo_dir: Path) -> None:
    journal = str(demo_dir / "journal")
    assert_one_line(
        run_cli("replay", "--journal", journal, "--from", "10", "--to", "5"),
        "--from 10 is after --to 5",
    )
    assert_one_line(
        run_cli("replay", "--journal", journal, "--to", "100000"), "outside the journal"
    )


def test_replay_verify_without_snapshot(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", snapshot=False)
    assert_one_line(
        run_cli("replay", "--journal", str(data / "journal"), "--verify"), "nothing to verify"
    )


def test_replay_verify_with_corrupt_snapshot(copy_dir: Path) -> None:
    snap = sorted((copy_dir / "snapshots").glob("*.snap"))[-1]
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    assert_one_line(
        run_cli("replay", "--journal", str(copy_dir / "journal"), "--verify"),
        "cannot be trusted",
        code=3,
    )


def test_replay_verify_passes_on_a_good_snapshot(demo_dir: Path) -> None:
    proc = run_cli(
        "--log-level", "error", "replay", "--journal", str(demo_dir / "journal"), "--verify"
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified snapshots: 2" in proc.stdout


def _corrupt_journal(data_dir: Path) -> None:
    (segment,) = (data_dir / "journal").glob("*.seg")
    raw = bytearray(segment.read_bytes())
    raw[40] ^= 0xFF  # inside the first record: not a torn tail, a damaged journal
    segment.write_bytes(bytes(raw))


def test_corrupt_journal_at_replay_and_at_start(copy_dir: Path) -> None:
    _corrupt_journal(copy_dir)
    assert_one_line(run_cli("replay", "--journal", str(copy_dir / "journal")), "journal corruption")
    assert_one_line(
        run_cli("--log-level", "warning", "serve", "--data-dir", str(copy_dir), "--port", "0"),
        "journal corruption",
        "backup",
    )


def test_replay_from_starts_at_a_snapshot(demo_dir: Path) -> None:
    journal = str(demo_dir / "journal")
    whole = run_cli("replay", "--journal", journal)
    tail = run_cli("replay", "--journal", journal, "--from", "8")  # from the snapshot at seq 7
    assert whole.returncode == tail.returncode == 0, (whole.stderr, tail.stderr)
    assert "replayed seq 1..9" in whole.stdout
    assert "replayed seq 8..9" in tail.stdout
    assert whole.stdout.splitlines()[-1] == tail.stdout.splitlines()[-1]  # the same state hash
