"""Snapshot provenance at start (issue 11 item 5, issue 17): the default check reads one journal
record (the snapshot's anchor) instead of replaying from genesis; snapshots of older versions
(no anchor) are checked by full replay once; the full replay stays available as an opt-in."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import msgspec
import pytest

from engine.node import EngineNode, NodeConfig, SnapshotMismatch
from engine.schema import Command, Deposit
from engine.service import bootstrap_demo
from engine.snapshot import list_snapshots, read_snapshot, write_snapshot
from tests.test_node import _trading

TAIL = 7


def _history(data_dir: Path, commands: list[Command], *, tail: list[Command]) -> tuple[int, str]:
    """Journal ``commands``, snapshot, journal ``tail`` and stop as after a crash."""
    with EngineNode(NodeConfig(data_dir=data_dir, snapshot_every=0)) as node:
        bootstrap_demo(node)
        node.submit(commands)
        node.snapshot()
        node.submit(tail)
        result = node.last_seq, node.state_hash()
        node.close(snapshot=False)
    return result


def test_restart_checks_the_anchor_and_replays_only_the_tail(tmp_path: Path) -> None:
    commands = _trading(120)
    last_seq, expected = _history(tmp_path, commands[:-TAIL], tail=commands[-TAIL:])
    snap = read_snapshot(list_snapshots(tmp_path / "snapshots")[-1])
    assert snap.anchor is not None and snap.anchor.seq == snap.last_seq == last_seq - TAIL
    with EngineNode(NodeConfig(data_dir=tmp_path)) as node:
        assert (node.last_seq, node.state_hash()) == (last_seq, expected)
        assert node.snapshot_check == "anchor"
        assert node.recovered_records == TAIL  # not from genesis
        node.close(snapshot=False)
    full = NodeConfig(data_dir=tmp_path, verify_snapshot_full=True)
    with EngineNode(full) as node:  # opt-in: the anchor and a replay from genesis
        assert (node.snapshot_check, node.recovered_records) == ("full", last_seq)
        assert node.state_hash() == expected


def test_a_snapshot_from_another_history_is_refused_by_its_anchor(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "a", tmp_path / "b"
    commands = _trading(60)
    other = list(commands)
    other[1] = msgspec.structs.replace(other[1], amount_atoms=12_345)
    assert isinstance(other[1], Deposit)
    _history(ours, commands, tail=[])
    _history(theirs, other, tail=[])
    [mine] = list_snapshots(ours / "snapshots")
    [foreign] = list_snapshots(theirs / "snapshots")
    assert mine.name == foreign.name  # same sequence, different history
    shutil.copy(foreign, mine)
    with pytest.raises(SnapshotMismatch) as refused:
        EngineNode(NodeConfig(data_dir=ours))
    message = str(refused.value)
    assert str(mine) in message and "different history" in message
    assert "anchored to journal record" in message
    assert len(set(re.findall(r"[0-9a-f]{64}", message))) == 2, message  # expected vs found
    # --trust-snapshots: no check at all (the operator vouches for the snapshot)
    with EngineNode(NodeConfig(data_dir=ours, verify_snapshot=False)) as node:
        assert node.snapshot_check == "trusted"
        node.close(snapshot=False)


def test_an_old_snapshot_without_anchor_is_checked_by_full_replay_once(tmp_path: Path) -> None:
    last_seq, expected = _history(tmp_path, _trading(80), tail=[])
    path = list_snapshots(tmp_path / "snapshots")[-1]
    image = read_snapshot(path).image
    write_snapshot(tmp_path / "snapshots", image, anchor=None)  # the format before anchors
    assert path.read_bytes()[:4] == b"KBS1" and read_snapshot(path).anchor is None
    with EngineNode(NodeConfig(data_dir=tmp_path)) as node:
        assert (node.snapshot_check, node.recovered_records) == ("full", last_seq)
        assert node.state_hash() == expected
        node.close(snapshot=False)
    assert read_snapshot(path).anchor is not None  # rewritten with its anchor after the check
    with EngineNode(NodeConfig(data_dir=tmp_path)) as node:
        assert (node.snapshot_check, node.recovered_records) == ("anchor", 0)
        node.close(snapshot=False)

    # an old-format snapshot whose state is not what the journal gives is refused by hash
    forged = msgspec.structs.replace(image, next_txn_id=image.next_txn_id + 1)
    write_snapshot(tmp_path / "snapshots", forged, anchor=None)
    with pytest.raises(SnapshotMismatch, match=f"after seq {last_seq}, but replaying"):
        EngineNode(NodeConfig(data_dir=tmp_path))
