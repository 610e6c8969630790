"""Markets and assets as the gateway sees them, and the decimal <-> atoms edge.

Decimal strings exist only on the wire (DESIGN.md, money rule 1). Parsing is exact and integer
only: a string is split at the dot, digits beyond the asset's decimals must be zeros (else the
dialect's precision error), and the grid checks (tick, lot, min notional) name the dialect's
filter that failed, so a client sees the same message it would get from the engine, before
anything is journaled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.schema import MAX_AMOUNT_ATOMS, MarketState
from gateway import dialect, errors

DECIMAL_RE: Final = re.compile(r"([0-9]{1,20})(\.[0-9]{1,20})?")
"""ASCII digits, used with ``fullmatch`` (a ``$`` anchor would accept a trailing newline)."""
DECIMAL_LEGAL: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
DECIMAL_CACHE_ENTRIES: Final = 4_096
"""Per market and asset side: rendered decimals of recent amounts (cleared when full)."""


def atoms_to_decimal(atoms: int, decimals: int) -> str:
    """Exact decimal string with exactly ``decimals`` places (integer arithmetic only)."""
    if decimals == 0:
        return str(atoms)
    sign = "-" if atoms < 0 else ""
    whole, frac = divmod(abs(atoms), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def _remember(cache: dict[int, str], atoms: int, decimals: int) -> str:
    if len(cache) >= DECIMAL_CACHE_ENTRIES:
        cache.clear()
    s = cache[atoms] = atoms_to_decimal(atoms, decimals)
    return s


def _learn(cache: dict[str, int], text: str, atoms: int) -> None:
    if len(cache) >= DECIMAL_CACHE_ENTRIES:
        cache.clear()
    cache[text] = atoms


def parse_decimal(name: str, value: Any, decimals: int) -> int:
    """Wire decimal -> atoms. Strings (and JSON integers) only: floats are refused because
    they cannot carry an exact price."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise errors.illegal(name, DECIMAL_LEGAL)
    text = str(value)
    m = DECIMAL_RE.fullmatch(text)
    if m is None:
        raise errors.illegal(name, DECIMAL_LEGAL)
    whole, frac = m.group(1), (m.group(2) or ".")[1:]
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise errors.ApiError(
                errors.BAD_PRECISION, f"Parameter '{name}' has too much precision."
            )
        frac = frac[:decimals]
    atoms = int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if decimals else 0)
    if atoms > MAX_AMOUNT_ATOMS:
        raise errors.invalid(name)
    return atoms


@dataclass(slots=True)
class Asset:
    asset_id: int
    symbol: str
    decimals: int


@dataclass(slots=True)
class Market:
    market_id: int
    symbol: str
    """Engine symbol ``BTC-USDT``."""
    wire: str
    """Dialect symbol ``BTCUSDT``."""
    base: Asset
    quote: Asset
    tick: int
    lot: int
    min_notional: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    max_order_qty: int
    price_band_bps: int = 0
    """The engine's price band around the reference price (0 = off)."""
    state: int = MarketState.OPEN
    _quote_strs: dict[int, str] = field(default_factory=dict, repr=False, compare=False)
    _base_strs: dict[int, str] = field(default_factory=dict, repr=False, compare=False)
    _prices_in: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _qtys_in: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    # Rendering and parsing are memoized (bounded): an order's answer shows ~7 amounts, and the
    # same prices and round quantities recur all day, so most are one dict lookup. A parse memo
    # holds only strings that passed every check, so a refusal always takes the full path.

    def price(self, atoms: int) -> str:
        s = self._quote_strs.get(atoms)
        return s if s is not None else _remember(self._quote_strs, atoms, self.quote.decimals)

    def qty(self, atoms: int) -> str:
        s = self._base_strs.get(atoms)
        return s if s is not None else _remember(self._base_strs, atoms, self.base.decimals)

    quote_amount = price

    def memo_lookups(self) -> tuple[Callable[[int], str | None], Callable[[int], str | None]]:
        """The bound ``get`` of the price and quantity memos, for a renderer that looks up
        thousands of amounts per page (``get(atoms) or price(atoms)``: a miss falls back to
        `price` / `qty`, which fill the memo; the memos are cleared in place, never replaced)."""
        return self._quote_strs.get, self._base_strs.get

    def parse_price(self, value: Any, name: str = "price") -> int:
        if type(value) is str:  # memo of strings already proven valid (never bools: 1 == True)
            known = self._prices_in.get(value)
            if known is not None:
                return known
        atoms = parse_decimal(name, value, self.quote.decimals)
        if atoms <= 0 or atoms % self.tick:
            raise errors.filter_failure("PRICE_FILTER")
        if type(value) is str:
            _learn(self._prices_in, value, atoms)
        return atoms

    def parse_qty(self, value: Any, name: str = "quantity") -> int:
        if type(value) is str:
            known = self._qtys_in.get(value)
            if known is not None:
                return known
        atoms = parse_decimal(name, value, self.base.decimals)
        if atoms <= 0 or atoms % self.lot:
            raise errors.filter_failure("LOT_SIZE")
        if self.max_order_qty and atoms > self.max_order_qty:
            raise errors.filter_failure("LOT_SIZE")
        if type(value) is str:
            _learn(self._qtys_in, value, atoms)
        return atoms

    def parse_quote_qty(self, value: Any, name: str = "quoteOrderQty") -> int:
        atoms = parse_decimal(name, value, self.quote.decimals)
        if atoms <= 0:
            raise errors.invalid(name)
        if atoms < self.min_notional:
            raise errors.filter_failure("NOTIONAL")
        return atoms

    def notional(self, price: int, qty: int) -> int:
        """Quote atoms of ``qty`` base atoms at ``price`` (exact on a valid grid)."""
        return price * qty // 10**self.base.decimals

    def check_notional(self, price: int, qty: int) -> None:
        n = self.notional(price, qty)
        if n > MAX_AMOUNT_ATOMS:
            raise errors.filter_failure("NOTIONAL")
        if n < self.min_notional:
            raise errors.filter_failure("NOTIONAL")

    @property
    def status(self) -> str:
        return {MarketState.OPEN: "TRADING", MarketState.HALTED: "HALT"}.get(self.state, "BREAK")

    def filters(self, max_num_orders: int) -> list[dict[str, Any]]:
        """The filters, each one what the engine (and the gateway before it) enforces:

        - PRICE_FILTER / LOT_SIZE / MARKET_LOT_SIZE: the tick and lot grids, the engine's
          integer bound, the market's ``max_order_qty_atoms``.
        - NOTIONAL: ``price x quantity`` of limit-priced orders and an order's quote budget
          (``quoteOrderQty``) must reach ``min_notional_atoms``. A MARKET (or STOP_LOSS /
          TAKE_PROFIT) order by quantity has no price to check before it trades, and neither
          the engine nor the gateway estimates one: ``applyMinToMarket`` is false.
        - MAX_NUM_ORDERS: the engine's ``max_open_orders_per_account``, which bounds the
          account's open orders on all symbols together (also exchangeInfo's
          EXCHANGE_MAX_NUM_ORDERS), so it bounds one symbol's too.
        - PERCENT_PRICE_BY_SIDE, only with a price band: the engine refuses limit prices further
          than the band from the last trade price (the mid before the first trade), the same
          on both sides (``avgPriceMins`` 0: the last price).
        """
        max_qty = self.max_order_qty or (MAX_AMOUNT_ATOMS // self.lot) * self.lot
        max_price = (MAX_AMOUNT_ATOMS // self.tick) * self.tick
        out: list[dict[str, Any]] = [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": self.price(self.tick),
                "maxPrice": self.price(max_price),
                "tickSize": self.price(self.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": self.qty(self.lot),
                "maxQty": self.qty(max_qty),
                "stepSize": self.qty(self.lot),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": self.qty(self.lot),
                "maxQty": self.qty(max_qty),
                "stepSize": self.qty(self.lot),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": self.quote_amount(self.min_notional),
                "applyMinToMarket": False,
                "maxNotional": self.quote_amount(MAX_AMOUNT_ATOMS),
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": max_num_orders},
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": dialect.MIN_TRAILING_DELTA,
                "maxTrailingAboveDelta": dialect.MAX_TRAILING_DELTA,
                "minTrailingBelowDelta": dialect.MIN_TRAILING_DELTA,
                "maxTrailingBelowDelta": dialect.MAX_TRAILING_DELTA,
            },
        ]
        if self.price_band_bps:
            up = atoms_to_decimal(10_000 + self.price_band_bps, 4)
            down = atoms_to_decimal(10_000 - self.price_band_bps, 4)
            out.append(
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": up,
                    "bidMultiplierDown": down,
                    "askMultiplierUp": up,
                    "askMultiplierDown": down,
                    "avgPriceMins": 0,
                }
            )
        return out

    def exchange_info(self, max_num_orders: int) -> dict[str, Any]:
        """The ``symbols[]`` entry of exchangeInfo (the fields ccxt and bots read)."""
        return {
            "symbol": self.wire,
            "status": self.status,
            "baseAsset": self.base.symbol,
            "baseAssetPrecision": self.base.decimals,
            "quoteAsset": self.quote.symbol,
            "quotePrecision": self.quote.decimals,
            "quoteAssetPrecision": self.quote.decimals,
            "baseCommissionPrecision": self.base.decimals,
            "quoteCommissionPrecision": self.quote.decimals,
            "orderTypes": list(dialect.ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(max_num_orders),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": dialect.DEFAULT_STP,
            "allowedSelfTradePreventionModes": list(dialect.STP_MODES),
            "makerCommission": atoms_to_decimal(self.maker_fee_ppm * 100, 8),
            "takerCommission": atoms_to_decimal(self.taker_fee_ppm * 100, 8),
        }
