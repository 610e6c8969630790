"""The operator API's asset and market creation (``POST /ops/v1/assets``, ``/markets``).

A market is a journaled ``CreateMarket`` naming the admin who made it, then (unless the
market opens at once) the journaled ``SetMarketState`` it starts in, HALTED by default, so a
new market can be announced and checked before anything trades. Everything downstream (the
read model, market data, history, the ledger) learns of the market from the engine's
``MarketCreated`` event, as for the markets made at a data directory's start.

Amounts are decimals in the assets' units (``tick_size`` and ``min_notional`` in the quote
asset, ``lot_size`` and ``max_order_qty`` in the base asset), converted to atoms exactly (too
much precision is refused, never rounded). Described in ``/openapi.json`` by
`backoffice.opsmarketsdoc`.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from backoffice import errors
from backoffice.errors import ASSET_EXISTS, MARKET_EXISTS, UNKNOWN_ASSET, BackofficeError
from backoffice.staff import StaffSession
from engine.schema import CreateAsset, CreateMarket, MarketState, SetMarketState

if TYPE_CHECKING:
    from backoffice.ops import Ops

_ASSET_SYMBOL: Final = re.compile(r"[A-Z][A-Z0-9]{1,11}")
REQUIRED: Final = ("base", "quote", "tick_size", "lot_size", "min_notional")
OPTIONAL: Final = {
    "maker_fee_ppm": 1_000,
    "taker_fee_ppm": 1_000,
    "price_band_bps": 0,
    "market_protection_bps": 0,
    "max_order_qty": "0",
    "state": "HALTED",
}
MAX_RATE: Final = 1_000_000
"""Fees in ppm and bands in bps are integers up to this (the engine refuses what it must)."""


class MarketRoutes:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops
        self._creating = asyncio.Lock()  # the next market id is read from the read model

    async def create(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body
        from gateway.errors import ApiError
        from gateway.markets import parse_decimal

        body = await _body(request)
        missing = [k for k in REQUIRED if k not in body]
        unknown = sorted(set(body) - set(REQUIRED) - set(OPTIONAL))
        if missing or unknown:
            raise errors.bad_request(
                f"missing {', '.join(missing) or 'nothing'}; unknown {', '.join(unknown) or 'none'}"
            )
        args = {**OPTIONAL, **body}
        store = self.ops.gw.store
        assets = {a.symbol: a for a in store.assets.values()}
        if not isinstance(args["base"], str) or not isinstance(args["quote"], str):
            raise errors.bad_request("base and quote are asset symbols")
        base, quote = assets.get(args["base"]), assets.get(args["quote"])
        if base is None or quote is None:
            raise BackofficeError(404, UNKNOWN_ASSET, "base and quote must be existing assets")
        if base.asset_id == quote.asset_id:
            raise errors.bad_request("base and quote must differ")
        for name in ("maker_fee_ppm", "taker_fee_ppm", "price_band_bps", "market_protection_bps"):
            if type(args[name]) is not int or not 0 <= args[name] <= MAX_RATE:
                raise errors.bad_request(f"{name} must be an integer 0..{MAX_RATE}")
        state = args["state"]
        if not isinstance(state, str) or state not in MarketState.__members__:
            raise errors.bad_request(f"state must be one of {', '.join(MarketState.__members__)}")
        try:
            tick = parse_decimal("tick_size", args["tick_size"], quote.decimals)
            lot = parse_decimal("lot_size", args["lot_size"], base.decimals)
            min_notional = parse_decimal("min_notional", args["min_notional"], quote.decimals)
            max_qty = parse_decimal("max_order_qty", args["max_order_qty"], base.decimals)
        except ApiError as exc:
            raise errors.bad_request(exc.msg) from None
        if tick < 1 or lot < 1:
            raise errors.bad_request("tick_size and lot_size must be at least one atom")
        symbol = f"{base.symbol}-{quote.symbol}"
        staff_id = session.staff.staff_id
        async with self._creating:
            wire = symbol.replace("-", "").upper()
            if store.market(wire) is not None:
                raise BackofficeError(409, MARKET_EXISTS, f"a market {wire} exists")
            market_id = max(store.markets, default=-1) + 1
            command = CreateMarket(
                market_id=market_id,
                symbol=symbol,
                base_asset_id=base.asset_id,
                quote_asset_id=quote.asset_id,
                tick_size_atoms=tick,
                lot_size_atoms=lot,
                min_notional_atoms=min_notional,
                maker_fee_ppm=args["maker_fee_ppm"],
                taker_fee_ppm=args["taker_fee_ppm"],
                price_band_bps=args["price_band_bps"],
                market_protection_bps=args["market_protection_bps"],
                max_order_qty_atoms=max_qty,
                staff_id=staff_id,
            )
            seq = await self.ops._journal(command)
            if state != "OPEN":
                state_cmd = SetMarketState(
                    market_id=market_id, state=int(MarketState[state]), staff_id=staff_id
                )
                seq = await self.ops._journal(state_cmd)
        return {"symbol": wire, "market_id": market_id, "state": state, "seq": seq}

    async def create_asset(self, request: web.Request, session: StaffSession) -> Any:
        """A new asset (journaled ``CreateAsset`` naming the admin): ``symbol`` (2-12 capitals
        and digits), ``decimals`` (0-18; atoms per unit = 10**decimals). Money in it arrives
        only through a journaled deposit: custody's watcher for a coin it is configured for,
        the fiat rail (`backoffice.fiat`) for a fiat currency."""
        from backoffice.routes import _body

        body = await _body(request)
        if set(body) != {"symbol", "decimals"}:
            raise errors.bad_request("the body is symbol and decimals")
        symbol, decimals = body["symbol"], body["decimals"]
        if not isinstance(symbol, str) or not _ASSET_SYMBOL.fullmatch(symbol):
            raise errors.bad_request("symbol is 2..12 capital letters and digits")
        if type(decimals) is not int or not 0 <= decimals <= 18:
            raise errors.bad_request("decimals must be an integer 0..18")
        store = self.ops.gw.store
        async with self._creating:
            if any(a.symbol == symbol for a in store.assets.values()):
                raise BackofficeError(409, ASSET_EXISTS, f"an asset {symbol} exists")
            asset_id = max(store.assets, default=-1) + 1
            command = CreateAsset(
                asset_id=asset_id,
                symbol=symbol,
                decimals=decimals,
                staff_id=session.staff.staff_id,
            )
            seq = await self.ops._journal(command)
        return {"symbol": symbol, "asset_id": asset_id, "decimals": decimals, "seq": seq}


def setup(app: web.Application, ops: Ops) -> MarketRoutes:
    from backoffice.ops import PREFIX

    m = MarketRoutes(ops)
    app.router.add_route("POST", f"{PREFIX}/markets", ops.route("markets.create", m.create))
    app.router.add_route("POST", f"{PREFIX}/assets", ops.route("assets.create", m.create_asset))
    return m
