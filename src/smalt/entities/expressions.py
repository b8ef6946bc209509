"""The binding syntax of Azure ML commands: ``${{inputs.x}}``, ``${{outputs.y}}``, ``$[[ ... ]]``."""

from __future__ import annotations

import re

BINDING = re.compile(r"\$\{\{\s*(inputs|outputs|search_space)\.([A-Za-z0-9_]+)\s*\}\}")
OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def bindings(command: str) -> list[tuple[str, str, bool]]:
    """(group, name, optional) for every binding; optional when inside a ``$[[ ... ]]`` segment."""
    spans = [m.span() for m in OPTIONAL.finditer(command)]
    return [(m[1], m[2], any(start <= m.start() < end for start, end in spans)) for m in BINDING.finditer(command)]


def binding_problems(command: str, inputs: dict[str, object], outputs: dict[str, object]) -> list[str]:
    """What is wrong with the bindings of ``command`` given the declared ports, in plain words."""
    problems: list[str] = []
    for group, port, optional in bindings(command):
        if group == "search_space":
            continue
        declared = inputs if group == "inputs" else outputs
        if port not in declared:
            if not (optional and group == "inputs"):
                problems.append(f"the command uses ${{{{{group}.{port}}}}} but there is no {group[:-1]} '{port}'")
            continue
        value = declared[port]
        empty = (
            getattr(value, "optional", False)
            and getattr(value, "path", None) is None
            and (getattr(value, "default", None) is None)
        )
        if group == "inputs" and empty and not optional:
            problems.append(
                f"optional input '{port}' has no value but ${{{{inputs.{port}}}}} is outside a $[[ ... ]] "
                "segment; wrap that part of the command in $[[ ]] or give the input a value"
            )
    return problems
