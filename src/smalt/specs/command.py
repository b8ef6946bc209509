"""Azure ML command expressions: ``${{inputs.x}}``, ``${{outputs.y}}`` and optional ``$[[ ... ]]``."""

from __future__ import annotations

import re
import shlex
from typing import Any

_BINDING = re.compile(r"\$\{\{\s*(inputs|outputs|search_space)\.([A-Za-z0-9_]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def bindings(command: str) -> list[tuple[str, str, bool]]:
    """(group, name, optional) for every binding; optional when inside a ``$[[ ... ]]`` segment."""
    found: list[tuple[str, str, bool]] = []
    optional_spans = [m.span() for m in _OPTIONAL.finditer(command)]
    for match in _BINDING.finditer(command):
        inside = any(start <= match.start() < end for start, end in optional_spans)
        found.append((match[1], match[2], inside))
    return found


def literal(value: Any) -> str:
    """A literal as Azure ML renders it: booleans as True/False, numbers as written."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def render(command: str, inputs: dict[str, str | None], outputs: dict[str, str]) -> str:
    """The command with bindings replaced; a ``$[[ ... ]]`` segment whose inputs have no value
    is dropped, as Azure ML does. Values are shell-quoted when they need it."""

    def value(match: re.Match[str]) -> str:
        group, name = match[1], match[2]
        table: dict[str, str | None] = dict(inputs) if group == "inputs" else dict(outputs)
        found = table.get(name)
        if found is None:
            raise KeyError(f"{group}.{name}")
        return shlex.quote(found) if found and found != shlex.quote(found) and " " in found else found

    def segment(match: re.Match[str]) -> str:
        body = match[1]
        names = [(g, n) for g, n, _ in bindings(body)]
        if any((inputs if g == "inputs" else outputs).get(n) is None for g, n in names):
            return ""
        return _BINDING.sub(value, body)

    return _BINDING.sub(value, _OPTIONAL.sub(segment, command))
