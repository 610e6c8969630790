"""The reference engine: docs/engine-semantics.md, step by step, in plain Python.

Every handler validates everything first (returning a reason code), and only then mutates and
emits events. Resolutions of points the contract leaves open are marked "Resolution:".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.reference.admin import AdminCommands
from engine.reference.image import StateImages
from engine.schema import (
    AmendOrder,
    CancelAll,
    CancelOnDisconnect,
    CancelOrder,
    CancelReplaceOrder,
    Command,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    EngineConfig,
    Event,
    PlaceOrder,
    RejectStreamMessage,
    SetAccountFrozen,
    SetAccountTier,
    SetDeadMansSwitch,
    SetMarketState,
    SetTierTradeLimit,
    Tick,
    WithdrawalDecision,
    WithdrawRequest,
    WithdrawResult,
)


class ReferenceEngine(AdminCommands, StateImages):
    """The whole reference engine: order, admin and custody commands (`OrderCommands`,
    `AdminCommands`), the state image (`StateImages`), and the driver that numbers them."""

    def __init__(self, config: EngineConfig = EngineConfig()) -> None:  # noqa: B008
        super().__init__(config)
        self._handlers: dict[type, Callable[[Any], None]] = {
            CreateAsset: self._create_asset,
            CreateMarket: self._create_market,
            CreateAccount: self._create_account,
            Deposit: self._deposit,
            WithdrawRequest: self._withdraw_request,
            WithdrawResult: self._withdraw_result,
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            CancelAll: self._cancel_all,
            CancelReplaceOrder: self._cancel_replace,
            SetMarketState: self._set_market_state,
            Tick: self._tick,
            SetDeadMansSwitch: self._set_dead_mans_switch,
            CancelOnDisconnect: self._cancel_on_disconnect,
            SetAccountFrozen: self._set_account_frozen,
            SetAccountTier: self._set_account_tier,
            SetTierTradeLimit: self._set_tier_trade_limit,
            WithdrawalDecision: self._withdrawal_decision,
            RejectStreamMessage: self._reject_stream_message,
        }
        self._now = 0

    # ---------------------------------------------------------------------------------------
    # Driver

    def process(self, records: Sequence[tuple[int, int, Command]]) -> list[Event]:
        out: list[Event] = []
        self._out = out
        for seq, timestamp_ns, command in records:
            assert seq > self.last_seq, (seq, self.last_seq)
            self._seq = seq
            self._now = timestamp_ns
            handler = self._handlers.get(type(command))
            assert handler is not None, f"unknown command {type(command).__name__}"
            self._sweep()
            handler(command)
            self.last_seq = seq
            market = self.markets.get(getattr(command, "market_id", -1))
            if market is not None:
                market.assert_not_crossed()
            assert all(m.burst is None for m in self.markets.values())
        return out
