"""Every source path, Python name and ``kootabase`` command line the docs mention exists: a
module renamed or split, or a flag renamed, leaves docs/architecture.md (and the others)
pointing a newcomer at nothing.

Checked in README.md and docs/*.md: paths like ``gateway/server.py`` or ``engine/core/`` that
start at one of the repository's top-level folders, and backticked dotted names like
``gateway.bridge.Bridge.submit_cb`` (the module must exist and define the next name somewhere
in it). Read by parsing, nothing is imported. Data-directory files (``gateway/keys.json``) and
the operator API's permission names (``custody.alerts.view``) are not source and are skipped.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
from pathlib import Path

from backoffice.roles import ACTIONS

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = "engine|ledger|gateway|marketdata|custody|backoffice|bench|tests|scripts|web|docs"
SOURCE_PATH = re.compile(
    rf"(?<![\w/.-])((?:{TOP})/(?:[\w.-]+/)*(?:[\w-]+\.(?:py|ts|sh|toml|md|html|txt|png))?)"
    r"(?![\w/-])"
)
DOTTED = re.compile(rf"`((?:{TOP.replace('|web|docs', '')})\.[A-Za-z_][\w.]*)`?")
DATA_DIR_ENTRIES = {"gateway/readmodel/"}
"""Folders of a data directory named like source folders (docs/operations.md's table)."""
NOT_PYTHON = {"md", "py", "ts", "toml", "json", "html", "png", "sqlite", "sqlite3", "log"}


def _mentions(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return [
        (f"{page.name}:{n}", match)
        for page in PAGES
        for n, line in enumerate(page.read_text().splitlines(), 1)
        for match in pattern.findall(line)
    ]


@functools.cache
def _defined(module: Path) -> frozenset[str]:
    """Every name a module defines at any depth (functions, classes, assignments, imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def _module(parts: list[str]) -> tuple[Path, list[str]] | None:
    """The longest prefix of ``parts`` that is a module file, and the names after it."""
    for i in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:i])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, parts[i:]
    return None


def test_source_paths_in_docs_exist() -> None:
    missing = [
        f"{where}: {path}"
        for where, path in _mentions(SOURCE_PATH)
        if not (ROOT / path).exists() and path not in DATA_DIR_ENTRIES
    ]
    # web/dist is built (scripts/build-web.sh), not committed
    missing = [m for m in missing if "web/dist" not in m]
    assert not missing, missing


def test_python_names_in_docs_exist() -> None:
    wrong = []
    for where, dotted in _mentions(DOTTED):
        dotted = dotted.rstrip(".")
        parts = dotted.split(".")
        if dotted in ACTIONS or parts[-1] in NOT_PYTHON:
            continue
        found = _module(parts)
        if found is None:
            wrong.append(f"{where}: {dotted} (no such module)")
        elif found[1] and found[1][0] not in _defined(found[0]):
            wrong.append(f"{where}: {dotted} ({found[1][0]} not in {found[0].relative_to(ROOT)})")
        elif len(found[1]) > 1 and found[1][1] not in _defined(found[0]):
            wrong.append(f"{where}: {dotted} ({found[1][1]} not in {found[0].relative_to(ROOT)})")
    assert not wrong, wrong


def test_top_level_help_examples_parse() -> None:
    """The examples `kootabase --help` prints are real command lines of today's parser."""
    from gateway.cli import build_parser

    parser = build_parser()
    assert parser.epilog is not None
    examples = [
        line.split("#")[0].split()[1:]
        for line in parser.epilog.splitlines()
        if line.startswith("  kootabase ") and "COMMAND" not in line
    ]
    assert len(examples) >= 3, parser.epilog
    for argv in examples:
        parser.parse_args(argv)  # SystemExit(2) on a flag that no longer exists


def _code_blocks(page: Path) -> list[str]:
    """The fenced code blocks of a Markdown page, continuation lines joined."""
    blocks: list[str] = []
    inside: list[str] | None = None
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            if inside is None:
                inside = []
            else:
                blocks.append("\n".join(inside).replace("\\\n", " "))
                inside = None
        elif inside is not None:
            inside.append(line)
    return blocks


def _doc_argv(command: str) -> list[str]:
    """A documented command line as argv: optional ``[...]`` groups dropped, ``a|b``
    alternatives read as the first, ``...`` dropped, UPPER-CASE placeholders (ID, SEQ, DSN) 1."""
    while re.search(r"\[[^\[\]]*\]", command):
        command = re.sub(r"\[[^\[\]]*\]", "", command)
    argv = []
    for token in shlex.split(command)[1:]:
        if re.fullmatch(r"[a-z-]+(\|[a-z-]+)+", token):
            token = token.split("|")[0]
        if re.fullmatch(r"[A-Z][A-Z_]*", token):
            token = "1"
        if token != "...":
            argv.append(token)
    return argv


def test_cli_commands_in_docs_parse() -> None:
    """Every ``kootabase ...`` line in a code block of README.md and docs/*.md is a command
    today's parser accepts (a renamed flag or subcommand fails here, not for a reader)."""
    from gateway.cli import build_parser

    parser = build_parser()
    commands = [
        (page.name, match.group(1))
        for page in PAGES
        for block in _code_blocks(page)
        for line in block.splitlines()
        if (match := re.search(r"(?:^|\| )(kootabase \S.*)$", line.split(" #")[0].strip()))
    ]
    assert len(commands) >= 20, commands
    refused = []
    for where, command in commands:
        try:
            parser.parse_args(_doc_argv(command))
        except SystemExit:
            refused.append(f"{where}: {command}")
    assert not refused, refused
