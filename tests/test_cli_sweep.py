"""Every ``kootabase`` subcommand, found by walking the argparse tree (a new one is covered the
day it is added), given the three ordinary usage mistakes:

(a) an option it does not know, (b) an option without its value (and a required option left
out), (c) a value of the wrong type where the parser expects a number or a choice.

Each must exit 2 with one line on stderr that names the subcommand and the problem and points at
the subcommand's own ``--help``, without a traceback, and create nothing: the command runs with
the working directory, ``--data-dir``-style paths and ``$XDG_CONFIG_HOME`` (the default master
key's home) all inside an empty temp dir that must stay empty. In-process through
`gateway.cli.main`, so hundreds of cases take about a second.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import build_parser, main

BOGUS = "--bogus-option"
NOT_A_NUMBER = "x1!"


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaves(child, (*path, name))


LEAVES = dict(_leaves(build_parser()))


def _value_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.nargs is None and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    ]


def _good_value(action: argparse.Action, tmp: Path) -> str:
    """A value the parser accepts (the handler never runs: each case fails at parsing)."""
    if action.choices is not None:
        return str(next(iter(action.choices)))
    if action.type is Path:
        return str(tmp / "missing")
    if callable(action.type):
        return "1"
    return "nats://127.0.0.1:1" if action.dest == "nats" else "x"


def _required(parser: argparse.ArgumentParser, tmp: Path) -> list[str]:
    """The required options and positionals with accepted values."""
    argv: list[str] = []
    for action in _value_actions(parser):
        if not action.required:
            continue
        value = _good_value(action, tmp)
        argv += [action.option_strings[0], value] if action.option_strings else [value]
    return argv


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a usage mistake (exit 2); nothing on stdout."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2, (argv, out, err)
    assert "Traceback" not in out + err, err
    lines = err.splitlines()
    assert len(lines) == 1, (argv, err)
    assert not out, (argv, out)
    return lines[0]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory and config home that must stay empty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield tmp_path
    assert list(tmp_path.iterdir()) == [], "a usage mistake created files"


def _wrong_typed(action: argparse.Action) -> bool:
    """Whether the parser checks this option's value (a number type or a fixed choice)."""
    if action.choices is not None:
        return True
    if not callable(action.type) or action.type is Path:
        return False
    try:
        action.type(NOT_A_NUMBER)
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("path", list(LEAVES), ids=" ".join)
def test_every_usage_mistake_is_one_line_naming_the_subcommand(
    path: tuple[str, ...], sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = LEAVES[path]
    prog = "kootabase " + " ".join(path)
    see = f"(see `{prog} --help`)"
    required = _required(parser, sandbox)

    line = _run([*path, *required, BOGUS, "1"], capsys)  # (a)
    assert line == f"{prog}: unrecognized arguments: {BOGUS} 1 {see}"

    for action in _value_actions(parser):
        if not action.option_strings:
            continue
        flag = action.option_strings[0]
        others = [a for a in required if a != flag]  # (b): the flag last, without its value
        if flag in required:
            at = required.index(flag)
            others = required[:at] + required[at + 2 :]
        line = _run([*path, *others, flag], capsys)
        assert (
            line
            == f"{prog}: argument {'/'.join(action.option_strings)}: expected one argument {see}"
        )
        if _wrong_typed(action):  # (c)
            line = _run([*path, *others, flag, NOT_A_NUMBER], capsys)
            assert line.startswith(f"{prog}: argument {'/'.join(action.option_strings)}: "), line
            assert NOT_A_NUMBER in line and line.endswith(see), line

    for action in _value_actions(parser):
        if action.required:  # (b): a required option or positional left out
            left = [a for a in required if a != _good_value(action, sandbox)]
            if action.option_strings:
                at = required.index(action.option_strings[0])
                left = required[:at] + required[at + 2 :]
            line = _run([*path, *left], capsys)
            assert "the following arguments are required" in line and line.endswith(see), line


def _read_only(data: Path) -> list[list[str]]:
    """Commands that only read, each pointed at ``data``: an existing, empty directory."""
    d, j = ["--data-dir", str(data)], ["--journal", str(data)]
    return [
        ["staff", "list", *d],
        ["accounts", "list", *d],
        ["accounts", "keys", "list", *d],
        ["custody", "reconcile", *d],
        ["custody", "alerts", "list", *d],
        ["ledger", "balances", *j],
        ["ledger", "trial-balance", *j],
        ["ledger", "statement", *j, "--account", "1"],
        ["audit", "verify", *j],
        ["audit", "anchor", *j],
        ["audit", "liabilities", *j, "--as-of", "1"],
        ["replay", *j],
    ]


def test_read_only_commands_on_an_empty_directory_say_so_and_create_nothing(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`staff list` answered ``[]`` and left an identity store, a JWT key and a master key
    behind; `audit verify` called an empty directory an intact chain and `replay` replayed it
    as an empty journal. Each now exits 1 with one line saying there is nothing there."""
    data = sandbox / "data"
    data.mkdir()
    for argv in _read_only(data):
        assert main(argv) == 1, argv
        out, err = capsys.readouterr()
        assert not out and "Traceback" not in err, (argv, out, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"kootabase {argv[0]}"), (argv, err)
        assert str(data) in lines[0], lines[0]
        assert list(data.iterdir()) == [], (argv, list(data.rglob("*")))
    data.rmdir()


def test_staff_list_on_an_unused_database_creates_no_tables(
    sandbox: Path, capsys: pytest.CaptureFixture[str], empty_db: str
) -> None:
    """With --backoffice-dsn, `staff list` migrated the database (every back-office table)
    to answer ``[]``; it says there is no identity store there instead, and lists once the
    back office has made its tables."""
    import asyncio

    import asyncpg

    from backoffice.store import open_store

    async def tables() -> int:
        conn = await asyncpg.connect(empty_db)
        try:
            query = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            return int(await conn.fetchval(query))
        finally:
            await conn.close()

    argv = ["staff", "list", "--data-dir", str(sandbox), "--backoffice-dsn", empty_db]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("kootabase staff list: no back-office identity store at postgresql")
    assert asyncio.run(tables()) == 0

    async def made_by_the_back_office() -> None:
        await (await open_store(sandbox, empty_db)).close()

    asyncio.run(made_by_the_back_office())
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "[]"
