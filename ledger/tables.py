"""Report output: a table for a person at a terminal, CSV or JSON for everything else.

The default follows stdout: a rich table on a TTY, CSV otherwise (a pipe, a file, cron), so a
script never parses box-drawing characters. ``--format`` chooses explicitly. A table is never
narrowed to the terminal: an amount cut to ``12345…`` is a wrong amount, so a wide table is
printed at its natural width and the terminal wraps it.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Final

FORMATS: Final = ("table", "csv", "json")
LEFT_ALIGNED: Final = frozenset({"asset", "bucket", "reason", "counter_bucket"})


def default_format() -> str:
    """``table`` when stdout is a terminal, ``csv`` otherwise."""
    isatty = getattr(sys.stdout, "isatty", None)
    return "table" if isatty is not None and isatty() else "csv"


def emit(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], fmt: str) -> None:
    """Write the report to stdout in ``fmt`` (one of `FORMATS`)."""
    assert fmt in FORMATS, fmt
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    if fmt == "json":
        doc = {"title": title, "rows": [dict(zip(header, row, strict=True)) for row in rows]}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(title=title)
    for column in header:
        table.add_column(
            column, justify="left" if column in LEFT_ALIGNED else "right", no_wrap=True
        )
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console = Console()
    unbounded = console.options.update_width(1_000_000)
    needed = Measurement.get(console, unbounded, table).maximum
    if needed > console.width:  # never squeeze (and so cut) a column: print it whole
        console = Console(width=needed)
    console.print(table)
