"""Engine node, snapshots and replay: recovery paths and the audit CLI, on real files."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import pytest

from engine.node import EngineNode, NodeConfig
from engine.replay import ReplayMismatch, replay, run_replay_cli
from engine.schema import (
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    OrderAccepted,
    OrderType,
    PlaceOrder,
    Side,
    Trade,
    state_hash,
)
from engine.service import BTC, USDT, bootstrap_demo
from engine.snapshot import SnapshotError, list_snapshots, read_snapshot, write_snapshot


def _trading(n: int) -> list[Command]:
    """Two funded accounts crossing orders on BTC-USDT, with some cancels."""
    commands: list[Command] = []
    for account_id in (1, 2):
        commands += [
            CreateAccount(account_id=account_id),
            Deposit(
                account_id=account_id,
                asset_id=USDT,
                amount_atoms=10**13,
                deposit_key=f"u{account_id}",
            ),
            Deposit(
                account_id=account_id,
                asset_id=BTC,
                amount_atoms=10**10,
                deposit_key=f"b{account_id}",
            ),
        ]
    for i in range(n):
        side = Side.BUY if i % 2 else Side.SELL
        commands.append(
            PlaceOrder(
                account_id=1 + i % 2,
                market_id=0,
                side=side,
                order_type=OrderType.LIMIT,
                price_atoms=(3_000_000 + i % 7) * 10_000,
                qty_atoms=(1 + i % 5) * 10_000,
            )
        )
        if i % 5 == 4:
            commands.append(CancelOrder(account_id=1, market_id=0, order_id=0, client_order_id=0))
    return commands


def _node(data_dir: Path, **kwargs: int) -> EngineNode:
    return EngineNode(NodeConfig(data_dir=data_dir, **kwargs))  # type: ignore[arg-type]


def test_acknowledged_events_and_restart_with_snapshot_and_tail(tmp_path: Path) -> None:
    with _node(tmp_path, snapshot_every=50) as node:
        bootstrap_demo(node)
        events = node.submit(_trading(200))
        assert any(isinstance(e, Trade) for e in events)
        assert any(isinstance(e, OrderAccepted) for e in events)
        node.submit(_trading(0)[:0])  # an empty batch is a no-op
        snapshots_before_close = list_snapshots(tmp_path / "snapshots")
        assert snapshots_before_close, "snapshot_every should have written snapshots"
        expected_hash, expected_seq = node.state_hash(), node.last_seq
        node.close(snapshot=False)  # as after a crash: the tail must be replayed
    with _node(tmp_path) as node:
        assert (node.last_seq, node.state_hash()) == (expected_seq, expected_hash)
    # the clean close wrote a snapshot at the last sequence: the next start replays nothing
    assert read_snapshot(list_snapshots(tmp_path / "snapshots")[-1]).last_seq == expected_seq
    assert replay(tmp_path / "journal").state_hash == expected_hash


def test_snapshot_written_from_spliced_parts_is_the_engine_image(tmp_path: Path) -> None:
    """`EngineNode.snapshot` encodes the accounts and orders straight from the arrays
    (`engine.core.imagebytes`): the file must decode to the engine's own image, under its
    state hash, and `state_hash()` must be that image's hash."""
    with _node(tmp_path) as node:
        bootstrap_demo(node)
        node.submit(_trading(120))
        digest = node.snapshot()
        image = node.engine.image()
        assert node.state_hash() == digest == state_hash(image)
        snap = read_snapshot(list_snapshots(tmp_path / "snapshots")[-1])
        assert (snap.image, snap.state_hash, snap.last_seq) == (image, digest, node.last_seq)


def test_corrupt_snapshot_is_skipped_and_journal_rebuilds(tmp_path: Path) -> None:
    with _node(tmp_path) as node:
        bootstrap_demo(node)
        node.submit(_trading(60))
        expected = node.state_hash()
    newest = list_snapshots(tmp_path / "snapshots")[-1]
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        read_snapshot(newest)
    with _node(tmp_path) as node:
        assert node.state_hash() == expected


def test_replay_cli_verifies_snapshots_and_fails_loudly_on_a_forged_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _node(tmp_path, snapshot_every=40, snapshot_keep=10) as node:
        bootstrap_demo(node)
        commands = _trading(150)
        for start in range(0, len(commands), 10):  # snapshots are taken between batches
            node.submit(commands[start : start + 10])
        final = node.state_hash()
    args = argparse.Namespace(
        journal=str(tmp_path / "journal"), snapshots=None, from_seq=None, to_seq=None, verify=True
    )
    assert run_replay_cli(args) == 0
    out = capsys.readouterr().out
    assert final in out and "verified snapshots" in out

    # a partial replay stops at --to and starts from a snapshot at or before --from
    middle = read_snapshot(list_snapshots(tmp_path / "snapshots")[0])
    partial = replay(
        tmp_path / "journal",
        snapshot_dir=tmp_path / "snapshots",
        from_seq=middle.last_seq + 1,
        to_seq=middle.last_seq + 5,
    )
    assert partial.first_seq == middle.last_seq + 1
    assert partial.last_seq == middle.last_seq + 5

    # a snapshot that is internally consistent but records a different state
    forged = msgspec.structs.replace(middle.image, next_txn_id=middle.image.next_txn_id + 1)
    write_snapshot(tmp_path / "snapshots", forged, keep=10, anchor=None)
    with pytest.raises(ReplayMismatch, match=f"after seq {middle.last_seq}"):
        replay(tmp_path / "journal", snapshot_dir=tmp_path / "snapshots", verify=True)
    assert run_replay_cli(args) == 3
    assert "REPLAY MISMATCH" in capsys.readouterr().out
