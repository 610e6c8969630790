"""The caller's own proof of liabilities, served from what ``kootabase audit liabilities``
wrote into the data directory (``<data_dir>/liabilities/<SEQ>/proofs/<account>.json``).

The gateway only reads files here: the proofs are built offline by the audit command (a replay
to SEQ), and the published roots are what the exchange publishes elsewhere. A user checks the
answer with ``kootabase audit verify-proof`` (or any re-implementation of `ledger.polverify`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from gateway import errors
from gateway.params import get_int

SUBDIR: Final = "liabilities"


def _runs(data_dir: Path) -> list[int]:
    root = data_dir / SUBDIR
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir())


def proof_for(data_dir: Path, account_id: int, params: dict[str, Any]) -> dict[str, Any]:
    """The account's proof document at ``asOf`` (default: the newest run holding it), with the
    published roots of that run beside it. Without ``asOf`` and with nothing published for
    the account the answer is empty (nulls); an ``asOf`` without a proof is refused (-4110)."""
    as_of = get_int(params, "asOf", lo=1)
    runs = _runs(data_dir) if as_of is None else [as_of]
    for seq in reversed(runs):
        run = data_dir / SUBDIR / str(seq)
        path = run / "proofs" / f"{account_id}.json"
        try:
            proof = json.loads(path.read_bytes())
            published = json.loads((run / "liabilities.json").read_bytes())
        except (OSError, ValueError):
            continue
        return {"asOfSeq": seq, "proof": proof, "published": published}
    if as_of is None:  # nothing published yet (or not for this account): an empty answer
        return {"asOfSeq": None, "proof": None, "published": None}
    raise errors.ApiError(
        errors.POL_NO_PROOF,
        f"No proof of liabilities was published for this account at sequence {as_of}.",
    )
