"""The identity store's tables: one definition, run unchanged on SQLite and PostgreSQL.

Only types both engines read the same way are used (TEXT, BIGINT, INTEGER), ids are random
text chosen by the application (no SERIAL/AUTOINCREMENT difference), and times are integer
milliseconds since the epoch. Secrets that a thief could replay (refresh tokens, reset tokens)
are stored only as SHA-256 digests; passwords only as argon2id hashes.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1

TABLES: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS bo_users (
        user_id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        account_id BIGINT,
        totp_secret TEXT,
        totp_pending TEXT,
        totp_last_step BIGINT NOT NULL DEFAULT 0,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until_ms BIGINT NOT NULL DEFAULT 0,
        created_ms BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS bo_refresh_tokens (
        token_sha256 TEXT PRIMARY KEY,
        family_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        issued_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        rotated_ms BIGINT,
        revoked_ms BIGINT
    )""",
    "CREATE INDEX IF NOT EXISTS bo_refresh_family ON bo_refresh_tokens (family_id)",
    "CREATE INDEX IF NOT EXISTS bo_refresh_user ON bo_refresh_tokens (user_id)",
    """CREATE TABLE IF NOT EXISTS bo_login_attempts (
        attempt_id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        ip TEXT NOT NULL,
        outcome TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS bo_login_attempts_email ON bo_login_attempts (email, at_ms)",
    """CREATE TABLE IF NOT EXISTS bo_reset_tokens (
        token_sha256 TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_ms BIGINT NOT NULL,
        used_ms BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS bo_outbox (
        message_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        sent_ms BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS bo_api_keys (
        api_key TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        ip_allow TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS bo_api_keys_user ON bo_api_keys (user_id)",
    # A key bound to one login session (`backoffice.sessionkeys`): revoked when it ends.
    """CREATE TABLE IF NOT EXISTS bo_session_keys (
        api_key TEXT PRIMARY KEY,
        family_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS bo_session_keys_family ON bo_session_keys (family_id)",
    """CREATE TABLE IF NOT EXISTS bo_aml_cases (
        case_id TEXT PRIMARY KEY,
        rule_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        account_id BIGINT NOT NULL,
        withdrawal_id BIGINT NOT NULL,
        asset_id BIGINT NOT NULL,
        amount_atoms BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        opened_ns BIGINT NOT NULL,
        detail TEXT NOT NULL,
        status TEXT NOT NULL,
        assignee TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT '',
        action_done INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS bo_aml_cases_status ON bo_aml_cases (status, seq)",
    # One case per (rule, triggering sequence), whichever gateway writes it first: the case
    # id already says so; the index states it in the table (cluster mode: many writers).
    "CREATE UNIQUE INDEX IF NOT EXISTS bo_aml_cases_rule_seq ON bo_aml_cases (rule_id, seq)",
    """CREATE TABLE IF NOT EXISTS bo_aml_notes (
        note_id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL,
        staff_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        at_ns BIGINT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS bo_aml_notes_case ON bo_aml_notes (case_id, at_ns)",
    """CREATE TABLE IF NOT EXISTS bo_staff (
        staff_id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        status TEXT NOT NULL,
        totp_secret TEXT,
        totp_last_step BIGINT NOT NULL DEFAULT 0,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until_ms BIGINT NOT NULL DEFAULT 0,
        created_ms BIGINT NOT NULL,
        created_by TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS bo_staff_sessions (
        session_id TEXT PRIMARY KEY,
        staff_id TEXT NOT NULL,
        issued_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        revoked_ms BIGINT
    )""",
    "CREATE INDEX IF NOT EXISTS bo_staff_sessions_staff ON bo_staff_sessions (staff_id)",
    # KYC submissions (backoffice/kyc.py); documents are a JSON list, read and written whole
    """CREATE TABLE IF NOT EXISTS bo_kyc_submissions (
        submission_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        account_id BIGINT NOT NULL,
        requested_tier INTEGER NOT NULL,
        documents TEXT NOT NULL,
        status TEXT NOT NULL,
        submitted_ms BIGINT NOT NULL,
        decided_ms BIGINT NOT NULL DEFAULT 0,
        staff_id TEXT NOT NULL DEFAULT '',
        tier INTEGER NOT NULL DEFAULT -1,
        reason TEXT NOT NULL DEFAULT '',
        seq BIGINT NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS bo_kyc_status ON bo_kyc_submissions (status, submitted_ms)",
    "CREATE INDEX IF NOT EXISTS bo_kyc_user ON bo_kyc_submissions (user_id, submitted_ms)",
    "CREATE UNIQUE INDEX IF NOT EXISTS bo_kyc_one_open ON bo_kyc_submissions (user_id) "
    "WHERE status IN ('pending', 'approving')",
    # KYC document files (backoffice/kycfiles.py): who uploaded which digest; bytes in the data dir
    """CREATE TABLE IF NOT EXISTS bo_kyc_files (
        user_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        uploaded_ms BIGINT NOT NULL,
        PRIMARY KEY (user_id, sha256)
    )""",
    # Fiat deposits recorded by finance (backoffice/fiat.py); journaled only once approved
    """CREATE TABLE IF NOT EXISTS bo_fiat_deposits (
        deposit_id TEXT PRIMARY KEY,
        account_id BIGINT NOT NULL,
        asset_id BIGINT NOT NULL,
        amount_atoms BIGINT NOT NULL,
        bank_reference TEXT NOT NULL,
        status TEXT NOT NULL,
        recorded_by TEXT NOT NULL,
        recorded_ms BIGINT NOT NULL,
        decided_by TEXT NOT NULL DEFAULT '',
        decided_ms BIGINT NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        seq BIGINT NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS bo_fiat_status ON bo_fiat_deposits (status, recorded_ms)",
    "CREATE UNIQUE INDEX IF NOT EXISTS bo_fiat_reference ON bo_fiat_deposits (bank_reference) "
    "WHERE status <> 'rejected'",
)
