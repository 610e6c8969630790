"""The reference model against hand-computed scenarios: deposits, withdrawals and admin events
(docs/engine-semantics.md); the exchange: tests/reference_support.py.
"""

from __future__ import annotations

from engine.schema import (
    AccountCreated,
    CommandRejected,
    CreateAccount,
    Reject,
    WithdrawalHeld,
    WithdrawalSettled,
    WithdrawResult,
)
from tests.reference_support import (
    AVAIL,
    BTC,
    CUSTODY,
    DAVE,
    FUND_BASE,
    HELD_W,
    Exchange,
    R,
    deposit,
    posting,
    withdraw,
)

# --------------------------------------------------------------------------------------------
# Custody


def test_deposits_and_withdrawals(ex: Exchange) -> None:
    t = ex.next_txn()
    events = ex.run(deposit(DAVE, BTC, 500, "tx:0"))
    assert events == [posting(ex.seq, t, R.DEPOSIT, BTC, (0, CUSTODY), (DAVE, AVAIL), 500)]
    events = ex.run(deposit(DAVE, BTC, 500, "tx:0"))
    assert events == [
        CommandRejected(seq=ex.seq, command="Deposit", reason=Reject.DUPLICATE_DEPOSIT)
    ]
    events = ex.run(withdraw(withdrawal_id=11, account_id=DAVE, asset_id=BTC, amount_atoms=200))
    seq = ex.seq
    assert events == [
        WithdrawalHeld(seq=seq, withdrawal_id=11, account_id=DAVE, asset_id=BTC, amount_atoms=200),
        posting(seq, t + 1, R.WITHDRAW_HOLD, BTC, (DAVE, AVAIL), (DAVE, HELD_W), 200),
    ]
    ex.run(withdraw(withdrawal_id=12, account_id=DAVE, asset_id=BTC, amount_atoms=300))
    assert ex.balance(DAVE, BTC) == (0, 0, 500)
    events = ex.run(withdraw(withdrawal_id=13, account_id=DAVE, asset_id=BTC, amount_atoms=1))
    assert events[0].reason == Reject.INSUFFICIENT_FUNDS
    image = ex.eng.image()
    assert [w.withdrawal_id for w in image.pending_withdrawals] == [11, 12]
    assert image.withdrawal_ids == [11, 12]  # the refused 13 was not recorded
    events = ex.run(WithdrawResult(withdrawal_id=11, success=True))
    seq = ex.seq
    assert events == [
        WithdrawalSettled(
            seq=seq, withdrawal_id=11, account_id=DAVE, asset_id=BTC, amount_atoms=200, success=True
        ),
        posting(seq, t + 3, R.WITHDRAW_SETTLE, BTC, (DAVE, HELD_W), (0, CUSTODY), 200),
    ]
    events = ex.run(WithdrawResult(withdrawal_id=12, success=False))
    assert events[0].success is False
    assert events[1] == posting(
        ex.seq, t + 4, R.WITHDRAW_RELEASE, BTC, (DAVE, HELD_W), (DAVE, AVAIL), 300
    )
    assert ex.balance(DAVE, BTC) == (300, 0, 0)
    assert ex.custody(BTC) == -3 * FUND_BASE - 500 + 200
    for command, reason in (
        (WithdrawResult(withdrawal_id=11, success=True), Reject.UNKNOWN_WITHDRAWAL),
        (withdraw(withdrawal_id=11, account_id=DAVE, asset_id=BTC), Reject.DUPLICATE_WITHDRAWAL),
    ):
        assert ex.run(command) == [
            CommandRejected(seq=ex.seq, command=type(command).__name__, reason=reason)
        ]
    image = ex.eng.image()
    assert image.pending_withdrawals == [] and image.withdrawal_ids == [11, 12]
    assert "tx:0" in image.deposit_keys and image.deposit_keys == sorted(image.deposit_keys)


def test_admin_events(ex: Exchange) -> None:
    assert ex.run(CreateAccount(account_id=5)) == [AccountCreated(seq=ex.seq, account_id=5)]
    image = ex.eng.image()
    assert [a.account_id for a in image.accounts] == [1, 2, 3, 4, 5]
    assert image.accounts[3].balances == [] and image.accounts[4].balances == []
