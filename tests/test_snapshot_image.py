"""A replica's snapshot image for storing (`Replica.snapshot_image`: the engine's accounts and
orders spliced in as their canonical msgpack, no Python object per order on the replica's loop)
must store the very bytes, and so the very state hash, that the object image stores: snapshots
written before and after it load alike, and every replica's copy of a point is identical."""

from __future__ import annotations

from hypothesis import given, settings

from engine.core.compiled import CompiledEngine
from engine.replica import Replica, ReplicaState
from engine.snapstore import encode_snapshot
from tests.streams import Record, command_streams
from tests.test_checkpoint_digest import CONFIG


@settings(max_examples=40, deadline=None)
@given(command_streams(max_commands=80, issue3=True))
def test_snapshot_image_stores_the_object_images_bytes(records: list[Record]) -> None:
    eng = CompiledEngine(CONFIG)
    state = ReplicaState(stream_seq=7, last_ts_ns=11, origins={5: [3, 0b101, 6]})
    replica = Replica(eng, state)
    for k in range(0, len(records), 20):  # several points of one stream
        eng.process(records[k : k + 20])
        assert encode_snapshot(replica.snapshot_image()) == encode_snapshot(replica.image())
