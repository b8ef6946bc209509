"""Reading YAML with the line of every key kept, so that errors can say where they are."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from smalt.entities.validation import Loc, format_loc
from smalt.errors import InvalidSpecError, SpecProblem


@dataclass
class Source:
    """Parsed YAML and where it came from; ``locate`` turns a field path into a line number."""

    data: dict[str, Any]
    file: str | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    #: Field paths set with --set, reported as such instead of a line.
    overridden: set[str] = field(default_factory=set)

    def locate(self, loc: Loc) -> int | None:
        """The 1-based line of the deepest key of ``loc`` present in the file."""
        node: Any = self.data
        line: int | None = None
        for part in loc:
            try:
                if isinstance(node, CommentedMap) and part in node:
                    line = node.lc.key(part)[0] + 1
                    node = node[part]
                elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                    line = node.lc.item(part)[0] + 1
                    node = node[part]
                else:
                    break
            except (AttributeError, KeyError, TypeError):
                break
        if line is None and isinstance(self.data, CommentedMap):
            line = (self.data.lc.line or 0) + 1
        return line

    def problem(self, message: str, loc: Loc) -> SpecProblem:
        field_path = format_loc(loc)
        if field_path in self.overridden:
            return SpecProblem(message, field_path, "--set", None)
        return SpecProblem(message, field_path, self.file, self.locate(loc) if self.file else None)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


#: Bounds of a spec file: no Azure ML file comes near them; a hostile one is refused, not parsed.
MAX_FILE_CHARS = 16 << 20
MAX_DEPTH = 64


def _depth(data: Any) -> int:
    """How deeply mappings and lists nest in ``data`` (walked without recursion)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> Any:
    """``text`` parsed, kept by its content: a long-lived process (``smalt server``) is handed the
    same job file again at each submission, and parsing a 10-step pipeline costs about 14 ms
    against 1 for a copy. Callers get a copy (``read_yaml``): what they change stays theirs.
    RecursionError when it nests deeper than MAX_DEPTH (nothing is kept then)."""
    data = _yaml().load(text)
    if _depth(data) > MAX_DEPTH:
        raise RecursionError
    return data


def read_yaml(path: Path) -> Source:
    """Parse one YAML file; a missing file or bad YAML is an InvalidSpecError with its line."""
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidSpecError(
            [SpecProblem("file not found", file=display)],
            summary=f"Cannot read {display}",
            hint="check the path given with -f/--file",
        ) from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise InvalidSpecError(
            [SpecProblem(f"cannot read the file ({exc.__class__.__name__})", file=display)],
            summary=f"Cannot read {display}",
        ) from exc
    if len(text) > MAX_FILE_CHARS:
        raise InvalidSpecError([SpecProblem(f"the file is larger than {MAX_FILE_CHARS >> 20} MiB", file=display)],
                               summary=f"{display} is too large for a spec")  # fmt: skip
    try:
        data = copy.deepcopy(_parsed(text))
    except RecursionError:
        raise InvalidSpecError(
            [SpecProblem(f"the file nests more than {MAX_DEPTH} levels deep", file=display)],
            summary=f"{display} is nested too deeply for a spec",
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        raise InvalidSpecError(
            [SpecProblem(f"invalid YAML: {problem}", file=display, line=line)],
            summary=f"{display} is not valid YAML",
        ) from exc
    except YAMLError as exc:
        raise InvalidSpecError(
            [SpecProblem(f"invalid YAML: {exc}", file=display)], summary=f"{display} is not valid YAML"
        ) from exc
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise InvalidSpecError([SpecProblem("the file must hold a mapping of keys to values", file=display, line=1)])
    return Source(data=data, file=display, base_dir=path.resolve().parent)


def parse_scalar(text: str) -> Any:
    """Read a --set value the way YAML would: numbers, booleans, lists and mappings included."""
    try:
        return _yaml().load(text) if text.strip() else ""
    except YAMLError:
        return text


def apply_overrides(source: Source, overrides: list[str]) -> list[SpecProblem]:
    """Apply ``key.sub=value`` overrides as ``az ml ... --set`` does."""
    problems: list[SpecProblem] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(SpecProblem(f"{item!r} is not key=value", file="--set"))
            continue
        parts = key.split(".")
        node: Any = source.data
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = CommentedMap()
                node[part] = child
            if not isinstance(child, dict):
                problems.append(SpecProblem(f"{part!r} is not a mapping, cannot set {key}", key, "--set"))
                break
            node = child
        else:
            node[parts[-1]] = parse_scalar(raw)
            source.overridden.add(key)
    return problems


def plain(value: Any) -> Any:
    """ruamel's commented mappings and lists as plain dicts and lists (for JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
