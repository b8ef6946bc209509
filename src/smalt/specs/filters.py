"""MLflow's search filters and order_by clauses, parsed into comparisons and sort keys.

A filter is comparisons joined by ``AND``, as MLflow's search APIs take it::

    metrics.acc > 0.9 AND params.lr = '0.01' AND tags.`mlflow.source.type` LIKE 'NOTE%'
    attributes.status IN ('FINISHED', 'FAILED') AND datasets.context = 'train'

An identifier is an entity prefix and a key (``metrics.acc``, ``tags.mlflow.runName``), or an
attribute on its own (``status``); a key with other characters than letters, digits and underscores
is quoted with backticks or double quotes (``metrics."my acc"``). Which entities, attributes,
operators and value types a search takes depends on what is searched (``scope``), as in MLflow's
``SearchUtils`` and its SQL stores; a filter they refuse is refused here with an
``InvalidSpecError`` that names the offending token, its position and what is allowed.

Values come out typed: numbers for metrics and numeric attributes, strings for the rest, tuples
for ``IN``/``NOT IN``, ``None`` for ``IS NULL``/``IS NOT NULL``. A quote inside a string is written
twice (``'it''s'``) or after a backslash (``'it\\'s'``); any other backslash stays as written.
``LIKE`` patterns use ``%`` and ``_``, and a backslash escapes them (``'50\\%'``, ``'C:\\\\%'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from smalt.errors import InvalidSpecError

Scope = Literal["runs", "experiments", "registered_models", "model_versions", "logged_models"]
Value = str | int | float | tuple[str, ...] | tuple[int, ...] | None

#: The canonical entity names that ``Comparison.entity`` and ``OrderKey.entity`` hold.
ATTRIBUTE, METRIC, PARAM, TAG, DATASET = "attribute", "metric", "param", "tag", "dataset"

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
LIST_OPS = ("IN", "NOT IN")
NULL_OPS = ("IS NULL", "IS NOT NULL")


@dataclass(frozen=True)
class Comparison:
    """One comparison of a filter: ``entity`` is one of attribute, metric, param, tag, dataset;
    ``key`` is unquoted and alias-free (``created`` is ``start_time``); ``op`` is upper case."""

    entity: str
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class OrderKey:
    """One sort key. ``dataset_name``/``dataset_digest`` narrow a logged model's metric to the
    values logged on that dataset."""

    entity: str
    key: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


# -- what each search takes ------------------------------------------------------------------
@dataclass(frozen=True)
class _Attribute:
    key: str  # the canonical name
    ops: tuple[str, ...]
    # string; number (int or float); integer; id (an integer written as a string, MLflow's
    # experiment ids); version (an integer, written either way)
    kind: Literal["string", "number", "integer", "id", "version"] = "string"


@dataclass(frozen=True)
class _Rules:
    noun: str
    prefixes: Mapping[str, str]
    attributes: Mapping[str, _Attribute]
    entity_ops: Mapping[str, tuple[str, ...]]
    order_prefixes: Mapping[str, str]
    order_attributes: Mapping[str, str]
    dataset_keys: tuple[str, ...] = ()
    unique_order: bool = False
    examples: str = ""
    order_examples: str = ""


def _attrs(*items: _Attribute, aliases: Mapping[str, str] | None = None) -> dict[str, _Attribute]:
    found = {a.key: a for a in items}
    for alias, target in (aliases or {}).items():
        found[alias] = found[target]
    return found


_RUN_PREFIXES = {
    "metric": METRIC, "metrics": METRIC,
    "param": PARAM, "params": PARAM, "parameter": PARAM, "parameters": PARAM,
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "attr": ATTRIBUTE, "run": ATTRIBUTE,
    "dataset": DATASET, "datasets": DATASET,
}  # fmt: skip
_REGISTRY_PREFIXES = {"attribute": ATTRIBUTE, "tag": TAG, "tags": TAG}

_RULES: dict[str, _Rules] = {
    "runs": _Rules(
        noun="runs",
        prefixes=_RUN_PREFIXES,
        attributes=_attrs(
            _Attribute("run_id", STRING_OPS + LIST_OPS),
            _Attribute("run_name", STRING_OPS),
            _Attribute("status", STRING_OPS),
            _Attribute("user_id", STRING_OPS),
            _Attribute("artifact_uri", STRING_OPS),
            _Attribute("start_time", NUMERIC_OPS, "number"),
            _Attribute("end_time", NUMERIC_OPS, "number"),
            aliases={
                "created": "start_time",
                "Created": "start_time",
                "run name": "run_name",
                "Run name": "run_name",
                "Run Name": "run_name",
            },
        ),
        entity_ops={
            METRIC: NUMERIC_OPS,
            PARAM: STRING_OPS + NULL_OPS,
            TAG: STRING_OPS + NULL_OPS,
            DATASET: STRING_OPS + LIST_OPS,
        },
        order_prefixes={k: v for k, v in _RUN_PREFIXES.items() if v != DATASET},
        order_attributes={
            "run_id": "run_id",
            "run_name": "run_name",
            "status": "status",
            "user_id": "user_id",
            "artifact_uri": "artifact_uri",
            "start_time": "start_time",
            "end_time": "end_time",
            "created": "start_time",
            "Created": "start_time",
        },
        dataset_keys=("name", "digest", "context"),
        unique_order=True,
        examples="metrics.acc > 0.9 AND params.lr = '0.01' AND tags.`mlflow.runName` LIKE 'train%'",
        order_examples="'metrics.acc DESC', 'start_time', 'tags.`mlflow.runName` ASC'",
    ),
    "experiments": _Rules(
        noun="experiments",
        prefixes=_REGISTRY_PREFIXES,
        attributes=_attrs(
            _Attribute("name", STRING_OPS),
            _Attribute("experiment_id", ("=", "!=") + LIST_OPS, "id"),
            _Attribute("creation_time", NUMERIC_OPS, "integer"),
            _Attribute("last_update_time", NUMERIC_OPS, "integer"),
        ),
        entity_ops={TAG: STRING_OPS + NULL_OPS},
        order_prefixes={"attribute": ATTRIBUTE},
        order_attributes={k: k for k in ("name", "experiment_id", "creation_time", "last_update_time")},
        examples="name LIKE 'team-%' AND tags.owner = 'me' AND creation_time > 1700000000000",
        order_examples="'creation_time DESC', 'name'",
    ),
    "registered_models": _Rules(
        noun="registered models",
        prefixes=_REGISTRY_PREFIXES,
        attributes=_attrs(_Attribute("name", STRING_OPS + LIST_OPS)),
        entity_ops={TAG: STRING_OPS},
        order_prefixes={"attribute": ATTRIBUTE},
        order_attributes={
            "name": "name",
            "timestamp": "last_updated_timestamp",
            "last_updated_timestamp": "last_updated_timestamp",
            "creation_timestamp": "creation_timestamp",
        },
        unique_order=True,
        examples="name LIKE 'churn-%' AND tags.team = 'growth'",
        order_examples="'name', 'last_updated_timestamp DESC'",
    ),
    "model_versions": _Rules(
        noun="model versions",
        prefixes=_REGISTRY_PREFIXES,
        attributes=_attrs(
            _Attribute("name", STRING_OPS + LIST_OPS),
            _Attribute("run_id", STRING_OPS + LIST_OPS),
            _Attribute("source_path", STRING_OPS),
            _Attribute("version_number", NUMERIC_OPS, "version"),
        ),
        entity_ops={TAG: STRING_OPS},
        order_prefixes={"attribute": ATTRIBUTE},
        order_attributes={k: k for k in ("name", "version_number", "creation_timestamp", "last_updated_timestamp")},
        unique_order=True,
        examples="name = 'churn' AND version_number > 2 AND tags.stage LIKE 'prod%'",
        order_examples="'version_number DESC', 'last_updated_timestamp DESC'",
    ),
    "logged_models": _Rules(
        noun="logged models",
        prefixes={"attributes": ATTRIBUTE, "metrics": METRIC, "params": PARAM, "tags": TAG},
        attributes=_attrs(
            _Attribute("name", STRING_OPS + LIST_OPS),
            _Attribute("model_id", STRING_OPS + LIST_OPS),
            _Attribute("model_type", STRING_OPS + LIST_OPS),
            _Attribute("status", STRING_OPS + LIST_OPS),
            _Attribute("source_run_id", STRING_OPS + LIST_OPS),
            _Attribute("creation_timestamp", NUMERIC_OPS, "number"),
            _Attribute("last_updated_timestamp", NUMERIC_OPS, "number"),
            aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
        ),
        entity_ops={METRIC: NUMERIC_OPS, PARAM: STRING_OPS + LIST_OPS, TAG: STRING_OPS + LIST_OPS},
        order_prefixes={"metrics": METRIC},
        order_attributes={
            "name": "name",
            "model_id": "model_id",
            "model_type": "model_type",
            "status": "status",
            "source_run_id": "source_run_id",
            "creation_timestamp": "creation_timestamp",
            "creation_time": "creation_timestamp",
            "last_updated_timestamp": "last_updated_timestamp",
            "last_updated_time": "last_updated_timestamp",
        },
        examples="metrics.acc > 0.9 AND params.alpha = '0.5' AND name LIKE 'sk%'",
        order_examples="'metrics.acc DESC', 'creation_timestamp'",
    ),
}


def _rules(scope: str) -> _Rules:
    if scope not in _RULES:
        raise ValueError(f"unknown search scope {scope!r}; one of {', '.join(get_args(Scope))}")
    return _RULES[scope]


# -- lexing ------------------------------------------------------------------------------------
_FIRST_PART = re.compile(r"[A-Za-z_][\w$]*")
_NEXT_PART = re.compile(r"[\w$]+")
_BACKTICKED = re.compile(r"`([^`]*)`")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.$])")
_WORD = re.compile(r"[A-Za-z_][\w$]*")
_SYMBOL_OP = re.compile(r"!=|<>|==|<=|>=|=|<|>|!")
_TOKEN = re.compile(r"""[\w$.]+|'(?:[^'\\]|\\.|'')*'?|"(?:[^"\\]|\\.|"")*"?|`[^`]*`?|[<>!=]+|\S""")


@dataclass(frozen=True)
class _Part:
    text: str
    quote: str  # "", "`" or '"'


@dataclass(frozen=True)
class _Identifier:
    parts: tuple[_Part, ...]
    start: int
    end: int


@dataclass(frozen=True)
class _Literal:
    kind: Literal["string", "number", "list"]
    start: int
    string: str = ""
    number: int | float = 0
    items: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.string if self.kind == "string" else str(self.number)


class _Cursor:
    """Reads one filter or order_by clause left to right and reports errors with their position."""

    def __init__(self, text: str, what: str, field_: str) -> None:
        self.text, self.what, self.field, self.pos = text, what, field_, 0

    # errors
    def error(self, at: int, problem: str, allowed: str = "") -> InvalidSpecError:
        found = self.token_at(at)
        where = f"at character {at + 1}, found {found!r}" if found else "at its end"
        message = f"Invalid {self.what} {self.text!r}: {problem} {where}."
        if allowed:
            message += f" {allowed}"
        return InvalidSpecError.one(message, self.field)

    def token_at(self, at: int) -> str:
        match = _TOKEN.match(self.text, at)
        return match.group() if match else self.text[at : at + 1]  # a space, where one is wrong

    # reading
    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def word(self) -> str | None:
        """The next bare word, upper-cased, without consuming it."""
        self.skip()
        match = _WORD.match(self.text, self.pos)
        return match.group().upper() if match else None

    def take_word(self) -> str:
        self.skip()
        match = _WORD.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()
        return match.group().upper()

    def quoted(self, quote: str) -> tuple[str, int]:
        """The unescaped body of a string starting at ``self.pos`` with ``quote``, and its end."""
        start, i, out = self.pos, self.pos + 1, []
        while i < len(self.text):
            char = self.text[i]
            if char == "\\" and i + 1 < len(self.text) and self.text[i + 1] in (quote, "\\"):
                # \' is a quote; \\ stays as written (it escapes a backslash in a LIKE pattern) but
                # cannot end the string
                out.append(quote if self.text[i + 1] == quote else "\\\\")
                i += 2
            elif char == quote:
                if i + 1 < len(self.text) and self.text[i + 1] == quote:
                    out.append(quote)
                    i += 2
                else:
                    return "".join(out), i + 1
            else:
                out.append(char)
                i += 1
        raise self.error(start, f"unterminated string: the {quote} that opens it is never closed")

    def identifier(self, expected: str) -> _Identifier:
        self.skip()
        start = self.pos
        parts: list[_Part] = []
        while True:
            part = self._part(first=not parts)
            if part is None:
                if parts:
                    raise self.error(self.pos, "expected a key after the '.'",
                                     "Quote keys with other characters than letters, digits and underscores "
                                     "in backticks, e.g. tags.`my-key`.")  # fmt: skip
                raise self.error(start, f"expected {expected}")
            parts.append(part)
            if self.pos < len(self.text) and self.text[self.pos] == ".":
                self.pos += 1
                continue
            return _Identifier(tuple(parts), start, self.pos)

    def _part(self, *, first: bool) -> _Part | None:
        if self.pos >= len(self.text):
            return None
        char = self.text[self.pos]
        if char == "`":
            match = _BACKTICKED.match(self.text, self.pos)
            if match is None:
                raise self.error(self.pos, "unterminated key: the ` that opens it is never closed")
            self.pos = match.end()
            return _Part(match.group(1), "`")
        if char == '"':
            body, self.pos = self.quoted('"')
            return _Part(body, '"')
        match = (_FIRST_PART if first else _NEXT_PART).match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return _Part(match.group(), "")


# -- filters -----------------------------------------------------------------------------------
def parse_filter(text: str | None, *, scope: Scope | str) -> list[Comparison]:
    """The comparisons of an MLflow filter string; empty for ``None`` or a blank string.

    >>> parse_filter("metrics.acc > 0.9 and tags.`mlflow.runName` = 'a'", scope="runs")
    [Comparison(entity='metric', key='acc', op='>', value=0.9),
     Comparison(entity='tag', key='mlflow.runName', op='=', value='a')]
    """
    rules = _rules(scope)
    if text is None or not text.strip():
        return []
    cursor = _Cursor(text, "filter", "filter")
    found: list[Comparison] = []
    while True:
        found.append(_comparison(cursor, rules))
        if cursor.at_end():
            return found
        word = cursor.word()
        if word == "AND":
            cursor.take_word()
            if cursor.at_end():
                return found  # MLflow takes a trailing AND too
            continue
        if word == "OR":
            raise cursor.error(cursor.pos, "OR is not supported",
                               f"A filter is comparisons joined by AND, e.g. {rules.examples}.")  # fmt: skip
        if word is None and cursor.text[cursor.pos] not in '`"':
            raise cursor.error(cursor.pos, "expected AND between comparisons",
                               f"A filter is comparisons joined by AND, e.g. {rules.examples}.")  # fmt: skip
        # MLflow reads comparisons side by side, without AND, as joined by AND; so do we.


def _comparison(cursor: _Cursor, rules: _Rules) -> Comparison:
    ident = cursor.identifier(f"a key to compare, such as {_identifier_examples(rules)}")
    entity, key = _resolve(cursor, rules, ident, rules.prefixes, order=False)
    cursor.skip()
    op_start = cursor.pos
    op = _operator(cursor)
    allowed, kind = _allowed(rules, entity, key)
    name = _display(ident, cursor)
    if op not in allowed:
        raise cursor.error(op_start, f"operator {op!r} does not apply to {name}", f"Allowed: {', '.join(allowed)}.")
    if op in NULL_OPS:
        return Comparison(entity, key, op, None)
    cursor.skip()
    value = _typed(cursor, _literal(cursor), op, kind, name)
    if entity == METRIC and isinstance(value, int):
        value = float(value)  # metric values are floats; MLflow compares them as such
    return Comparison(entity, key, op, value)


def _identifier_examples(rules: _Rules) -> str:
    return {
        "runs": "metrics.acc, params.lr, tags.`mlflow.runName` or status",
        "experiments": "name, creation_time or tags.owner",
        "registered models": "name or tags.team",
        "model versions": "name, version_number, run_id or tags.stage",
        "logged models": "metrics.acc, params.alpha, tags.team or name",
    }[rules.noun]


def _resolve(cursor: _Cursor, rules: _Rules, ident: _Identifier, prefixes: Mapping[str, str], *,
             order: bool) -> tuple[str, str]:  # fmt: skip
    """The canonical entity and key of an identifier, or an error naming what is allowed."""
    parts = ident.parts
    attributes: Mapping[str, Any] = rules.order_attributes if order else rules.attributes
    if len(parts) == 1:
        entity, key = ATTRIBUTE, parts[0].text
    else:
        head = parts[0]
        entity_name = head.text if head.quote in ("", "`") else f'"{head.text}"'
        if entity_name not in prefixes:
            valid = _prefixes(prefixes)
            raise cursor.error(ident.start, f"unknown entity {entity_name!r} for {rules.noun}",
                               f"Keys of {rules.noun} start with one of {valid} or name an attribute "
                               f"({', '.join(_names(attributes))}).")  # fmt: skip
        entity, key = prefixes[entity_name], ".".join(p.text for p in parts[1:])
    if not key:
        raise cursor.error(ident.start, "empty key")
    if entity == ATTRIBUTE:
        if key not in attributes:
            raise cursor.error(ident.start, f"unknown attribute {key!r} for {rules.noun}",
                               f"Attributes{' to order by' if order else ''}: "
                               f"{', '.join(_names(attributes))}.")  # fmt: skip
        canonical = attributes[key]
        return entity, canonical if isinstance(canonical, str) else canonical.key
    if entity == DATASET and key not in rules.dataset_keys:
        raise cursor.error(ident.start, f"unknown dataset key {key!r}",
                           f"Datasets are compared by {', '.join(rules.dataset_keys)}.")  # fmt: skip
    return entity, key


def _names(attributes: Mapping[str, Any]) -> list[str]:
    # Canonical names only: the aliases (``created``, ``Run name``) work but are not advertised.
    return [name for name, target in attributes.items() if name == (target if isinstance(target, str) else target.key)]


def _prefixes(prefixes: Mapping[str, str]) -> str:
    # One spelling per entity, the plural where there is one: "metrics., params., tags., ...".
    chosen: dict[str, str] = {}
    for prefix, entity in prefixes.items():
        if entity not in chosen or (prefix.endswith("s") and not chosen[entity].endswith("s")):
            chosen[entity] = prefix
    return ", ".join(f"{p}." for p in chosen.values())


def _display(ident: _Identifier, cursor: _Cursor) -> str:
    return cursor.text[ident.start : ident.end]


def _operator(cursor: _Cursor) -> str:
    start = cursor.pos
    symbol = _SYMBOL_OP.match(cursor.text, start)
    allowed_all = "Operators: =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL."
    if symbol is not None:
        if symbol.group() in ("<>", "==", "!"):
            raise cursor.error(start, f"unknown operator {symbol.group()!r}", allowed_all)
        cursor.pos = symbol.end()
        return symbol.group()
    word = cursor.word()
    if word in ("LIKE", "ILIKE", "IN"):
        cursor.take_word()
        return word
    if word == "NOT":
        cursor.take_word()
        if cursor.word() == "IN":
            cursor.take_word()
            return "NOT IN"
        raise cursor.error(cursor.pos, "expected IN after NOT", allowed_all)
    if word == "IS":
        cursor.take_word()
        if cursor.word() == "NULL":
            cursor.take_word()
            return "IS NULL"
        if cursor.word() == "NOT":
            cursor.take_word()
            if cursor.word() == "NULL":
                cursor.take_word()
                return "IS NOT NULL"
        raise cursor.error(cursor.pos, "expected NULL or NOT NULL after IS", allowed_all)
    hint = allowed_all
    if cursor.pos < len(cursor.text) and cursor.text[cursor.pos] in "-/:@":
        hint += " Quote keys with other characters than letters, digits and underscores in backticks: tags.`my-key`."
    raise cursor.error(start, "expected an operator", hint)


def _literal(cursor: _Cursor) -> _Literal:
    start = cursor.pos
    text = cursor.text
    if start >= len(text):
        raise cursor.error(start, "expected a value")
    char = text[start]
    if char in "'\"":
        body, end = cursor.quoted(char)
        cursor.pos = end
        return _Literal("string", start, string=body)
    if char == "`":
        raise cursor.error(start, "backticks quote keys, not values", "Quote values with ' or \", e.g. 'abc'.")
    if char == "(":
        return _list(cursor)
    number = _NUMBER.match(text, start)
    if number is not None:
        cursor.pos = number.end()
        raw = number.group()
        value: int | float = int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
        return _Literal("number", start, number=value)
    raise cursor.error(start, "expected a value (a quoted string, a number or a parenthesised list)",
                       "Quote strings with ' or \", e.g. params.optimizer = 'adam'.")  # fmt: skip


def _list(cursor: _Cursor) -> _Literal:
    start = cursor.pos
    cursor.pos += 1
    items: list[str] = []
    while True:
        cursor.skip()
        if cursor.pos < len(cursor.text) and cursor.text[cursor.pos] == ")" and items:
            cursor.pos += 1
            return _Literal("list", start, items=tuple(items))
        if cursor.pos >= len(cursor.text) or cursor.text[cursor.pos] not in "'\"":
            empty = not items and cursor.text[cursor.pos : cursor.pos + 1] == ")"
            problem = "the list is empty" if empty else "expected a quoted string in the list"
            raise cursor.error(cursor.pos, problem, "A list holds one or more quoted strings, e.g. ('a', 'b').")
        body, cursor.pos = cursor.quoted(cursor.text[cursor.pos])
        items.append(body)
        cursor.skip()
        if cursor.pos < len(cursor.text) and cursor.text[cursor.pos] == ",":
            cursor.pos += 1
            cursor.skip()
            if cursor.pos < len(cursor.text) and cursor.text[cursor.pos] == ")":
                continue  # a trailing comma, as in ('a',)
            continue
        if cursor.pos < len(cursor.text) and cursor.text[cursor.pos] == ")":
            continue
        raise cursor.error(cursor.pos, "expected ',' or ')' in the list")


def _allowed(rules: _Rules, entity: str, key: str) -> tuple[tuple[str, ...], str]:
    """The operators and the value kind of one entity and key."""
    if entity == ATTRIBUTE:
        attribute = rules.attributes[key]
        return attribute.ops, attribute.kind
    ops = rules.entity_ops[entity]
    return ops, "number" if entity == METRIC else "string"


def _typed(cursor: _Cursor, literal: _Literal, op: str, kind: str, name: str) -> Value:
    """The value of a comparison in the type its key takes, or an error saying which one that is."""
    if op in LIST_OPS:
        if literal.kind != "list":
            raise cursor.error(literal.start, f"{op} needs a parenthesised list",
                               f"e.g. {name} {op} ('a', 'b').")  # fmt: skip
        if kind == "id":
            return tuple(_integer(cursor, literal, v, name) for v in literal.items)
        return literal.items
    if literal.kind == "list":
        raise cursor.error(literal.start, f"a list only goes with IN or NOT IN, not {op!r}")
    if kind == "number":
        if literal.kind != "number":
            raise cursor.error(literal.start, f"{name} takes a number", f"e.g. {name} {op} 0.5 (no quotes).")
        return literal.number
    if kind in ("integer", "version"):
        if literal.kind == "number" and isinstance(literal.number, int):
            return literal.number
        if kind == "version" and literal.kind == "string":
            return _integer(cursor, literal, literal.string, name)
        raise cursor.error(literal.start, f"{name} takes a whole number", f"e.g. {name} {op} 3.")
    if literal.kind != "string":
        raise cursor.error(literal.start, f"{name} takes a quoted string",
                           f"e.g. {name} {op} '{literal}'.")  # fmt: skip
    value = literal.string
    if kind == "id":
        return _integer(cursor, literal, value, name)
    return value


def _integer(cursor: _Cursor, literal: _Literal, value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise cursor.error(literal.start, f"{name} takes whole numbers, not {value!r}") from None


# -- order_by ----------------------------------------------------------------------------------
def parse_order_by(clauses: Sequence[str | Mapping[str, Any]] | None, *, scope: Scope | str) -> list[OrderKey]:
    """The sort keys of MLflow ``order_by`` clauses such as ``"metrics.acc DESC"``.

    Logged models also take MLflow's objects ``{"field_name": "metrics.acc", "ascending": false,
    "dataset_name": "eval"}``.
    """
    rules = _rules(scope)
    keys: list[OrderKey] = []
    seen: dict[tuple[str, str], str] = {}
    for clause in clauses or ():
        key = _order_mapping(clause, rules) if isinstance(clause, Mapping) else _order_clause(clause, rules)
        text = clause if isinstance(clause, str) else str(clause.get("field_name"))
        if rules.unique_order and (key.entity, key.key) in seen:
            message = (
                f"Invalid order_by: {text!r} sorts by the same field as {seen[(key.entity, key.key)]!r}. "
                "Each field may appear once."
            )
            raise InvalidSpecError.one(message, "order_by")
        seen[(key.entity, key.key)] = text
        keys.append(key)
    return keys


def _order_clause(clause: str, rules: _Rules) -> OrderKey:
    if not isinstance(clause, str):
        message = f"Invalid order_by clause {clause!r}: expected a string such as {rules.order_examples}."
        raise InvalidSpecError.one(message, "order_by")
    cursor = _Cursor(clause, "order_by clause", "order_by")
    ident = cursor.identifier(f"a field to sort by, such as {rules.order_examples}")
    entity, key = _resolve(cursor, rules, ident, rules.order_prefixes, order=True)
    ascending = True
    if not cursor.at_end():
        start = cursor.pos
        word = cursor.word()
        if word not in ("ASC", "DESC"):
            raise cursor.error(start, "expected ASC or DESC after the field", f"e.g. {rules.order_examples}.")
        cursor.take_word()
        ascending = word == "ASC"
        if not cursor.at_end():
            raise cursor.error(cursor.pos, "expected nothing after ASC or DESC",
                               "Give each field its own order_by clause.")  # fmt: skip
    return OrderKey(entity, key, ascending)


def _order_mapping(clause: Mapping[str, Any], rules: _Rules) -> OrderKey:
    def invalid(problem: str) -> InvalidSpecError:
        message = f"Invalid order_by {dict(clause)!r}: {problem}"
        return InvalidSpecError.one(message, "order_by")

    if rules.noun != "logged models":
        raise invalid(f"{rules.noun} are sorted by strings such as {rules.order_examples}.")
    name = clause.get("field_name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("`field_name` must be given, e.g. {'field_name': 'metrics.acc', 'ascending': False}.")
    ascending = clause.get("ascending", True)
    if ascending is None:
        ascending = True
    if not isinstance(ascending, bool):
        raise invalid(f"`ascending` must be true or false, not {ascending!r}.")
    dataset_name, dataset_digest = clause.get("dataset_name") or None, clause.get("dataset_digest") or None
    if dataset_digest is not None and dataset_name is None:
        raise invalid("`dataset_digest` can only be given with `dataset_name`.")
    cursor = _Cursor(name, "order_by field", "order_by")
    ident = cursor.identifier(f"a field to sort by, such as {rules.order_examples}")
    entity, key = _resolve(cursor, rules, ident, rules.order_prefixes, order=True)
    if not cursor.at_end():
        raise cursor.error(cursor.pos, "expected only a field name", "Say the direction with `ascending`.")
    if entity != METRIC and dataset_name is not None:
        raise invalid("`dataset_name` only narrows a metric (metrics.<key>).")
    return OrderKey(entity, key, ascending, dataset_name, dataset_digest)


__all__ = [
    "ATTRIBUTE",
    "DATASET",
    "LIST_OPS",
    "METRIC",
    "NULL_OPS",
    "NUMERIC_OPS",
    "PARAM",
    "STRING_OPS",
    "TAG",
    "Comparison",
    "OrderKey",
    "Scope",
    "Value",
    "parse_filter",
    "parse_order_by",
]
