"""The ``kootabase`` argument parser's building blocks: value types with one-line errors, a
parser whose usage errors are one line, and the global options accepted before or after the
subcommand (``kootabase serve --log-level debug`` = ``kootabase --log-level debug serve``).
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


MAX_PORT = 65_535


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: the system picks one). Without the bound the socket layer wraps
    the number silently (99999 binds 34463), so a typo would serve on an unexpected port."""
    value = non_negative_int(text)
    if value > MAX_PORT:
        raise argparse.ArgumentTypeError(f"not a TCP port (0-{MAX_PORT}): {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def positive_float(limit: float) -> Callable[[str], float]:
    """An argparse type: a number > 0 and at most ``limit`` (seconds, milliseconds)."""
    return _bounded_float(limit, zero=False)


def non_negative_float(limit: float) -> Callable[[str], float]:
    """An argparse type: a number >= 0 and at most ``limit``."""
    return _bounded_float(limit, zero=True)


def _bounded_float(limit: float, *, zero: bool) -> Callable[[str], float]:
    low = ">=" if zero else ">"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        above = value >= 0 if zero else value > 0
        if not above or not value <= limit:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {low} 0 and <= {limit:g}: {text}")
        return value

    return parse


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit 2) instead of the usage block: the mistake
    and where to read more, like every other error of the command line."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")

    def parse_known_args(  # type: ignore[override]
        self, args: typing.Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """A subcommand refuses what it does not know itself. argparse hands a subcommand's
        leftovers up to the top parser, whose error named ``kootabase`` and pointed at the
        top-level help (``kootabase serve --bogus``: "see `kootabase --help`"), not at the
        subcommand's options where the user has to look."""
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and " " in self.prog:  # a subcommand: prog is "kootabase serve"
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def add_log_level(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--log-level`` on the top parser (with the default) and on every subcommand (without
    one, so that ``kootabase serve --log-level debug`` and ``kootabase --log-level debug serve``
    mean the same and a subcommand never resets a level given before it)."""
    parser.add_argument(
        "--log-level",
        default=None if top else argparse.SUPPRESS,
        choices=LOG_LEVELS,
        help="minimum level of log events written to stderr (default: info for the services "
        "`serve` and `ledger sync`, warning for one-shot commands, whose output is the answer)",
    )


def default_log_level(args: argparse.Namespace) -> str:
    """Services narrate at info; a one-shot command says nothing unless something is wrong."""
    if args.command == "serve" or getattr(args, "ledger_command", None) == "sync":
        return "info"
    return "warning"


def add_globals_to_subcommands(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_log_level(child, top=False)
                add_globals_to_subcommands(child)
