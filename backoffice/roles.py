"""Staff roles and the one table of operator actions: who may take which action.

Every operator action has a name here and the roles that may take it; `require` is the one
check every operator endpoint calls before it does anything (so a new endpoint cannot forget a
check that lives elsewhere, and reviewing who may do what means reading this table alone).

The auditor is read-only by construction: an action that changes anything (``writes``) may
never name it (asserted when this module loads).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from backoffice import errors
from backoffice.errors import BackofficeError


class Role(enum.StrEnum):
    ADMIN = "admin"
    """Runs the venue: staff, markets, everything compliance may do."""
    COMPLIANCE = "compliance"
    """Accounts' standing: freeze, unfreeze, KYC tiers, AML cases."""
    SUPPORT = "support"
    """Helps users: looks accounts up, changes nothing that moves money."""
    FINANCE = "finance"
    """Money out: approves withdrawals (four eyes), records fiat transfers."""
    AUDITOR = "auditor"
    """Reads everything, changes nothing."""


ALL_ROLES: Final = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Action:
    roles: frozenset[Role]
    writes: bool
    """Changes state (journaled command or identity store write); never the auditor's."""


def _a(*roles: Role, writes: bool) -> Action:
    return Action(frozenset(roles), writes)


A, C, S, F, R = Role.ADMIN, Role.COMPLIANCE, Role.SUPPORT, Role.FINANCE, Role.AUDITOR

ACTIONS: Final[dict[str, Action]] = {
    "staff.session": _a(A, C, S, F, R, writes=False),  # one's own session: who am I, log out
    "staff.view": _a(A, R, writes=False),
    "staff.create": _a(A, writes=True),
    "accounts.search": _a(A, C, S, F, R, writes=False),
    "accounts.view": _a(A, C, S, F, R, writes=False),
    "accounts.freeze": _a(A, C, writes=True),
    "accounts.unfreeze": _a(A, C, writes=True),
    "accounts.set_tier": _a(A, C, writes=True),
    "limits.view": _a(A, C, S, F, R, writes=False),
    "limits.set": _a(A, C, writes=True),
    "kyc.view": _a(A, C, S, R, writes=False),
    "kyc.review": _a(A, C, writes=True),
    "kyc.files": _a(C, writes=False),  # identity documents' bytes: compliance only
    "markets.view": _a(A, C, S, F, R, writes=False),
    "markets.set_state": _a(A, writes=True),
    "markets.create": _a(A, writes=True),
    "assets.create": _a(A, writes=True),
    "fiat.view": _a(A, C, F, R, writes=False),
    "fiat.record": _a(F, writes=True),
    "fiat.approve": _a(A, F, writes=True),
    "fiat.pay": _a(F, writes=True),
    "audit.read": _a(A, C, R, writes=False),
    "withdrawals.view": _a(A, C, F, R, writes=False),
    "withdrawals.approve": _a(F, writes=True),
    "withdrawals.reject": _a(F, C, writes=True),
    "aml.cases.view": _a(A, C, R, writes=False),
    "aml.cases.work": _a(C, writes=True),
    "custody.alerts.view": _a(A, C, F, R, writes=False),
    "custody.deposits.view": _a(A, C, F, R, writes=False),
    "custody.reconcile.view": _a(A, F, R, writes=False),
    "health.view": _a(A, C, S, F, R, writes=False),  # the console's overview (`opshealth`)
}
"""Action name -> the roles that may take it. The only place roles are granted."""

for _name, _action in ACTIONS.items():
    assert _action.roles, _name
    assert not (_action.writes and Role.AUDITOR in _action.roles), f"auditor may not {_name}"


def parse_role(text: object) -> Role:
    if not isinstance(text, str) or text not in {r.value for r in Role}:
        raise errors.bad_request(f"role must be one of {', '.join(r.value for r in Role)}")
    return Role(text)


def allowed(role: str, action: str) -> bool:
    spec = ACTIONS.get(action)
    assert spec is not None, f"unknown operator action {action!r}"
    return role in spec.roles


def require(role: str, action: str) -> None:
    """Refuse (403 ``ROLE_REFUSED``) unless ``role`` may take ``action``."""
    if not allowed(role, action):
        spec = ACTIONS[action]
        names = ", ".join(sorted(r.value for r in spec.roles))
        raise BackofficeError(
            403, errors.ROLE_REFUSED, f"{action} needs one of the roles {names}; you are {role}"
        )
