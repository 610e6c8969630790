"""The operator API's tier trade limits (``GET``/``POST /ops/v1/tier-limits``).

KYC tier 0 "may deposit and trade up to a limit": the limit is the engine's, set by the
journaled ``SetTierTradeLimit`` naming the staff member, so the engine refuses an order above
it (``TIER_TRADE_LIMIT``, -2010 on the Binance dialect) from journaled state alone and a replay
refuses the same orders. A limit is per (tier, quote asset): the largest notional of one order
of an account of that tier in every market quoted in that asset (docs/engine-semantics.md,
"Tier trade limits"). Read back from the gateway's read model (``TierTradeLimitSet`` events).
Described in ``/openapi.json`` by `backoffice.opslimitsdoc`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from backoffice import errors
from backoffice.errors import UNKNOWN_ASSET, BackofficeError
from backoffice.staff import StaffSession
from engine.schema import MAX_TIER, SetTierTradeLimit

if TYPE_CHECKING:
    from backoffice.ops import Ops

FIELDS: Final = ("tier", "asset", "max_order_notional")


class TierLimitRoutes:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def _limits(self) -> list[dict[str, Any]]:
        from gateway.markets import atoms_to_decimal

        store = self.ops.gw.store
        out = []
        for (asset_id, tier), atoms in sorted(store.tier_limits.items()):
            asset = store.assets[asset_id]
            out.append(
                {
                    "tier": tier,
                    "asset": asset.symbol,
                    "max_order_notional": atoms_to_decimal(atoms, asset.decimals),
                }
            )
        return out

    async def list(self, request: web.Request, session: StaffSession) -> Any:
        """Every limit in force, by asset then tier (a tier and asset not listed: no limit)."""
        return {"limits": self._limits()}

    async def set(self, request: web.Request, session: StaffSession) -> Any:
        """Set one limit (``max_order_notional`` "0" lifts it): journaled, enforced by the
        engine from the next command on; orders already resting stay."""
        from backoffice.routes import _body
        from gateway.errors import ApiError
        from gateway.markets import atoms_to_decimal, parse_decimal

        body = await _body(request)
        if set(body) != set(FIELDS):
            raise errors.bad_request("the body is tier, asset and max_order_notional")
        tier, symbol = body["tier"], body["asset"]
        if type(tier) is not int or not 0 <= tier <= MAX_TIER:
            raise errors.bad_request(f"tier must be an integer 0..{MAX_TIER}")
        if not isinstance(symbol, str):
            raise errors.bad_request("asset is an asset symbol")
        asset = next((a for a in self.ops.gw.store.assets.values() if a.symbol == symbol), None)
        if asset is None:
            raise BackofficeError(404, UNKNOWN_ASSET, f"no asset {symbol[:16]!r}")
        try:
            atoms = parse_decimal("max_order_notional", body["max_order_notional"], asset.decimals)
        except ApiError as exc:
            raise errors.bad_request(exc.msg) from None
        command = SetTierTradeLimit(
            tier=tier,
            asset_id=asset.asset_id,
            max_order_notional_atoms=atoms,
            staff_id=session.staff.staff_id,
        )
        seq = await self.ops._journal(command)
        return {
            "seq": seq,
            "tier": tier,
            "asset": asset.symbol,
            "max_order_notional": atoms_to_decimal(atoms, asset.decimals),
        }


def setup(app: web.Application, ops: Ops) -> TierLimitRoutes:
    from backoffice.ops import PREFIX

    t = TierLimitRoutes(ops)
    app.router.add_route("GET", f"{PREFIX}/tier-limits", ops.route("limits.view", t.list))
    app.router.add_route("POST", f"{PREFIX}/tier-limits", ops.route("limits.set", t.set))
    return t
