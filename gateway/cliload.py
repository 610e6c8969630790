"""How a ``kootabase`` subcommand's implementation is found: imported lazily, when it runs.

The parser only names a module and a function; the module is imported when the subcommand
runs, so ``kootabase --help`` and ``--version`` do not load the engine, numba or aiohttp.
Benchmarks live in the repository's ``bench/`` folder, not in the wheel: they are found from a
checkout; from an installed wheel a clear error says they are not there.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from engine.usererror import UserError

Handler = Callable[[argparse.Namespace], int]

# repo root when running from a checkout (gateway/cliload.py -> repo root)
REPO_ROOT = Path(__file__).resolve().parent.parent


def import_bench(module: str) -> ModuleType:
    """Import a module from the ``bench`` folder, which is not an installed package.

    From a checkout (including an editable install) the repository root is added to
    ``sys.path``; from a wheel there is no ``bench`` and a clear error is raised.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", module):
            raise
    if (REPO_ROOT / "bench" / "__init__.py").is_file():
        root = str(REPO_ROOT)
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name not in ("bench", module):
                raise
    raise UserError(
        f"benchmarks are not available: cannot import {module!r} (they live in the "
        "repository's bench/ folder and are not part of an installed wheel)",
        hint="run them from a checkout (e.g. `make bench`)",
    )


def lazy(module: str, func: str, *, bench: bool = False) -> Handler:
    """Return a handler that imports ``module`` and calls ``module.func(args)`` when run."""

    def handler(args: argparse.Namespace) -> int:
        if bench:
            mod = import_bench(module)
        else:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                raise UserError(
                    f"not available in this build (module {module!r} not found)"
                ) from None
        return int(getattr(mod, func)(args))

    return handler
