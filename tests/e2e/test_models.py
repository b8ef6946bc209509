"""Registering models from every source a user has: a folder, a job's output, a run's artifacts, a
datastore URI; what an MLmodel file says; and the bad inputs that must register nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_jobs import finish

from smalt import command
from smalt.entities import Model, Output
from smalt.environments import installed_packages
from smalt.errors import InvalidSpecError, InvalidStateError, NotFoundError

MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.7
  sklearn:
    sklearn_version: 1.5.2
signature:
  inputs: '[{"type": "double", "name": "x"}]'
  outputs: '[{"type": "long"}]'
mlflow_version: 2.22.0
"""


def versions(ml_client: Any) -> list[str]:
    try:
        return [m.version for m in ml_client.models.list("m")]
    except NotFoundError:
        return []


def trained_job(ml_client: Any, command_line: str = "echo weights > ${{outputs.model}}/model.txt") -> Any:
    job = ml_client.jobs.create_or_update(command(
        command=command_line + " && mkdir -p outputs/model && echo w > outputs/model/w.txt",
        outputs={"model": Output(type="custom_model")},
    ))  # fmt: skip
    return finish(ml_client, job.name)


def test_from_a_job_output_a_run_and_a_datastore_uri_each_version_knows_its_job(ml_client: Any) -> None:
    job = trained_job(ml_client)
    assert job.status == "Completed"
    from_output = ml_client.models.create_or_update(
        Model(name="m", path=f"azureml://jobs/{job.name}/outputs/model/paths/model.txt")
    )
    assert from_output.job_name == job.name and from_output.path.endswith("/model.txt")
    # outputs/artifacts is the run's artifacts, as in Azure ML; runs:/ is the same for MLflow users.
    from_artifacts = ml_client.models.create_or_update(
        Model(name="m", path=f"azureml://jobs/{job.name}/outputs/artifacts/paths/outputs/model")
    )
    from_run = ml_client.models.create_or_update(Model(name="m", path=f"runs:/{job.name}/outputs/model"))
    assert from_artifacts.path == from_run.path and from_run.job_name == job.name
    from_datastore = ml_client.models.create_or_update(Model(name="m", path=from_output.path))
    assert from_datastore.job_name is None
    assert versions(ml_client) == ["4", "3", "2", "1"]
    graph = ml_client.models.lineage("m", version=from_run.version)
    assert [n.name for n in graph.of_kind("job")] == [job.name]


def test_an_mlflow_model_folder_is_read_flavors_signature_and_environment(ml_client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "model.pkl").write_bytes(b"\x80\x04N.")
    (folder / "python_env.yaml").write_text("python: 3.11.7\ndependencies:\n  - -r requirements.txt\n")
    (folder / "requirements.txt").write_text("# pinned\nscikit-learn==1.5.2\ncloudpickle==3.0.0\n")
    model = ml_client.models.create_or_update(Model(name="m", path=str(folder), type="mlflow_model"))
    assert set(model.flavors) == {"python_function", "sklearn"}
    assert model.mlflow["signature"] == {"inputs": [{"type": "double", "name": "x"}], "outputs": [{"type": "long"}]}
    assert model.mlflow["python_env"] == {"python": "3.11.7", "requirements": ["scikit-learn==1.5.2",
                                                                              "cloudpickle==3.0.0"]}  # fmt: skip
    assert model.mlflow["mlflow_version"] == "2.22.0"
    downloaded = ml_client.models.download("m", version=model.version, download_path=tmp_path / "down")
    assert (downloaded / "MLmodel").read_text() == MLMODEL


def test_bad_sources_are_clear_errors_and_register_nothing(ml_client: Any, tmp_path: Path) -> None:
    job = trained_job(ml_client)
    failed = finish(ml_client, ml_client.jobs.create_or_update(command(command="exit 3")).name)
    assert failed.status == "Failed"
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    not_mlflow = tmp_path / "plain"
    not_mlflow.mkdir()
    (not_mlflow / "model.bin").write_bytes(b"0")
    cases: list[tuple[Model, type[Exception], str]] = [
        (Model(name="m", path=f"azureml://jobs/{job.name}/outputs/nope"), NotFoundError, "has no output 'nope'"),
        (Model(name="m", path=f"azureml://jobs/{failed.name}/outputs/artifacts"), InvalidStateError, "is Failed"),
        (Model(name="m", path="azureml://jobs/no_such_job/outputs/model"), NotFoundError, "no_such_job"),
        (Model(name="m", path=f"azureml://jobs/{job.name}/outputs/model/paths/missing.txt"), InvalidSpecError,
         "wrote no files"),
        (Model(name="m", path=str(empty)), InvalidSpecError, "has no files"),
        (Model(name="m", path=str(tmp_path / "absent")), InvalidSpecError, "does not exist"),
        (Model(name="m", path="azureml://datastores/workspaceblobstore/paths/nothing/here"), InvalidSpecError,
         "no files at"),
        (Model(name="m", path=str(not_mlflow), type="mlflow_model"), InvalidSpecError, "MLmodel"),
        (Model(name="m", path=str(not_mlflow / "model.bin"), type="triton_model"), InvalidSpecError,
         "needs a folder"),
    ]  # fmt: skip
    for model, error, words in cases:
        with pytest.raises(error, match=words):
            ml_client.models.create_or_update(model)
    assert versions(ml_client) == []


def test_an_alias_resolves_wherever_a_version_is_accepted(ml_client: Any, tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("1")
    first = ml_client.models.create_or_update(Model(name="m", path=str(tmp_path / "w.txt")))
    (tmp_path / "w.txt").write_text("2")
    ml_client.models.create_or_update(Model(name="m", path=str(tmp_path / "w.txt")))
    ml_client.models.set_alias("m", "production", version=first.version)
    assert ml_client.models.get("m", label="production").version == "1"
    assert ml_client.models.get("m", label="latest").version == "2"
    with pytest.raises(InvalidSpecError, match="reserved"):
        ml_client.models.set_alias("m", "latest", version=1)
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        ml_client.models.get("m", label="staging")
    job = ml_client.jobs.create_or_update(command(
        command="cat ${{inputs.model}}", inputs={"model": {"type": "custom_model", "path": "azureml:m@production"}},
    ))  # fmt: skip
    assert finish(ml_client, job.name).status == "Completed"
    graph = ml_client.jobs.lineage(job.name)  # the job read m:1, and its lineage says so
    assert [(e.source, e.relation, e.port) for e in graph.sources_of(f"job:{job.name}") if e.relation == "input"] == [
        ("model:m:1", "input", "model")]  # fmt: skip


def test_the_package_list_of_an_environment_is_read_from_its_site_packages() -> None:
    version, packages = installed_packages(Path(sys.executable))
    assert version and version.startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    names = {p.split("==")[0] for p in packages}
    assert {"pydantic", "sqlalchemy", "typer"} <= names
    assert all("==" in p for p in packages) and packages == sorted(packages)
