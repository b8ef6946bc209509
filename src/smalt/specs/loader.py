"""Turning YAML files (and SDK objects) into validated entities, with every problem reported at once.

Dispatch follows Azure ML CLI v2: on the command's noun (``smalt data create`` reads a data
file) and, inside a noun, on ``type``. ``$schema`` must name the command's kind, or one smalt
does not know (``specs.schemas``). Local paths resolve
against the YAML file's folder and must exist.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import ValidationError

from smalt.entities import (
    CommandComponent,
    CommandJob,
    Compute,
    Data,
    Datastore,
    Entity,
    Environment,
    Model,
    OnlineDeployment,
    OnlineEndpoint,
)
from smalt.entities.base import Located, is_valid_name, raw_validation_errors
from smalt.entities.connection import WorkspaceConnection
from smalt.entities.endpoint import InlineModel
from smalt.entities.environment import InlineEnvironment
from smalt.entities.io import InputType
from smalt.entities.pipeline import PipelineComponent, PipelineJob, PipelineSettings
from smalt.entities.validation import Loc, format_loc, problems_of
from smalt.errors import InvalidSpecError, SpecProblem, SpecWarning
from smalt.specs.references import is_local_path, resolve_local
from smalt.specs.schemas import NOT_SUPPORTED, NOT_YET, check_kind
from smalt.specs.yaml_source import Source, apply_overrides, read_yaml

E = TypeVar("E", bound=Entity)

#: The entity class for each noun; components and jobs dispatch further on ``type``.
KINDS: dict[str, type[Entity]] = {
    "data": Data,
    "environment": Environment,
    "component": CommandComponent,
    "model": Model,
    "compute": Compute,
    "datastore": Datastore,
    "connection": WorkspaceConnection,
    "job": CommandJob,
    "online-endpoint": OnlineEndpoint,
    "online-deployment": OnlineDeployment,
}
_BY_TYPE: dict[str, dict[str, type[Entity]]] = {
    "component": {"command": CommandComponent, "pipeline": PipelineComponent},
    "job": {"command": CommandJob, "pipeline": PipelineJob},
}

# Local paths inside the steps of a pipeline (a component read from its own file has its own).
_NODE_PATHS: list[Loc] = [
    ("jobs", "*", "code"), ("jobs", "*", "inputs", "*", "path"),
    ("jobs", "*", "environment", "conda_file"), ("jobs", "*", "component", "code"),
    ("jobs", "*", "component", "environment", "conda_file"),
]  # fmt: skip

# Where each kind keeps local paths: field paths, "*" for every item or key.
_PATH_FIELDS: dict[type[Entity], list[Loc]] = {
    InlineEnvironment: [("conda_file",), ("build", "path")],
    InlineModel: [("path",)],
    Data: [("path",)],
    Model: [("path",)],
    Environment: [("conda_file",), ("build", "path")],
    CommandComponent: [
        ("code",), ("additional_includes", "*"),
        ("environment", "conda_file"), ("environment", "build", "path"),
    ],
    CommandJob: [
        ("code",), ("inputs", "*", "path"),
        ("environment", "conda_file"), ("environment", "build", "path"),
    ],
    Datastore: [("path",)],
    OnlineDeployment: [
        ("model", "path"), ("code_configuration", "code"),
        ("environment", "conda_file"), ("environment", "build", "path"),
    ],
    PipelineJob: [("inputs", "*", "path"), *_NODE_PATHS],
    PipelineComponent: [("inputs", "*", "path"), *_NODE_PATHS],
}  # fmt: skip


#: Where Azure ML's schema takes any key (``unknown = INCLUDE``) and smalt reads only the keys it
#: knows: each other key there is ignored with a warning, never refused.
_OPEN_FIELDS: dict[type[Entity], list[tuple[Loc, type[Entity]]]] = {
    PipelineJob: [(("settings",), PipelineSettings), (("jobs", "*", "component"), CommandComponent)],
    PipelineComponent: [((), PipelineComponent), (("jobs", "*", "component"), CommandComponent)],
    CommandComponent: [((), CommandComponent)],
}


#: Where an entity may be written as a file of its own (``environment: file:./env.yml``), as
#: azure-ai-ml reads any nested resource: the file is read, with its paths against its own folder.
_FILE_FIELDS: dict[type[Entity], list[tuple[Loc, type[Entity]]]] = {
    CommandJob: [(("environment",), InlineEnvironment)],
    CommandComponent: [(("environment",), InlineEnvironment)],
    OnlineDeployment: [(("environment",), InlineEnvironment), (("model",), InlineModel)],
    PipelineJob: [(("jobs", "*", "environment"), InlineEnvironment),
                  (("jobs", "*", "component", "environment"), InlineEnvironment)],
    PipelineComponent: [(("jobs", "*", "environment"), InlineEnvironment),
                        (("jobs", "*", "component", "environment"), InlineEnvironment)],
}  # fmt: skip


def _read_files(cls: type[Entity], source: Source, data: dict[str, Any], problems: list[SpecProblem]) -> None:
    """Replace each ``file:<path>`` where an entity may be written by that file's entity, checked in
    its own file and lines."""
    for pattern, kind in _FILE_FIELDS.get(cls, []):
        for loc, container, key in _walk(data, pattern):
            value = container[key]
            if not (isinstance(value, str) and value.startswith("file:")):
                continue
            path = Path(resolve_local(value, source.base_dir))
            if not path.is_file():
                problems.append(source.problem(f"file {str(path)!r} does not exist", loc))
                continue
            try:
                container[key] = validate(kind, read_yaml(path))
            except InvalidSpecError as exc:
                problems.extend(exc.problems)
                container[key] = None  # said in its own file; nothing more to say of the reference


_COMPONENT_NAME = re.compile(r"[a-z][a-z0-9_]*")
_STEP_NAME = re.compile(r"[a-z_][a-z0-9_]*")
#: Where a component declares its inputs, each of which must say its type.
_DECLARED_INPUTS: dict[type[Entity], list[Loc]] = {
    CommandComponent: [("inputs", "*")],
    PipelineComponent: [("inputs", "*"), ("jobs", "*", "component", "inputs", "*")],
    PipelineJob: [("jobs", "*", "component", "inputs", "*")],
}


def _azure_rules(cls: type[Entity], source: Source, data: dict[str, Any], problems: list[SpecProblem]) -> None:
    """What Azure ML's schemas require of component and step names and of declared inputs, which
    smalt's own entities (built in Python too) do not."""
    name = data.get("name")
    if (cls in (CommandComponent, PipelineComponent) and isinstance(name, str) and is_valid_name(name)
            and not _COMPONENT_NAME.fullmatch(name)):  # fmt: skip
        problems.append(source.problem(
            f"component names are lower-case letters, digits and underscores, starting with a letter; not {name!r}",
            ("name",),
        ))  # fmt: skip
    if cls in (PipelineJob, PipelineComponent) and isinstance(data.get("jobs"), dict):
        for key in data["jobs"]:
            if not _STEP_NAME.fullmatch(str(key)):
                problems.append(source.problem(
                    f"step names are Python identifiers in lower case (letters, digits, underscores); not {key!r}",
                    ("jobs", key),
                ))  # fmt: skip
    for pattern in _DECLARED_INPUTS.get(cls, []):
        for loc, container, key in _walk(data, pattern):
            if isinstance(container[key], dict) and "type" not in container[key]:
                types = ", ".join(get_args(InputType))
                problems.append(source.problem(f"a component's input says its type: one of {types}", loc))


_COLLECTED: ContextVar[list[str] | None] = ContextVar("smalt_spec_warnings", default=None)


@contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """Within this block, what a spec would warn of is appended to the list given, not raised as a
    Python warning: a server hands it to its client (the warnings module is not safe between
    threads)."""
    found: list[str] = []
    token = _COLLECTED.set(found)
    try:
        yield found
    finally:
        _COLLECTED.reset(token)


def _warn(message: str) -> None:
    collected = _COLLECTED.get()
    if collected is not None:
        collected.append(message)
    else:
        warnings.warn(SpecWarning(message), stacklevel=4)


def _ignore_unknown(cls: type[Entity], source: Source, data: dict[str, Any]) -> None:
    for pattern, known in _OPEN_FIELDS.get(cls, []):
        places = [((), data)] if not pattern else [(loc, c[k]) for loc, c, k in _walk(data, pattern)]
        for loc, value in places:
            if not isinstance(value, dict):
                continue
            fields = (PipelineComponent if value.get("type") == "pipeline" else known).model_fields
            for name in [k for k in value if k not in fields and k != "$schema"]:
                close = difflib.get_close_matches(str(name), list(fields), n=1)
                if close and close[0] not in value:
                    continue  # a misspelt key (`comand:` and no `command:`): an error, said as one
                said = f"; did you mean '{close[0]}'?" if close else ""
                if len(fields) <= 6:
                    said += f"; smalt reads only {', '.join(fields)} here"
                problem = source.problem(f"ignored, as Azure ML ignores it{said}", (*loc, name))
                _warn(str(problem))
                del value[name]


def _walk(data: Any, pattern: Loc, prefix: Loc = ()) -> Iterator[tuple[Loc, Any, Any]]:
    """Yield (loc, container, key) for each place ``pattern`` matches in ``data``."""
    if not pattern:
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        keys: list[Any] = (
            list(range(len(data))) if isinstance(data, list) else list(data) if isinstance(data, dict) else []
        )
    else:
        keys = [head] if isinstance(data, dict) and head in data else []
    for key in keys:
        if rest:
            yield from _walk(data[key], rest, (*prefix, key))
        else:
            yield (*prefix, key), data, key


def resolve_paths(cls: type[Entity], data: dict[str, Any], base_dir: Path) -> list[tuple[Loc, str]]:
    """Make the local paths of ``data`` absolute in place; return the (loc, path) that are missing."""
    missing: list[tuple[Loc, str]] = []
    for pattern in _PATH_FIELDS.get(cls, []):
        for loc, container, key in _walk(data, pattern):
            value = container[key]
            if not isinstance(value, str) or not is_local_path(value):
                continue
            resolved = resolve_local(value, base_dir)
            container[key] = resolved
            # A local datastore's folder is created when it is registered; other paths must exist.
            if cls is not Datastore and not Path(resolved).exists():
                missing.append((loc, resolved))
    return missing


def local_path_places(kind: str, data: dict[str, Any]) -> list[tuple[Loc, Any, Any]]:
    """(loc, container, key) of each path on the sender's machine in ``data``, an entity of
    ``kind`` as JSON: what a client uploads, and what a server must refuse to read."""
    cls = entity_class(kind, data, Source(data=data, file=None, base_dir=Path("/")))
    return [
        (loc, container, key)
        for pattern in _PATH_FIELDS.get(cls, [])
        for loc, container, key in _walk(data, pattern)
        if isinstance(container[key], str) and is_local_path(container[key])
    ]


def refuse_local_paths(kind: str, data: dict[str, Any]) -> None:
    """Raise if ``data``, an entity of ``kind`` a client sent, names a path on the client's machine:
    a server reads no such path (the SDK uploads local files and sends their URIs)."""
    for loc, container, key in local_path_places(kind, data):
        field = format_loc(loc)
        raise InvalidSpecError.one(
            f"{field}: {container[key]!r} is a path on the client's machine; the server reads no such path "
            "(the SDK uploads local files first and sends their URIs)", field,
        )  # fmt: skip


def validate(cls: type[E], source: Source) -> E:
    """Validate ``source.data`` as ``cls``: every problem, with file, line and field, or the entity."""
    data = dict(source.data)
    data.pop("$schema", None)
    problems: list[SpecProblem] = []
    if issubclass(cls, PipelineJob | PipelineComponent):
        from smalt.specs.pipeline import inline_components, refuse_unsupported_nodes

        refuse_unsupported_nodes(source, problems)
        inline_components(source, _load_component_file, problems)
        data = {k: v for k, v in source.data.items() if k != "$schema"}
    _ignore_unknown(cls, source, data)
    _azure_rules(cls, source, data, problems)
    _read_files(cls, source, data, problems)
    for loc, path in resolve_paths(cls, data, source.base_dir):
        problems.append(source.problem(f"path {path!r} does not exist", loc))
    try:
        with raw_validation_errors():
            entity = cls.model_validate(data)
    except ValidationError as exc:
        described = problems_of(cls, exc, data)
        problems.extend(source.problem(message, loc) for loc, message in described)
        entity = None
    if problems or entity is None:
        problems.sort(key=lambda p: (p.file != source.file, p.file or "", p.line or 0, p.field))
        if len(problems) == 1 and NOT_SUPPORTED in problems[0].message:
            raise InvalidSpecError.refusal(problems[0])  # a feature smalt lacks, and nothing else: one line
        raise InvalidSpecError(problems, summary=_summary(cls, source, len(problems)))
    if isinstance(entity, Located):
        from smalt.specs.pipeline import line_map

        entity.remember_lines(line_map(source))
    return entity


def _load_component_file(path: Path) -> Entity:
    """A component a pipeline names by file (``component: ./train.yml``), checked in its own file."""
    source = read_yaml(path)
    check_kind("component", source)
    return validate(entity_class("component", source.data, source), source)


def _summary(cls: type[Entity], source: Source, count: int) -> str:
    what = getattr(cls, "kind", None) or cls.__name__
    where = f" in {source.file}" if source.file else ""
    return f"Invalid {what} spec{where} ({count} problem{'s' if count != 1 else ''})"


def entity_class(kind: str, data: dict[str, Any], source: Source) -> type[Entity]:
    """The class for ``kind``, dispatching on the spec's ``type`` where the noun has several."""
    if kind not in KINDS:
        raise InvalidSpecError([SpecProblem(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")])
    by_type = _BY_TYPE.get(kind)
    type_ = data.get("type", next(iter(by_type)) if by_type else None)
    if isinstance(type_, str) and type_.lower() in NOT_YET.get(kind, ()):
        message = f"{kind} type '{type_}' is not supported yet"
        if by_type:
            message += f"; smalt runs {', '.join(by_type)} {kind}s"
        raise InvalidSpecError.refusal(source.problem(message, ("type",)))
    if by_type is None:
        return KINDS[kind]
    if type_ not in by_type:
        message = f"{type_!r} is not a {kind} type; one of {', '.join(by_type)}"
        raise InvalidSpecError([source.problem(message, ("type",))])
    return by_type[type_]


def load_package_deployment(path: Path) -> OnlineDeployment:
    """An online deployment file read for ``smalt model package``: a package belongs to no
    endpoint, and the entity requires one, so it is filled only when the file names none; its
    scoring script must be in its code folder."""
    from smalt.entities.endpoint import PACKAGE_ENDPOINT
    from smalt.specs.references import check_scoring_script
    from smalt.specs.yaml_source import read_yaml

    named = bool(read_yaml(path).data.get("endpoint_name"))
    deployment = load("online-deployment", path, params=None if named else {"endpoint_name": PACKAGE_ENDPOINT})
    assert isinstance(deployment, OnlineDeployment)
    check_scoring_script(deployment.code_configuration, str(path))
    return deployment


def load(
    kind: str, file: str | Path, *, overrides: list[str] | None = None, params: dict[str, Any] | None = None
) -> Entity:
    """Load a YAML file as the entity ``kind`` names; ``overrides`` are ``--set key=value`` items.

    ``params`` (``--name``, ``--version`` and other flags) win over the file, as in ``az ml``.
    """
    source = read_yaml(Path(file))
    check_kind(kind, source)  # a file of another kind is refused, never created as this one
    problems = apply_overrides(source, overrides or [])
    for key, value in (params or {}).items():
        if value is not None:
            source.data[key] = value
            source.overridden.add(key)
    if problems:
        raise InvalidSpecError(problems, summary=f"Invalid --set in command for {file}")
    return validate(entity_class(kind, source.data, source), source)


def from_values(
    kind: str, values: dict[str, Any], *, overrides: list[str] | None = None, base_dir: Path | None = None
) -> Entity:
    """Build an entity from flags alone (``smalt data create --name N --path P --set tags.a=b``)."""
    source = Source(data={k: v for k, v in values.items() if v is not None}, file=None, base_dir=base_dir or Path.cwd())
    problems = apply_overrides(source, overrides or [])
    if problems:
        raise InvalidSpecError(problems, summary="Invalid --set")
    return validate(entity_class(kind, source.data, source), source)


def prepare(entity: E, *, base_dir: Path | None = None) -> E:
    """Check an entity built in Python the way a YAML file is checked (paths resolved, must exist)."""
    source = Source(
        data=entity.model_dump(mode="python", exclude_none=True), file=None, base_dir=base_dir or Path.cwd()
    )
    prepared = validate(type(entity), source)
    if isinstance(entity, Located) and isinstance(prepared, Located):
        prepared.remember_lines(entity._lines)  # where a loaded file wrote each field stays known
    return prepared


def _typed_loader(kind: str, cls: type[E]) -> Callable[..., E]:
    def loader(source: str | Path, **kwargs: Any) -> E:
        entity = load(kind, source, **kwargs)
        assert isinstance(entity, cls)
        return entity

    loader.__name__ = f"load_{kind}"
    loader.__doc__ = f"Load a {kind} YAML file (Azure ML CLI v2 schema) as a validated entity."
    return loader


load_data = _typed_loader("data", Data)
load_environment = _typed_loader("environment", Environment)
load_model = _typed_loader("model", Model)
load_compute = _typed_loader("compute", Compute)
load_datastore = _typed_loader("datastore", Datastore)
load_connection = _typed_loader("connection", WorkspaceConnection)
load_online_endpoint = _typed_loader("online-endpoint", OnlineEndpoint)
load_online_deployment = _typed_loader("online-deployment", OnlineDeployment)


def load_component(source: str | Path, **kwargs: Any) -> CommandComponent | PipelineComponent:
    """Load a component YAML file (``type: command`` or ``type: pipeline``)."""
    entity = load("component", source, **kwargs)
    assert isinstance(entity, CommandComponent | PipelineComponent)
    return entity


def load_job(source: str | Path, **kwargs: Any) -> CommandJob | PipelineJob:
    """Load a job YAML file (``type: command`` or ``type: pipeline``)."""
    entity = load("job", source, **kwargs)
    assert isinstance(entity, CommandJob | PipelineJob)
    return entity
