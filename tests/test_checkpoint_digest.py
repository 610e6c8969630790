"""The checkpoint digest (`engine.core.digest`) names the canonical state like the image does.

Replicas record it at cross-check points and compare it, and a snapshot is loaded only if its
restored engine has the recorded digest; so it must not depend on how the engine got there
(a replica restored from an image agrees with one that ran every command) and it must change
with anything the image holds.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings

from engine.core.compiled import CompiledEngine
from engine.core.digest import capture, checkpoint_digest, finish
from engine.schema import EngineConfig, StateImage
from tests.streams import Record, command_streams

CONFIG = EngineConfig(
    max_accounts=16, max_assets=4, max_markets=4, max_orders=4096, max_levels_per_side=1024
)


@settings(max_examples=60, deadline=None)
@given(command_streams(max_commands=80, issue3=True))
def test_digest_equal_exactly_when_images_equal(records: list[Record]) -> None:
    eng = CompiledEngine(CONFIG)
    seen: dict[str, StateImage] = {}
    for record in records:
        eng.process([record])
        image = eng.image()
        digest = checkpoint_digest(eng)
        assert checkpoint_digest(CompiledEngine.from_image(image)) == digest, "restored"
        assert seen.setdefault(digest, image) == image, "one digest, two states"
    # every command moves last_seq: as many digests as states
    assert len(seen) == len(records)


def _changed(image: StateImage) -> list[StateImage]:
    """The image with one thing changed in each part a digest must cover."""
    out = [msgspec.structs.replace(image, next_txn_id=image.next_txn_id + 1)]
    out.append(msgspec.structs.replace(image, deposit_keys=[*image.deposit_keys, "zz-new"]))
    for k, a in enumerate(image.accounts):
        accounts = list(image.accounts)
        accounts[k] = msgspec.structs.replace(a, dead_mans_switch_ns=a.dead_mans_switch_ns + 10**18)
        out.append(msgspec.structs.replace(image, accounts=accounts))
        if a.balances:
            b = a.balances[0]
            bumped = msgspec.structs.replace(b, available_atoms=b.available_atoms + 1)
            accounts = list(image.accounts)
            accounts[k] = msgspec.structs.replace(a, balances=[bumped, *a.balances[1:]])
            out.append(msgspec.structs.replace(image, accounts=accounts))
        break
    if image.orders:
        orders = list(image.orders)
        first = orders[0]
        orders[0] = msgspec.structs.replace(first, client_order_id=first.client_order_id + 1)
        out.append(msgspec.structs.replace(image, orders=orders))
    return out


@settings(max_examples=25, deadline=None)
@given(command_streams(max_commands=60))
def test_digest_changes_with_any_part_of_the_state(records: list[Record]) -> None:
    eng = CompiledEngine(CONFIG)
    eng.process(records)
    image = eng.image()
    digest = checkpoint_digest(eng)
    for other in _changed(image):
        assert other != image
        assert checkpoint_digest(CompiledEngine.from_image(other)) != digest


@settings(max_examples=25, deadline=None)
@given(command_streams(max_commands=80, issue3=True))
def test_captured_state_hashes_to_its_point_after_the_engine_moved_on(
    records: list[Record],
) -> None:
    """The cross-check copies the state at a checkpoint (`capture`) and hashes it on another
    thread (`finish`) while the replica applies the next messages: the copies must not be
    views the engine still writes."""
    eng = CompiledEngine(CONFIG)
    half = len(records) // 2
    eng.process(records[:half])
    at_point = checkpoint_digest(eng)
    captured = capture(eng)
    eng.process(records[half:])
    assert finish(captured) == at_point
    assert finish(capture(eng)) == checkpoint_digest(eng)
