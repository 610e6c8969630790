"""What a data directory must hold before a command that does not create one may use it.

Only ``kootabase serve`` creates a data directory (a new exchange). Every other command reads or
acts on an existing one, so a typo in ``--data-dir`` must be an error, never a fresh, empty
exchange that silently answers "no accounts".
"""

from __future__ import annotations

from pathlib import Path

from engine.usererror import UserError

JOURNAL_DIR = "journal"


def require_existing(data_dir: Path, *, journal: bool = True) -> Path:
    """``data_dir`` if it exists and (with ``journal``) holds a journal; `UserError` otherwise.
    Creates nothing."""
    if not data_dir.exists():
        raise UserError(
            f"data directory {data_dir} does not exist",
            hint="check --data-dir (only `kootabase serve` creates a new exchange)",
        )
    if journal and not (data_dir / JOURNAL_DIR).is_dir():
        raise UserError(
            f"{data_dir} is not a kootabase data directory (it has no {JOURNAL_DIR}/)",
            hint="check --data-dir (only `kootabase serve` creates a new exchange)",
        )
    return data_dir


def require_journal_dir(path: Path) -> Path:
    """``--journal`` must name the journal itself; a data directory given instead would read as
    an empty journal (an empty state that looks like an answer), so it is an error that says
    which path was meant; so is any directory no node ever opened as a journal (``audit
    verify`` reported an empty directory as an intact chain). A path that does not exist is
    refused here too, before the command does anything else (``ledger sync`` migrated its
    database first)."""
    if not path.exists():
        from engine.journal import JournalMissing

        raise JournalMissing(path)
    if next(path.glob("*.seg"), None) is not None:
        return path
    if (path / JOURNAL_DIR).is_dir():
        raise UserError(
            f"{path} is a data directory, not a journal",
            hint=f"pass --journal {path / JOURNAL_DIR}",
        )
    if path.is_dir() and not (path / "LOCK").exists():  # never opened: not an empty journal
        raise UserError(
            f"{path} is not a journal directory (no segment files, never opened by a node)",
            hint="check --journal",
        )
    return path
