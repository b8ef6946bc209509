"""MLflow's model registry against `smalt server`, driven by the real mlflow client.

Registered models are smalt models: what the client registers is read back through MLClient too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow")

with warnings.catch_warnings():
    # Importing mlflow's pyfunc infers schemas of its own agent types and warns about them.
    warnings.simplefilter("ignore")
    import mlflow.pyfunc  # noqa: E402
    import mlflow.sklearn  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException, RestException  # noqa: E402

#: MLflow deprecated stages (still served: clients use them); its warnings are not what these tests check.
stages_deprecated = pytest.mark.filterwarnings("ignore:.*model registry stages.*:FutureWarning")


@pytest.fixture
def client(smalt_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", smalt_server.url)
    # A refused request must fail now, not after the client's retries with backoff.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(smalt_server.url)
    yield MlflowClient(smalt_server.url)
    mlflow.set_tracking_uri(None)


def _error_code(exc: pytest.ExceptionInfo[RestException]) -> str:
    return str(exc.value.error_code)


def _classifier() -> tuple[Any, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    features = np.array([[0.0, 0.1], [0.2, 0.0], [1.0, 0.9], [0.9, 1.1], [0.1, 0.2], [1.2, 1.0]])
    labels = np.array([0, 0, 1, 1, 0, 1])
    return LogisticRegression().fit(features, labels), features


def _log_registered(name: str) -> tuple[str, Any]:
    """Log a tiny sklearn model in a run and register it as ``name``; the run id and the features."""
    model, features = _classifier()
    with mlflow.start_run() as run:
        # Explicit requirements: inferring them starts a subprocess that loads the model (slow).
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                 pip_requirements=["scikit-learn"], input_example=features[:2])  # fmt: skip
    return run.info.run_id, features


@pytest.mark.slow
@stages_deprecated
def test_logged_model_registers_loads_by_version_alias_and_stage(client: MlflowClient, workspace_path: Path) -> None:
    run_id, features = _log_registered("clf")
    expected = [0, 0, 1, 1, 0, 1]

    version = client.get_model_version("clf", "1")
    assert (version.version, version.run_id, version.status, version.current_stage) == ("1", run_id, "READY", "None")
    assert version.source.startswith("models:/m-")
    assert list(mlflow.pyfunc.load_model("models:/clf/1").predict(features)) == expected

    client.set_registered_model_alias("clf", "champion", "1")
    by_alias = client.get_model_version_by_alias("clf", "champion")
    assert (by_alias.version, by_alias.aliases) == ("1", ["champion"])
    assert client.get_registered_model("clf").aliases == {"champion": "1"}
    assert list(mlflow.pyfunc.load_model("models:/clf@champion").predict(features)) == expected

    staged = client.transition_model_version_stage("clf", "1", "Staging")
    assert staged.current_stage == "Staging"
    assert [v.version for v in client.get_latest_versions("clf", stages=["Staging"])] == ["1"]
    assert client.get_latest_versions("clf", stages=["Production"]) == []
    assert list(mlflow.pyfunc.load_model("models:/clf/Staging").predict(features)) == expected

    # The same model is a smalt model, linked to the run (a job) that logged it.
    from smalt import MLClient

    smalt_client = MLClient(workspace=workspace_path)
    try:
        model = smalt_client.models.get("clf", version="1")
        lineage = smalt_client.models.lineage("clf", version=1)
        # Aliases are shared both ways: one set by smalt is what MLflow clients resolve, and the
        # history holds the MLflow client's move too.
        smalt_client.models.set_alias("clf", "production", version=1)
        history = [(m.alias, m.version) for m in smalt_client.models.alias_history("clf")]
    finally:
        smalt_client.close()
    assert (model.job_name, model.type, model.stage) == (run_id, "mlflow_model", "Staging")
    assert model.flavors is not None and "sklearn" in model.flavors
    assert model.mlflow is not None and model.mlflow["signature"]["inputs"]
    assert model.mlflow["input_example"]["info"]["artifact_path"]
    assert ("job:" + run_id, "model:clf:1", "output") in {(e.source, e.target, e.relation) for e in lineage.edges}
    assert client.get_model_version_by_alias("clf", "production").version == "1"
    assert history == [("champion", "1"), ("production", "1")]
    assert model.path.startswith("azureml://datastores/workspaceblobstore/paths/")

    # Registering the run's model again makes version 2, like MLflow.
    again = mlflow.register_model(f"runs:/{run_id}/model", "clf")
    assert (again.version, again.run_id) == ("2", run_id)


def _register(client: MlflowClient, tmp_path: Path, name: str, files: dict[str, str] | None = None) -> Any:
    """A model version from files uploaded through the artifacts proxy into a run's artifacts (a
    server registers no path of its own machine), named by their artifact URI, with no run id."""
    folder = tmp_path / f"src-{name}-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for file, text in (files or {"weights.txt": "1 2 3"}).items():
        (folder / file).write_text(text)
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, str(folder), "model")
    return client.create_model_version(name, f"{run.info.artifact_uri}/model")


def test_registered_model_update_rename_tags_and_delete(client: MlflowClient, tmp_path: Path) -> None:
    made = client.create_registered_model("rm-a", tags={"team": "ml"}, description="first")
    assert (made.name, made.description, made.tags) == ("rm-a", "first", {"team": "ml"})
    version = _register(client, tmp_path, "rm-a")
    assert (version.version, version.status, version.current_stage) == ("1", "READY", "None")
    assert _register(client, tmp_path, "rm-a").version == "2"

    client.update_registered_model("rm-a", description="second")
    client.set_registered_model_tag("rm-a", "domain", "flowers")
    client.delete_registered_model_tag("rm-a", "team")
    found = client.get_registered_model("rm-a")
    assert (found.description, found.tags) == ("second", {"domain": "flowers"})
    assert [v.version for v in found.latest_versions] == ["2"]  # the newest in stage None

    client.update_model_version("rm-a", "1", description="v1 desc")
    client.set_model_version_tag("rm-a", "1", "validated", "true")
    client.set_model_version_tag("rm-a", "1", "drop", "me")
    client.delete_model_version_tag("rm-a", "1", "drop")
    v1 = client.get_model_version("rm-a", "1")
    assert (v1.description, v1.tags) == ("v1 desc", {"validated": "true"})

    client.set_registered_model_alias("rm-a", "best", "1")
    client.rename_registered_model("rm-a", "rm-b")
    assert client.get_registered_model("rm-b").aliases == {"best": "1"}
    assert client.get_model_version("rm-b", "1").description == "v1 desc"
    assert client.get_model_version_by_alias("rm-b", "best").version == "1"
    with pytest.raises(RestException) as missing:
        client.get_registered_model("rm-a")
    assert _error_code(missing) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_model_version("rm-b", "1")
    with pytest.raises(RestException) as gone:
        client.get_model_version("rm-b", "1")
    assert _error_code(gone) == "RESOURCE_DOES_NOT_EXIST"
    assert [v.version for v in client.search_model_versions("name = 'rm-b'")] == ["2"]
    with pytest.raises(MlflowException):  # its alias went with it
        client.get_model_version_by_alias("rm-b", "best")

    client.delete_registered_model("rm-b")
    with pytest.raises(RestException) as deleted:
        client.get_registered_model("rm-b")
    assert _error_code(deleted) == "RESOURCE_DOES_NOT_EXIST"
    # The name can be used again; numbering goes on after the deleted versions, which stay hidden.
    client.create_registered_model("rm-b")
    assert _register(client, tmp_path, "rm-b").version == "3"
    assert [v.version for v in client.search_model_versions("name = 'rm-b'")] == ["3"]


@stages_deprecated
def test_archive_existing_versions_on_transition(client: MlflowClient, tmp_path: Path) -> None:
    client.create_registered_model("staged")
    for _ in range(2):
        _register(client, tmp_path, "staged")
    client.transition_model_version_stage("staged", "1", "Production")
    moved = client.transition_model_version_stage("staged", "2", "production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version("staged", "1").current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_registered_model("staged").latest_versions}
    assert latest == {"Archived": "1", "Production": "2"}
    with pytest.raises(RestException) as bad:
        client.transition_model_version_stage("staged", "1", "Shipped")
    assert _error_code(bad) == "INVALID_PARAMETER_VALUE"
    assert "Staging" in str(bad.value)


def test_search_with_filters_order_and_pages(client: MlflowClient, tmp_path: Path) -> None:
    for name, team in (("iris-a", "flowers"), ("iris-b", "flowers"), ("wine", "drinks")):
        client.create_registered_model(name, tags={"team": team})
        _register(client, tmp_path, name)
    _register(client, tmp_path, "iris-a")
    client.set_model_version_tag("iris-a", "2", "validated", "true")

    assert [m.name for m in client.search_registered_models()] == ["iris-a", "iris-b", "wine"]
    assert [m.name for m in client.search_registered_models("name LIKE 'iris%'", order_by=["name DESC"])] == [
        "iris-b", "iris-a",
    ]  # fmt: skip
    assert [m.name for m in client.search_registered_models("tags.team = 'drinks'")] == ["wine"]
    first = client.search_registered_models(max_results=2, order_by=["name ASC"])
    assert [m.name for m in first] == ["iris-a", "iris-b"] and first.token
    second = client.search_registered_models(max_results=2, order_by=["name ASC"], page_token=first.token)
    assert [m.name for m in second] == ["wine"]

    versions = client.search_model_versions("name = 'iris-a'", order_by=["version_number DESC"])
    assert [v.version for v in versions] == ["2", "1"]
    assert [(v.name, v.version) for v in client.search_model_versions("tags.validated = 'true'")] == [("iris-a", "2")]
    assert client.search_model_versions("name = 'nothing'") == []

    with pytest.raises(RestException) as bad:
        client.search_registered_models("name >>> 'x'")
    assert _error_code(bad) == "INVALID_PARAMETER_VALUE"


def test_errors_carry_mlflow_error_codes(client: MlflowClient, tmp_path: Path) -> None:
    with pytest.raises(RestException) as missing_model:
        client.get_registered_model("nope")
    assert _error_code(missing_model) == "RESOURCE_DOES_NOT_EXIST"
    assert "nope" in str(missing_model.value)

    client.create_registered_model("dup")
    with pytest.raises(RestException) as duplicate:
        client.create_registered_model("dup")
    assert _error_code(duplicate) == "RESOURCE_ALREADY_EXISTS"

    with pytest.raises(RestException) as missing_version:
        client.get_model_version("dup", "7")
    assert _error_code(missing_version) == "RESOURCE_DOES_NOT_EXIST"

    _register(client, tmp_path, "dup")
    with pytest.raises(RestException) as bad_alias_version:
        client.set_registered_model_alias("dup", "a1", "99")
    assert _error_code(bad_alias_version) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(RestException) as reserved:
        client.set_registered_model_alias("dup", "latest", "1")
    assert _error_code(reserved) == "INVALID_PARAMETER_VALUE"

    # A missing alias is 400 INVALID_PARAMETER_VALUE, as the reference server answers.
    with pytest.raises(RestException) as missing_alias:
        client.get_model_version_by_alias("dup", "nope")
    assert _error_code(missing_alias) == "INVALID_PARAMETER_VALUE"

    with pytest.raises(RestException) as bad_name:
        client.create_registered_model("has space")
    assert _error_code(bad_name) == "INVALID_PARAMETER_VALUE"
    assert "letters, digits" in str(bad_name.value)

    with pytest.raises(RestException) as no_model:
        client.create_model_version("not-registered", "mlflow-artifacts:/some/where")
    assert _error_code(no_model) == "RESOURCE_DOES_NOT_EXIST"


def test_registry_wire_shapes(smalt_server: Any, tmp_path: Path) -> None:
    """The JSON the reference server sends: versions as strings, empty lists left out, 400 for a missing alias."""
    import httpx

    base = f"{smalt_server.url}/api/2.0/mlflow"
    with httpx.Client(base_url=base, timeout=30) as http:
        made = http.post("/registered-models/create", json={"name": "shape"}).json()["registered_model"]
        assert set(made) == {"name", "creation_timestamp", "last_updated_timestamp"}
        mlmodel = b"flavors:\n  python_function: {loader_module: x}\n"
        artifacts = f"{smalt_server.url}/api/2.0/mlflow-artifacts/artifacts"
        assert http.put(f"{artifacts}/azureml/r1/artifacts/m/MLmodel", content=mlmodel).status_code == 200
        source = "mlflow-artifacts:/azureml/r1/artifacts/m"
        created = http.post("/model-versions/create", json={"name": "shape", "source": source,
                                                             "run_id": "r1"}).json()["model_version"]  # fmt: skip
        assert {k: created[k] for k in ("name", "version", "current_stage", "description", "run_id", "status",
                                        "run_link")} == {  # fmt: skip
            "name": "shape", "version": "1", "current_stage": "None", "description": "", "run_id": "r1",
            "status": "READY", "run_link": "",
        }  # fmt: skip
        assert "tags" not in created and "aliases" not in created
        uri = http.get("/model-versions/get-download-uri", params={"name": "shape", "version": "1"}).json()
        assert uri["artifact_uri"] == source
        listing = http.get(f"{smalt_server.url}/api/2.0/mlflow-artifacts/artifacts",
                           params={"path": uri["artifact_uri"].removeprefix("mlflow-artifacts:/")}).json()  # fmt: skip
        assert [f["path"].rsplit("/", 1)[-1] for f in listing["files"]] == ["MLmodel"]

        assert http.request("DELETE", "/registered-models/alias", json={"name": "shape", "alias": "x"}).json() == {}
        assert http.get("/model-versions/search", params={"filter": "name='none'"}).json() == {}
        paged = http.get("/registered-models/search", params=[
            ("filter", "tag.`mlflow.prompt.is_prompt` != 'true'"), ("max_results", "1"),
            ("order_by", "name ASC"), ("order_by", "last_updated_timestamp DESC"),
        ]).json()  # fmt: skip
        assert [m["name"] for m in paged["registered_models"]] == ["shape"]
        assert paged["registered_models"][0]["latest_versions"][0]["version"] == "1"

        missing = http.get("/registered-models/alias", params={"name": "shape", "alias": "nope"})
        assert missing.status_code == 400 and missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        missing_model = http.get("/registered-models/get", params={"name": "nope"})
        assert missing_model.status_code == 404
        assert missing_model.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_copy_version_and_models_registered_by_smalt(
    client: MlflowClient, tmp_path: Path, workspace_path: Path
) -> None:
    from smalt import MLClient
    from smalt.entities import Model

    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    smalt_client = MLClient(workspace=workspace_path)
    try:
        smalt_client.models.create_or_update(Model(name="native", path=str(folder), tags={"by": "smalt"}))
    finally:
        smalt_client.close()

    version = client.get_model_version("native", "1")
    assert (version.current_stage, version.tags, version.run_id) == ("None", {"by": "smalt"}, "")
    assert version.source.startswith("azureml://datastores/workspaceblobstore/paths/")
    uri = client.get_model_version_download_uri("native", "1")
    assert uri == "mlflow-artifacts:/" + version.source.removeprefix("azureml://datastores/workspaceblobstore/paths/")
    assert [m.name for m in client.search_registered_models()] == ["native"]

    copied = client.copy_model_version("models:/native/1", "native-copy")
    assert (copied.name, copied.version, copied.source) == ("native-copy", "1", "models:/native/1")
    assert client.get_model_version_download_uri("native-copy", "1") == uri


def test_runs_source_points_at_the_runs_artifacts(client: MlflowClient, tmp_path: Path, workspace_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function: {loader_module: x}\n")
    (folder / "w.txt").write_text("weights")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
    run_id = run.info.run_id
    client.create_registered_model("from-run")
    version = client.create_model_version("from-run", f"runs:/{run_id}/model", run_id=run_id)
    assert (version.source, version.run_id) == (f"runs:/{run_id}/model", run_id)

    downloaded = Path(mlflow.artifacts.download_artifacts("models:/from-run/1", dst_path=str(tmp_path / "dl")))
    assert (downloaded / "w.txt").read_text() == "weights"

    from smalt import MLClient

    smalt_client = MLClient(workspace=workspace_path)
    try:
        model = smalt_client.models.get("from-run", version="1")
    finally:
        smalt_client.close()
    assert (model.type, model.job_name) == ("mlflow_model", run_id)
    assert model.flavors == {"python_function": {"loader_module": "x"}}
