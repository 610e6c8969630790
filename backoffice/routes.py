"""The back office's HTTP API, mounted by the gateway app under ``/api/v1/``.

JSON in, JSON out; refusals are ``{"error": {"code", "message"}}`` with the stable codes of
`backoffice.errors`. A request that is not a JSON object, nests too deep or is too large is a
``BAD_REQUEST``; an identity store that cannot be reached is ``UNAVAILABLE`` (503); nothing
ordinary is a 500.

======================================  =====================================================
``POST /api/v1/auth/signup``            email, password -> user (with its trading account)
``POST /api/v1/auth/login``             email, password[, totp] -> access + refresh token
``POST /api/v1/auth/refresh``           refresh_token -> new pair (the old one is spent)
``POST /api/v1/auth/logout``            bearer; ``{"all": true}`` ends every session
``POST /api/v1/auth/totp/enroll``       bearer -> secret and otpauth URI (pending)
``POST /api/v1/auth/totp/confirm``      bearer; code -> TOTP required from now on
``POST /api/v1/auth/password/forgot``   email -> one-time token mailed (outbox)
``POST /api/v1/auth/password/reset``    token, password -> new password, sessions revoked
``GET /api/v1/me``                      bearer -> profile
``GET|POST /api/v1/me/api-keys``        bearer -> list / create (permissions, ip_allow,
                                        ``session``: revoked with this login session;
                                        ``totp``: needed for the withdraw permission)
``DELETE /api/v1/me/api-keys/{key}``    bearer -> revoke
``GET|POST /api/v1/me/kyc``             bearer -> own KYC submissions / submit (tier, documents)
======================================  =====================================================
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import structlog
from aiohttp import web

from backoffice import errors
from backoffice.apikeys import UserKeys
from backoffice.auth import Auth, Session
from backoffice.errors import BackofficeError
from backoffice.kyc import KycQueue
from backoffice.kycfiles import MAX_FILE_BYTES, KycFiles, read_capped
from backoffice.secretbox import SecretBox
from backoffice.staff import StaffAuth
from backoffice.store import OPEN_ERRORS, IdentityStore, open_error, open_store
from backoffice.tokens import AccessTokens, load_key
from engine.jsondepth import MAX_JSON_DEPTH, decode_json
from gateway.keys import default_master_key_file, load_master_key

if TYPE_CHECKING:
    from backoffice.sessionkeys import SessionKeys
    from gateway.app import Gateway

log = structlog.get_logger(__name__)
MAX_BODY_BYTES: Final = 16_384
Handler = Callable[[web.Request], Awaitable[Any]]
BACKOFFICE_KEY: web.AppKey[Backoffice] = web.AppKey("backoffice")
SIGNUP_STAFF_ID: Final = "signup"
"""The actor named by the ``SetAccountTier(tier=0)`` journaled for every signed-up user's
account: tier 0 trades but may not withdraw until staff raise it."""


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise errors.bad_request(f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = await request.read()  # bounded by the app's client_max_size too
    if len(raw) > MAX_BODY_BYTES:
        raise errors.bad_request(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = decode_json(raw) if raw.strip() else {}
    except ValueError as exc:
        raise errors.bad_request(
            f"the body must be UTF-8 JSON, at most {MAX_JSON_DEPTH} levels deep ({exc})"[:300]
        ) from None
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a JSON object")
    return body


class Backoffice:
    """The identity store, the auth rules and the routes of one gateway."""

    def __init__(self, gw: Gateway, dsn: str | None = None) -> None:
        self.gw, self.dsn = gw, dsn
        self.store: IdentityStore | None = None
        self.auth: Auth | None = None
        self.keys: UserKeys | None = None
        self.staff: StaffAuth | None = None
        self.session_keys: SessionKeys | None = None
        self._account_lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self.store = await open_store(self.gw.config.data_dir, self.dsn)
        except OPEN_ERRORS as exc:
            raise open_error(exc) from None
        key = load_key(self.gw.config.data_dir / "backoffice" / "jwt.key")
        master = load_master_key(self.gw.config.master_key_file or default_master_key_file())
        self.auth = Auth(self.store, AccessTokens(key), self._make_account, box=SecretBox(master))
        self.staff = StaffAuth(self.store.db, AccessTokens(key), SecretBox(master))
        from backoffice.sessionkeys import SessionKeys

        self.session_keys = SessionKeys(self.store, self.gw.keys)
        self.session_keys.start()
        self.keys = UserKeys(self.store, self.gw.keys, self.auth.second_factor, self.session_keys)
        from backoffice.fiatrecovery import recover_fiat_approvals

        await recover_fiat_approvals(self.gw, self.store.db)

    async def close(self) -> None:
        if self.session_keys is not None:
            await self.session_keys.stop()
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def _make_account(self) -> int:
        """A trading account through the gateway's journaled ``CreateAccount`` (serialised: the
        next id is read from the read model, which a concurrent creation has not reached)."""
        from gateway.admin import Admin
        from gateway.errors import ApiError

        async with self._account_lock:
            try:
                account_id = await Admin(self.gw).new_account()
                await Admin(self.gw).set_tier(account_id, 0, SIGNUP_STAFF_ID)
                return account_id
            except ApiError as exc:
                raise BackofficeError(503, errors.ENGINE_REFUSED, exc.msg) from None

    # ---- plumbing ----------------------------------------------------------------------------

    def route(
        self,
        fn: Callable[[web.Request], Awaitable[Any]],
        status: int = 200,
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                if self.auth is None:
                    raise BackofficeError(503, errors.UNAVAILABLE, "the identity store is not open")
                return web.json_response(await fn(request), status=status)
            except BackofficeError as exc:
                return web.json_response(exc.body(), status=exc.status, headers=exc.headers)
            except web.HTTPClientError as exc:  # e.g. 413 from reading a body over the cap
                err = BackofficeError(exc.status, errors.BAD_REQUEST, exc.reason)
                return web.json_response(err.body(), status=exc.status)
            except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.error("backoffice_store_error", error=str(exc)[:200], path=request.path)
                err = BackofficeError(503, errors.UNAVAILABLE, "the identity store failed")
                return web.json_response(err.body(), status=503)

        return handler

    async def _session(self, request: web.Request) -> Session:
        assert self.auth is not None
        return await self.auth.authenticate(request.headers.get("Authorization"))

    # ---- handlers ----------------------------------------------------------------------------

    async def signup(self, request: web.Request) -> Any:
        assert self.auth is not None
        return await self.auth.signup(await _body(request), request.remote or "?")

    async def login(self, request: web.Request) -> Any:
        assert self.auth is not None
        return await self.auth.login(await _body(request), request.remote or "?")

    async def refresh(self, request: web.Request) -> Any:
        assert self.auth is not None
        return await self.auth.refresh(await _body(request))

    async def logout(self, request: web.Request) -> Any:
        assert self.auth is not None
        session = await self._session(request)
        body = await _body(request)
        out = await self.auth.logout(session, body)  # refuses a bad body before keys end
        if self.session_keys is not None:
            if body.get("all") is True:
                out["revoked_session_keys"] = await self.session_keys.end_user(session.user.user_id)
            else:
                family = session.claims.session_id
                out["revoked_session_keys"] = await self.session_keys.end_session(family)
        return out

    async def totp_enroll(self, request: web.Request) -> Any:
        assert self.auth is not None
        return await self.auth.totp_enroll(await self._session(request))

    async def totp_confirm(self, request: web.Request) -> Any:
        assert self.auth is not None
        session = await self._session(request)
        return await self.auth.totp_confirm(session, await _body(request))

    async def forgot(self, request: web.Request) -> Any:
        assert self.auth is not None
        return await self.auth.reset_request(await _body(request))

    async def reset(self, request: web.Request) -> Any:
        assert self.auth is not None
        return await self.auth.reset_confirm(await _body(request))

    async def me(self, request: web.Request) -> Any:
        return Auth.profile((await self._session(request)).user)

    async def list_keys(self, request: web.Request) -> Any:
        assert self.keys is not None
        return self.keys.list(await self._session(request))

    async def create_key(self, request: web.Request) -> Any:
        assert self.keys is not None
        session = await self._session(request)
        return await self.keys.create(session, await _body(request), request.remote or "?")

    async def revoke_key(self, request: web.Request) -> Any:
        assert self.keys is not None
        return self.keys.revoke(await self._session(request), request.match_info["api_key"])

    async def liabilities_proof(self, request: web.Request) -> Any:
        """The logged-in user's proof of liabilities (the same answer as the dialect's signed
        ``GET /sapi/v1/audit/liabilitiesProof``, `gateway.polrest`)."""
        from gateway import polrest
        from gateway.errors import POL_NO_PROOF, ApiError

        user = (await self._session(request)).user
        if user.account_id is None:
            raise BackofficeError(409, errors.NO_TRADING_ACCOUNT, "this user has no account yet")
        try:
            return polrest.proof_for(self.gw.config.data_dir, user.account_id, dict(request.query))
        except ApiError as exc:
            status = 404 if exc.code == POL_NO_PROOF else 400
            raise BackofficeError(status, errors.NOT_FOUND, exc.msg) from None

    async def kyc_submit(self, request: web.Request) -> Any:
        """A KYC submission: the tier asked for and the documents' metadata (`backoffice.kyc`)."""
        assert self.store is not None
        user = (await self._session(request)).user
        body = await _body(request)
        return await KycQueue(self.store.db).submit(user.user_id, user.account_id, body)

    def kyc_files(self) -> KycFiles:
        assert self.store is not None
        return KycFiles(self.store.db, self.gw.config.data_dir / "backoffice" / "kyc")

    async def kyc_upload(self, request: web.Request) -> Any:
        """A document's file, its bytes as the body (`backoffice.kycfiles`)."""
        user = (await self._session(request)).user
        data = await read_capped(request, MAX_FILE_BYTES)
        return await self.kyc_files().upload(user.user_id, data)

    async def kyc_mine(self, request: web.Request) -> Any:
        assert self.store is not None
        user = (await self._session(request)).user
        return await KycQueue(self.store.db).mine(user.user_id)

    async def not_found(self, request: web.Request) -> Any:
        raise BackofficeError(404, errors.NOT_FOUND, "no such back-office endpoint")


def setup(app: web.Application, gw: Gateway, dsn: str | None = None) -> Backoffice:
    bo = Backoffice(gw, dsn)
    app[BACKOFFICE_KEY] = bo
    r, add = bo.route, app.router.add_route
    add("POST", "/api/v1/auth/signup", r(bo.signup, 201))
    add("POST", "/api/v1/auth/login", r(bo.login))
    add("POST", "/api/v1/auth/refresh", r(bo.refresh))
    add("POST", "/api/v1/auth/logout", r(bo.logout))
    add("POST", "/api/v1/auth/totp/enroll", r(bo.totp_enroll))
    add("POST", "/api/v1/auth/totp/confirm", r(bo.totp_confirm))
    add("POST", "/api/v1/auth/password/forgot", r(bo.forgot, 202))
    add("POST", "/api/v1/auth/password/reset", r(bo.reset))
    add("GET", "/api/v1/me", r(bo.me))
    add("GET", "/api/v1/me/api-keys", r(bo.list_keys))
    add("POST", "/api/v1/me/api-keys", r(bo.create_key, 201))
    add("DELETE", "/api/v1/me/api-keys/{api_key}", r(bo.revoke_key))
    add("GET", "/api/v1/me/liabilities-proof", r(bo.liabilities_proof))
    add("GET", "/api/v1/me/kyc", r(bo.kyc_mine))
    add("POST", "/api/v1/me/kyc", r(bo.kyc_submit, 201))
    add("POST", "/api/v1/me/kyc/files", r(bo.kyc_upload, 201))
    add("*", "/api/v1/{tail:(auth|me)(/.*)?}", r(bo.not_found))
    from backoffice import ops

    ops.setup(app, bo)

    async def startup(app: web.Application) -> None:
        await bo.open()

    async def cleanup(app: web.Application) -> None:
        await bo.close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return bo
