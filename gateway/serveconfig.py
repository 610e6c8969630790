"""``kootabase serve --config FILE``: a TOML file with a key for every flag.

The keys are derived from the argparse definitions themselves, so the file and the command line
cannot drift apart: every long option of ``serve`` (and the global ``--log-level``) is a key of
the same name without the dashes in front (``--data-dir`` is ``data-dir``, ``--no-fsync`` is
``no-fsync = true``). Values are checked by the flag's own argparse type and choices. Precedence:
built-in defaults < the file < the command line.

The effective configuration (every key, wherever its value came from) is logged at start with
secrets redacted (`engine.redact`).
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
from pathlib import Path
from typing import Any, Final

from engine.redact import redact_setting
from engine.usererror import UserError

CONFIG_FLAG: Final = "--config"
GLOBAL_KEYS: Final = ("log-level",)
"""Top-level options that are also keys of the serve config file."""


def subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise AssertionError(f"no subcommand {name!r}")


def config_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Config key -> argparse action, for every long option of the ``serve`` subparser and the
    global options (help and ``--config`` itself excluded)."""
    serve = subparser(parser, "serve")
    keys: dict[str, argparse.Action] = {}
    for owner, only in ((parser, GLOBAL_KEYS), (serve, None)):
        for action in owner._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            if not longs or isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            key = longs[0][2:]
            if key == CONFIG_FLAG[2:] or (only is not None and key not in only):
                continue
            keys.setdefault(key, action)
    return keys


def _convert(path: Path, key: str, action: argparse.Action, value: object) -> object:
    """A TOML value checked and converted the way argparse treats the flag's text."""
    where = f"config {path}: {key}"
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, not {value!r}")
        return value if action.const is True else not value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UserError(f"{where} must be a string or a number, not {value!r}")
    text = str(value)
    try:
        converted = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise UserError(f"{where} must be one of {choices}, not {value!r}")
    return converted


def load(parser: argparse.ArgumentParser, path: Path) -> dict[str, object]:
    """Read ``path`` into ``{dest: value}``; unknown keys and bad values are `UserError`."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist", hint="check --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    actions = config_actions(parser)
    values: dict[str, object] = {}
    for key, value in data.items():
        action = actions.get(key)
        if action is None:
            close = difflib.get_close_matches(key, list(actions), n=1)
            raise UserError(
                f"config {path}: unknown key {key!r}",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"known keys: {', '.join(sorted(actions))}",
            )
        values[action.dest] = _convert(path, key, action, value)
    return values


def parse_with_config(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """Parse ``argv``; for ``serve --config FILE`` parse again with the file's values as the
    defaults, so that flags on the command line still win."""
    args = parser.parse_args(argv)
    path = getattr(args, "config", None)
    if args.command != "serve" or path is None:
        return args
    values = load(parser, Path(path))
    serve = subparser(parser, "serve")
    for dest, value in values.items():
        # global options keep their default on the top parser: a subparser default would
        # overwrite a value given before the subcommand
        target = parser if dest in {a.dest for a in parser._actions} else serve
        target.set_defaults(**{dest: value})
    return parser.parse_args(argv)


def effective(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Every config key with the value in force, secrets redacted (for the start-up log)."""
    out: dict[str, Any] = {}
    for key, action in config_actions(parser).items():
        value = getattr(args, action.dest, None)
        if isinstance(value, Path):
            value = str(value)
        out[key] = redact_setting(key, value)
    return out
