"""The operator API's fiat rail (``/ops/v1/fiat/deposits``) over `backoffice.fiat`: finance
records a bank transfer, a different finance or admin staff member approves it (the journaled
``Deposit`` keyed by the bank reference) or either rejects it with a reason. Fiat withdrawals
are custody's withdrawals to a bank account (four eyes through ``/ops/v1/withdrawals``);
finance marks an approved one paid here (``/ops/v1/fiat/withdrawals/{id}/paid``). Described in
``/openapi.json`` by `backoffice.opsfiatdoc`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from backoffice import errors
from backoffice.errors import NOT_FIAT, BackofficeError
from backoffice.fiat import FIAT_SYMBOLS, STATUSES, FiatDeposits, parse_reference, public
from backoffice.staff import StaffSession
from engine.schema import CommandRejected, Deposit, Reject
from gateway.markets import atoms_to_decimal

if TYPE_CHECKING:
    from backoffice.ops import Ops

LIST_STATUSES: Final = tuple(s for s in STATUSES if s != "approving")
MAX_LIST: Final = 200


class FiatRoutes:
    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def _store(self) -> FiatDeposits:
        assert self.ops.bo.store is not None
        return FiatDeposits(self.ops.bo.store.db)

    def _public(self, row: dict[str, Any]) -> dict[str, Any]:
        asset = self.ops.gw.store.assets[row["asset_id"]]
        return public(row, asset.symbol, atoms_to_decimal(row["amount_atoms"], asset.decimals))

    def _fiat_asset(self, symbol: object) -> Any:
        custody = self.ops.gw.custody
        asset = next((a for a in self.ops.gw.store.assets.values() if a.symbol == symbol), None)
        custodied = custody is not None and custody.custody.registry.asset(
            getattr(asset, "asset_id", -1)
        )
        if asset is None or asset.symbol not in FIAT_SYMBOLS or custodied:
            raise BackofficeError(
                400,
                NOT_FIAT,
                f"asset must be a fiat asset of this venue ({', '.join(sorted(FIAT_SYMBOLS))}, "
                "not custodied)",
            )
        return asset

    @staticmethod
    def _id(request: web.Request) -> str:
        deposit_id = request.match_info["deposit_id"]
        if not 1 <= len(deposit_id) <= 64 or not deposit_id.isascii():
            raise errors.bad_request("deposit_id is 1..64 ASCII characters")
        return deposit_id

    async def listing(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.ops import _query_int

        status = request.query.get("status", "pending")
        if status not in LIST_STATUSES:
            raise errors.bad_request(f"status must be one of {', '.join(LIST_STATUSES)}")
        limit = _query_int(request, "limit", 1, MAX_LIST, 50)
        assert limit is not None
        return [self._public(r) for r in await self._store().listing(status, limit)]

    async def record(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body
        from gateway.errors import ApiError
        from gateway.markets import parse_decimal

        body = await _body(request)
        if set(body) != {"account_id", "asset", "amount", "bank_reference"}:
            raise errors.bad_request("the body is account_id, asset, amount and bank_reference")
        account_id = body["account_id"]
        if type(account_id) is not int or account_id not in self.ops.gw.store.accounts:
            raise BackofficeError(404, errors.ACCOUNT_NOT_FOUND, f"no account {account_id}")
        asset = self._fiat_asset(body["asset"])
        if not isinstance(body["amount"], str):
            raise errors.bad_request("amount is a decimal string")
        try:
            atoms = parse_decimal("amount", body["amount"], asset.decimals)
        except ApiError as exc:
            raise errors.bad_request(exc.msg) from None
        if atoms < 1:
            raise errors.bad_request("amount must be positive")
        reference = parse_reference(body["bank_reference"])
        row = await self._store().record(
            session.staff.staff_id, account_id, asset.asset_id, atoms, reference
        )
        return self._public(row)

    async def approve(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body
        from gateway.errors import ApiError

        deposit_id = self._id(request)
        if await _body(request):
            raise errors.bad_request("this action takes no parameters")

        async def journal(row: dict[str, Any], key: str) -> int:
            command = Deposit(
                account_id=row["account_id"],
                asset_id=row["asset_id"],
                amount_atoms=row["amount_atoms"],
                deposit_key=key,
                recorded_by=row["recorded_by"],
                approved_by=row["decided_by"],
            )
            try:
                seq, _, events = await self.ops.gw.trading.execute(row["account_id"], command)
            except ApiError as exc:
                raise BackofficeError(503, errors.UNAVAILABLE, exc.msg) from None
            for ev in events:
                if isinstance(ev, CommandRejected) and ev.reason != Reject.DUPLICATE_DEPOSIT:
                    reason = Reject(ev.reason).name
                    raise BackofficeError(400, errors.ENGINE_REFUSED, f"Deposit refused: {reason}")
            return int(seq)

        row = await self._store().approve(deposit_id, session.staff.staff_id, journal)
        return self._public(row)

    async def reject(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body

        deposit_id = self._id(request)
        body = await _body(request)
        if set(body) != {"reason"}:
            raise errors.bad_request('the body is {"reason": text}')
        row = await self._store().reject(deposit_id, session.staff.staff_id, body["reason"])
        return self._public(row)

    async def paid(self, request: web.Request, session: StaffSession) -> Any:
        """Finance sent the bank transfer of a fiat withdrawal two others approved (through
        ``/ops/v1/withdrawals/{id}/approve``, custody's four eyes): the journaled settlement
        (`custody.withdrawals.WithdrawalDesk.mark_paid`) names the staff member and the bank's
        reference."""
        from backoffice.opsmoney import MoneyRoutes
        from backoffice.routes import _body
        from custody.withdrawals import WithdrawalRejected

        money = MoneyRoutes(self.ops)
        withdrawal_id = money._withdrawal_id(request)
        body = await _body(request)
        if set(body) != {"bank_reference"}:
            raise errors.bad_request('the body is {"bank_reference": text}')
        reference = parse_reference(body["bank_reference"])
        desk = money._custody(acting=True).custody.desk
        try:
            row = await desk.mark_paid(withdrawal_id, session.staff.staff_id, reference)
        except WithdrawalRejected as exc:
            status = 404 if exc.code == "UNKNOWN_WITHDRAWAL" else 409
            raise BackofficeError(status, exc.code, exc.message) from None
        return money._withdrawal(row)


def setup(app: web.Application, ops: Ops) -> FiatRoutes:
    from backoffice.ops import PREFIX

    f = FiatRoutes(ops)
    r, add = ops.route, app.router.add_route
    base = f"{PREFIX}/fiat/deposits"
    add("GET", base, r("fiat.view", f.listing, ("status", "limit")))
    add("POST", base, r("fiat.record", f.record))
    add("POST", f"{base}/{{deposit_id}}/approve", r("fiat.approve", f.approve))
    add("POST", f"{base}/{{deposit_id}}/reject", r("fiat.approve", f.reject))
    paid = f"{PREFIX}/fiat/withdrawals/{{withdrawal_id}}/paid"
    add("POST", paid, r("fiat.pay", f.paid))
    return f
