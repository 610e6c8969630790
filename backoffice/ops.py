"""The operator API, ``/ops/v1/...``: JSON in, JSON out, for staff (`backoffice.staff`).

Every route names the operator action it takes (`backoffice.roles.ACTIONS`); `Ops.route`
authenticates the staff session and checks the role before the handler runs, so no handler
can forget the check. Refusals are ``{"code": CODE, "msg": text}`` with the stable codes of
`backoffice.errors` (the envelope every error in ``/openapi.json`` has). Whatever changes an
account's or a market's standing is a journaled command naming the staff id
(SetAccountFrozen, SetAccountTier, SetMarketState), and the audit log is read back from the
journal, so it cannot say anything the journal does not.

The description of these routes is `backoffice.opsdoc` (served in ``/openapi.json``).
"""

from __future__ import annotations

import asyncio
import bisect
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import structlog
from aiohttp import web

from backoffice import errors, roles
from backoffice.audit import page
from backoffice.errors import BackofficeError
from backoffice.staff import StaffSession
from engine.schema import MAX_TIER, MarketState, SetAccountFrozen, SetAccountTier
from gateway.markets import atoms_to_decimal

if TYPE_CHECKING:
    from backoffice.routes import Backoffice

log = structlog.get_logger(__name__)
PREFIX: Final = "/ops/v1"
MAX_SEARCH: Final = 100
Handler = Callable[[web.Request, StaffSession], Awaitable[Any]]


def _query_int(
    request: web.Request, name: str, lo: int, hi: int, default: int | None
) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdecimal()) or len(text) > 19 or not lo <= int(text) <= hi:
        raise errors.bad_request(f"{name} must be an integer {lo}..{hi}")
    return int(text)


class Ops:
    def __init__(self, bo: Backoffice) -> None:
        self.bo = bo

    @property
    def gw(self) -> Any:
        return self.bo.gw

    # ---- plumbing: the one place sessions and roles are checked -------------------------------

    def route(
        self, action: str | None, fn: Handler, query: tuple[str, ...] = ()
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """``action``: the operator action (`backoffice.roles.ACTIONS`) this route takes; None
        only for logging in. ``query``: the query parameters it reads (any other, or one
        given twice, is refused)."""
        assert action is None or action in roles.ACTIONS, action
        status = 200

        async def handler(request: web.Request) -> web.Response:
            try:
                staff = self.bo.staff
                if staff is None:
                    raise BackofficeError(503, errors.UNAVAILABLE, "the identity store is not open")
                unknown = sorted(set(request.query) - set(query))
                if unknown or len(request.query) != len(set(request.query)):
                    raise errors.bad_request(
                        f"unknown or repeated query parameter (this endpoint reads: "
                        f"{', '.join(query) or 'none'})"
                    )
                if action is None:
                    result = await fn(request, None)  # type: ignore[arg-type]
                else:
                    session = await staff.authenticate(request.headers.get("Authorization"))
                    roles.require(session.role, action)
                    result = await fn(request, session)
                if isinstance(result, web.StreamResponse):  # a file (a KYC document's)
                    return result
                return web.json_response(result, status=status)
            except BackofficeError as exc:
                return web.json_response(exc.ops_body(), status=exc.status, headers=exc.headers)
            except web.HTTPClientError as exc:  # e.g. 413 from reading a body over the cap
                body = {"code": errors.BAD_REQUEST, "msg": exc.reason}
                return web.json_response(body, status=exc.status)
            except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.error("ops_store_error", error=str(exc)[:200], path=request.path)
                body = {"code": errors.UNAVAILABLE, "msg": "the identity store failed"}
                return web.json_response(body, status=503)

        return handler

    async def _journal(self, command: Any) -> int:
        """Journal a staff command through the gateway; engine refusals and a stopped node
        become operator errors."""
        from gateway.admin import Admin
        from gateway.errors import ApiError

        try:
            return await Admin(self.gw).standing(command)
        except ApiError as exc:
            if exc.status >= 500:
                raise BackofficeError(503, errors.UNAVAILABLE, exc.msg) from None
            raise BackofficeError(400, errors.ENGINE_REFUSED, exc.msg) from None

    # ---- session ---------------------------------------------------------------------------

    async def login(self, request: web.Request, _: StaffSession) -> Any:
        from backoffice.routes import _body

        assert self.bo.staff is not None
        return await self.bo.staff.login(await _body(request), request.remote or "?")

    async def logout(self, request: web.Request, session: StaffSession) -> Any:
        assert self.bo.staff is not None
        return await self.bo.staff.logout(session)

    async def me(self, request: web.Request, session: StaffSession) -> Any:
        return {**session.staff.public(), "session_expires_s": session.expires_s}

    async def staff_list(self, request: web.Request, session: StaffSession) -> Any:
        assert self.bo.staff is not None
        return [s.public() for s in await self.bo.staff.store.listing()]

    # ---- accounts --------------------------------------------------------------------------

    def _account_id(self, request: web.Request) -> int:
        text = request.match_info["account_id"]
        if not (text.isascii() and text.isdecimal()) or len(text) > 19:
            raise errors.bad_request("account_id must be a positive integer")
        account_id = int(text)
        if account_id not in self.gw.store.accounts:
            raise BackofficeError(404, errors.ACCOUNT_NOT_FOUND, f"no account {account_id}")
        return account_id

    async def _emails(self, account_ids: list[int]) -> dict[int, str]:
        assert self.bo.store is not None
        if not account_ids:
            return {}
        rows = await self.bo.store.db.fetch(
            "SELECT account_id, email FROM bo_users WHERE account_id IS NOT NULL "
            "AND account_id >= $1 AND account_id <= $2",
            min(account_ids),
            max(account_ids),
        )
        wanted = set(account_ids)
        return {r["account_id"]: r["email"] for r in rows if r["account_id"] in wanted}

    def _summary(self, account_id: int, email: str | None) -> dict[str, Any]:
        store = self.gw.store
        tier = store.tier(account_id)
        return {
            "account_id": account_id,
            "email": email,
            "frozen": store.frozen(account_id),
            "tier": None if tier < 0 else tier,
            "open_orders": len(store.accounts[account_id].open_orders),
        }

    async def search(self, request: web.Request, session: StaffSession) -> Any:
        """``q``: an account id, or part of a user's email (case-insensitive)."""
        assert self.bo.store is not None
        q = request.query.get("q", "").strip().lower()
        if len(q) > 254:
            raise errors.bad_request("q is at most 254 characters")
        limit = _query_int(request, "limit", 1, MAX_SEARCH, 20)
        assert limit is not None
        accounts = self.gw.store.accounts
        if q.isascii() and q.isdecimal():
            ids = [int(q)] if len(q) <= 19 and int(q) in accounts else []
            emails = await self._emails(ids)
        elif q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = await self.bo.store.db.fetch(
                "SELECT account_id, email FROM bo_users WHERE account_id IS NOT NULL "
                "AND email LIKE $1 ESCAPE '\\' ORDER BY email LIMIT $2",
                pattern,
                limit,
            )
            emails = {r["account_id"]: r["email"] for r in rows if r["account_id"] in accounts}
            ids = list(emails)
        else:
            ids = sorted(accounts)[:limit]
            emails = await self._emails(ids)
        return [self._summary(a, emails.get(a)) for a in ids[:limit]]

    async def view(self, request: web.Request, session: StaffSession) -> Any:
        account_id = self._account_id(request)
        store = self.gw.store
        balances = []
        for asset_id, (free, locked, withdrawing) in sorted(
            store.accounts[account_id].balances.items()
        ):
            asset = store.assets[asset_id]
            balances.append(
                {
                    "asset": asset.symbol,
                    "free": atoms_to_decimal(free, asset.decimals),
                    "locked": atoms_to_decimal(locked, asset.decimals),
                    "withdrawing": atoms_to_decimal(withdrawing, asset.decimals),
                }
            )
        emails = await self._emails([account_id])
        return {**self._summary(account_id, emails.get(account_id)), "balances": balances}

    async def _set_frozen(self, request: web.Request, session: StaffSession, frozen: bool) -> Any:
        from backoffice.routes import _body

        account_id = self._account_id(request)
        if await _body(request):
            raise errors.bad_request("this action takes no parameters")
        seq = await self._journal(
            SetAccountFrozen(account_id=account_id, frozen=frozen, staff_id=session.staff.staff_id)
        )
        return {"seq": seq, "account_id": account_id, "frozen": frozen}

    async def freeze(self, request: web.Request, session: StaffSession) -> Any:
        return await self._set_frozen(request, session, True)

    async def unfreeze(self, request: web.Request, session: StaffSession) -> Any:
        return await self._set_frozen(request, session, False)

    async def set_tier(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body

        account_id = self._account_id(request)
        tier = (await _body(request)).get("tier")
        if type(tier) is not int or not 0 <= tier <= MAX_TIER:
            raise errors.bad_request(f"tier must be an integer 0..{MAX_TIER}")
        seq = await self._journal(
            SetAccountTier(account_id=account_id, tier=tier, staff_id=session.staff.staff_id)
        )
        return {"seq": seq, "account_id": account_id, "tier": tier}

    # ---- markets ---------------------------------------------------------------------------

    async def markets(self, request: web.Request, session: StaffSession) -> Any:
        return [
            {"symbol": m.wire, "state": MarketState(m.state).name}
            for _, m in sorted(self.gw.store.markets.items())
        ]

    async def market_state(self, request: web.Request, session: StaffSession) -> Any:
        from backoffice.routes import _body
        from gateway.admin import Admin
        from gateway.errors import ApiError

        market = self.gw.store.market(request.match_info["symbol"])
        if market is None:
            raise BackofficeError(404, errors.MARKET_NOT_FOUND, "no such market")
        state = (await _body(request)).get("state")
        if not isinstance(state, str) or state not in MarketState.__members__:
            raise errors.bad_request(f"state must be one of {', '.join(MarketState.__members__)}")
        try:
            return await Admin(self.gw).set_market_state(
                market.wire, state, staff_id=session.staff.staff_id
            )
        except ApiError as exc:
            if exc.status >= 500:
                raise BackofficeError(503, errors.UNAVAILABLE, exc.msg) from None
            raise BackofficeError(400, errors.ENGINE_REFUSED, exc.msg) from None

    # ---- audit -----------------------------------------------------------------------------

    async def audit(self, request: web.Request, session: StaffSession) -> Any:
        from_seq = _query_int(request, "from_seq", 1, 1 << 62, 1)
        limit = _query_int(request, "limit", 1, 1_000, 100)
        account_id = _query_int(request, "account_id", 1, 1 << 62, None)
        staff_id = request.query.get("staff_id") or None
        if staff_id is not None and len(staff_id) > 64:
            raise errors.bad_request("staff_id is at most 64 characters")
        assert from_seq is not None and limit is not None
        symbols = {m.market_id: m.wire for m in self.gw.store.markets.values()}
        node = self.gw.node
        if node is None:  # cluster mode: the staff records this replica kept from the stream
            store = self.gw.store
            if from_seq > store.last_seq:
                return {"entries": [], "next_seq": from_seq}
            actions = store.staff_actions
            start = bisect.bisect_left(actions, from_seq, key=lambda r: r[0])
            return page(actions[start:], store.last_seq, limit, account_id, staff_id, symbols)
        journal = node.journal
        last = journal.last_sequence
        start = max(from_seq, journal.first_sequence)
        if start > last:
            return {"entries": [], "next_seq": start}
        records = journal.read_from(start, last)  # the plan is fixed here, on the loop
        return await asyncio.to_thread(page, records, last, limit, account_id, staff_id, symbols)


def setup(app: web.Application, bo: Backoffice) -> Ops:
    ops = Ops(bo)
    r, add = ops.route, app.router.add_route
    add("POST", f"{PREFIX}/auth/login", r(None, ops.login))
    add("POST", f"{PREFIX}/auth/logout", r("staff.session", ops.logout))
    add("GET", f"{PREFIX}/me", r("staff.session", ops.me))
    add("GET", f"{PREFIX}/staff", r("staff.view", ops.staff_list))
    add("GET", f"{PREFIX}/accounts", r("accounts.search", ops.search, ("q", "limit")))
    add("GET", f"{PREFIX}/accounts/{{account_id}}", r("accounts.view", ops.view))
    add("POST", f"{PREFIX}/accounts/{{account_id}}/freeze", r("accounts.freeze", ops.freeze))
    add("POST", f"{PREFIX}/accounts/{{account_id}}/unfreeze", r("accounts.unfreeze", ops.unfreeze))
    add("POST", f"{PREFIX}/accounts/{{account_id}}/tier", r("accounts.set_tier", ops.set_tier))
    add("GET", f"{PREFIX}/markets", r("markets.view", ops.markets))
    add("POST", f"{PREFIX}/markets/{{symbol}}/state", r("markets.set_state", ops.market_state))
    audit_query = ("from_seq", "limit", "account_id", "staff_id")
    add("GET", f"{PREFIX}/audit", r("audit.read", ops.audit, audit_query))
    from backoffice import opsfiat, opshealth, opskyc, opslimits, opsmarkets, opsmoney, opsrecon

    opshealth.setup(app, ops)
    opslimits.setup(app, ops)
    opsmoney.setup(app, ops)
    opskyc.setup(app, ops)
    opsmarkets.setup(app, ops)
    opsrecon.setup(app, ops)
    opsfiat.setup(app, ops)
    return ops
