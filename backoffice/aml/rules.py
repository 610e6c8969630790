"""AML rules as data: a TOML file of ``[[rule]]`` tables (docs/operations.md, "AML rules").

Rules are data so compliance can tune thresholds without a release, and so the rule set that
produced a case can be named (``id``) and replayed. Amounts are decimal strings in the asset's
units (``"50"`` ETH); they become atoms once the engine's ``AssetCreated`` for the asset has
been seen (the AML engine learns symbols and decimals from the journal, like everything else).

An ordinary mistake in the file is one `UserError` naming the rule and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from engine.usererror import UserError

KINDS: Final = (
    "large_deposit",
    "large_withdrawal",
    "velocity",
    "structuring",
    "deposit_withdraw_no_trade",
    "deny_list",
    "new_address",
)
ACTIONS: Final = ("case", "hold", "freeze")
"""``case``: open a case only; ``hold``: the withdrawal also waits for four eyes (for a
deposit rule this is ``case``); ``freeze``: the account is also frozen (journaled)."""
FLOWS: Final = ("withdrawal", "deposit")
_KEYS: Final = {
    "id",
    "kind",
    "action",
    "asset",
    "amount",
    "count",
    "window_s",
    "margin_pct",
    "flow",
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str
    action: str
    asset: str = ""
    """Asset symbol the rule watches; empty = every asset (count-based rules only)."""
    amount: Decimal = Decimal(0)
    """large_*: at or above; velocity: total in the window; structuring: the threshold."""
    count: int = 0
    """velocity: this many withdrawals in the window; structuring: this many just under."""
    window_s: int = 0
    margin_pct: int = 10
    """structuring: "just under" is within this percentage below ``amount``."""
    flow: str = "withdrawal"
    """structuring: which movements it counts."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    deny_list: frozenset[str]
    """Lower-cased addresses from the deny-list file (one per line, ``#`` comments)."""


def parse_rules(data: dict[str, Any], base_dir: Path) -> RuleSet:
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, entry in enumerate(data.get("rule", []), 1):
        where = f"rule {n}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be a table")
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not rule_id or len(rule_id) > 64:
            raise ValueError(f"{where}: id must be a string of 1-64 characters")
        where = f"rule {rule_id!r}"
        if rule_id in seen:
            raise ValueError(f"{where}: duplicate id")
        seen.add(rule_id)
        unknown = set(entry) - _KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        kind, action = entry.get("kind"), entry.get("action", "case")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if action not in ACTIONS:
            raise ValueError(f"{where}: action must be one of {', '.join(ACTIONS)}")
        flow = entry.get("flow", "withdrawal")
        if flow not in FLOWS:
            raise ValueError(f"{where}: flow must be withdrawal or deposit")
        rule = Rule(
            rule_id,
            kind,
            action,
            asset=_str(entry, "asset", where),
            amount=_amount(entry, where),
            count=_int(entry, "count", where, 0),
            window_s=_int(entry, "window_s", where, 0),
            margin_pct=_int(entry, "margin_pct", where, 10),
            flow=flow,
        )
        _check(rule, where)
        rules.append(rule)
    deny: frozenset[str] = frozenset()
    if "deny_list" in data:
        path = base_dir / str(data["deny_list"])
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ValueError(f"deny_list {path}: {exc.strerror or exc}") from None
        deny = frozenset(s.lower() for s in (line.split("#", 1)[0].strip() for line in lines) if s)
    elif any(r.kind == "deny_list" for r in rules):
        raise ValueError("a deny_list rule needs deny_list = FILE at the top of the file")
    return RuleSet(tuple(rules), deny)


def load_rules(path: Path) -> RuleSet:
    """Read and check an AML rules file; an ordinary mistake is one `UserError`."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(f"AML rules {path} do not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"AML rules {path} are not valid TOML: {exc}") from None
    try:
        return parse_rules(data, path.parent)
    except ValueError as exc:
        raise UserError(f"AML rules {path}: {exc}") from None


def _check(rule: Rule, where: str) -> None:
    needs_asset = rule.kind in ("large_deposit", "large_withdrawal", "structuring")
    if needs_asset and not (rule.asset and rule.amount > 0):
        raise ValueError(f"{where}: {rule.kind} needs asset and a positive amount")
    if rule.kind == "velocity":
        if rule.window_s <= 0 or (rule.count <= 0 and rule.amount <= 0):
            raise ValueError(f"{where}: velocity needs window_s and count or amount")
        if rule.amount > 0 and not rule.asset:
            raise ValueError(f"{where}: a velocity amount needs its asset")
    if rule.kind == "structuring" and (rule.count < 2 or rule.window_s <= 0):
        raise ValueError(f"{where}: structuring needs count >= 2 and window_s")
    if rule.kind == "structuring" and not 1 <= rule.margin_pct <= 50:
        raise ValueError(f"{where}: margin_pct must be 1-50")
    if rule.kind == "deposit_withdraw_no_trade" and rule.window_s <= 0:
        raise ValueError(f"{where}: deposit_withdraw_no_trade needs window_s")


def _str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string")
    return value.upper() if key == "asset" else value


def _int(entry: dict[str, Any], key: str, where: str, default: int) -> int:
    value = entry.get(key, default)
    if type(value) is not int or value < 0:
        raise ValueError(f"{where}: {key} must be a non-negative integer")
    return value


def _amount(entry: dict[str, Any], where: str) -> Decimal:
    raw = entry.get("amount", "0")
    if not isinstance(raw, str):
        raise ValueError(f'{where}: amount must be a decimal string ("50", "0.5")')
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{where}: amount {raw!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{where}: amount must be a non-negative number")
    return value
