"""Per-tier 24 h deposit limits on a real gateway with custody on a real anvil: a deposit cannot
be refused on chain, so one that would take the account over its tier's limit
(``tier_daily_deposit_limit_atoms``) is not credited: it waits in custody (``over_limit``),
listed for compliance by the operator API, named by reconciliation, shown pending to the user,
with nothing journaled; raising the tier credits it on the next pass, exactly once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from backoffice.roles import Role
from custody.reconcile import explain
from gateway.admin import Admin
from gateway.client import Credentials
from tests.custody_nodes import CONFIRMATIONS, Anvil
from tests.foureyes_support import GWEI, anvil_node, custody_config, eth, poll, rest
from tests.gateway_support import ServerThread
from tests.test_backoffice_ops import login, make_staff, ops, refused

anvil = pytest.fixture(scope="module")(anvil_node)
ETHER = 10**18
DEPOSIT_LIMITS = (1 * GWEI, 3 * GWEI, 0, 0)
"""Tier 0: 1 ETH credited per 24 h; tier 1: 3 ETH; tiers 2 and 3: no limit."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, anvil: Anvil) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("deplim")
    config = custody_config(tmp, anvil)
    (asset,) = config.assets
    limited = dataclasses.replace(asset, tier_daily_deposit_limit_atoms=DEPOSIT_LIMITS)
    config = dataclasses.replace(config, assets=[limited])
    s = ServerThread(
        tmp, custody=config, custody_signer=False, custody_poll_s=0, fixture_accounts=False
    )
    try:
        yield s
    finally:
        s.stop()


def _send(server: ServerThread, anvil: Anvil, creds: Credentials, wei: int) -> None:
    _, addr = rest(server, "GET", "/sapi/v1/capital/deposit/address", creds, coin="ETH")
    frm = anvil.rpc("eth_accounts")[2]
    anvil.rpc("eth_sendTransaction", {"from": frm, "to": addr["address"], "value": hex(wei)})
    anvil.mine(CONFIRMATIONS)
    poll(server)


def _waiting_wei(server: ServerThread) -> int:
    """What reconciliation names as deposits waiting over a tier's limit (chain units)."""
    custody = server.gw.custody.custody
    (asset,) = custody.registry.assets.values()
    return dict(explain(asset, custody.store))[
        "deposits waiting over their tier's 24 h deposit limit (compliance)"
    ]


def _account(server: ServerThread) -> tuple[Credentials, int]:
    """An operator-made account with a key and no money (no tier until one is set)."""
    key = server.call(Admin(server.gw).create_account(("read", "trade")))
    assert key.secret is not None
    return Credentials.hmac(key.api_key, key.secret), key.account_id


def test_over_the_tier_limit_waits_then_goes_in(server: ServerThread, anvil: Anvil) -> None:
    admin = Admin(server.gw)
    creds, account_id = _account(server)
    server.call(admin.set_tier(account_id, 0, "staff-kyc"))
    officer = login(server, "dl@example.com", make_staff(server, "dl@example.com", Role.COMPLIANCE))
    support = login(server, "sup@example.com", make_staff(server, "sup@example.com", Role.SUPPORT))

    _send(server, anvil, creds, ETHER * 6 // 10)  # 0.6 ETH: within tier 0's 1 ETH
    assert eth(server, creds)[0] == "0.600000000"

    server.wait_idle()
    before = server.seq_and_hash()
    _send(server, anvil, creds, ETHER * 6 // 10)  # 1.2 ETH in 24 h: over, waits
    server.wait_idle()
    assert server.seq_and_hash() == before  # nothing journaled
    assert eth(server, creds)[0] == "0.600000000"
    status, held = ops(server, "GET", "/custody/deposits", officer)
    assert status == 200, held
    assert [(d["account_id"], d["amount"], d["status"]) for d in held] == [
        (account_id, "0.600000000", "over_limit")
    ]
    assert "deposit limit" in held[0]["detail"]
    refused(ops(server, "GET", "/custody/deposits", support), 403, "ROLE_REFUSED")
    status, rows = rest(server, "GET", "/sapi/v1/capital/deposit/hisrec", creds, coin="ETH")
    assert sorted(r["status"] for r in rows) == [0, 1]  # the user sees it pending
    assert _waiting_wei(server) == ETHER * 6 // 10  # reconciliation names it
    poll(server)  # every pass looks again; still over
    assert eth(server, creds)[0] == "0.600000000"

    server.call(admin.set_tier(account_id, 1, "staff-kyc"))  # 3 ETH now
    poll(server)
    assert eth(server, creds)[0] == "1.200000000"
    assert ops(server, "GET", "/custody/deposits", officer)[1] == []
    poll(server)  # exactly once
    assert eth(server, creds)[0] == "1.200000000"
    assert _waiting_wei(server) == 0

    # An account without a tier (operator-made) is not held to the limits.
    free, free_id = _account(server)
    _send(server, anvil, free, 2 * ETHER)
    assert eth(server, free)[0] == "2.000000000" and server.gw.store.tier(free_id) == -1
