"""AML rules files: the documented sample loads, and each ordinary mistake is one clear error
naming the rule and the key (no traceback, nothing started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backoffice.aml.rules import KINDS, load_rules
from engine.usererror import UserError

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_sample_loads_and_uses_every_kind() -> None:
    rules = load_rules(DOCS / "aml.example.toml")
    assert {r.kind for r in rules.rules} == set(KINDS)
    assert "0x0000000000000000000000000000000000000bad" not in rules.deny_list  # a comment
    assert len({r.id for r in rules.rules}) == len(rules.rules)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rule]]\nid = 'a'\nkind = 'nope'", "kind must be one of"),
        ("[[rule]]\nid = 'a'\nkind = 'new_address'\naction = 'ban'", "action must be"),
        ("[[rule]]\nid = 'a'\nkind = 'large_deposit'\nasset = 'ETH'", "positive amount"),
        ("[[rule]]\nid = 'a'\nkind = 'large_deposit'\nasset = 'ETH'\namount = 5", "decimal"),
        ("[[rule]]\nid = 'a'\nkind = 'large_deposit'\nasset = 'ETH'\namount = 'x'", "decimal"),
        ("[[rule]]\nid = 'a'\nkind = 'velocity'\ncount = 3", "window_s"),
        ("[[rule]]\nid = 'a'\nkind = 'new_address'\nwindw_s = 3", "unknown key(s) windw_s"),
        ("[[rule]]\nid = 'a'\nkind = 'deny_list'", "needs deny_list"),
        ("deny_list = 'missing.txt'", "missing.txt"),
        (
            "[[rule]]\nid = 'a'\nkind = 'new_address'\n[[rule]]\nid = 'a'\nkind = 'deny_list'",
            "duplicate id",
        ),
        (
            "[[rule]]\nid = 'a'\nkind = 'structuring'\nasset = 'ETH'\namount = '1'\ncount = 1"
            "\nwindow_s = 5",
            "count >= 2",
        ),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "aml.toml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_rules(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_serve_refuses_bad_rules_before_anything_starts(tmp_path: Path) -> None:
    """``kootabase serve --aml-rules`` with a mistake: one line, exit 1, no data dir made."""
    import subprocess
    import sys

    rules = tmp_path / "aml.toml"
    rules.write_text("[[rule]]\nid = 'a'\nkind = 'velocity'\n")
    data_dir = tmp_path / "d"
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(data_dir), "--port",
         "0", "--aml-rules", str(rules)],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 1, proc
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("{")]
    assert errors == [f"kootabase serve: AML rules {rules}: rule 'a': velocity needs window_s "
                      "and count or amount"], proc.stderr  # fmt: skip
    assert "Traceback" not in proc.stderr and not data_dir.exists()
