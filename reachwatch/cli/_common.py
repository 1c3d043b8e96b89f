"""What the commands share: the consoles, the `--db` option, and the status table."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..store import DB_ENV, DEFAULT_DB, StatusRow

# piped output is not cut at 80 columns: a status table is for reading whole
_width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
console = Console(width=_width)
errors = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    Path,
    typer.Option("--db", envvar=DB_ENV, help=f"DuckDB file (default: {DEFAULT_DB})."),
]

CcFilter = Annotated[
    str | None, typer.Option("--cc", help="Country code, e.g. AZ (all if omitted).")
]
TargetFilter = Annotated[str | None, typer.Option("--target", help="Only this target.")]

VERDICT_STYLE = {"ok": "green", "blocked": "bold red", "down": "yellow", "error": "dim"}


class StatusFormat(StrEnum):
    table = "table"
    md = "md"
    json = "json"


def print_status(rows: list[StatusRow], fmt: StatusFormat, cc: str | None) -> None:
    """The status rows as a table, markdown or JSON."""
    if fmt is StatusFormat.json:
        sys.stdout.buffer.write(orjson.dumps([asdict(row) for row in rows]) + b"\n")
        return
    headers = (
        "cc",
        "target",
        "network",
        "latest",
        "technique",
        "measured",
        "ok/blocked/down/error",
    )
    lines = [
        (
            row.probe_cc,
            row.target,
            f"{row.probe_asn} {row.network_name or ''}".strip(),
            row.verdict,
            row.technique or "",
            row.measured_at,
            f"{row.ok}/{row.blocked}/{row.down}/{row.error}",
        )
        for row in rows
    ]
    if fmt is StatusFormat.md:
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for line in lines:
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |")
        return
    table = Table(title=f"status{' in ' + cc.upper() if cc else ''}")
    for name in headers:
        table.add_column(name, overflow="fold")
    for line in lines:
        styled = list(line)
        styled[3] = f"[{VERDICT_STYLE[line[3]]}]{line[3]}"
        table.add_row(*styled)
    console.print(table)
    if not rows:
        errors.print("no verdicts match")
