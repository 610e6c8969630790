"""``kootabase staff create|list``: how the first admin comes to exist.

Nobody can log in to the operator API before a staff member exists, so the first admin is made
here, by whoever runs commands on the machine holding the data directory (and the master key
that seals TOTP seeds). The TOTP secret is printed once, with its otpauth URI for an
authenticator app; it is stored sealed and never shown again. The password is read from
standard input (one line) so it never appears in the process list or the shell history.
Works whether the server runs or not: the identity store (SQLite in WAL mode, or PostgreSQL) is
shared safely with a running gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

import asyncpg

from backoffice.errors import BackofficeError
from backoffice.passwords import check_new_password, normalize_email
from backoffice.roles import parse_role
from backoffice.secretbox import SecretBox
from backoffice.staff import StaffAuth, StaffStore
from backoffice.store import IDENTITY_FILE, OPEN_ERRORS, open_error, open_store
from backoffice.tokens import AccessTokens, load_key
from engine.datadir import require_existing
from engine.redact import redact_url
from engine.usererror import UserError
from gateway.keys import default_master_key_file, load_master_key


def _password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise UserError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


async def _has_staff_table(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except OPEN_ERRORS as exc:
        raise open_error(exc) from None
    try:
        return await conn.fetchval("SELECT to_regclass('bo_staff')") is not None
    finally:
        await conn.close()


async def _list(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Read-only: no master key, no signing key and no SQLite file is made to answer it (a
    typo in --data-dir left a fresh identity store, a JWT key and a master key behind)."""
    where = args.backoffice_dsn and redact_url(args.backoffice_dsn)
    if not args.backoffice_dsn:
        where = args.data_dir / "backoffice" / IDENTITY_FILE
        present = where.is_file()
    else:  # nor any table in a database the back office never used
        present = await _has_staff_table(args.backoffice_dsn)
    if not present:
        raise UserError(
            f"no back-office identity store at {where}: no staff member exists there",
            hint="check --data-dir (or --backoffice-dsn); `kootabase staff create` makes the first",
        )
    try:
        store = await open_store(args.data_dir, args.backoffice_dsn)
    except OPEN_ERRORS as exc:
        raise open_error(exc) from None
    try:
        return [s.public() for s in await StaffStore(store.db).listing()]
    finally:
        await store.close()


async def _run(args: argparse.Namespace) -> dict[str, Any] | list[dict[str, Any]]:
    if args.staff_command == "list":
        return await _list(args)
    if args.staff_command == "create":  # first: a mistake creates no master key, no tables
        role = parse_role(args.role)
        email = normalize_email(args.email)
        password = _password()
        check_new_password(password, email)
    master = load_master_key(args.master_key_file or default_master_key_file())
    try:
        store = await open_store(args.data_dir, args.backoffice_dsn)
    except OPEN_ERRORS as exc:
        raise open_error(exc) from None
    try:
        key = load_key(args.data_dir / "backoffice" / "jwt.key")
        auth = StaffAuth(store.db, AccessTokens(key), SecretBox(master))
        staff, secret, uri = await auth.create(email, password, role, by="cli")
        return {**staff.public(), "totp_secret": secret, "otpauth_uri": uri}
    finally:
        await store.close()


def run_cli(args: argparse.Namespace) -> int:
    require_existing(args.data_dir, journal=False)  # list too: the store would create the dir
    try:
        out = asyncio.run(_run(args))
    except BackofficeError as exc:
        raise UserError(f"{exc.code}: {exc.message}") from None
    print(json.dumps(out, indent=2))
    if isinstance(out, dict):
        print(
            "The TOTP secret is shown this once: add it to an authenticator app now.",
            file=sys.stderr,
        )
    return 0
