"""`UserError`: an ordinary mistake or condition the person running a command can act on.

Raised where the cause is known (the journal's lock, the PostgreSQL connection, a config file),
so the message can be specific: what is wrong and what to do. The ``kootabase`` command line
catches it at the top and prints one line on stderr with a non-zero exit, never a traceback; a
traceback is kept for what is not an ordinary mistake (a bug). It lives in ``engine`` because
every room raises it and ``engine`` is the one room everyone may import.
"""

from __future__ import annotations

from typing import Final

EXIT_USER_ERROR: Final = 1
MAX_MESSAGE_CHARS: Final = 1_000
"""Bound of the printed line: a message quoting a huge input must not flood a terminal."""


class UserError(Exception):
    """What went wrong and, in ``hint``, what to do about it (a flag to pass, a command to run).

    ``exit_code`` is what the command line exits with (1 unless a command documents another).
    """

    def __init__(
        self, message: str, *, hint: str | None = None, exit_code: int = EXIT_USER_ERROR
    ) -> None:
        assert message, "a UserError says what is wrong"
        assert 0 < exit_code < 256, exit_code
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def line(self) -> str:
        """The message and the hint on one line (newlines folded, length bounded)."""
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        text = " ".join(text.split())
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 3] + "..."
        return text

    def __str__(self) -> str:
        return self.line()
