"""KYC tiers and frozen accounts at the withdrawal desk, on a real gateway with custody on a
real anvil and the back office in SQLite: tier 0 may not withdraw, a frozen account may not,
a tier's 24 h limit per asset holds (``tier_daily_limit_atoms``), each refused with its stable
code before anything is journaled; raising the tier or unfreezing lets the same request
through."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from engine.schema import SetAccountFrozen
from gateway.admin import Admin
from tests.custody_nodes import Anvil
from tests.foureyes_support import (
    GWEI,
    account,
    address,
    anvil_node,
    custody_config,
    rest,
)
from tests.gateway_support import ServerThread

anvil = pytest.fixture(scope="module")(anvil_node)
TIER_LIMITS = (0, 2 * GWEI, 0, 0)
"""Tier 1: 2 ETH per 24 h (engine atoms are gwei); tiers 2 and 3: no tier limit."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, anvil: Anvil) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("kyc")
    config = custody_config(tmp, anvil)
    (asset,) = config.assets
    plain = dataclasses.replace(  # no four eyes here: the desk answers at once
        asset,
        approval_threshold_atoms=0,
        approve_new_address=False,
        tier_daily_limit_atoms=TIER_LIMITS,
    )
    config = dataclasses.replace(config, assets=[plain])
    s = ServerThread(tmp, custody=config, custody_signer=False, custody_poll_s=0)
    try:
        yield s
    finally:
        s.stop()


def _withdraw(server: ServerThread, creds: Any, amount: str) -> tuple[int, Any]:
    return rest(  # type: ignore[no-any-return]
        server,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        creds,
        coin="ETH",
        address=address("kyc"),
        amount=amount,
    )


def _refused_unjournaled(server: ServerThread, creds: Any, amount: str, code: int) -> None:
    server.wait_idle()
    before = server.seq_and_hash()
    status, data = _withdraw(server, creds, amount)
    assert (status, data["code"]) == (400, code), data
    assert server.seq_and_hash() == before  # nothing journaled, nothing changed


def test_tier_zero_frozen_and_tier_limits(server: ServerThread) -> None:
    admin = Admin(server.gw)
    creds, account_id = account(server, "10", traded=False)
    # An operator-made account has no tier: no KYC regime, it withdraws as before.
    assert _withdraw(server, creds, "0.5")[0] == 200

    server.call(admin.set_tier(account_id, 0, "staff-kyc"))
    _refused_unjournaled(server, creds, "0.5", -4012)

    server.call(admin.set_tier(account_id, 1, "staff-kyc"))
    assert _withdraw(server, creds, "1.5")[0] == 200  # with the 0.5 before: tier 1's 2 ETH
    _refused_unjournaled(server, creds, "0.6", -4003)  # every withdrawal of the 24 h counts
    server.call(admin.set_tier(account_id, 2, "staff-kyc"))
    assert _withdraw(server, creds, "0.6")[0] == 200

    frozen = SetAccountFrozen(account_id=account_id, frozen=True, staff_id="staff-kyc")
    server.call(admin.standing(frozen))
    _refused_unjournaled(server, creds, "0.1", -4011)
    server.call(admin.standing(msgspec.structs.replace(frozen, frozen=False)))
    status, data = _withdraw(server, creds, "0.1")
    assert status == 200, data
