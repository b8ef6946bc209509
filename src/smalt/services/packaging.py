"""A model version as a Docker build context (``smalt model package``).

The context holds everything the scoring server needs, laid out as an online deployment has it::

    Dockerfile           FROM python:<the environment's X.Y>-slim, pip install, the entry point
    README.md            how to build, run and call it
    requirements.txt     the packages of the environment as smalt built it, name==version
    entrypoint.py        starts smalt_worker.py in HTTP mode on 0.0.0.0:${PORT:-5001}
    smalt_worker.py      smalt's scoring server (serving/worker.py: the standard library only)
    azureml-models/<model>/<version>/<model folder or file>
    code/                the deployment's scoring code, when it has some

Every path the entry point uses is taken relative to its own file, so the image and a plain
``python entrypoint.py`` in the folder serve alike: the second is how the context is tested
without Docker. The requirements are read from the environment smalt builds for the deployment
(the same ``ensure`` as an online deployment), so the image installs what was run here, pinned.

The context is written to a hidden sibling folder and renamed at the end: a failure (a model that
cannot be downloaded, an environment that does not build) leaves nothing behind.
"""

from __future__ import annotations

import io
import json
import os
import pprint
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from smalt.entities import Environment, InlineEnvironment, Model, OnlineDeployment
from smalt.entities.endpoint import InlineModel
from smalt.errors import InvalidSpecError, SpecProblem
from smalt.services.assets import AssetService
from smalt.services.datastores import DatastoreService
from smalt.services.model_sources import mlflow_conda
from smalt.services.workspace import WorkspaceContext
from smalt.specs.references import check_scoring_script, refuse_occupied

PORT = 5001
#: Where the image holds the context, as Azure ML's inference images do.
APP_DIR = "/var/azureml-app"
#: The seeded installer of a built environment: the base image brings its own.
_NOT_PINNED = {"pip"}

_CUSTOM_NEEDS_CODE = """\
code_configuration:
  code: ./src
  scoring_script: score.py"""


@dataclass
class _Plan:
    """What goes into the context, worked out before anything is written."""

    model: Model
    deployment: OnlineDeployment | None
    python: str = ""
    requirements: list[str] = field(default_factory=list)
    base_image: str | None = None
    notes: list[str] = field(default_factory=list)


class PackagingService:
    """Write a model version, its scoring code and its environment as a Docker build context."""

    def __init__(self, workspace: WorkspaceContext) -> None:
        self._ws = workspace
        self._models: AssetService[Model] = AssetService(workspace, Model)

    def package(
        self,
        name: str,
        version: str | None = None,
        label: str | None = None,
        *,
        deployment_file: str | Path | None = None,
        output: str | Path,
    ) -> Path:
        """Write the build context of model ``name`` (``version``, or ``label``, default latest) to
        ``output``, a new or empty folder; returns its absolute path.

        An MLflow model needs no deployment file: it is served with no code, in the environment
        of its own ``conda.yaml``. Any other model needs a deployment file (Azure ML's
        ``managedOnlineDeployment`` YAML) with ``code_configuration``; its ``environment`` and
        ``environment_variables`` are packaged too, its endpoint and instance settings ignored.
        """
        target = Path(output).absolute()
        refuse_occupied(target)
        model = self._models.get(name, version, None if version else (label or "latest"))
        deployment = self._deployment(Path(deployment_file), model) if deployment_file is not None else None
        return self._package(model, deployment, deployment_file, target)

    def package_deployment(self, name: str, version: str | None, label: str | None,
                           deployment: OnlineDeployment | None, output: Path) -> Path:  # fmt: skip
        """``package`` with the deployment as an entity a client sent (its code folder uploaded:
        a datastore URI, copied here first)."""
        refuse_occupied(output)
        model = self._models.get(name, version, None if version else (label or "latest"))
        if deployment is not None:
            code = deployment.code_configuration
            if code is not None and not Path(code.code).is_dir():
                local = DatastoreService(self._ws).download(code.code, output.parent / f".{output.name}.code")
                code = code.model_copy(update={"code": str(local)})
                deployment = deployment.model_copy(update={"code_configuration": code})
            check_scoring_script(deployment.code_configuration)
            self._check_deployment(deployment, model, None)
        try:
            return self._package(model, deployment, None, output)
        finally:
            shutil.rmtree(output.parent / f".{output.name}.code", ignore_errors=True)

    def _package(self, model: Model, deployment: OnlineDeployment | None, deployment_file: str | Path | None,
                 target: Path) -> Path:  # fmt: skip
        if model.type != "mlflow_model" and not _scripted(deployment):
            where = (f"{deployment_file or 'the deployment'} has no code_configuration" if deployment
                     else "no deployment file is given")  # fmt: skip
            raise InvalidSpecError(
                [SpecProblem(f"model {model.ref} is a {model.type}, which is served by a scoring script "
                             f"(init() and run()), and {where}", "code_configuration")],
                summary="Nothing to serve the model with",
                hint=f"give --deployment-file with\n{_CUSTOM_NEEDS_CODE}\nOnly an mlflow_model is served with no code.",
            )  # fmt: skip
        plan = _Plan(model=model, deployment=deployment)
        target.parent.mkdir(parents=True, exist_ok=True)
        work = target.parent / f".{target.name}.package-{secrets.token_hex(4)}"
        work.mkdir()
        try:
            self._write(plan, work)
            if target.exists():
                target.rmdir()  # empty, as checked above; a folder cannot be renamed over another
            os.replace(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return target

    # -- what to package ---------------------------------------------------------------------------

    def _deployment(self, path: Path, model: Model) -> OnlineDeployment:
        from smalt.specs.loader import load_package_deployment

        return self._check_deployment(load_package_deployment(path), model, path)

    def _check_deployment(self, deployment: OnlineDeployment, model: Model, path: Path | None) -> OnlineDeployment:
        if deployment.model is not None and not self._is_model(deployment.model, model):
            other = deployment.model if isinstance(deployment.model, str) else f"model {deployment.model.path}"
            raise InvalidSpecError(
                [SpecProblem(f"the deployment serves {other}, and the package is of {model.ref}", "model",
                             file=str(path) if path is not None else None)],
                summary="Two models for one package",
                hint=f"remove model: from the file (--name and --version say which), or write model: {model.ref}",
            )  # fmt: skip
        return deployment

    def _is_model(self, named: str | InlineModel, model: Model) -> bool:
        if isinstance(named, InlineModel):
            return (named.name, named.version) == (model.name, model.version)
        found = self._models.get_by_ref(named, "model")
        return (found.name, found.version) == (model.name, model.version)

    def _environment(self, plan: _Plan, model_files: Path) -> None:
        """The Python version, pinned requirements and base image of the package, from the
        environment an online deployment of it runs in (built here if it is not yet)."""
        from smalt.environments import ensure, installed_packages, resolve

        deployment = plan.deployment
        env = deployment.environment if deployment is not None else None
        if env is None and plan.model.type == "mlflow_model" and not _scripted(deployment):
            conda = mlflow_conda(model_files)
            if conda is not None:
                env = InlineEnvironment(conda_file=str(conda))
                plan.notes.append(f"The environment is the MLflow model's own {conda.relative_to(model_files)}.")
            else:
                plan.notes.append("The MLflow model has no conda.yaml: add mlflow and the model's packages to "
                                  "requirements.txt before building.")  # fmt: skip
        named = isinstance(env, str) and env.startswith("azureml:") and not env.startswith("azureml://")
        env = AssetService(self._ws, Environment).inline_environment(env)
        if named and isinstance(env, InlineEnvironment):
            plan.notes.append(f"The environment is azureml:{env.name}:{env.version}.")
        if isinstance(env, InlineEnvironment) and env.image is not None:
            plan.base_image = env.image
        resolved = resolve(env)
        if resolved.is_base:
            plan.python = f"{sys.version_info.major}.{sys.version_info.minor}"
            if plan.base_image:  # the Dockerfile starts FROM it: resolve's warning about local compute does not apply
                plan.notes.append(f"The image {plan.base_image} brings Python and the packages; none are added.")
            else:
                plan.notes.extend(resolved.warnings)
                if _scripted(deployment):
                    plan.notes.append("No environment: the scoring server needs the standard library only.")
            return
        plan.notes.extend(resolved.warnings)
        python, packages = installed_packages(ensure(resolved, self._ws.path / "envs", io.StringIO()))
        version = python or resolved.python or f"{sys.version_info.major}.{sys.version_info.minor}"
        plan.python = ".".join(version.split(".")[:2])
        plan.requirements = [p for p in packages if p.partition("==")[0] not in _NOT_PINNED]

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, plan: _Plan, work: Path) -> None:
        model = plan.model
        model_dir = work / "azureml-models" / model.name / str(model.version)
        local = DatastoreService(self._ws).download(model.path, model_dir)
        code = plan.deployment.code_configuration if plan.deployment is not None else None
        if code is not None:
            shutil.copytree(code.code, work / "code", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        self._environment(plan, model_dir)
        worker = resources.files("smalt.serving").joinpath("worker.py").read_text(encoding="utf-8")
        (work / "smalt_worker.py").write_text(worker, encoding="utf-8")
        variables = dict(plan.deployment.environment_variables) if plan.deployment is not None else {}
        settings = {
            "model_dir": model_dir.relative_to(work).as_posix(),
            "code": "code" if code is not None else None,
            "script": code.scoring_script if code is not None else None,
            "mlflow_model": local.relative_to(work).as_posix() if code is None else None,
            "environment_variables": variables,
        }
        (work / "entrypoint.py").write_text(_entrypoint(model, settings), encoding="utf-8")
        pinned = "".join(f"{r}\n" for r in plan.requirements)
        header = f"# The environment of {model.ref} as smalt built it ({_python(plan)}), pinned.\n"
        none = "# No packages: the standard library is enough.\n"
        (work / "requirements.txt").write_text(header + (pinned or none), encoding="utf-8")
        (work / "Dockerfile").write_text(_dockerfile(plan, variables), encoding="utf-8")
        (work / "README.md").write_text(_readme(plan), encoding="utf-8")


def _python(plan: _Plan) -> str:
    return f"the Python of {plan.base_image}" if plan.base_image else f"Python {plan.python}"


def _scripted(deployment: OnlineDeployment | None) -> bool:
    return deployment is not None and deployment.code_configuration is not None


def _entrypoint(model: Model, settings: Mapping[str, object]) -> str:
    return f'''\
"""Serve {model.ref} over HTTP: GET / (liveness) and POST /score, on 0.0.0.0:$PORT (default {PORT}).

Written by `smalt model package`. Every path below is relative to this file, so the same entry
point serves in the image and from this folder with `python entrypoint.py`.
"""

import os
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {pprint.pformat(dict(settings), sort_dicts=False)}


def main() -> int:
    for name, value in SETTINGS["environment_variables"].items():
        os.environ.setdefault(name, value)  # `docker run -e` wins, as over the Dockerfile's ENV
    os.environ["AZUREML_MODEL_DIR"] = str(HERE / SETTINGS["model_dir"])
    args = ["--http", f"0.0.0.0:{{os.environ.get('PORT') or {PORT}}}"]
    if SETTINGS["script"]:
        code = HERE / SETTINGS["code"]
        os.chdir(code)  # as smalt's online deployments run the scoring script
        args += ["--code", str(code), "--script", SETTINGS["script"]]
    else:
        args += ["--mlflow-model", str(HERE / SETTINGS["mlflow_model"])]
    # As process 1 of a container, Python has no default action for SIGTERM: without this,
    # `docker stop` would wait its ten seconds and kill.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.path.insert(0, str(HERE))
    import smalt_worker

    return smalt_worker.main(args)


if __name__ == "__main__":
    sys.exit(main())
'''


def _env_value(value: str) -> str:
    # A double-quoted Dockerfile word: backslash, quote and $ (variable substitution) escaped.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _dockerfile(plan: _Plan, variables: dict[str, str]) -> str:
    base = plan.base_image or f"python:{plan.python}-slim"
    lines = [f"# {plan.model.ref} as an image, written by `smalt model package`.", f"FROM {base}"]
    if plan.base_image:
        lines.append("# The environment's own image: it must have `python` and `pip` on PATH.")
    lines += ["ENV PYTHONUNBUFFERED=1", f"WORKDIR {APP_DIR}", "COPY requirements.txt ."]
    if not plan.requirements:
        lines.append("# requirements.txt lists no packages: the scoring server needs the standard library only.")
    lines += ["RUN pip install --no-cache-dir -r requirements.txt", "COPY . ."]
    for name, value in variables.items():
        if "\n" in value:
            lines.append(f"# {name} spans lines: entrypoint.py sets it.")
        else:
            lines.append(f"ENV {name}={_env_value(value)}")
    lines += [f"EXPOSE {PORT}", 'CMD ["python", "entrypoint.py"]']
    return "\n".join(lines) + "\n"


def _request_example(plan: _Plan) -> str:
    if _scripted(plan.deployment):
        return "'<the JSON your run() reads>'"
    inputs = ((plan.model.mlflow or {}).get("signature") or {}).get("inputs") or []
    columns = [c["name"] for c in inputs if isinstance(c, dict) and c.get("name")] or ["x"]
    return "'" + json.dumps({"dataframe_split": {"columns": columns, "data": [[0] * len(columns)]}}) + "'"


def _readme(plan: _Plan) -> str:
    model = plan.model
    tag = model.name.lower()
    served = "its scoring script, `init()` and `run()`" if _scripted(plan.deployment) else "MLflow's pyfunc flavour"
    notes = "".join(f"- {note}\n" for note in plan.notes)
    return f"""\
# {model.ref}

A Docker build context written by `smalt model package`: the model, served by {served},
in smalt's scoring server (the one its online deployments run), with {_python(plan)}.

Build and run:

    docker build -t {tag} . && docker run -p {PORT}:{PORT} {tag}

Or without Docker, with the packages of `requirements.txt` installed:

    PORT={PORT} python entrypoint.py

Then:

    curl http://localhost:{PORT}/
    curl -X POST http://localhost:{PORT}/score -H 'Content-Type: application/json' -d {_request_example(plan)}

Files: `azureml-models/` the model (`AZUREML_MODEL_DIR` is `azureml-models/{model.name}/{model.version}`),
`code/` the scoring code, `requirements.txt` the pinned packages, `smalt_worker.py` the server,
`entrypoint.py` what starts it.

{notes}"""
