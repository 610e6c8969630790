"""Convert (swap) in the dialect: ``POST /sapi/v1/convert/getQuote``, ``acceptQuote`` and
``GET /sapi/v1/convert/orderStatus``.

A quote is a price read off the order book now, kept for a few seconds, and executed as an
ordinary order whose limit is the quoted price: a LIMIT order with time in force FOK (an IOC
that must fill entirely). Every unit then trades at the quoted price or better, all of it or
nothing, so the user receives at least the quoted ``toAmount`` and pays at most the quoted
``fromAmount``, or nothing moves. The quoted price is the *worst* book level the amount reaches
(not the average): that is the limit that lets the order fill the whole amount.

Nothing here is business state replay must rebuild: a quote is a promise to try, held in
memory until it is accepted or expires; the conversion itself is a journaled PlaceOrder like any
other (its client order id ``cnv<quoteId>`` marks it). ``orderStatus`` answers from the
conversions accepted since this gateway started; older ones are ordinary orders
(``GET /api/v3/order``).

Fees are shown up front: the quote carries the taker fee and its asset (fees are charged in
the quote asset of the market, see docs/engine-semantics.md), and ``toAmount``/``fromAmount``
already include it.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, Final

from engine.schema import OrderRejected, Side, Trade
from gateway import errors
from gateway.markets import Market, atoms_to_decimal, parse_decimal
from gateway.params import get_enum, get_int, get_str

if TYPE_CHECKING:
    from gateway.app import Gateway

VALID_TIMES_MS: Final = {"10s": 10_000, "30s": 30_000, "1m": 60_000, "2m": 120_000}
DEFAULT_VALID_TIME: Final = "10s"
MAX_OPEN_QUOTES: Final = 10_000
"""Quotes kept at once (oldest dropped first): a bound on memory, not a rate limit."""
MAX_CONVERSIONS: Final = 10_000
"""Accepted conversions remembered for orderStatus."""
DEPTH_LEVELS: Final = 5_000
RATIO_PLACES: Final = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Quote:
    quote_id: str
    account_id: int
    market: Market
    side: int
    qty_atoms: int
    price_atoms: int
    """The limit: the worst level the amount reaches."""
    from_atoms: int
    to_atoms: int
    fee_atoms: int
    valid_until_ms: int


def _fee(n: int, ppm: int) -> int:
    return (n // 1_000_000) * ppm + (n % 1_000_000) * ppm // 1_000_000


def _ratio(num_atoms: int, num_dec: int, den_atoms: int, den_dec: int) -> str:
    if den_atoms == 0:
        return "0"
    value = (Decimal(num_atoms) / 10**num_dec) / (Decimal(den_atoms) / 10**den_dec)
    return format(value.quantize(RATIO_PLACES, rounding=ROUND_DOWN), "f")


class Converter:
    """Quotes in memory, accepted through `gateway.trading.Trading` as FOK limit orders.

    ``clock_ms`` is the gateway's wall clock in milliseconds (a real input, like the
    sequencer's clock): quotes expire by it.
    """

    def __init__(self, gw: Gateway, clock_ms: Callable[[], int] | None = None) -> None:
        self.gw = gw
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._quotes: OrderedDict[str, Quote] = OrderedDict()
        self._done: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._by_quote: dict[str, int] = {}

    # ---- quoting ------------------------------------------------------------------------------

    def _pair(self, from_sym: str, to_sym: str) -> tuple[Market, int]:
        for m in self.gw.store.markets.values():
            if (m.base.symbol, m.quote.symbol) == (from_sym, to_sym):
                return m, Side.SELL
            if (m.base.symbol, m.quote.symbol) == (to_sym, from_sym):
                return m, Side.BUY
        raise errors.ApiError(
            errors.CONVERT_PAIR_UNSUPPORTED,
            f"No market converts {from_sym} to {to_sym}.",
        )

    def _levels(self, m: Market, side: int) -> list[tuple[int, int]]:
        """(price_atoms, qty_atoms) the order would meet, best first."""
        md = self.gw.marketdata
        state = None if md is None else md.state.markets.get(m.market_id)
        if state is None:
            raise errors.ApiError(
                errors.CONVERT_NO_LIQUIDITY, "No order book to quote from on this server."
            )
        opposite = Side.BUY if side == Side.SELL else Side.SELL
        return state.book.depth(opposite, DEPTH_LEVELS)

    def get_quote(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        from_sym = get_str(params, "fromAsset", required=True)
        to_sym = get_str(params, "toAsset", required=True)
        assert from_sym is not None and to_sym is not None
        valid = get_enum(
            params,
            "validTime",
            frozenset(VALID_TIMES_MS),
            errors.INVALID_PARAMETER,
            "Data sent for parameter 'validTime' is not valid.",
            required=False,
            default=DEFAULT_VALID_TIME,
        )
        from_text, to_text = params.get("fromAmount"), params.get("toAmount")
        from_text = None if from_text in (None, "") else from_text
        to_text = None if to_text in (None, "") else to_text
        if (from_text is None) == (to_text is None):
            raise errors.ApiError(
                errors.BAD_COMBINATION,
                "Combination of optional parameters invalid: send exactly one of "
                "'fromAmount' or 'toAmount'.",
            )
        m, side = self._pair(from_sym, to_sym)
        levels = self._levels(m, side)
        taker = m.taker_fee_ppm
        if side == Side.SELL and from_text is not None:  # sell this much base
            qty = m.parse_qty(from_text, "fromAmount")
            price = _worst_for_qty(levels, qty)
        elif side == Side.BUY and to_text is not None:  # buy this much base
            qty = m.parse_qty(to_text, "toAmount")
            price = _worst_for_qty(levels, qty)
        elif side == Side.SELL:  # receive at least this much quote
            want = parse_decimal("toAmount", to_text, m.quote.decimals)
            qty, price = _least_qty_yielding(m, levels, want)
        else:  # spend at most this much quote
            budget = parse_decimal("fromAmount", from_text, m.quote.decimals)
            qty, price = _most_qty_within(m, levels, budget)
        if qty <= 0 or (m.max_order_qty and qty > m.max_order_qty):
            raise errors.filter_failure("LOT_SIZE")
        m.check_notional(price, qty)
        notional = m.notional(price, qty)
        fee = _fee(notional, taker)
        if side == Side.SELL:
            from_atoms, to_atoms = qty, notional - fee
            need, asset = qty, m.base.asset_id
        else:
            from_atoms, to_atoms = notional + fee, qty
            need = notional + _fee(notional, max(m.maker_fee_ppm, taker))  # the engine's hold
            asset = m.quote.asset_id
        acct = self.gw.store.accounts.get(account_id)
        if acct is None or need > acct.balances.get(asset, [0])[0]:
            raise errors.ApiError(
                errors.ORDER_REJECTED, "Account has insufficient balance for requested action."
            )
        now = self.clock_ms()
        quote = Quote(
            str(secrets.randbelow(10**18) + 10**18),
            account_id,
            m,
            side,
            qty,
            price,
            from_atoms,
            to_atoms,
            fee,
            now + VALID_TIMES_MS[valid],
        )
        self._remember_quote(quote)
        return self._quote_body(quote)

    def _remember_quote(self, quote: Quote) -> None:
        now = self.clock_ms()
        while self._quotes:  # expired ones first, then the oldest past the bound
            oldest = next(iter(self._quotes.values()))
            if oldest.valid_until_ms >= now and len(self._quotes) < MAX_OPEN_QUOTES:
                break
            self._quotes.popitem(last=False)
        self._quotes[quote.quote_id] = quote

    def _quote_body(self, q: Quote) -> dict[str, Any]:
        m = q.market
        from_asset, to_asset = (m.base, m.quote) if q.side == Side.SELL else (m.quote, m.base)
        return {
            "quoteId": q.quote_id,
            "ratio": _ratio(q.to_atoms, to_asset.decimals, q.from_atoms, from_asset.decimals),
            "inverseRatio": _ratio(
                q.from_atoms, from_asset.decimals, q.to_atoms, to_asset.decimals
            ),
            "validTimestamp": q.valid_until_ms,
            "toAmount": _amount(q.to_atoms, to_asset.decimals),
            "fromAmount": _amount(q.from_atoms, from_asset.decimals),
            "fee": m.price(q.fee_atoms),
            "feeAsset": m.quote.symbol,
            "symbol": m.wire,
            "side": "SELL" if q.side == Side.SELL else "BUY",
            "price": m.price(q.price_atoms),
        }

    # ---- accepting ----------------------------------------------------------------------------

    async def accept_quote(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        quote_id = get_str(params, "quoteId", required=True)
        quote = self._quotes.get(quote_id or "")
        if quote is None or quote.account_id != account_id:
            raise errors.ApiError(
                errors.CONVERT_QUOTE_UNKNOWN,
                "Unknown quoteId: never issued to this account, already accepted, or expired "
                "long ago.",
            )
        del self._quotes[quote.quote_id]  # one use, whatever happens next
        if self.clock_ms() > quote.valid_until_ms:
            raise errors.ApiError(
                errors.CONVERT_QUOTE_EXPIRED, "Quote expired; request a new quote."
            )
        m = quote.market
        order = {
            "symbol": m.wire,
            "side": "SELL" if quote.side == Side.SELL else "BUY",
            "type": "LIMIT",
            "timeInForce": "FOK",
            "quantity": m.qty(quote.qty_atoms),
            "price": m.price(quote.price_atoms),
            "newClientOrderId": f"cnv{quote.quote_id}",
        }
        tr = self.gw.trading
        _, cmd, cid, _ = tr.build_place(account_id, order)
        if cid is not None:
            tr.ids.remember(cid, cmd.client_order_id)
        seq, ts, events = await tr.execute(account_id, cmd)
        qty = quote_atoms = fee = 0
        for ev in events:
            if type(ev) is OrderRejected:
                raise errors.from_reject(ev.reason)
            if type(ev) is Trade and ev.taker_order_id == seq:
                qty += ev.qty_atoms
                quote_atoms += m.notional(ev.price_atoms, ev.qty_atoms)
                fee += ev.taker_fee_atoms
        filled = qty == quote.qty_atoms
        if quote.side == Side.SELL:
            from_atoms, to_atoms = qty, quote_atoms - fee
        else:
            from_atoms, to_atoms = quote_atoms + fee, qty
        assert not filled or (to_atoms >= quote.to_atoms and from_atoms <= quote.from_atoms), (
            "a FOK at the quoted limit filled worse than the quote"
        )
        body = self._quote_body(quote) | {
            "orderId": seq,
            "orderStatus": "SUCCESS" if filled else "FAIL",
            "createTime": ts // 1_000_000,
        }
        from_asset, to_asset = (m.base, m.quote) if quote.side == Side.SELL else (m.quote, m.base)
        body.update(
            fromAsset=from_asset.symbol,
            toAsset=to_asset.symbol,
            fromAmount=_amount(from_atoms, from_asset.decimals),
            toAmount=_amount(to_atoms, to_asset.decimals),
            fee=m.price(fee),
            ratio=_ratio(to_atoms, to_asset.decimals, from_atoms, from_asset.decimals),
            inverseRatio=_ratio(from_atoms, from_asset.decimals, to_atoms, to_asset.decimals),
        )
        body.pop("validTimestamp")
        body["_account"] = account_id
        self._done[seq] = body
        self._by_quote[quote.quote_id] = seq
        while len(self._done) > MAX_CONVERSIONS:
            _, gone = self._done.popitem(last=False)
            self._by_quote.pop(str(gone["quoteId"]), None)
        return {
            "orderId": str(seq),
            "createTime": body["createTime"],
            "orderStatus": body["orderStatus"],
        }

    def order_status(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        seq = get_int(params, "orderId")  # ASCII digits in full (str.isdigit took "²": a 500)
        quote_id = get_str(params, "quoteId", required=False)
        if (seq is None) == (quote_id is None):
            raise errors.ApiError(
                errors.BAD_COMBINATION,
                "Combination of optional parameters invalid: send exactly one of 'orderId' "
                "or 'quoteId'.",
            )
        if seq is None:
            seq = self._by_quote.get(quote_id or "")
        body = self._done.get(seq) if seq is not None else None
        if body is None or body["_account"] != account_id:
            raise errors.ApiError(errors.NO_SUCH_ORDER, "Order does not exist.")
        return {k: v for k, v in body.items() if not k.startswith("_")}


def _amount(atoms: int, decimals: int) -> str:
    return atoms_to_decimal(atoms, decimals)


def _worst_for_qty(levels: list[tuple[int, int]], qty: int) -> int:
    """Price of the last level needed to fill ``qty``; refuses when the book is too thin."""
    left = qty
    for price, level_qty in levels:
        left -= level_qty
        if left <= 0:
            return price
    raise errors.ApiError(
        errors.CONVERT_NO_LIQUIDITY, "Not enough liquidity on the book for this amount."
    )


def _least_qty_yielding(m: Market, levels: list[tuple[int, int]], want: int) -> tuple[int, int]:
    """Fewest lots whose sale at the worst level reached yields ``want`` quote after fees."""
    cum = 0
    for price, level_qty in levels:
        cum += level_qty
        hi = cum // m.lot
        n = m.notional(price, hi * m.lot)
        if n - _fee(n, m.taker_fee_ppm) < want:
            continue
        lo = 1
        while lo < hi:  # proceeds grow with the lots: the first that yields enough
            mid = (lo + hi) // 2
            n = m.notional(price, mid * m.lot)
            if n - _fee(n, m.taker_fee_ppm) >= want:
                hi = mid
            else:
                lo = mid + 1
        return hi * m.lot, price
    raise errors.ApiError(
        errors.CONVERT_NO_LIQUIDITY, "Not enough liquidity on the book for this amount."
    )


def _most_qty_within(m: Market, levels: list[tuple[int, int]], budget: int) -> tuple[int, int]:
    """Most lots whose purchase at the worst level reached costs at most ``budget`` with fees
    (and whose hold, at the higher of the two fee rates, fits it too)."""
    worst_ppm = max(m.maker_fee_ppm, m.taker_fee_ppm)
    best_qty, best_price, cum = 0, 0, 0
    for price, level_qty in levels:
        cum += level_qty
        lo, hi = 0, cum // m.lot
        while lo < hi:  # cost grows with the lots: the last that fits
            mid = (lo + hi + 1) // 2
            n = m.notional(price, mid * m.lot)
            if n + _fee(n, worst_ppm) <= budget:
                lo = mid
            else:
                hi = mid - 1
        if lo * m.lot > best_qty:
            best_qty, best_price = lo * m.lot, price
        if lo * m.lot < cum:  # the budget ran out inside this level: deeper is dearer
            break
    if best_qty == 0:
        raise errors.filter_failure("LOT_SIZE")
    return best_qty, best_price
