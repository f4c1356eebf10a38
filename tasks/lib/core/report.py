"""Check results and how they are shown: a table for people, JSON for machines."""

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
_RANK = {SKIP: 0, PASS: 1, WARN: 2, FAIL: 3}
_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red", SKIP: "dim"}


@dataclass(frozen=True)
class Check:
    """One line of a check table: what was checked, on what, the verdict, and the fix."""

    check: str
    subject: str
    status: str
    detail: str
    fix: str = ""


def worst(checks: Iterable[Check]) -> str:
    """The most severe status among checks (skip when there are none)."""
    return max((c.status for c in checks), key=_RANK.__getitem__, default=SKIP)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], stream=None) -> None:
    """A table that reads well in a terminal and when streamed to a log or over SSH."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    stream = stream or sys.stdout
    interactive = stream.isatty()
    console = Console(
        file=stream, width=None if interactive else 160, highlight=False, color_system="auto" if interactive else None
    )
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(
                Text(str(cell), style=_STYLE.get(str(cell), "")) if name == "status" else Text(str(cell))
                for name, cell in zip(columns, row, strict=True)
            )
        )
    console.print(table)


def print_checks(title: str, checks: Sequence[Check], stream=None) -> None:
    """The pass/warn/fail table with a fix for every warn and fail."""
    print_table(
        title,
        ("check", "subject", "status", "detail", "fix"),
        ((c.check, c.subject, c.status, c.detail, c.fix) for c in checks),
        stream,
    )


def to_json(payload: dict[str, Any]) -> str:
    """Stable JSON for --json output; dataclasses become dicts."""
    return json.dumps(payload, indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)
