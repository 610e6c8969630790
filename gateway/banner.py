"""What ``kootabase serve`` prints on stdout once it listens: where to go next.

The log lines on stderr are JSON for machines; a person who just ran ``make run`` needs the
addresses to open, how to stop the server and where to read on, in plain text. The demo
account's key and secret come first when ``--demo`` just created them (shown once: the
secret is stored encrypted). Nothing here names the secret on a later start.
"""

from __future__ import annotations

from pathlib import Path

from gateway.keys import NewKey


def demo_account(creds: NewKey) -> str:
    """The demo account's one-time lines (``--demo`` on a data directory without keys)."""
    return (
        "\nDemo account created with demo money (not backed by any chain; read and trade only;\n"
        "shown once, the secret is stored encrypted):\n"
        f"  account id   : {creds.account_id}\n"
        f"  API key      : {creds.api_key}\n"
        f"  secret       : {creds.secret}\n"
    )


def serving(http: str, ws_api: str, admin_token: Path) -> str:
    """The addresses of a started server and the next steps, printed at every start."""
    return (
        "\nKootabase is serving (Ctrl-C stops it; a restart resumes from the data directory):\n"
        f"  trading page : {http}/\n"
        f"  console      : {http}/console (log in with the token in {admin_token})\n"
        f"  REST         : {http}/api/v3\n"
        f"  WS API       : {ws_api}\n"
        "  next         : README.md#quickstart (signed orders with curl), docs/api.md\n\n"
    )
