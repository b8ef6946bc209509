"""Printing results: JSON when piped or asked for, YAML on request, a table on a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

FORMATS = ("json", "yaml", "table")


def choose(output: str | None) -> str:
    if output is None:
        return "table" if sys.stdout.isatty() else "json"
    if output not in FORMATS:
        from smalt.errors import InvalidSpecError, SpecProblem

        raise InvalidSpecError(
            [SpecProblem(f"unknown output format {output!r}; one of {', '.join(FORMATS)}", "--output")],
            summary="Invalid option",
        )
    return output


def _plain(item: Any) -> Any:
    to_dict = getattr(item, "to_dict", None)
    return to_dict() if callable(to_dict) else item


def emit(value: Any, output: str | None, *, columns: Sequence[str] = ()) -> None:
    """Print one object or a list of them in the chosen format."""
    fmt = choose(output)
    data = [_plain(v) for v in value] if isinstance(value, list) else _plain(value)
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt == "yaml":
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.width = 4096
        yaml.dump(json.loads(json.dumps(data, default=str)), sys.stdout)
    else:
        _table(data, columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(data: Any, columns: Sequence[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if isinstance(data, dict):
        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        for key, value in data.items():
            if isinstance(value, dict) and key == "creation_context":
                value = f"{value.get('created_at', '')} by {value.get('created_by', '')}"
            table.add_row(key, _cell(value) if not isinstance(value, dict) else json.dumps(value))
        console.print(table)
        return
    cols = list(columns) or sorted({k for row in data for k in row})
    table = Table(*cols)
    for row in data:
        cells = []
        for col in cols:
            value = row.get(col)
            if col == "created_at":
                value = str(row.get("creation_context", {}).get("created_at", ""))[:19]
            cells.append(_cell(value))
        table.add_row(*cells)
    console.print(table)
