"""Commands: what the sequencer journals (tagged msgspec Structs), and their codec."""

from __future__ import annotations

from typing import Final

import msgspec

from engine.schema.codes import TimeInForce

# --------------------------------------------------------------------------------------------
# Commands. `kw_only` keeps construction explicit; `frozen` because a journaled fact never
# changes. Optional fields default to 0, meaning "absent", so the encoding stays fixed-width
# friendly for the compiled core.


class _Command(msgspec.Struct, tag=True, frozen=True, kw_only=True, array_like=True):
    pass


class CreateAsset(_Command):
    asset_id: int
    symbol: str
    decimals: int
    """Atoms per whole unit = 10**decimals (BTC 8, ETH 18, USDT 6)."""
    staff_id: str = ""
    """The admin who created it through the operator API; "" for assets made at a data
    directory's start and commands journaled before the field."""


class CreateMarket(_Command):
    market_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick_size_atoms: int
    """Price increment in quote atoms per whole base unit."""
    lot_size_atoms: int
    """Quantity increment in base atoms."""
    min_notional_atoms: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    price_band_bps: int = 0
    """Limit prices further than this from the reference price are refused; 0 = off."""
    market_protection_bps: int = 0
    """A market order stops this far beyond the best price at its arrival; 0 = off."""
    max_order_qty_atoms: int = 0
    """Largest quantity of one order; 0 = no limit."""
    staff_id: str = ""
    """The operator who created it through the operator API (the audit names them); "" for
    markets made at a data directory's start and commands journaled before the field."""


class SetMarketState(_Command):
    """``staff_id``: the operator who changed it (the audit names them); "" for commands
    journaled before the field (they decode with the default)."""

    market_id: int
    state: int
    staff_id: str = ""


class SetAccountFrozen(_Command):
    """Freeze (or unfreeze) an account, by a staff member: a frozen account's new orders,
    amends that add exposure and withdrawal requests are refused (ACCOUNT_FROZEN); cancels
    and everything already resting go on as before."""

    account_id: int
    frozen: bool
    staff_id: str


class SetAccountTier(_Command):
    """The account's KYC tier (0-3), by a staff member (or the back office at sign-up).
    The engine records it; what a tier may withdraw is enforced before a WithdrawRequest is
    journaled (the gateway), since limits per asset and window are configuration."""

    account_id: int
    tier: int
    staff_id: str


class SetTierTradeLimit(_Command):
    """The largest notional one order of an account of KYC ``tier`` may have in markets
    quoted in ``asset_id`` (quote atoms; 0 = no limit), set by staff. Journaled, so the engine
    enforces it from journaled state and a replay refuses the same orders (TIER_TRADE_LIMIT).
    Accounts without a tier (operator-made, -1) are not limited. docs/engine-semantics.md,
    "Tier trade limits", defines an order's notional."""

    tier: int
    asset_id: int
    max_order_notional_atoms: int
    staff_id: str


class WithdrawalDecision(_Command):
    """A staff decision on a withdrawal waiting for four eyes, journaled before custody acts
    on it, so the journal names who approved or rejected what (the audit log reads it; a
    replay has it). The engine checks that the withdrawal is held for that account
    (UNKNOWN_WITHDRAWAL otherwise) and changes nothing: a rejection's release is the
    ``WithdrawResult`` journaled next, and an approval's effect is custody's (the second one
    hands the withdrawal to the signer)."""

    withdrawal_id: int
    account_id: int
    staff_id: str
    approve: bool
    note: str = ""
    """A rejection's reason; empty for an approval."""


class Tick(_Command):
    """Journaled by the write path's owner when time must advance without traffic (the gateway:
    when a dead-man's switch is due): carries journal time only, so GTD expiries and
    dead-man's switches fire on time without any other command."""


class SetDeadMansSwitch(_Command):
    """Cancel all the account's orders at the first command at or after ``fire_at_ns`` unless
    this command is sent again with a later time; 0 disarms."""

    account_id: int
    fire_at_ns: int


class CancelOnDisconnect(_Command):
    """The gateway lost the account's session (journaled so replay cancels the same orders)."""

    account_id: int


class RejectStreamMessage(_Command):
    """Derived by every replica in cluster mode, never published: the stream message at
    ``stream_seq`` was not a batch this build runs (reason: `StreamReject`). Journaled as a
    command (it takes the next sequence and the message's journal time) so that the rejection
    is in the history every replica, export and audit derives alike; it changes no balance or
    order (the sweep of journal time before it runs as before any command)."""

    stream_seq: int
    reason: int


class CreateAccount(_Command):
    account_id: int


LEGACY_DEMO_KEY_PREFIX: Final = "demo:"
"""Deposit keys of the demo faucet before ``Deposit.demo`` existed (journals written before
issue 11): such deposits count as demo credits, so an old data directory's demo money is still
reported apart. The gateway refuses this prefix for any other deposit."""


class Deposit(_Command):
    """A credit across the custody boundary, at most once per ``deposit_key`` (money rule 4).

    ``demo`` marks the demo faucet (``kootabase serve --demo``): money from nowhere by design,
    for trying the exchange. The engine credits it like any deposit (the state hash stays one
    function of the journal); reports and reconciliation account for it apart from custody
    (`is_demo`). Journals written before the field existed decode with ``demo=False`` (a
    missing trailing field takes its default). msgspec writes the defaults
    of array-like structs whatever ``omit_defaults`` says, so a new non-demo deposit is one
    byte longer than an old one; the journal keeps the bytes as written.
    """

    account_id: int
    asset_id: int
    amount_atoms: int
    deposit_key: str
    """(chain, tx, output/log index) rendered by custody; the engine only compares it."""
    demo: bool = False
    recorded_by: str = ""
    approved_by: str = ""
    """A fiat credit's two staff members (`backoffice.fiat`: one records the bank transfer,
    another approves it), so the journal names both; "" for custody's and operators' credits.
    The engine ignores them."""

    @property
    def is_demo(self) -> bool:
        """A demo credit: flagged, or keyed by the faucet of journals older than the flag."""
        return self.demo or self.deposit_key.startswith(LEGACY_DEMO_KEY_PREFIX)


class WithdrawRequest(_Command):
    withdrawal_id: int
    account_id: int
    asset_id: int
    amount_atoms: int
    address: str = ""
    """The destination as custody recorded it; carried in the log so every replica's AML
    rules see the same address ("" in commands journaled before the field). The engine
    only copies it into ``WithdrawalHeld``."""


class WithdrawResult(_Command):
    withdrawal_id: int
    success: bool


class PlaceOrder(_Command):
    account_id: int
    market_id: int
    side: int
    order_type: int
    time_in_force: int = TimeInForce.GTC
    price_atoms: int = 0
    """Limit price; 0 for market orders."""
    qty_atoms: int = 0
    """Base quantity; 0 only for a market buy by quote amount."""
    quote_qty_atoms: int = 0
    """Market buy only: spend at most this many quote atoms, fees included."""
    client_order_id: int = 0
    """Chosen by the client, unique among the account's open orders; 0 = none; at most
    MAX_CLIENT_ORDER_ID."""
    stop_price_atoms: int = 0
    """STOP_* / TAKE_PROFIT_* trigger price; 0 otherwise."""
    trailing_delta_bps: int = 0
    """TRAILING_STOP_* only: 1..MAX_TRAILING_DELTA_BPS."""
    limit_offset_atoms: int = 0
    """TRAILING_STOP_LIMIT only: the limit lies this far beyond the trigger (multiple of tick)."""
    display_qty_atoms: int = 0
    """Iceberg: the visible slice (LIMIT, GTC or GTD); 0 = everything visible."""
    expire_at_ns: int = 0
    """GTD only: journal time at which the order expires."""
    stp_mode: int = 0
    """StpMode of this order when it takes liquidity."""


class CancelOrder(_Command):
    """Cancel by ``order_id``, or by ``client_order_id`` when ``order_id`` is 0."""

    account_id: int
    market_id: int
    order_id: int = 0
    client_order_id: int = 0


class AmendOrder(_Command):
    """Change a resting order's price and/or open quantity.

    ``new_qty_atoms`` is the new *open* (unfilled) quantity, 0 = unchanged. A pure decrease
    keeps time priority; a price change or an increase loses it (the order re-enters as if new,
    and may trade). ``new_price_atoms`` 0 = unchanged.
    """

    account_id: int
    market_id: int
    order_id: int = 0
    client_order_id: int = 0
    new_price_atoms: int = 0
    new_qty_atoms: int = 0


class CancelAll(_Command):
    account_id: int
    market_id: int = -1
    """-1 = every market."""


class CancelReplaceOrder(_Command):
    """Cancel an open order and place ``place`` in one step: the cancel runs first, so the
    new order is funded by the hold it frees, and nothing else runs in between.

    The cancel targets ``place``'s account and market, by ``cancel_order_id`` when non-zero,
    else by ``cancel_client_order_id`` (as CancelOrder). When the cancel is refused, the new
    order is not attempted unless ``allow_failure``. The new order's id is this command's seq.
    """

    place: PlaceOrder
    cancel_order_id: int = 0
    cancel_client_order_id: int = 0
    allow_failure: bool = False

    @property
    def account_id(self) -> int:
        return self.place.account_id

    @property
    def market_id(self) -> int:
        return self.place.market_id

    def cancel(self) -> CancelOrder:
        """The cancel half, as the CancelOrder it behaves like."""
        return CancelOrder(
            account_id=self.place.account_id,
            market_id=self.place.market_id,
            order_id=self.cancel_order_id,
            client_order_id=self.cancel_client_order_id,
        )


Command = (
    CreateAsset
    | CreateMarket
    | CreateAccount
    | Deposit
    | WithdrawRequest
    | WithdrawResult
    | PlaceOrder
    | CancelOrder
    | AmendOrder
    | CancelAll
    | CancelReplaceOrder
    | SetMarketState
    | Tick
    | SetDeadMansSwitch
    | CancelOnDisconnect
    | SetAccountFrozen
    | SetAccountTier
    | SetTierTradeLimit
    | WithdrawalDecision
    | RejectStreamMessage
)


COMMAND_ENCODER: Final = msgspec.msgpack.Encoder()
COMMAND_DECODER: Final = msgspec.msgpack.Decoder(Command)


def encode_command(command: Command) -> bytes:
    return COMMAND_ENCODER.encode(command)


def decode_command(payload: bytes) -> Command:
    """Decode a journaled command; raises msgspec.ValidationError on a malformed payload."""
    return COMMAND_DECODER.decode(payload)
