"""``GET /ops/v1/custody/reconciliation``: custody reconciliation per asset, live, for staff.

The same computation as ``kootabase custody reconcile`` (`custody.reconcile.reconcile`, called
through `custody.service.Custody.reconcile`), with one difference in where the ledger's side
comes from: the CLI replays the journal through the book of record (it takes the journal's
writer lock, so it runs against a stopped node), while a running gateway takes its engine's
state image (`ledger.book.image_balances`), the balances the same journal produced; the ledger
checks the two agree after every replay (`ledger.book.Book.verify_against`). The chain side is
read from the nodes in the custody config, the explanation items from the custody store.

Read-only (roles: admin, finance, auditor). Each asset's chain read has its own time limit: a
node that does not answer marks that asset ``chain_unavailable`` instead of failing the others
or the request. Demo-faucet credits are not separated here: ``serve --demo`` refuses custody,
so a running gateway with custody has none (the CLI, which replays, reports them).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import structlog
from aiohttp import web

from backoffice.errors import BackofficeError
from backoffice.staff import StaffSession
from gateway.markets import atoms_to_decimal

if TYPE_CHECKING:
    from backoffice.ops import Ops
    from custody.assets import CustodyAsset
    from custody.reconcile import AssetReconciliation

log = structlog.get_logger(__name__)

CHAIN_READ_TIMEOUT_S: Final = 10.0
"""Per asset: a node slower than this is reported unavailable (the page polls again)."""
FLOAT_LABEL: Final = "operator float in hot wallets"
STATUSES: Final = ("balanced", "unexplained", "chain_unavailable")


class ReconciliationRoutes:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    async def reconciliation(self, request: web.Request, session: StaffSession) -> Any:
        """One entry per custodied asset, in asset id order; amounts are exact decimal strings
        in the chain's units (what the nodes report), signed where a difference can be."""
        from ledger.book import image_balances

        gw = self.ops.gw
        custody = gw.custody
        if custody is None:
            raise BackofficeError(404, "CUSTODY_DISABLED", "custody is not enabled on this server")
        engine = gw.node.engine if gw.node is not None else gw.bridge.replica.engine
        seq = int(engine.last_seq)
        balances = image_balances(engine.image())
        failed: dict[int, str] = {}
        service = custody.custody

        async def on_chain(asset: CustodyAsset, addresses: list[str]) -> int:
            try:
                return int(
                    await asyncio.wait_for(
                        service.on_chain(asset, addresses), timeout=CHAIN_READ_TIMEOUT_S
                    )
                )
            except Exception as exc:  # any node failure: this asset only, named, not a 500
                failed[asset.asset_id] = f"{type(exc).__name__}: {str(exc)[:160]}"
                log.warning(
                    "reconcile_chain_read_failed", asset=asset.symbol, error=failed[asset.asset_id]
                )
                return 0

        from custody.reconcile import reconcile

        rows = await reconcile(
            service.registry, service.store, balances, on_chain, service.hot_addresses()
        )
        registry = service.registry.assets
        return {
            "seq": seq,
            "assets": [_row(r, registry[r.asset_id], failed.get(r.asset_id)) for r in rows],
        }


def _row(r: AssetReconciliation, asset: CustodyAsset, error: str | None) -> dict[str, Any]:
    def chain(units: int) -> str:
        return atoms_to_decimal(units, asset.chain_decimals)

    def engine(atoms: int) -> str:
        return atoms_to_decimal(atoms, asset.engine_decimals)

    hot_float = sum(amount for label, amount in r.explanations if label == FLOAT_LABEL)
    status = "chain_unavailable" if error else ("balanced" if r.unexplained == 0 else "unexplained")
    assert status in STATUSES
    return {
        "asset": r.symbol,
        "chain": r.chain,
        "status": status,
        "error": error or "",
        "ledger_owes": chain(r.ledger_chain),
        "users": engine(r.user_atoms),
        "fees": engine(r.fee_atoms),
        "on_chain": None if error else chain(r.on_chain),
        "hot_float": chain(hot_float),
        "difference": None if error else chain(r.difference),
        "explanations": [
            {"label": label, "amount": chain(amount)} for label, amount in r.explanations if amount
        ],
        "unexplained": None if error else chain(r.unexplained),
    }


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The OpenAPI description of the route, merged by `backoffice.opsdoc.operations`."""
    from backoffice.opsdoc import STR, _int, _obj, _operation

    amount = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
    maybe = {"anyOf": [amount, {"type": "null"}]}
    row = _obj(
        asset=STR,
        chain=STR,
        status={"type": "string", "enum": list(STATUSES)},
        error=STR,
        ledger_owes=amount,
        users=amount,
        fees=amount,
        on_chain=maybe,
        hot_float=amount,
        difference=maybe,
        explanations={"type": "array", "items": _obj(label=STR, amount=amount)},
        unexplained=maybe,
    )
    path = f"{p}/custody/reconciliation"
    out = _operation(
        "GET",
        path,
        "Custody reconciliation per asset: what the ledger owes (users + fees) against what "
        "the exchange's addresses hold on chain, the known differences (unconfirmed deposits, "
        "hot-wallet float, network fees, withdrawals in flight) and what is left unexplained "
        "(must be zero); the same figures as `kootabase custody reconcile`",
        "custody.reconcile.view",
        _obj(seq=_int(), assets={"type": "array", "items": row}),
    )
    out["x-requires"] = "custody"
    return {("GET", path): out}


def setup(app: web.Application, ops: Ops) -> ReconciliationRoutes:
    from backoffice.ops import PREFIX

    routes = ReconciliationRoutes(ops)
    app.router.add_route(
        "GET",
        f"{PREFIX}/custody/reconciliation",
        ops.route("custody.reconcile.view", routes.reconciliation),
    )
    return routes
