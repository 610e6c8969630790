"""Restoring an image's resting orders in bulk (`engine.core.restoreorders.load_columns`):
the same engine state as before, and every bad order still refused with the error naming it
(the order-by-order loop takes over whenever the bulk checks find anything wrong)."""

from __future__ import annotations

import msgspec
import pytest

from engine.core.compiled import CompiledEngine
from engine.core.restoreorders import load_columns
from engine.schema import StateImage, state_hash


@pytest.fixture(scope="module")
def image() -> StateImage:
    from bench.workloads import workload_b

    wl = workload_b(4, 2_000, accounts=100, resting=1_500)
    engine = CompiledEngine(wl.config)
    engine.process(wl.setup + wl.prefill + wl.stream)
    img = engine.image()
    assert len(img.orders) > 500 and {o.side for o in img.orders} == {0, 1}
    return img


def test_restored_image_is_the_same_state(image: StateImage) -> None:
    restored = CompiledEngine.from_image(image)
    assert state_hash(restored.image()) == state_hash(image)
    assert load_columns(CompiledEngine.from_image(image), image.orders) is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hold_atoms": 1}, "hold 1 !="),
        ({"market_id": 63}, "unknown market 63"),
        ({"account_id": 9_999}, "unknown account 9999"),
        ({"qty_atoms": 1}, "price or quantity off the market grid"),
        ({"price_atoms": -5}, "price or quantity off the market grid"),
    ],
)
def test_bad_order_is_refused_by_name(
    image: StateImage, change: dict[str, int], message: str
) -> None:
    orders = list(image.orders)
    bad = msgspec.structs.replace(orders[7], **change)
    orders[7] = bad
    tampered = msgspec.structs.replace(image, orders=orders)
    with pytest.raises(ValueError, match=f"order {bad.order_id}: {message}"):
        CompiledEngine.from_image(tampered)
