"""Commands and events: the engine's contract, and the single source of truth for the journal.

Every value that crosses the engine boundary is one of the msgspec Structs below. Commands are
what the sequencer journals; events are what the engine emits. Both are tagged unions (the tag
is the class name), so one decoder reads any of them and a new kind is a new Struct, never a
new field meaning.

Units (DESIGN.md, money rule 1): integers only.

- ``*_atoms``: an amount in the asset's smallest unit (satoshi, wei, 10^-6 USDT, ...).
- ``price_atoms``: quote atoms per one *whole* base unit (10^base_decimals base atoms).
  A price must be a multiple of the market's ``tick_size_atoms``.
- ``qty_atoms``: base atoms; a multiple of the market's ``lot_size_atoms``.
- ``*_ppm``: parts per million (1_000 ppm = 0.1 %).
- ``*_ns``: nanoseconds of journal time (the sequencer's clock, never a wall clock).

Inside the core, prices are ticks and quantities lots; the conversion happens once, when a
command is admitted, and every rejection for a value off the grid names the grid.

The schema is split by concept: `engine.schema.limits` (bounds, format version),
`engine.schema.codes` (enumerations), `engine.schema.commands`, `engine.schema.events` and
`engine.schema.image` (the state image and its hash); ``engine.schema`` re-exports all of it.
"""

from __future__ import annotations

from engine.schema.codes import (
    CONDITIONAL_TYPES,
    LIMIT_CONDITIONAL_TYPES,
    Bucket,
    CancelReason,
    ExpireReason,
    MarketState,
    OrderType,
    PostingReason,
    Reject,
    Side,
    StpMode,
    TimeInForce,
)
from engine.schema.commands import (
    COMMAND_DECODER,
    COMMAND_ENCODER,
    LEGACY_DEMO_KEY_PREFIX,
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
    PlaceOrder,
    SetDeadMansSwitch,
    SetMarketState,
    Tick,
    WithdrawRequest,
    WithdrawResult,
    decode_command,
    encode_command,
)
from engine.schema.events import (
    EVENT_DECODER,
    AccountCreated,
    AssetCreated,
    CommandRejected,
    DeadMansSwitchFired,
    DeadMansSwitchSet,
    Event,
    IcebergRefreshed,
    MarketCreated,
    MarketStateChanged,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    Posting,
    SelfTradePrevented,
    Trade,
    WithdrawalHeld,
    WithdrawalSettled,
)
from engine.schema.image import (
    IMAGE_DECODER,
    IMAGE_ENCODER,
    AccountImage,
    AssetImage,
    BalanceImage,
    ConditionalOrderImage,
    EngineConfig,
    MarketImage,
    OrderImage,
    StateImage,
    WithdrawalImage,
    state_hash,
)
from engine.schema.limits import (
    BPS,
    FORMAT_VERSION,
    MAX_ACCOUNT_ID,
    MAX_AMOUNT_ATOMS,
    MAX_BAND_BPS,
    MAX_CLIENT_ORDER_ID,
    MAX_FEE_PPM,
    MAX_TRAILING_DELTA_BPS,
    SYSTEM_ACCOUNT,
)

__all__ = [
    "BPS",
    "COMMAND_DECODER",
    "COMMAND_ENCODER",
    "CONDITIONAL_TYPES",
    "EVENT_DECODER",
    "FORMAT_VERSION",
    "IMAGE_DECODER",
    "IMAGE_ENCODER",
    "LEGACY_DEMO_KEY_PREFIX",
    "LIMIT_CONDITIONAL_TYPES",
    "MAX_ACCOUNT_ID",
    "MAX_AMOUNT_ATOMS",
    "MAX_BAND_BPS",
    "MAX_CLIENT_ORDER_ID",
    "MAX_FEE_PPM",
    "MAX_TRAILING_DELTA_BPS",
    "SYSTEM_ACCOUNT",
    "AccountCreated",
    "AccountImage",
    "AmendOrder",
    "AssetCreated",
    "AssetImage",
    "BalanceImage",
    "Bucket",
    "CancelAll",
    "CancelOnDisconnect",
    "CancelOrder",
    "CancelReason",
    "CancelReplaceOrder",
    "Command",
    "CommandRejected",
    "ConditionalOrderImage",
    "CreateAccount",
    "CreateAsset",
    "CreateMarket",
    "DeadMansSwitchFired",
    "DeadMansSwitchSet",
    "Deposit",
    "EngineConfig",
    "Event",
    "ExpireReason",
    "IcebergRefreshed",
    "MarketCreated",
    "MarketImage",
    "MarketState",
    "MarketStateChanged",
    "OrderAccepted",
    "OrderAmended",
    "OrderCancelled",
    "OrderExpired",
    "OrderImage",
    "OrderRejected",
    "OrderTriggered",
    "OrderType",
    "PlaceOrder",
    "Posting",
    "PostingReason",
    "Reject",
    "SelfTradePrevented",
    "SetDeadMansSwitch",
    "SetMarketState",
    "Side",
    "StateImage",
    "StpMode",
    "Tick",
    "TimeInForce",
    "Trade",
    "WithdrawRequest",
    "WithdrawResult",
    "WithdrawalHeld",
    "WithdrawalImage",
    "WithdrawalSettled",
    "decode_command",
    "encode_command",
    "state_hash",
]
