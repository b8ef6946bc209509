"""Printing results: JSON when piped or asked for, YAML, TSV on request, a table on a terminal;
``--query`` (JMESPath, as ``az`` has it) picks what to print first."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

FORMATS = ("json", "yaml", "table", "tsv")


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


def compile_query(expression: str) -> Any:
    """``--query``'s expression, compiled; a bad one is an error naming ``--query``. Commands check
    it as their command line is read, as ``az`` does, so ``job create`` with a typo in its query
    submits nothing. (jmespath is imported here, not above: most commands never need it.)"""
    import jmespath  # type: ignore[import-untyped]
    from jmespath import exceptions

    try:
        return jmespath.compile(expression)
    except exceptions.JMESPathError as error:
        raise _query_error(expression, "is not a JMESPath expression", _why(error)) from error


def _why(error: Exception) -> str:
    """One line for a jmespath error (their own messages span lines, with a caret under the spot)."""
    from jmespath import exceptions

    if isinstance(error, exceptions.IncompleteExpressionError):
        return "it ends too early"
    if isinstance(error, exceptions.LexerError):
        return f"{error.message} at character {error.lexer_position + 1}"
    if isinstance(error, exceptions.ArityError):
        return str(error)
    if isinstance(error, exceptions.ParseError):
        return f"unexpected {error.token_value!r} at character {error.lex_position + 1}"
    return str(error)


def _query_error(expression: str, what: str, why: str) -> Exception:
    from smalt.errors import InvalidSpecError, SpecProblem

    return InvalidSpecError(
        [SpecProblem(f"{expression!r} {what}: {why}", "--query")],
        summary="Invalid option",
        hint='--query takes a JMESPath expression, as az does: --query "[].name" (https://jmespath.org/tutorial.html)',
    )


def _plain(item: Any) -> Any:
    to_dict = getattr(item, "to_dict", None)
    return to_dict() if callable(to_dict) else item


def emit(value: Any, output: str | None, *, columns: Sequence[str] = (), query: str | None = None) -> None:
    """Print one object or a list of them in the chosen format; with ``query``, what that JMESPath
    expression selects from the object's JSON form (a table then shows the columns it names)."""
    fmt = choose(output)
    data = [_plain(v) for v in value] if isinstance(value, list) else _plain(value)
    if query is not None:
        from jmespath import exceptions

        # The expression reads the JSON a user sees with -o json: dates as strings, no objects.
        document = json.loads(json.dumps(data, default=str))
        try:
            data = compile_query(query).search(document)
        except exceptions.JMESPathError as error:
            raise _query_error(query, "failed on the result", _why(error)) from error
        columns = ()
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt == "yaml":
        from ruamel.yaml import YAML

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.width = 4096
        yaml.dump(json.loads(json.dumps(data, default=str)), sys.stdout)
    elif fmt == "tsv":
        rows = data if isinstance(data, list) else [data]
        sys.stdout.write("".join("\t".join(_tsv_fields(row)) + "\n" for row in rows))
    else:
        _table(data, columns, queried=query is not None)


def _tsv_fields(row: Any) -> list[str]:
    """One line of ``-o tsv``, as ``az`` writes it: a dict's values in their order (the order of
    the JSON output, or of the keys a ``--query`` names), a list's items, or a lone value.

    A value that is itself an object or a list is not spelled out, as in az: an object is an empty
    field and a list is its length. The field stays, so every line of a list has the same columns
    even where one object has a nested value and another has none."""
    values = row.values() if isinstance(row, dict) else row if isinstance(row, list) else [row]
    return [_tsv_field(value) for value in values]


def _tsv_field(value: Any) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON spells them, so a shell test reads the same
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(data: Any, columns: Sequence[str], *, queried: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if isinstance(data, dict) and not queried:
        table = Table(show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        for key, value in data.items():
            if isinstance(value, dict) and key == "creation_context":
                value = f"{value.get('created_at', '')} by {value.get('created_by', '')}"
            table.add_row(key, _cell(value) if not isinstance(value, dict) else json.dumps(value))
        console.print(table)
        return
    rows = data if isinstance(data, list) else [data]
    if not all(isinstance(row, dict) for row in rows):
        # What a --query selected may be plain values ("Result") or lists ("Column1", ...), as az names them.
        width = max((len(row) for row in rows if isinstance(row, list)), default=0)
        heads = [f"Column{i + 1}" for i in range(width)] if width else ["Result"]
        rows = [dict(zip(heads, row if isinstance(row, list) else [row], strict=False)) for row in rows]
    if columns:
        cols = list(columns)
    elif queried:
        cols = list(dict.fromkeys(key for row in rows for key in row))  # in the order the query named them
    else:
        cols = sorted({k for row in rows for k in row})
    table = Table(*cols)
    for row in rows:
        cells = []
        for col in cols:
            value = row.get(col)
            if col == "created_at" and not queried:
                value = str((row.get("creation_context") or {}).get("created_at", ""))[:19]
            cells.append(_cell(value))
        table.add_row(*cells)
    console.print(table)
