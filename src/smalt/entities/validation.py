"""Turning pydantic's validation errors into smalt's: a field path and a message a person can act on."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from smalt.errors import InvalidSpecError, SpecProblem

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field_names(cls: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found at ``loc`` inside ``cls``, for 'did you mean'."""
    model: Any = cls
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        if isinstance(part, int) or part not in model.model_fields:
            # dict[str, Model] values: skip the key and continue into the value type
            continue
        annotation = model.model_fields[part].annotation
        model = _model_in(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        models = [_model_in(a) for a in args]
        models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
        return models[0] if len(models) == 1 else None
    if origin is dict and len(args) == 2:
        return _model_in(args[1])
    if origin is list and args:
        return _model_in(args[0])
    return None


_PRIMITIVE_TAGS = {"str", "int", "float", "bool", "list[str]", "dict[str,str]"}
#: Errors of a plain-value branch of a union (named by a validator's tag, not by 'str').
_PLAIN_TYPES = {"string_type", "int_type", "float_type", "bool_type"}


def _is_tag(part: str | int) -> bool:
    # pydantic names the union member in the loc: 'str', 'InlineEnvironment', 'function-after[...]'
    return isinstance(part, str) and (part in _PRIMITIVE_TAGS or "[" in part or part[:1].isupper())


def _child(node: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _keys_only(raw: Loc, data: Any) -> Loc:
    """The parts of ``raw`` that are keys of the input ``data``; the others name union members."""
    out: list[str | int] = []
    node = data
    for part in raw:
        found, child = _child(node, part)
        if found:
            node = child
        elif _is_tag(part):
            continue
        else:
            node = None  # a missing or unknown key: keep it, nothing below it is in the input
        out.append(part)
    return tuple(out)


def describe(cls: type[BaseModel], error: Any, data: Any = None) -> tuple[Loc, str] | None:
    raw: Loc = tuple(error["loc"])
    tagged = any(p in _PRIMITIVE_TAGS for p in raw)
    plain = tagged or (error["type"] in _PLAIN_TYPES and any("[" in str(p) for p in raw))
    if plain and isinstance(error.get("input"), dict | list):
        return None  # the value is a mapping, so the "plain string" branch of a union is not meant
    loc: Loc = _keys_only(raw, data) if data is not None else tuple(p for p in raw if not _is_tag(p))
    kind = error["type"]
    if kind == "extra_forbidden":
        *parent, key = loc or ("?",)
        names = _field_names(cls, tuple(parent))
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return loc, f"unknown key{hint}"
    if kind == "missing":
        return loc, "required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if (
        kind in ("literal_error", "enum")
        or "type" in kind
        and "input" in error
        and not isinstance(error["input"], dict | list)
    ):
        message = f"{message}, got {error['input']!r}"
    return loc, message


def dedupe(problems: list[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    # A `str | Model` field fails both ways; keep the most specific messages.
    seen: dict[str, tuple[Loc, str]] = {}
    for loc, message in problems:
        seen.setdefault(f"{format_loc(loc)}|{message}", (loc, message))
    return list(seen.values())


def problems_of(cls: type[BaseModel], exc: ValidationError, data: Any = None) -> list[tuple[Loc, str]]:
    """Every problem of ``exc`` as (field path, message), union noise removed; ``data`` is the input."""
    return dedupe([d for e in exc.errors() if (d := describe(cls, e, data)) is not None])


def translate(cls: type[BaseModel], exc: ValidationError) -> InvalidSpecError:
    """A pydantic ValidationError from Python code, as smalt's InvalidSpecError."""
    problems = [SpecProblem(message, format_loc(loc)) for loc, message in problems_of(cls, exc)]
    return InvalidSpecError(problems, summary=f"Invalid {getattr(cls, 'kind', None) or cls.__name__}")
