"""A command writes nothing outside where it is told to: importing bitcoinlib created
``~/.bitcoinlib`` (a database directory, logs, copies of its data files) in the operator's home,
even for a read-only custody command (`custody.bitcoinlib_home`). The command runs here with
``HOME`` and ``TMPDIR`` set to empty directories, as an operator would run it."""

from __future__ import annotations

import os
from pathlib import Path

from custody.bitcoinlib_home import ENV, OURS
from custody.store import CustodyStore
from tests.cli_support import assert_one_line, run_cli
from tests.custody_nodes import free_port, unreachable_ltc_config


def test_a_custody_command_leaves_home_and_tmp_as_they_were(tmp_path: Path) -> None:
    home, tmp, data = tmp_path / "home", tmp_path / "tmp", tmp_path / "data"
    for d in (home, tmp, data):
        d.mkdir()
    (data / "custody.toml").write_text(unreachable_ltc_config(free_port()))
    CustodyStore(data / "custody.sqlite").close()
    env = {k: v for k, v in os.environ.items() if k not in (ENV, OURS)}
    env |= {"HOME": str(home), "TMPDIR": str(tmp)}
    # `alerts resolve` builds the custody service (bitcoinlib imported), then refuses
    argv = ("custody", "alerts", "resolve", "1", "--data-dir", str(data))
    proc = run_cli(*argv, env=env)
    assert_one_line(proc, "no open alert 1", code=1)
    assert sorted(p.name for p in home.iterdir()) == []
    assert sorted(p.name for p in tmp.iterdir()) == []  # bitcoinlib's directory went at exit
    assert sorted(p.name for p in data.iterdir()) == ["custody.sqlite", "custody.toml"]
