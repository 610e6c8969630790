"""Market metadata as market data needs it, symbol mapping and decimal rendering.

Everything inside market data is integer atoms (DESIGN.md, money rule 1); this module is the
one place that turns atoms into the decimal strings of the wire, using each asset's decimals:
prices and quote amounts with the quote asset's decimals, quantities with the base asset's.

Symbols: the engine names a market ``BASE-QUOTE`` (``BTC-USDT``); the Binance dialect drops the
dash (``BTCUSDT``) in REST parameters and responses, and lowercases it in stream names
(``btcusdt@trade``). Engine symbols without a dash map to themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


def binance_symbol(engine_symbol: str) -> str:
    """``BTC-USDT`` -> ``BTCUSDT`` (the dialect's symbol: upper case, no separator)."""
    return engine_symbol.replace("-", "").upper()


def atoms_to_decimal(atoms: int, decimals: int) -> str:
    """Exact decimal string of ``atoms / 10**decimals`` with exactly ``decimals`` places.

    Integer arithmetic only, so the string is exact for any int (no float rounding).
    """
    if decimals == 0:
        return str(atoms)
    sign = "-" if atoms < 0 else ""
    whole, frac = divmod(abs(atoms), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What market data knows about one market: ids, grid and asset decimals."""

    market_id: int
    symbol: str
    """Engine symbol, e.g. ``BTC-USDT``."""
    base_asset_id: int
    quote_asset_id: int
    base_decimals: int
    quote_decimals: int
    tick_size_atoms: int
    lot_size_atoms: int

    @property
    def wire_symbol(self) -> str:
        """The Binance-dialect symbol (``BTCUSDT``)."""
        return binance_symbol(self.symbol)

    @property
    def stream_symbol(self) -> str:
        """The lower-case symbol used in stream names (``btcusdt``)."""
        return binance_symbol(self.symbol).lower()

    def price(self, price_atoms: int) -> str:
        """Quote atoms per whole base unit, as a decimal of the quote asset."""
        return atoms_to_decimal(price_atoms, self.quote_decimals)

    def qty(self, qty_atoms: int) -> str:
        """Base atoms as a decimal of the base asset."""
        return atoms_to_decimal(qty_atoms, self.base_decimals)

    def quote(self, quote_atoms: int) -> str:
        """Quote atoms as a decimal of the quote asset."""
        return atoms_to_decimal(quote_atoms, self.quote_decimals)
