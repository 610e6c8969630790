"""Where bitcoinlib keeps its files: a private temporary directory of this process, not
``~/.bitcoinlib``.

Why: importing bitcoinlib (`bitcoinlib.config.config`) reads ``BCL_DATA_DIR`` (default
``~/.bitcoinlib``) and, at import, creates it with a ``database/`` directory, an
``install.log``, copies of its ``networks.json``/``providers*.json``/``config.ini``, and opens
``bitcoinlib.log`` there. So every custody command, even a read-only one, wrote into the
operator's home directory (or failed where $HOME is read-only). Custody uses bitcoinlib only for
keys, addresses and transactions, never its wallets or database, so nothing there needs to
outlive the process.

`isolate` runs before the first bitcoinlib import (`custody/__init__.py`): unless the operator
set ``BCL_DATA_DIR`` explicitly, it points it at a new ``mkdtemp`` directory (mode 0700, an
unpredictable name: another user cannot pre-seed the ``networks.json`` that defines address
prefixes), pre-writes a ``config.ini`` that turns bitcoinlib's file logging off, and removes
the directory when the process exits. A child process inherits the variables; it makes its own
directory too (``KOOTABASE_BCL_TMP`` marks the parent's), since the parent removes its own at
exit, possibly while the child still runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Final

ENV: Final = "BCL_DATA_DIR"
OURS: Final = "KOOTABASE_BCL_TMP"
"""Set with ``BCL_DATA_DIR`` when `isolate` chose it: inherited, it is not the operator's."""
CONFIG_INI: Final = "[logs]\nenable_bitcoinlib_logging = False\n"
_made: Path | None = None


def isolate() -> Path | None:
    """Point bitcoinlib at a private temporary directory (see the module docstring); the
    directory, or None when ``BCL_DATA_DIR`` was already set (by the operator, or by an earlier
    call in this process)."""
    global _made
    chosen = os.environ.get(ENV)
    if _made is not None or (chosen and chosen != os.environ.get(OURS)):
        return None
    path = Path(tempfile.mkdtemp(prefix="kootabase-bitcoinlib-"))
    (path / "config.ini").write_text(CONFIG_INI)
    os.environ[ENV] = os.environ[OURS] = str(path)
    _made = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
