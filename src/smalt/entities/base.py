"""Shared pieces of every entity: the pydantic base, names, versions and creation context."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError

from smalt.errors import NotFoundError, SpecProblem

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,254}$"
_NAME_RE = re.compile(NAME_PATTERN)


def to_str(value: Any) -> Any:
    # YAML writes `version: 1` and `tags: {epochs: 10}`; Azure ML treats both as strings.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def _str_dict(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_str(v) for k, v in value.items()}
    return value


Version = Annotated[str, BeforeValidator(to_str), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$")]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
#: Free text a client sends is bounded: what is stored is read back by every list and show.
Description = Annotated[str, Field(max_length=8192)]
DisplayName = Annotated[str, Field(max_length=256)]
ExperimentName = Annotated[str, Field(min_length=1, max_length=256)]
#: Tags, properties and environment variables: at most 1,000 entries, keys of 256 characters and
#: values of 32 KiB.
StrDict = Annotated[
    dict[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=32_768)]],
    BeforeValidator(_str_dict),
    Field(max_length=1000),
]


def _registered(what: str) -> Any:
    def check(value: str) -> str:
        if not value.startswith("azureml:"):
            raise ValueError(f"{value!r} names no {what}: write azureml:{value}@latest (or :<version>) for a "
                             f"registered {what}, or define it inline")  # fmt: skip
        return value

    return AfterValidator(check)


#: A registered environment or model, written as Azure ML writes one: ``azureml:<name>:<version>``,
#: ``azureml:<name>@<label>`` or an ``azureml://`` URI (a bare name is a mistake in Azure ML too).
EnvironmentRef = Annotated[str, _registered("environment")]
ModelRef = Annotated[str, _registered("model")]


def is_valid_name(name: str) -> bool:
    return bool(_NAME_RE.match(name))


_RAW_ERRORS: ContextVar[bool] = ContextVar("smalt_raw_validation_errors", default=False)


@contextmanager
def raw_validation_errors() -> Iterator[None]:
    """Within this block entities raise pydantic's ValidationError (specs map it to YAML lines)."""
    token = _RAW_ERRORS.set(True)
    try:
        yield
    finally:
        _RAW_ERRORS.reset(token)


class Entity(BaseModel):
    """Base of smalt's entities: unknown keys are errors, names match Azure ML's YAML keys."""

    # defer_build: a model's validator is built on first use, so commands only pay for what they touch.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=False, defer_build=True)

    def __init__(self, /, **data: Any) -> None:
        # Python callers meet smalt's errors too, as CLI and YAML users do. pydantic also calls
        # __init__ for nested entities while validating; there the raw error must flow on, so
        # that the outermost call reports every problem with its full field path.
        if _RAW_ERRORS.get():
            super().__init__(**data)
            return
        token = _RAW_ERRORS.set(True)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            from smalt.entities.validation import translate

            raise translate(type(self), exc) from None
        finally:
            _RAW_ERRORS.reset(token)

    def to_dict(self) -> dict[str, Any]:
        """The entity as plain JSON-ready data, with unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=False, exclude_none=True)


class Located(Entity):
    """Knows the file and line each of its fields was written at, for problems found after loading
    (a binding to a step that does not exist is only seen once every component is known)."""

    _lines: dict[str, tuple[str | None, int | None]] = PrivateAttr(default_factory=dict)

    def remember_lines(self, lines: dict[str, tuple[str | None, int | None]]) -> None:
        self._lines = dict(lines)

    def where(self, field: str) -> tuple[str | None, int | None]:
        """The file and line of ``field`` (``jobs.train.inputs.x``), or of its nearest parent."""
        while field:
            if field in self._lines:
                return self._lines[field]
            field = field.rpartition(".")[0]
        return self._lines.get("", (None, None))

    def locate_error(self, error: NotFoundError) -> NotFoundError:
        """``error``, raised for a reference of this entity's field ``error.field``, saying the file
        and line that field was written at (when this entity was read from a file)."""
        file, line = self.where(error.field) if error.field else (None, None)
        if file is None:
            return error
        located = NotFoundError(f"{file}:{line}: {error.field}: {error.message}", hint=error.hint)
        located.field = error.field
        return located

    def locate(self, problems: list[SpecProblem]) -> list[SpecProblem]:
        """``problems`` found in this entity's fields, each with the file and line it was written at."""
        located = []
        for p in problems:
            file, line = self.where(p.field) if p.file is None else (p.file, p.line)
            located.append(SpecProblem(p.message, p.field, file, line))
        return located


class CreationContext(Entity):
    """Who made an object and when (Azure ML's ``creation_context``)."""

    created_at: datetime
    created_by: str
    created_by_type: str = "User"
    last_modified_at: datetime | None = None
    last_modified_by: str | None = None


class Asset(Located):
    """A named, versioned object of a workspace: data, environment, component or model."""

    #: The noun used in messages, CLI commands and the store ("data", "environment", ...).
    kind: ClassVar[str] = "asset"

    name: Name
    version: Version | None = None
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    creation_context: CreationContext | None = None

    def content(self) -> dict[str, Any]:
        """What makes two registrations of one version the same: all but name, version, context."""
        data = self.to_dict()
        for key in ("name", "version", "creation_context"):
            data.pop(key, None)
        return data

    def content_digest(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def ref(self) -> str:
        """The Azure ML reference of this version, ``azureml:<name>:<version>``."""
        return f"azureml:{self.name}:{self.version}"
