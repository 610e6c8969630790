"""The AML engine's hold verdicts last only while a withdrawal is undecided: its settlement
(sent, rejected or cancelled) drops the entry, so ``holds`` does not grow with every held
withdrawal ever made, and the snapshot image carries exactly the undecided ones."""

from __future__ import annotations

from decimal import Decimal

from backoffice.aml import image
from backoffice.aml.engine import AmlEngine
from backoffice.aml.rules import Rule, RuleSet
from engine.schema import AssetCreated, WithdrawalHeld, WithdrawalSettled

ETH = 2
NS = 1_000_000_000
RULES = RuleSet(
    rules=(
        Rule(id="big-out", kind="large_withdrawal", action="hold", asset="ETH", amount=Decimal(1)),
    ),
    deny_list=frozenset(),
)


def _held(seq: int, withdrawal_id: int, amount_atoms: int) -> WithdrawalHeld:
    return WithdrawalHeld(
        seq=seq,
        withdrawal_id=withdrawal_id,
        account_id=7,
        asset_id=ETH,
        amount_atoms=amount_atoms,
        address="0xabc",
    )


def test_a_decided_withdrawal_leaves_no_hold_and_the_image_agrees() -> None:
    engine = AmlEngine(RULES)
    engine.feed(1 * NS, [AssetCreated(seq=1, asset_id=ETH, symbol="ETH", decimals=9)])
    engine.feed(2 * NS, [_held(2, 100, 5 * 10**9), _held(3, 101, 3 * 10**9), _held(4, 102, 1)])
    assert engine.screen(100) == ["big-out"] and engine.screen(101) == ["big-out"]
    assert engine.screen(102) == []  # under the threshold: never held
    settled = [
        WithdrawalSettled(seq=5, withdrawal_id=100, account_id=7, asset_id=ETH,
                          amount_atoms=5 * 10**9, success=True),
        WithdrawalSettled(seq=6, withdrawal_id=102, account_id=7, asset_id=ETH,
                          amount_atoms=1, success=False),
    ]  # fmt: skip
    engine.feed(3 * NS, settled)
    assert engine.holds == {101: ["big-out"]}  # only the undecided one remains
    assert engine.screen(100) == []
    restored = AmlEngine(RULES)
    assert image.restore(restored, image.encode(engine, [])) == []
    assert restored.holds == engine.holds and restored.last_seq == 6
    restored.feed(4 * NS, [WithdrawalSettled(seq=7, withdrawal_id=101, account_id=7,
                                             asset_id=ETH, amount_atoms=3 * 10**9,
                                             success=False)])  # fmt: skip
    assert restored.holds == {}
