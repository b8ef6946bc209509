"""azure-ai-ml is the oracle of what an Azure ML file means (issue 18, item 5).

Every file at the top of ``corpus/<kind>/`` is read twice: by azure-ai-ml's ``load_<kind>``, followed
by the checks azure-ai-ml makes on its own before it sends anything to the service, and by
``smalt.specs.load``. The two readings must agree:

* azure-ai-ml refuses the file  =>  smalt refuses it;
* azure-ai-ml accepts the file  =>  smalt accepts it, or refuses it as "not supported yet" (always so
  for a kind smalt does not have: batch endpoints and deployments, schedules, connections, ...);
* both accept it                =>  both read the same: name, version, type and, for jobs and
  components, each port's type and mode, the command, the compute and the environment, step by step.

A failure prints EXPECTED (azure-ai-ml), ACTUAL (smalt), the DIFF and what to fix. The files that a
corpus file names (code, conda files, data, models) live in subfolders of its kind's folder.
"""

from __future__ import annotations

import difflib
import functools
import pprint
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from smalt import specs
from smalt.errors import InvalidSpecError

pytestmark = pytest.mark.filterwarnings(
    # azure-ai-ml's schemas use marshmallow 3 APIs that marshmallow 4 changes or removes.
    "ignore::marshmallow.warnings.Marshmallow4Warning",
    # load_batch_deployment, given a file without `type`, builds a deprecated base class.
    "ignore:This class is intended as a base class:UserWarning",
)

CORPUS = Path(__file__).resolve().parent / "corpus"
NOT_SUPPORTED = "not supported yet"


@dataclass(frozen=True)
class Kind:
    """A folder of the corpus: azure-ai-ml's load function, and the noun a user would give smalt."""

    azure_loader: str
    noun: str
    smalt_has_it: bool = True


KINDS: dict[str, Kind] = {
    "job": Kind("load_job", "job"),
    "component": Kind("load_component", "component"),
    "data": Kind("load_data", "data"),
    "environment": Kind("load_environment", "environment"),
    "model": Kind("load_model", "model"),
    "compute": Kind("load_compute", "compute"),
    "datastore": Kind("load_datastore", "datastore"),
    "online-endpoint": Kind("load_online_endpoint", "online-endpoint"),
    "online-deployment": Kind("load_online_deployment", "online-deployment"),
    # Kinds smalt lacks, each given to the command a user would most likely try.
    "batch-endpoint": Kind("load_batch_endpoint", "online-endpoint", smalt_has_it=False),
    "batch-deployment": Kind("load_batch_deployment", "online-deployment", smalt_has_it=False),
    "schedule": Kind("load_schedule", "job", smalt_has_it=False),
    "connection": Kind("load_connection", "connection"),
    "workspace": Kind("load_workspace", "workspace", smalt_has_it=False),
    "registry": Kind("load_registry", "registry", smalt_has_it=False),
}
#: ``az ml batch-deployment create`` reads a deployment by its ``type``.
BATCH_DEPLOYMENT_LOADERS = {
    "model": "load_model_batch_deployment",
    "pipeline": "load_pipeline_component_batch_deployment",
}

CORPUS_FILES = sorted(CORPUS.glob("*/*.yml"))

#: Where smalt differs from azure-ai-ml on purpose: (azure-ai-ml's verdict, smalt's, why). Each is
#: still checked: both verdicts must stay as written here, so that a change on either side shows;
#: what smalt reads is then not compared. docs/decisions.md says the same.
DIFFERENCES: dict[str, tuple[str, str, str]] = {
    "datastore/s3.yml": ("refuses", "accepts", "smalt's own datastore type, for storage beyond Azure"),
    "datastore/gcs.yml": ("refuses", "accepts", "smalt's own datastore type, for storage beyond Azure"),
    "datastore/local.yml": ("refuses", "accepts", "smalt's own datastore type: a folder on this machine"),
    "environment/invalid_conda_only.yml": (
        "refuses", "accepts", "a conda file alone is enough for a local virtual environment; Azure needs an image",
    ),
    "job/invalid_command_missing_environment.yml": (
        "refuses", "accepts", "a command job with no environment runs in the Python smalt runs on",
    ),
    "online-deployment/invalid_missing_instance_type.yml": (
        "refuses", "accepts", "instances are local processes: there is no VM size to choose",
    ),
    "job/command_undeclared_binding.yml": (
        "accepts", "refuses", "Azure ML's service refuses it at submission; smalt says so when it reads the file",
    ),
    "job/pipeline_step_unknown_input.yml": (
        "accepts", "accepts", "azure-ai-ml drops an input the component does not declare; smalt keeps it and "
        "refuses it when the pipeline is validated (`the component has no input ...`)",
    ),
}


def corpus_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# -- reading a file both ways ---------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """What one reader made of a file: the entity, or why it refused the file."""

    entity: Any = None
    refusal: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.refusal is None


@functools.cache
def raw_yaml(path: Path) -> Any:
    """The file as written, to know which keys it writes (what is unwritten is each reader's default)."""
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) or {}


@functools.cache
def azure_loaders() -> Any:
    """azure-ai-ml's load functions, imported once per session (the import takes over a second)."""
    from azure.ai.ml.entities import _load_functions

    return _load_functions


def offline_checks(entity: Any) -> str | None:
    """The checks azure-ai-ml makes on its own, without the service: the problems found, or None.

    Jobs and components: ``_validate()``, what ``ml_client.jobs.validate`` and
    ``ml_client.components.validate`` run locally. Deployments and command jobs: ``_validate()``
    (and a deployment's code configuration's), which ``_to_rest_object`` runs before the request
    is built. Environments: ``validate()``, the same in theirs.
    """
    from azure.ai.ml.entities import Deployment, Environment, Job
    from azure.ai.ml.entities._validation import PathAwareSchemaValidatableMixin

    if isinstance(entity, PathAwareSchemaValidatableMixin):
        result = entity._validate(raise_error=False)
        if not result.passed:
            return "; ".join(f"{where}: {message}" for where, message in result.error_messages.items())
    elif isinstance(entity, Job | Deployment) and hasattr(entity, "_validate"):
        entity._validate()
    if isinstance(entity, Deployment) and entity.code_configuration is not None:
        entity.code_configuration._validate()
    if isinstance(entity, Environment):
        entity.validate()
    return None


@functools.cache
def azure_reading(path: Path) -> Reading:
    import marshmallow
    from azure.ai.ml.exceptions import MlException

    loader = KINDS[path.parent.name].azure_loader
    if path.parent.name == "batch-deployment":
        loader = BATCH_DEPLOYMENT_LOADERS.get(str(raw_yaml(path).get("type")), loader)
    try:
        entity = getattr(azure_loaders(), loader)(path)
        problems = offline_checks(entity)
    except (MlException, marshmallow.ValidationError) as exc:
        return Reading(refusal=_condensed(str(exc)))
    return Reading(refusal=problems) if problems else Reading(entity=entity)


def smalt_reading(path: Path) -> Reading:
    # A warning (a key smalt ignores) does not change the verdict, as azure-ai-ml's do not.
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            entity = specs.load(KINDS[path.parent.name].noun, path)
        except InvalidSpecError as exc:
            return Reading(refusal=str(exc))
    return Reading(entity=entity, warnings=tuple(str(w.message) for w in warned))


_BOILERPLATE = re.compile(r" (?:Visit this link|The easiest way|If you are trying|If the datastore type|Resolutions:)")


def _condensed(message: str) -> str:
    """azure-ai-ml's error without its boilerplate: ``path: message`` pairs where it gives them."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)  # terminal colours
    pairs = re.findall(r'"message": "((?:[^"\\]|\\.)*)",\s*"path": "([^"]*)"', message)
    if pairs:
        message = "; ".join(f"{where}: {what}" for what, where in pairs)
        message = message.replace("\\n", " ").replace('\\"', '"').removeprefix("*: ")
    message = _BOILERPLATE.split(" ".join(message.split()))[0]
    return message if len(message) <= 500 else message[:500] + " [...]"


# -- what a reading means: the fields that show a misreading -------------------------------------
#: Port types and modes Azure ML still reads under older names, and what it reads them as.
LEGACY_TYPES = {"path": "uri_folder"}
LEGACY_MODES = {"input": {"mount": "ro_mount"}, "output": {"mount": "rw_mount"}}
#: smalt runs serverless compute, and a job that names no compute, on its built-in `local` compute.
LOCAL_COMPUTE = "<local compute>"
#: A step's component written inline or in a local file: azure-ai-ml names neither.
LOCAL_COMPONENT = "<inline or file>"
#: What Azure ML makes of an output declared with no value.
DEFAULT_OUTPUT = {"type": "uri_folder", "mode": None}


def _ref(value: Any) -> Any:
    """A reference to an asset or a compute; azure-ai-ml drops the `azureml:` of the short form."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("azureml:") and not value.startswith("azureml://"):
            return value.removeprefix("azureml:")
    return value


def _compute(value: Any) -> Any:
    ref = _ref(value)
    return LOCAL_COMPUTE if ref in (None, "local", "serverless") else ref


def _version(value: Any) -> str | None:
    return None if value is None else str(value)


def _environment(env: Any) -> Any:
    """A reference as written, or what an inline (or registered) environment runs in."""
    if env is None or isinstance(env, str):
        return _ref(env)
    return {"image": env.image, "conda_file": env.conda_file is not None, "build": env.build is not None}


def _port(value: Any, direction: str) -> Any:
    """An input or output as its type and mode; a binding as itself; a literal as its type."""
    value = getattr(value, "_data", value)  # azure-ai-ml wraps the ports of nodes and pipelines
    if value is None:
        return None
    if isinstance(value, bool):
        return {"type": "boolean", "mode": None}
    if isinstance(value, int):
        return {"type": "integer", "mode": None}
    if isinstance(value, float):
        return {"type": "number", "mode": None}
    if isinstance(value, str):
        if value.strip().startswith("${{"):
            return {"binding": re.sub(r"\s+", "", value)}
        return {"type": "string", "mode": None}
    type_, mode = (value.get("type"), value.get("mode")) if isinstance(value, dict) else (value.type, value.mode)
    type_ = None if type_ is None else str(type_)
    mode = None if mode is None else str(mode)
    return {"type": LEGACY_TYPES.get(type_ or "", type_), "mode": LEGACY_MODES[direction].get(mode or "", mode)}


def _ports(ports: Any, direction: str) -> dict[str, Any]:
    return {str(k): _port(v, direction) for k, v in dict(ports or {}).items()}


def _mapping(raw: Any, *path: str) -> dict[str, Any]:
    """The mapping at ``path`` in the file as written, or {}."""
    for key in path:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw if isinstance(raw, dict) else {}


def _written(entity: Any, raw: Any, fields: tuple[str, ...], convert: Any = None) -> dict[str, Any]:
    """The ``fields`` the file writes, as ``entity`` holds them."""
    convert = convert or (lambda value: value)
    return {f: convert(getattr(entity, f, None)) for f in fields if f in raw}


def _is_local(component: Any) -> bool:
    return not isinstance(component, str | type(None))


@dataclass(frozen=True)
class Reader:
    """Where azure-ai-ml and smalt keep the same thing in different places."""

    azure: bool

    def job_ports(self, job: Any, direction: str) -> dict[str, Any]:
        ports = job.inputs if direction == "input" else job.outputs
        if self.azure and _is_local(getattr(job, "component", None)):
            # What a command job declares, as azure-ai-ml derives it from the values it is given.
            ports = job.component.inputs if direction == "input" else job.component.outputs
        return _ports(ports, direction)

    def pipeline_outputs(self, job: Any) -> dict[str, Any]:
        outputs = _ports(job.outputs, "output")
        if self.azure:
            return {k: DEFAULT_OUTPUT if v is None else v for k, v in outputs.items()}
        if _is_local(job.component):  # the top-level `component:` form: the component's outputs
            outputs = {**_ports(job.component.outputs, "output"), **outputs}
        return outputs

    def steps(self, pipeline: Any) -> dict[str, Any]:
        steps = dict(pipeline.jobs or {})
        if not steps and not self.azure and _is_local(getattr(pipeline, "component", None)):
            steps = dict(pipeline.component.jobs or {})
        return steps

    def step_output(self, value: Any) -> Any:
        port = _port(value, "output")
        return DEFAULT_OUTPUT if self.azure and port is None else port

    def datastore_type(self, store: Any) -> str:
        if not self.azure:
            return str(store.type)
        from azure.ai.ml._utils.utils import camel_to_snake

        return str(camel_to_snake(getattr(store.type, "value", store.type)))

    def credentials(self, store: Any) -> str | None:
        credentials = store.credentials
        if not self.azure:
            return None if credentials is None else credentials.type
        return {
            "AccountKeyConfiguration": "account_key",
            "SasTokenConfiguration": "sas_token",
            "ServicePrincipalConfiguration": "service_principal",
            "CertificateConfiguration": "certificate",
        }.get(type(credentials).__name__)


def _step(reader: Reader, node: Any, raw: Any) -> dict[str, Any]:
    """A step: the ports the file gives it values for, its component, compute, command, environment."""
    inputs, outputs = dict(node.inputs or {}), dict(node.outputs or {})
    step: dict[str, Any] = {
        "type": str(node.type),
        "component": _ref(node.component) if isinstance(node.component, str) else LOCAL_COMPONENT,
        "compute": _compute(node.compute),
        "inputs": {k: _port(inputs.get(k), "input") for k in _mapping(raw, "inputs")},
        "outputs": {k: reader.step_output(outputs.get(k)) for k in _mapping(raw, "outputs")},
    }
    if step["type"] == "command":
        local = node.component if _is_local(node.component) else None
        step["command"] = getattr(node, "command", None) or getattr(local, "command", None)
        step["environment"] = _environment(getattr(node, "environment", None) or getattr(local, "environment", None))
    return step


def _raw_steps(path: Path, raw: Any) -> dict[str, Any]:
    """The steps as written: in the file, or in the pipeline component file it runs."""
    component = raw.get("component")
    if "jobs" in raw or not isinstance(component, str):
        return _mapping(raw, "jobs")
    file = path.parent / component.removeprefix("file:")
    return _mapping(raw_yaml(file.resolve()), "jobs") if file.is_file() else {}


def _job_or_component(kind: str, reader: Reader, entity: Any, path: Path, raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": entity.name, "type": str(entity.type)}
    if kind == "component":
        out["version"] = _version(entity.version)
    if out["type"] == "command":
        out["command"] = entity.command
        out["environment"] = _environment(entity.environment)
        if kind == "job":
            out["inputs"], out["outputs"] = reader.job_ports(entity, "input"), reader.job_ports(entity, "output")
        else:
            out["inputs"], out["outputs"] = _ports(entity.inputs, "input"), _ports(entity.outputs, "output")
    elif out["type"] == "pipeline":
        out["inputs"] = _ports(entity.inputs, "input")
        out["outputs"] = reader.pipeline_outputs(entity) if kind == "job" else _ports(entity.outputs, "output")
        raw_steps = _raw_steps(path, raw)
        out["steps"] = {k: _step(reader, node, raw_steps.get(k)) for k, node in reader.steps(entity).items()}
        if kind == "job":
            settings, written = entity.settings, _mapping(raw, "settings")
            out["settings"] = {
                "default_compute": _compute(getattr(settings, "default_compute", None)),
                **_written(settings, written, ("default_datastore",), _ref),
                **_written(settings, written, ("continue_on_step_failure", "force_rerun")),
            }
    if kind == "job":
        out["compute"] = _compute(entity.compute)
        out.update(_written(entity, raw, ("display_name", "experiment_name")))
    return out


def view(kind: str, entity: Any, path: Path, *, azure: bool) -> dict[str, Any]:
    """What ``entity``, one reader's reading of ``path``, means in the fields that show a misreading."""
    reader, raw = Reader(azure), raw_yaml(path)
    if kind in ("job", "component"):
        return _job_or_component(kind, reader, entity, path, raw)
    out: dict[str, Any] = {"name": entity.name}
    if kind in ("data", "model"):
        out.update(version=_version(entity.version), type=str(entity.type), **_written(entity, raw, ("stage",)))
    elif kind == "environment":
        out.update(version=_version(entity.version), runs_in=_environment(entity))
        out.update(_written(entity, raw, ("os_type",), lambda value: str(value).lower()))
    elif kind == "compute":
        out["type"] = str(entity.type)
        sizes = ("size", "tier", "min_instances", "max_instances", "idle_time_before_scale_down", "location")
        out.update(_written(entity, raw, sizes))
    elif kind == "datastore":
        out.update(type=reader.datastore_type(entity), credentials=reader.credentials(entity))
        where = ("account_name", "container_name", "filesystem", "file_share_name", "protocol", "endpoint")
        out.update(_written(entity, raw, where))
    elif kind == "online-endpoint":
        out["auth_mode"] = entity.auth_mode
        out.update(_written(entity, raw, ("traffic", "mirror_traffic"), lambda value: dict(value or {})))
    elif kind == "online-deployment":
        model = entity.model
        if _is_local(model):
            model = {"name": model.name, "version": _version(model.version), "type": str(model.type)}
        out.update(
            endpoint_name=entity.endpoint_name,
            model=_ref(model),
            environment=_environment(entity.environment),
            scoring_script=getattr(entity.code_configuration, "scoring_script", None),
        )
        out.update(_written(entity, raw, ("instance_type", "instance_count")))
    else:
        out["type"] = getattr(entity, "type", None)
    return out


# -- the oracle -----------------------------------------------------------------------------------
def fail(path: Path, headline: str, expected: Any, actual: Any, fix: str) -> None:
    """Fail with EXPECTED, ACTUAL, DIFF and HOW TO FIX, as MLflow's schema test does."""

    def shown(value: Any) -> str:
        return value if isinstance(value, str) else pprint.pformat(value, width=100)

    lines = [f"{corpus_id(path)}: {headline}"]
    lines += ["EXPECTED (azure-ai-ml):", shown(expected), "ACTUAL (smalt):", shown(actual)]
    if not isinstance(expected, str):
        diff = difflib.unified_diff(shown(expected).splitlines(), shown(actual).splitlines(), lineterm="", n=1)
        lines += ["DIFF:", *list(diff)[2:]]
    lines.append(f"HOW TO FIX: {fix} (src/smalt/specs, src/smalt/entities)")
    pytest.fail("\n".join(lines), pytrace=False)


def _accepted(reading: Reading) -> str:
    warned = "".join(f"\n  warning: {message}" for message in reading.warnings)
    return f"accepted as {type(reading.entity).__name__}{warned}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=corpus_id)
def test_smalt_reads_the_file_as_azure_ml_does(path: Path) -> None:
    kind = KINDS[path.parent.name]
    expected, actual = azure_reading(path), smalt_reading(path)
    load = f"smalt.specs.load({kind.noun!r}, ...)"
    if corpus_id(path) in DIFFERENCES:
        azure, smalt, why = DIFFERENCES[corpus_id(path)]
        verdicts = tuple("accepts" if r.accepted else "refuses" for r in (expected, actual))
        if verdicts != (azure, smalt):
            fail(
                path, f"a documented difference no longer holds ({why}).",
                f"azure-ai-ml {azure}, smalt {smalt}", f"azure-ai-ml {verdicts[0]}, smalt {verdicts[1]}",
                "update DIFFERENCES (and docs/decisions.md) or restore the behaviour",
            )  # fmt: skip
        return
    if not expected.accepted:
        if actual.accepted:
            fail(
                path, "azure-ai-ml refuses this file; smalt accepts it.",
                f"refused: {expected.refusal}", _accepted(actual), f"make {load} refuse it.",
            )  # fmt: skip
        return
    if not actual.accepted:
        if NOT_SUPPORTED not in (actual.refusal or ""):
            fail(
                path, f"azure-ai-ml accepts this file; smalt refuses it without saying {NOT_SUPPORTED!r}.",
                _accepted(expected), f"refused: {actual.refusal}",
                f"make {load} read it as azure-ai-ml does, or refuse it as {NOT_SUPPORTED!r}.",
            )  # fmt: skip
        return
    if not kind.smalt_has_it:
        fail(
            path, f"smalt has no {path.parent.name} kind, yet it reads this file as another kind.",
            _accepted(expected), _accepted(actual),
            f"make {load} refuse a {path.parent.name} file as {NOT_SUPPORTED!r}.",
        )  # fmt: skip
    expected_view = view(path.parent.name, expected.entity, path, azure=True)
    actual_view = view(path.parent.name, actual.entity, path, azure=False)
    if actual_view != expected_view:
        fail(
            path, "both accept this file, but smalt reads it otherwise.", expected_view, actual_view,
            f"make {load} hold what azure-ai-ml reads.",
        )  # fmt: skip


@pytest.mark.parametrize("kind", [name for name, kind in KINDS.items() if kind.smalt_has_it])
def test_corpus_has_files_azure_ml_accepts_and_files_it_refuses(kind: str) -> None:
    """Each kind smalt has is tried both ways, so that the oracle catches smalt erring either way."""
    readings = [azure_reading(path) for path in CORPUS_FILES if path.parent.name == kind]
    accepted = sum(reading.accepted for reading in readings)
    assert 0 < accepted < len(readings), f"corpus/{kind}: azure-ai-ml accepts {accepted} of {len(readings)} files"
