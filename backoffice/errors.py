"""Stable error codes of the back-office API (``/api/v1/...``).

Every refusal is ``{"error": {"code": CODE, "message": text}}`` with an HTTP status; the code
is the contract (clients branch on it), the message is for people and may change. Codes are
never reused for another meaning.
"""

from __future__ import annotations

from typing import Any, Final

BAD_REQUEST: Final = "BAD_REQUEST"
"""The body is not a JSON object, a field is missing or has the wrong type."""
INVALID_EMAIL: Final = "INVALID_EMAIL"
WEAK_PASSWORD: Final = "WEAK_PASSWORD"
EMAIL_TAKEN: Final = "EMAIL_TAKEN"
INVALID_CREDENTIALS: Final = "INVALID_CREDENTIALS"
"""Unknown email or wrong password (the same code for both: no account enumeration)."""
TOTP_REQUIRED: Final = "TOTP_REQUIRED"
INVALID_TOTP: Final = "INVALID_TOTP"
TOTP_NOT_PENDING: Final = "TOTP_NOT_PENDING"
TOTP_ALREADY_ENABLED: Final = "TOTP_ALREADY_ENABLED"
ACCOUNT_LOCKED: Final = "ACCOUNT_LOCKED"
TOO_MANY_ATTEMPTS: Final = "TOO_MANY_ATTEMPTS"
"""Per-IP throttle: too many failed logins from this address recently."""
TOO_MANY_SIGNUPS: Final = "TOO_MANY_SIGNUPS"
"""Per-IP throttle: too many sign-ups from this address in the last hour."""
UNAUTHENTICATED: Final = "UNAUTHENTICATED"
"""No, malformed or expired access token."""
INVALID_REFRESH_TOKEN: Final = "INVALID_REFRESH_TOKEN"
REFRESH_TOKEN_REUSED: Final = "REFRESH_TOKEN_REUSED"
"""A rotated refresh token came back: its whole family (session) is revoked."""
INVALID_RESET_TOKEN: Final = "INVALID_RESET_TOKEN"
USER_DISABLED: Final = "USER_DISABLED"
NO_TRADING_ACCOUNT: Final = "NO_TRADING_ACCOUNT"
INVALID_PERMISSION: Final = "INVALID_PERMISSION"
INVALID_IP_ALLOW: Final = "INVALID_IP_ALLOW"
TOO_MANY_API_KEYS: Final = "TOO_MANY_API_KEYS"
API_KEY_NOT_FOUND: Final = "API_KEY_NOT_FOUND"
NOT_FOUND: Final = "NOT_FOUND"
METHOD_NOT_ALLOWED: Final = "METHOD_NOT_ALLOWED"
ENGINE_REFUSED: Final = "ENGINE_REFUSED"
"""The journaled command that would make the trading account was refused."""
ROLE_REFUSED: Final = "ROLE_REFUSED"
"""Operator API: this staff member's role may not take this action (backoffice.roles)."""
STAFF_TOTP_MISSING: Final = "STAFF_TOTP_MISSING"
"""A staff member without a TOTP secret cannot log in (TOTP is mandatory for staff)."""
STAFF_EXISTS: Final = "STAFF_EXISTS"
ACCOUNT_NOT_FOUND: Final = "ACCOUNT_NOT_FOUND"
MARKET_NOT_FOUND: Final = "MARKET_NOT_FOUND"
UNAVAILABLE: Final = "UNAVAILABLE"
INTERNAL: Final = "INTERNAL"


class BackofficeError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def ops_body(self) -> dict[str, Any]:
        """The operator API's envelope (``/ops/v1``): ``{code, msg}`` like every error the
        OpenAPI document describes."""
        return {"code": self.code, "msg": self.message}


# Refusals of staff actions on things that wait for a decision (four eyes on withdrawals,
# `custody.approvals`; AML cases, `backoffice.aml.cases`): one exception, one status table.
UNKNOWN_WITHDRAWAL: Final = "UNKNOWN_WITHDRAWAL"
NOT_AWAITING_APPROVAL: Final = "NOT_AWAITING_APPROVAL"
ALREADY_DECIDED: Final = "ALREADY_DECIDED"
"""This staff member already decided on this withdrawal (four eyes: two different people)."""
REASON_REQUIRED: Final = "REASON_REQUIRED"
UNKNOWN_CASE: Final = "UNKNOWN_CASE"
CASE_CLOSED: Final = "CASE_CLOSED"
INVALID_OUTCOME: Final = "INVALID_OUTCOME"
NOTE_REQUIRED: Final = "NOTE_REQUIRED"
# Codes of single back-office modules, kept here so that this module is the one list of every
# code the back office answers with (the fuzz tests check every answer against it).
CUSTODY_DISABLED: Final = "CUSTODY_DISABLED"
AML_DISABLED: Final = "AML_DISABLED"
FIAT_NOT_FOUND: Final = "FIAT_NOT_FOUND"
FIAT_DECIDED: Final = "FIAT_DECIDED"
"""Already approved or rejected (or being approved by someone else)."""
REFERENCE_TAKEN: Final = "REFERENCE_TAKEN"
"""This bank reference is already recorded (pending or credited)."""
SAME_STAFF: Final = "SAME_STAFF"
"""The staff member who recorded a transfer may not approve it (four eyes)."""
NOT_FIAT: Final = "NOT_FIAT"
KYC_FILE_TYPE: Final = "KYC_FILE_TYPE"
KYC_FILE_TOO_LARGE: Final = "KYC_FILE_TOO_LARGE"
KYC_FILE_NOT_FOUND: Final = "KYC_FILE_NOT_FOUND"
KYC_PENDING: Final = "KYC_PENDING"
"""The user already has a submission waiting for review."""
KYC_NOT_FOUND: Final = "KYC_NOT_FOUND"
KYC_DECIDED: Final = "KYC_DECIDED"
"""The submission was already approved or rejected (or is being decided by someone else)."""
MARKET_EXISTS: Final = "MARKET_EXISTS"
ASSET_EXISTS: Final = "ASSET_EXISTS"
UNKNOWN_ASSET: Final = "UNKNOWN_ASSET"
CUSTODY_CLAIM_NOT_HELD: Final = "CUSTODY_CLAIM_NOT_HELD"
"""A cluster gateway that lost its custody claim refuses custody decisions (gateway.custodylock)."""
REFUSAL_STATUS: Final = {
    ROLE_REFUSED: 403,
    UNKNOWN_WITHDRAWAL: 404,
    NOT_AWAITING_APPROVAL: 409,
    ALREADY_DECIDED: 409,
    REASON_REQUIRED: 400,
    UNKNOWN_CASE: 404,
    CASE_CLOSED: 409,
    INVALID_OUTCOME: 400,
    NOTE_REQUIRED: 400,
}
"""Code -> HTTP status of every `ActionRefused`."""


class ActionRefused(BackofficeError, ValueError):
    """A refused staff action (approve, reject, cancel a withdrawal; work an AML case); nothing
    changed. ``code`` is stable and names its HTTP status in `REFUSAL_STATUS`. The functions
    raising it are called alike by the operator API (which answers it as it answers any
    `BackofficeError`), the dialect's cancel route, the CLI and tests."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(REFUSAL_STATUS[code], code, message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def bad_request(message: str) -> BackofficeError:
    return BackofficeError(400, BAD_REQUEST, message)
