"""Rendering Azure ML commands: bindings replaced by values, optional segments kept or dropped."""

from __future__ import annotations

import re
import shlex
from typing import Any

from smalt.entities.expressions import BINDING, OPTIONAL, bindings

__all__ = ["bindings", "literal", "render"]


def literal(value: Any) -> str:
    """A literal as Azure ML renders it: booleans as True/False, numbers as written."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _quoted(value: str, state: str) -> str:
    # Every value reaches the program as exactly one argument, whatever the quotes around it.
    if state == "'":
        return value.replace("'", "'\\''")
    if state == '"':
        return re.sub(r'([\\"$`])', r"\\\1", value)
    return shlex.quote(value)


def _advance(text: str, state: str) -> str:
    """The shell quoting state after ``text``, starting in ``state`` ("", "'" or '"')."""
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif state == "'":
            state = "" if char == "'" else state
        elif char == "\\":
            escaped = True
        elif state == '"':
            state = "" if char == '"' else state
        elif char in "'\"":
            state = char
    return state


def render(command: str, inputs: dict[str, str | None], outputs: dict[str, str]) -> str:
    """The command with bindings replaced; a ``$[[ ... ]]`` segment whose inputs have no value is
    dropped, as Azure ML does. Raises KeyError for a binding with no value outside a segment."""

    def keep(match: re.Match[str]) -> str:
        body = match[1]
        missing = [(g, n) for g, n, _ in bindings(body) if (inputs if g == "inputs" else outputs).get(n) is None]
        return "" if missing else body

    text = OPTIONAL.sub(keep, command)
    out: list[str] = []
    state, last = "", 0
    for match in BINDING.finditer(text):
        before = text[last : match.start()]
        state = _advance(before, state)
        out.append(before)
        table: dict[str, str | None] = dict(inputs) if match[1] == "inputs" else dict(outputs)
        value = table.get(match[2])
        if value is None:
            raise KeyError(f"{match[1]}.{match[2]}")
        out.append(_quoted(value, state))
        last = match.end()
    out.append(text[last:])
    return "".join(out)
