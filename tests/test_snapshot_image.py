"""A replica's snapshot image for storing (`Replica.snapshot_image`: the engine's accounts and
orders spliced in as their canonical msgpack, no Python object per order on the replica's loop)
must store the very bytes, and so the very state hash, that the object image stores: snapshots
written before and after it load alike, and every replica's copy of a point is identical."""

from __future__ import annotations

from hypothesis import given, settings

from engine.core.compiled import CompiledEngine
from engine.replica import Replica, ReplicaState
from engine.snapimage import replica_image
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


@settings(max_examples=40, deadline=None)
@given(command_streams(max_commands=80, issue3=True))
def test_image_from_a_capture_stores_the_images_bytes_after_the_engine_moved_on(
    records: list[Record],
) -> None:
    """The cross-check builds a snapshot point's image on its thread from the digest's copies
    (`engine.snapimage`): the bytes stored are the object image's at the captured point, even
    though the engine has processed more commands by the time it is built."""
    eng = CompiledEngine(CONFIG)
    state = ReplicaState(stream_seq=7, last_ts_ns=11, origins={5: [3, 0b101, 6]})
    replica = Replica(eng, state)
    chunks = [records[k : k + 20] for k in range(0, len(records), 20)]
    for k, chunk in enumerate(chunks):
        eng.process(chunk)
        want = encode_snapshot(replica.image())  # (bytes, state hash)
        captured, at = replica.checkpoint_input(), replica.snapshot_state()
        if k + 1 < len(chunks):
            eng.process(chunks[k + 1][:5])  # the loop goes on before the thread builds it
            chunks[k + 1] = chunks[k + 1][5:]
        assert encode_snapshot(replica_image(at, captured)) == want
