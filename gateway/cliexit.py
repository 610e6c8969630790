"""How a ``kootabase`` command ends: an exit code, and one line on stderr for an ordinary mistake.

`run_command` is the single top-level error handler of the command line:

- a `UserError` (raised where the cause is known: a locked journal, a missing database, a bad
  flag value) prints ``kootabase <command>: <what is wrong>; <what to do>`` and exits with its
  code (1 unless documented otherwise), without a traceback;
- a closed stdout (``kootabase ledger balances ... | head``) ends quietly with 141, the status of
  a process killed by SIGPIPE, like every Unix filter;
- Ctrl-C ends quietly with 130;
- an `OSError` about a named file (a data directory that is a file, a path without permission,
  a full or read-only disk) is the environment, not a bug: one line naming the path and the
  system's reason, exit 1 (``--log-level debug`` keeps the traceback);
- anything else is a bug and keeps its traceback (that is what a bug report needs).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Final

from engine.usererror import UserError

EXIT_BROKEN_PIPE: Final = 141
EXIT_INTERRUPTED: Final = 130


def command_name(args: argparse.Namespace) -> str:
    """``kootabase ledger statement`` style prefix of the one error line."""
    words = ["kootabase"]
    command = getattr(args, "command", None)
    if command:
        words.append(command)
        sub = getattr(args, f"{command}_command", None)
        if isinstance(sub, str):
            words.append(sub)
    return " ".join(words)


def _user_error(exc: BaseException) -> UserError | None:
    """The `UserError` behind ``exc``: itself, or the only one inside an exception group."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _user_error(exc.exceptions[0])
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def fail(prefix: str, exc: UserError) -> int:
    """Print the one line and return the exit code."""
    sys.stderr.write(f"{prefix}: {exc.line()}\n")
    sys.stderr.flush()
    return exc.exit_code


def run_command(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand's handler under the rules above; return the process exit code."""
    try:
        code = int(handler(args))
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as exc:
        user = _user_error(exc) or _file_error(exc, args)
        if user is None:
            raise
        return fail(command_name(args), user)


def _file_error(exc: BaseException, args: argparse.Namespace) -> UserError | None:
    """The one line for an `OSError` on a named path (see the module docstring)."""
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _file_error(exc.exceptions[0], args)
    if not isinstance(exc, OSError) or exc.filename is None:
        return None
    if getattr(args, "log_level", None) == "debug":
        return None
    reason = exc.strerror or type(exc).__name__
    return UserError(
        f"{exc.filename}: {reason}",
        hint="check the path (--data-dir, --journal, ...) and its permissions",
    )
