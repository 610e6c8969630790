"""Operator actions: create accounts (with an API key), credit deposits, list accounts.

``kootabase accounts create|list|deposit|keys list|keys rotate|keys revoke`` reaches the
exchange in one of two ways:

- **Server running** (the journal's writer lock is held): over HTTP to the admin endpoints
  ``/admin/...`` of the running server, found through ``<data_dir>/gateway/server.json``. The
  endpoints answer loopback peers only and require the token in
  ``<data_dir>/gateway/admin.token`` (created 0600 at first start; whoever can read the data
  directory can already rewrite the journal, so the token adds no new trust).
- **Server stopped**: the CLI opens the data directory itself (node, replay, key store) and
  performs the same actions through the same code.

Either way every balance change is a journaled command (CreateAccount, Deposit with a unique
``deposit_key``); only the API key itself is gateway state (keys.json).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.datadir import require_existing
from engine.jsondepth import decode_json
from engine.schema import (
    LEGACY_DEMO_KEY_PREFIX,
    CommandRejected,
    CreateAccount,
    CreateAsset,
    CreateMarket,
    Deposit,
    MarketState,
    Reject,
    SetAccountFrozen,
    SetAccountTier,
    SetMarketState,
    SetTierTradeLimit,
)
from engine.usererror import UserError
from gateway import errors
from gateway.auth import same_secret
from gateway.keys import PERMISSIONS, NewKey, ed25519_from_pem
from gateway.markets import atoms_to_decimal, parse_decimal
from gateway.params import UINT_RE

if TYPE_CHECKING:
    from gateway.app import Gateway


class Admin:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def new_account(self) -> int:
        """Journal a CreateAccount with the next free id; returns the id."""
        account_id = max(self.gw.store.accounts, default=0) + 1
        _, _, events = await self.gw.trading.execute(
            account_id, CreateAccount(account_id=account_id)
        )
        for ev in events:
            if isinstance(ev, CommandRejected):
                raise errors.ApiError(
                    errors.ORDER_REJECTED, f"account not created: {Reject(ev.reason).name}"
                )
        return account_id

    async def standing(
        self,
        command: SetAccountFrozen
        | SetAccountTier
        | SetMarketState
        | SetTierTradeLimit
        | CreateMarket
        | CreateAsset,
    ) -> int:
        """Journal a staff action on an account's or a market's standing; returns its seq.
        An engine refusal is an `ApiError` naming the reason."""
        account_id = getattr(command, "account_id", 0)
        seq, _, events = await self.gw.trading.execute(account_id, command)
        for ev in events:
            if isinstance(ev, CommandRejected):
                raise errors.ApiError(
                    errors.ORDER_REJECTED,
                    f"{type(command).__name__} refused: {Reject(ev.reason).name}",
                )
        return seq

    async def set_tier(self, account_id: int, tier: int, staff_id: str) -> int:
        return await self.standing(
            SetAccountTier(account_id=account_id, tier=tier, staff_id=staff_id)
        )

    async def create_account(
        self,
        permissions: tuple[str, ...] = ("read", "trade"),
        ed25519_public_pem: bytes | None = None,
    ) -> NewKey:
        for p in permissions:  # refuse before journaling an account nobody can use
            if p not in PERMISSIONS:
                raise errors.ApiError(errors.MANDATORY_PARAM, f"unknown permission {p!r}")
        if ed25519_public_pem is not None:
            try:
                ed25519_from_pem(ed25519_public_pem)
            except ValueError as exc:
                raise errors.ApiError(errors.MANDATORY_PARAM, str(exc)) from None
        account_id = await self.new_account()
        return self.gw.keys.create(account_id, permissions, ed25519_public_pem=ed25519_public_pem)

    async def deposit(
        self,
        account_id: int,
        asset: str,
        amount: str,
        deposit_key: str | None = None,
        *,
        demo: bool = False,
    ) -> dict[str, Any]:
        """An operator's credit (``demo``: the demo faucet's, `gateway.app.Gateway` only)."""
        store = self.gw.store
        a = next((x for x in store.assets.values() if x.symbol == asset), None)
        if a is None:
            raise errors.ApiError(errors.BAD_SYMBOL, f"unknown asset {asset!r}")
        atoms = parse_decimal("amount", amount, a.decimals)
        key = deposit_key or f"admin:{uuid.uuid4()}"
        if not demo and key.startswith(LEGACY_DEMO_KEY_PREFIX):
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                f"deposit keys starting {LEGACY_DEMO_KEY_PREFIX!r} are the demo faucet's",
            )
        seq, _, events = await self.gw.trading.execute(
            account_id,
            Deposit(
                account_id=account_id,
                asset_id=a.asset_id,
                amount_atoms=atoms,
                deposit_key=key,
                demo=demo,
            ),
        )
        for ev in events:
            if isinstance(ev, CommandRejected):
                raise errors.ApiError(
                    errors.ORDER_REJECTED, f"deposit refused: {Reject(ev.reason).name}"
                )
        return {
            "seq": seq,
            "account_id": account_id,
            "asset": asset,
            "amount": atoms_to_decimal(atoms, a.decimals),
            "deposit_key": key,
        }

    def markets(self) -> list[dict[str, Any]]:
        """Every market and its trading state (``OPEN``, ``HALTED``, ``CANCEL_ONLY``,
        ``POST_ONLY``), for the operations console."""
        return [
            {"symbol": m.wire, "state": MarketState(m.state).name}
            for _, m in sorted(self.gw.store.markets.items())
        ]

    async def set_market_state(self, symbol: str, state: str, staff_id: str = "") -> dict[str, Any]:
        """Journal a ``SetMarketState``: halt (nothing matches, new orders and amends refused,
        cancels work), cancel-only, post-only, or open again."""
        market = self.gw.store.market(symbol)
        if market is None:
            raise errors.ApiError(errors.BAD_SYMBOL, "Invalid symbol.")
        if state not in MarketState.__members__:
            raise errors.ApiError(
                errors.MANDATORY_PARAM,
                f"state must be one of {', '.join(MarketState.__members__)}",
            )
        seq, _, events = await self.gw.trading.execute(
            0,
            SetMarketState(
                market_id=market.market_id, state=int(MarketState[state]), staff_id=staff_id
            ),
        )
        for ev in events:
            if isinstance(ev, CommandRejected):
                raise errors.ApiError(
                    errors.ORDER_REJECTED, f"market state not set: {Reject(ev.reason).name}"
                )
        return {"symbol": market.wire, "state": state, "seq": seq}

    def keys(self, action: str, body: dict[str, Any]) -> Any:
        """``keys``: list every key; ``keys/revoke`` and ``keys/rotate`` one (``api_key``)."""
        store = self.gw.keys
        if action == "keys":
            return store.listing()
        api_key = body.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise errors.mandatory("api_key")
        try:
            if action == "keys/revoke":
                return store.revoke(api_key)
            pem = body.get("ed25519_public_pem")
            return _new_key_json(
                store.rotate(
                    api_key,
                    ed25519_public_pem=(pem.encode() if isinstance(pem, str) and pem else None),
                )
            )
        except KeyError as exc:
            raise errors.ApiError(errors.REJECTED_MBX_KEY, str(exc.args[0])) from None

    def list(self) -> list[dict[str, Any]]:
        store, out = self.gw.store, []
        for account_id, acct in sorted(store.accounts.items()):
            keys = [
                {"api_key": k.api_key, "kind": k.kind, "permissions": list(k.permissions)}
                for k in self.gw.keys.all()
                if k.account_id == account_id
            ]
            balances = {
                store.assets[a].symbol: {
                    "free": atoms_to_decimal(b[0], store.assets[a].decimals),
                    "locked": atoms_to_decimal(b[1] + b[2], store.assets[a].decimals),
                }
                for a, b in sorted(acct.balances.items())
                if any(b)
            }
            out.append(
                {
                    "account_id": account_id,
                    "keys": keys,
                    "balances": balances,
                    "open_orders": len(acct.open_orders),
                    "demo": account_id in self.gw.demo_accounts,
                }
            )
        return out


# ---- HTTP endpoints of a running server ------------------------------------------------------


def setup(app: web.Application, gw: Gateway) -> None:
    admin = Admin(gw)

    def check(request: web.Request) -> None:
        try:
            loopback = ipaddress.ip_address(request.remote or "").is_loopback
        except ValueError:
            loopback = False
        token = request.headers.get("X-Kootabase-Admin-Token", "")
        if not loopback or not same_secret(token, gw.admin_token):
            raise web.HTTPForbidden(text="admin: loopback and token required")

    async def call(request: web.Request) -> web.Response:
        check(request)
        try:
            raw = await request.read() if request.can_read_body else b"{}"
            body = decode_json(raw)  # depth bound, lone surrogates refused
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            action = request.match_info["action"]
            if action == "accounts" and request.method == "GET":
                return web.json_response(admin.list())
            if action == "accounts":
                pem = _typed(body, "ed25519_public_pem", str, required=False)
                permissions = _typed(body, "permissions", list, required=False)
                new = await admin.create_account(
                    tuple(permissions or ["read", "trade"]), pem.encode() if pem else None
                )
                return web.json_response(_new_key_json(new))
            if action == "deposit":
                return web.json_response(
                    await admin.deposit(
                        _account_id(body),
                        str(_typed(body, "asset", str)),
                        str(body["amount"]),
                        _typed(body, "deposit_key", str, required=False),
                    )
                )
            if action == "health/overview" and request.method == "GET":
                from gateway.clusterhealth import overview

                return web.json_response(await overview(gw))  # the staff console's panel
            if action == "markets" and request.method == "GET":
                return web.json_response(admin.markets())
            if action == "markets/state" and request.method == "POST":
                return web.json_response(
                    await admin.set_market_state(str(body["symbol"]), str(body["state"]))
                )
            if action in KEY_ACTIONS and (request.method == "GET") == (action == "keys"):
                return web.json_response(admin.keys(action, body))
        except errors.ApiError as exc:
            return web.json_response(exc.body(), status=400)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"code": errors.MANDATORY_PARAM, "msg": str(exc)}, status=400)
        raise web.HTTPNotFound()

    app.router.add_route(
        "*",
        "/admin/{action:accounts|deposit|health/overview|keys|keys/revoke|keys/rotate|markets"
        "|markets/state}",
        call,
    )


KEY_ACTIONS = ("keys", "keys/revoke", "keys/rotate")


def _typed(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    """``body[name]`` if it is a ``kind`` (None when absent and not ``required``); anything
    else is a ValueError naming the field (an int(1.9) account id was account 1, a
    non-string deposit key an AttributeError: a 500)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name} must be a {kind.__name__}")
    return value


def _account_id(body: dict[str, Any]) -> int:
    """A JSON integer or a string of ASCII digits; a float, a bool or ``"٣"`` is refused."""
    value = body.get("account_id")
    if isinstance(value, str) and UINT_RE.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("account_id must be a positive integer")
    return value


def _new_key_json(new: NewKey) -> dict[str, Any]:
    return {
        "account_id": new.account_id,
        "api_key": new.api_key,
        "kind": new.kind,
        "permissions": list(new.permissions),
        "secret": new.secret,
    }


# ---- the CLI ---------------------------------------------------------------------------------


def _server(data_dir: Path) -> tuple[str, str] | None:
    info = data_dir / "gateway" / "server.json"
    token = data_dir / "gateway" / "admin.token"
    if not info.exists() or not token.exists():
        return None
    meta = json.loads(info.read_text())
    return f"http://{meta['host']}:{meta['port']}", token.read_text().strip()


async def _remote(base: str, token: str, method: str, action: str, body: Any) -> Any:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method, f"{base}/admin/{action}", json=body, headers={"X-Kootabase-Admin-Token": token}
        ) as resp,
    ):
        data = await resp.json()
        if resp.status != 200:
            raise UserError(f"the server refused: {data.get('msg', data)}")
        return data


async def _local(args: argparse.Namespace, method: str, action: str, body: Any) -> Any:
    from gateway.app import Gateway, GatewayConfig

    gw = Gateway(
        GatewayConfig(
            data_dir=Path(args.data_dir), master_key_file=args.master_key_file, marketdata=False
        )
    )
    gw.bridge.start()
    try:
        admin = Admin(gw)
        if action == "accounts" and method == "GET":
            return admin.list()
        if action in KEY_ACTIONS:
            return admin.keys(action, body or {})
        if action == "accounts":
            pem = body.get("ed25519_public_pem")
            return _new_key_json(
                await admin.create_account(
                    tuple(body["permissions"]), pem.encode() if pem else None
                )
            )
        return await admin.deposit(
            body["account_id"], body["asset"], body["amount"], body.get("deposit_key")
        )
    except errors.ApiError as exc:
        raise UserError(exc.msg) from None
    except ValueError as exc:  # e.g. an unknown permission, a key that is not Ed25519
        raise UserError(str(exc)) from None
    finally:
        await gw.close()


def read_public_key(value: str) -> str:
    """``--ed25519-public-key``: the PEM text itself or the path of a file holding it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if value.lstrip().startswith("-----BEGIN"):
        pem = value
    else:
        path = Path(value)
        if not path.is_file():
            raise UserError(
                f"--ed25519-public-key: {value[:60]!r} is neither a PEM public key nor a file",
                hint="pass the path of the .pem file or the PEM text itself",
            )
        pem = path.read_text(errors="replace")
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise UserError(
            "--ed25519-public-key: not a PEM public key",
            hint="export it with `openssl pkey -pubout`",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError("--ed25519-public-key: the key is not an Ed25519 key")
    return pem


def run_accounts_cli(args: argparse.Namespace) -> int:
    """``kootabase accounts create|list|deposit|keys ...``; prints JSON (a new secret is shown
    once)."""
    data_dir = require_existing(Path(args.data_dir))
    if args.accounts_command == "list":
        method, action, body = "GET", "accounts", None
    elif args.accounts_command == "keys":
        if args.keys_command == "list":
            method, action, body = "GET", "keys", None
        else:
            pem = (
                Path(args.ed25519_public_key).read_text()
                if getattr(args, "ed25519_public_key", None)
                else None
            )
            method, action = "POST", f"keys/{args.keys_command}"
            body = {"api_key": args.api_key, "ed25519_public_pem": pem}
    elif args.accounts_command == "create":
        pem = read_public_key(args.ed25519_public_key) if args.ed25519_public_key else None
        method, action = "POST", "accounts"
        body = {"permissions": args.permissions.split(","), "ed25519_public_pem": pem}
    else:
        method, action = "POST", "deposit"
        body = {
            "account_id": args.account,
            "asset": args.asset.upper(),
            "amount": args.amount,
            "deposit_key": args.deposit_key,
        }
    server = _server(data_dir)
    if server is not None:
        try:
            result = asyncio.run(_remote(*server, method, action, body))
        except OSError:  # stale server.json: the server is gone
            server = None
    if server is None:
        result = asyncio.run(_local(args, method, action, body))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0
