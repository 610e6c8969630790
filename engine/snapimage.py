"""A replica snapshot's engine image built from a checkpoint capture, on the digest thread.

At a snapshot point (every `engine.crosscheck.Checker.snapshot_every`-th checkpoint) the replica
already copies the canonical state out of the engine for the checkpoint digest
(`engine.core.digest.capture`: the header's encoding, the accounts, the balance table, the
resting orders' rows in book order, the market table). `Replica.snapshot_image` then walked the
engine again on the replica's loop (~23 ms at 100,000 resting orders) to splice the same data
into an image. Here the image is spliced from the capture instead, so the loop pays nothing
more than the digest's copies, and the order columns and their msgpack are computed on the
thread that hashes the digest (the njit encoders release the GIL, numpy mostly does).

The result encodes to the same bytes, and so the same state hash, as `Replica.image`'s
(`tests/test_snapshot_image.py`).
"""

from __future__ import annotations

import msgspec

from engine.core.digest import DigestInput
from engine.core.imagebytes import accounts_raw, table_raw
from engine.core.imaging import order_rows
from engine.replica import ReplicaImage, ReplicaState
from engine.schema import StateImage
from engine.schema.image import IMAGE_DECODER


def replica_image(state: ReplicaState, captured: DigestInput) -> ReplicaImage:
    """The snapshot image of the replica at the captured point (``state``: its
    `Replica.snapshot_state` taken at the same point); any thread."""
    return ReplicaImage(state=state, engine=image_from_capture(captured))


def image_from_capture(captured: DigestInput) -> StateImage:
    """`engine.core.imagebytes.spliced_image` of the engine at the captured point, reading
    only the capture's copies (any thread). For encoding only, like that one."""
    head = IMAGE_DECODER.decode(captured.head)
    return msgspec.structs.replace(
        head,
        accounts=accounts_raw(captured.accounts[:, 0], captured.balances, captured.accounts[:, 1]),
        orders=table_raw(order_rows(captured.ords, captured.olnk, captured.mkt)),
    )
