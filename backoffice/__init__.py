"""Back office: end users and their sessions (issue 15, first slice).

Identity data (users, password hashes, TOTP secrets, refresh tokens, login attempts, the mail
outbox) is not trading state: it lives in its own store (`backoffice.store`), SQLite in the data
directory by default and PostgreSQL when a DSN is given. Nothing here writes engine state: a
user's trading account is made by the gateway's journaled ``CreateAccount`` path and API keys by
the gateway's key store (docs/backoffice.md).
"""
