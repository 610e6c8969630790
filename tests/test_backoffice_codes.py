"""Every code the back office answers with is in `backoffice.errors`, the one list of them.

Why: codes defined in single modules (KYC files, fiat, operations money) were missing from the
list the fuzz tests check answers against, so a fuzz run that happened to reach an upload route
failed on a correct answer. This scan finds such a code without waiting for hypothesis to.
"""

from __future__ import annotations

import ast
from pathlib import Path

from backoffice import errors

ROOT = Path(__file__).resolve().parent.parent


def _codes_raised() -> dict[str, str]:
    """Name -> file of every constant passed as the code of a ``BackofficeError(status, CODE,
    ...)`` or ``ActionRefused(CODE, ...)`` in the back office and the gateway."""
    found: dict[str, str] = {}
    for path in [*(ROOT / "backoffice").rglob("*.py"), *(ROOT / "gateway").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else None
            callee = node.func.id if isinstance(node.func, ast.Name) else callee
            position = {"BackofficeError": 1, "ActionRefused": 0}.get(callee or "")
            if position is None or len(node.args) <= position:
                continue
            arg = node.args[position]
            name = arg.attr if isinstance(arg, ast.Attribute) else getattr(arg, "id", None)
            if name is not None and name.isupper():
                found[name] = str(path.relative_to(ROOT))
    return found


def test_every_raised_code_is_in_the_registry() -> None:
    raised = _codes_raised()
    assert len(raised) >= 20, raised  # the scan sees the back office's refusals
    missing = {n: f for n, f in raised.items() if getattr(errors, n, None) != n}
    assert not missing, f"codes raised but not defined in backoffice/errors.py: {missing}"
