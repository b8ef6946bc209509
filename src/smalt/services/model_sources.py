"""Where a model version's files come from, and what its MLmodel file says.

A model can be registered from a local file or folder (uploaded), a job's output
(``azureml://jobs/<job>/outputs/<out>[/paths/<p>]``; ``outputs/artifacts`` is the job's run
artifacts, as in Azure ML), an MLflow run (``runs:/<run>/<path>``: the run's artifacts, or the model
it logged under that name, as MLflow 3 resolves it), a datastore URI, or a URL.
Each source is checked before anything is registered: the job exists and completed, the output
exists, and there are files at the path.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalt.entities import Model
from smalt.errors import InvalidSpecError, SmaltError, SpecProblem
from smalt.services.datastores import DatastoreService
from smalt.services.workspace import WorkspaceContext
from smalt.specs import is_local_path, parse_datastore_uri

_JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/?(?P<path>.*))?$")
_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.*))?$")
#: An input example or signature larger than this is described, not copied into the version.
_MAX_INLINE = 64 * 1024


@dataclass(frozen=True)
class Source:
    """A model's files as a datastore URI (or a URL), and the job that produced them."""

    path: str
    job_name: str | None = None


def _problem(message: str, hint: str | None = None) -> InvalidSpecError:
    return InvalidSpecError([SpecProblem(message, "path")], summary="The model cannot be registered", hint=hint)


def resolve_source(ws: WorkspaceContext, model: Model) -> Source:
    """Where ``model.path`` points, uploaded if local; raises when it holds no files."""
    datastores = DatastoreService(ws)
    path = model.path
    if is_local_path(path):
        local = Path(path.removeprefix("file://").removeprefix("file:")).expanduser()
        if not local.exists():
            raise _problem(f"no such file or folder: '{local}'")
        if local.is_dir() and not any(p.is_file() for p in local.rglob("*")):
            raise _problem(f"the folder '{local}' has no files", "save the model into it first")
        store = model.datastore.removeprefix("azureml:") if model.datastore else None
        return Source(str(datastores.upload(local, store) if store else datastores.upload(local)), model.job_name)
    job_output = _JOB_OUTPUT.match(path)
    if job_output is not None:
        return _job_output(ws, job_output["job"], job_output["output"], (job_output["path"] or "").strip("/"))
    runs = _RUNS.match(path)
    if runs is not None:
        return _run_path(ws, runs["run"], (runs["path"] or "").strip("/"))
    uri = parse_datastore_uri(path)
    if uri is not None:
        datastores.get(uri.datastore)  # an unknown datastore is an error now, not at use
        if not has_files(datastores, str(uri)):
            raise _problem(f"there are no files at {path}", f"smalt datastore show --name {uri.datastore}")
        return Source(path, model.job_name)
    if path.startswith("azureml:"):
        raise _problem(
            f"{path!r} is not a path",
            "write a local path, azureml://jobs/<job>/outputs/<output>/paths/<path>, runs:/<run>/<path>, "
            "an azureml://datastores/... URI or a URL",
        )
    return Source(path, model.job_name)


def _job_output(ws: WorkspaceContext, job_name: str, output: str, sub: str) -> Source:
    """A path inside a completed job's output (or its run artifacts) that holds files."""
    from smalt.services.jobs import JobService

    uri = JobService(ws).output_uri(job_name, output, sub)
    if not has_files(DatastoreService(ws), uri):
        raise _problem(f"job '{job_name}' wrote no files at {output}/{sub or ''}".rstrip("/"),
                       f"smalt job download --name {job_name} --all shows what it wrote")  # fmt: skip
    return Source(uri, job_name)


def _run_path(ws: WorkspaceContext, run_id: str, sub: str) -> Source:
    """``runs:/<run>/<sub>`` as MLflow 3 resolves it: ``sub`` in the completed run's artifacts when
    files are there, else in the model the run logged under the name ``sub`` starts with."""
    from smalt.services.jobs import JobService

    uri = JobService(ws).output_uri(run_id, "artifacts", sub)
    if has_files(DatastoreService(ws), uri):
        return Source(uri, run_id)
    logged = logged_model_source(ws, run_id, sub) if sub else None
    if logged is not None:
        return Source(logged[0], run_id)
    from smalt.services.tracking import TrackingService

    names = sorted({m.record.name for m in TrackingService(ws).logged_models_of_run(run_id)})
    logged_names = f"the models it logged: {', '.join(names)}" if names else "it logged no model (log_model)"
    what = f"no files at '{sub}' in its artifacts, and no model it logged is named '{sub.partition('/')[0]}'"
    raise _problem(
        f"run '{run_id}' has " + (what if sub else "no artifacts"),
        f"runs:/{run_id}/<name> names an artifact folder or a model logged with log_model(name=<name>); "
        f"{logged_names}; smalt job download --name {run_id} --all shows its artifacts",
    )


def logged_model_source(ws: WorkspaceContext, run_id: str, sub: str) -> tuple[str, str] | None:
    """Where ``runs:/<run_id>/<sub>`` is inside the newest model that run logged under the name of
    ``sub``'s first part (``<name>[/<path>]``), and that model's id; None when it logged no such
    model, or no file is there."""
    from smalt.services.tracking import TrackingService, datastore_path

    name, _, inside = sub.partition("/")
    for logged in TrackingService(ws).logged_models_of_run(run_id):
        if logged.record.name != name:
            continue
        root = datastore_path(logged.record.artifact_location.rstrip("/"))
        path = f"{root}/{inside}" if inside else root
        if parse_datastore_uri(path) is not None and has_files(DatastoreService(ws), path):
            return path, logged.record.model_id
    return None


def has_files(datastores: DatastoreService, uri: str) -> bool:
    """True when ``uri`` is a file, or a folder with at least one file in it."""
    parsed = parse_datastore_uri(uri)
    assert parsed is not None
    location = datastores.location(parsed.datastore)
    target = location.join(parsed.path)
    try:
        if location.fs.isfile(target):
            return True
        return location.fs.isdir(target) and bool(location.fs.find(target))
    except OSError:
        return False


def read_mlmodel(ws: WorkspaceContext, path: str) -> dict[str, Any]:
    """What an MLflow model folder says of itself: flavors, signature, input example, Python
    environment. Raises when ``path`` has no MLmodel file."""
    datastores = DatastoreService(ws)
    folder = path.rstrip("/")
    if folder.endswith("/MLmodel"):
        folder = folder.removesuffix("/MLmodel")

    def read(name: str) -> bytes | None:
        try:
            return datastores.read_bytes(f"{folder}/{name}")
        except SmaltError:
            return None

    raw = read("MLmodel")
    if raw is None:
        raise _problem(
            f"type mlflow_model needs a folder with an MLmodel file; {path} has none",
            "save the model with mlflow.<flavor>.save_model or log_model, or use type: custom_model",
        )
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe")
    try:
        data = yaml.load(raw)
    except YAMLError as exc:
        raise _problem(f"the MLmodel file at {folder} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise _problem(f"the MLmodel file at {folder} is not a mapping")
    found = data.get("flavors")
    flavors: dict[str, Any] = found if isinstance(found, dict) else {}
    info: dict[str, Any] = {
        key: data[key] for key in ("mlflow_version", "model_uuid", "run_id", "utc_time_created") if key in data
    }
    signature = data.get("signature")
    if isinstance(signature, dict):
        info["signature"] = {k: _json_field(v) for k, v in signature.items()}
    example = data.get("saved_input_example_info")
    if isinstance(example, dict):
        info["input_example"] = {"info": example}
        artifact = example.get("artifact_path")
        content = read(str(artifact)) if artifact else None
        if content is not None and len(content) <= _MAX_INLINE:
            with contextlib.suppress(ValueError):
                info["input_example"]["value"] = json.loads(content)
    info["python_env"] = _python_env(flavors, read, yaml)
    return {"flavors": flavors, "mlflow": info}


def _json_field(value: Any) -> Any:
    # MLflow writes the signature's inputs and outputs as JSON inside YAML strings.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _python_env(flavors: dict[str, Any], read: Any, yaml: Any) -> dict[str, Any]:
    """The Python version and requirements the model was saved with (python_env.yaml, requirements.txt)."""
    env: dict[str, Any] = {}
    found = flavors.get("python_function")
    pyfunc: dict[str, Any] = found if isinstance(found, dict) else {}
    if pyfunc.get("python_version"):
        env["python"] = str(pyfunc["python_version"])
    raw = read("python_env.yaml")
    if raw is not None:
        try:
            data = yaml.load(raw)
        except Exception:  # noqa: BLE001 - a broken optional file leaves the field out
            data = None
        if isinstance(data, dict) and data.get("python"):
            env["python"] = str(data["python"])
    requirements = read("requirements.txt")
    if requirements is not None:
        env["requirements"] = [
            line.strip() for line in requirements.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("#")
        ]  # fmt: skip
    return env


def check_triton(ws: WorkspaceContext, path: str) -> None:
    """A Triton model is a model repository: a folder of models, each with numbered version folders."""
    parsed = parse_datastore_uri(path)
    if parsed is None:
        return
    location = DatastoreService(ws).location(parsed.datastore)
    target = location.join(parsed.path)
    if not location.fs.isdir(target):
        raise _problem(
            f"type triton_model needs a folder (a Triton model repository); {path} is a file",
            "lay it out as <model>/<version>/<file>, with <model>/config.pbtxt",
        )


def mlflow_conda(model_files: Path) -> Path | None:
    """The ``conda.yaml`` an MLflow model folder carries: what it runs in when no environment is named."""
    return next(iter(sorted(model_files.rglob("conda.yaml"))), None)
