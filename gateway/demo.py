"""Demo mode (``kootabase serve --demo``): what the demo faucet credits and when it is refused.

Demo money comes from no chain, so it is kept away from custody: the rule lives here, once,
and is checked both by the command line (before anything slow) and by `GatewayConfig`.
"""

from __future__ import annotations

from typing import Final

DEMO_FUNDS: Final = {"USDT": "1000000", "BTC": "10", "ETH": "100", "LTC": "1000"}
"""What the demo account is credited with, by journaled ``Deposit(demo=True)`` commands."""

DEMO_WITH_CUSTODY: Final = (
    "--demo cannot be combined with --custody-config/--custody-signer: demo money is backed "
    "by no chain and must never meet real coins"
)


def check_demo_allowed(demo: bool, custody: object, custody_signer: bool) -> None:
    """Raise ValueError when demo mode is asked for together with custody."""
    if demo and (custody is not None or custody_signer):
        raise ValueError(DEMO_WITH_CUSTODY)
