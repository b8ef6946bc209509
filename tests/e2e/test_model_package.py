"""``smalt model package``: a model version as a Docker build context. Docker is not needed to
check that the context is complete: its entry point is started as the image would start it, from
the context's own folder moved elsewhere, and must answer scoring requests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import free_port, wait_until_listening

from smalt.entities import Model
from smalt.errors import AlreadyExistsError, InvalidSpecError, NotFoundError

SCORE = """\
import json, os

def init():
    global weights
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.json")) as f:
        weights = json.load(f)

def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return {"who": os.environ.get("WHO"), "scores": [sum(w * x for w, x in zip(weights, r)) for r in rows]}
"""

# No endpoint_name: a package belongs to no endpoint.
DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
code_configuration:
  code: ./src
  scoring_script: score.py
environment_variables:
  WHO: "blue $HOME"
instance_count: 1
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights.json").write_text("[1, 2]")
    (folder / "src").mkdir()
    (folder / "src" / "score.py").write_text(SCORE)
    (folder / "blue.yml").write_text(DEPLOYMENT)
    return folder


@contextmanager
def started(context: Path, log: Path, python: str = sys.executable) -> Iterator[httpx.Client]:
    """The context's entry point, run as its image runs it (but with ``python``), from another folder."""
    port = free_port()
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [python, str(context / "entrypoint.py")], cwd=log.parent, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "PORT": str(port)},
        )  # fmt: skip
    try:
        wait_until_listening(port, process, log, timeout=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        process.terminate()
        assert process.wait(10) == 0, log.read_text()  # SIGTERM stops it cleanly, as `docker stop` would


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_a_custom_model_with_scoring_code_serves_from_its_context(
    smalt: Any, ml_client: Any, project: Path, tmp_path: Path
) -> None:
    ml_client.models.create_or_update(Model(name="credit", path=str(project / "model")))
    packaged = smalt("model", "package", "-n", "credit", "-v", "1", "--deployment-file", str(project / "blue.yml"),
                     "--output", str(tmp_path / "image"), "--format", "json")  # fmt: skip
    assert packaged.exit_code == 0, packaged.stderr
    shown = packaged.json()
    assert shown["path"] == str(tmp_path / "image")
    expected = {"Dockerfile", "README.md", "requirements.txt", "entrypoint.py", "smalt_worker.py",
                "azureml-models/credit/1/model/weights.json", "code/score.py"}  # fmt: skip
    assert set(shown["files"]) == expected == files_of(tmp_path / "image")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left

    dockerfile = (tmp_path / "image" / "Dockerfile").read_text().splitlines()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert "RUN pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert 'ENV WHO="blue \\$HOME"' in dockerfile  # no substitution by docker build
    assert "EXPOSE 5001" in dockerfile and dockerfile[-1] == 'CMD ["python", "entrypoint.py"]'
    # No environment: the scoring server needs nothing beyond the standard library.
    requirements = (tmp_path / "image" / "requirements.txt").read_text().splitlines()
    assert [line for line in requirements if line and not line.startswith("#")] == []
    assert "docker build -t credit ." in (tmp_path / "image" / "README.md").read_text()

    # Nothing points back at the workspace or the project: the context works wherever it is.
    moved = tmp_path / "elsewhere" / "context"
    shutil.move(tmp_path / "image", moved)
    shutil.rmtree(project)
    with started(moved, tmp_path / "run.log") as client:
        assert client.get("/").status_code == 200
        answer = client.post("/score", content=json.dumps({"data": [[1, 2], [3, 4]]}))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"who": "blue $HOME", "scores": [5, 11]}
        assert client.post("/score", content="not json").status_code == 400


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")  # mlflow's own, on import
def test_an_mlflow_model_is_packaged_with_its_own_environment_pinned(ml_client: Any, tmp_path: Path) -> None:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    labels = [0, 0, 0, 1, 1, 1]
    classifier = LogisticRegression().fit(frame, labels)
    signature = infer_signature(frame, classifier.predict(frame))
    mlflow.sklearn.save_model(classifier, str(tmp_path / "clf"), signature=signature)
    ml_client.models.create_or_update(Model(name="clf", path=str(tmp_path / "clf"), type="mlflow_model"))

    context = ml_client.models.package_context("clf", label="latest", output=tmp_path / "image")
    assert context == tmp_path / "image"
    assert {"Dockerfile", "entrypoint.py", "smalt_worker.py", "azureml-models/clf/1/clf/MLmodel"} <= files_of(context)
    assert not (context / "code").exists()
    pinned = dict(line.split("==") for line in (context / "requirements.txt").read_text().splitlines()
                  if line and not line.startswith("#"))  # fmt: skip
    assert pinned["mlflow"] == mlflow.__version__ or pinned.get("mlflow-skinny") == mlflow.__version__, pinned
    import sklearn

    assert pinned["scikit-learn"] == sklearn.__version__
    assert "pip" not in pinned  # the image's own installer
    dockerfile = (context / "Dockerfile").read_text()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim\n" in dockerfile

    # smalt's own venv has mlflow and scikit-learn: enough to check that the context serves.
    rows = [[0.5, 1.0], [4.5, 0.0]]
    with started(context, tmp_path / "run.log") as client:
        answer = client.post("/score", json={"dataframe_split": {"columns": ["a", "b"], "data": rows}})
        assert answer.status_code == 200, answer.text
        expected = classifier.predict(pd.DataFrame(rows, columns=["a", "b"])).tolist()
        assert answer.json() == {"predictions": expected} and expected == [0, 1]
        # Azure ML's own request shape is answered with a bare list.
        azure = client.post("/score", json={"input_data": {"columns": ["a", "b"], "index": [0, 1], "data": rows}})
        assert azure.json() == expected


def test_refusals_write_nothing(smalt: Any, ml_client: Any, project: Path, tmp_path: Path) -> None:
    ml_client.models.create_or_update(Model(name="credit", path=str(project / "model")))
    out = tmp_path / "out"

    with pytest.raises(InvalidSpecError, match="custom_model, which is served by a scoring script") as raised:
        ml_client.models.package_context("credit", version=1, output=out / "image")
    assert "--deployment-file" in (raised.value.hint or "")
    refused = smalt("model", "package", "-n", "credit", "-v", "1", "--output", str(out / "image"))
    assert refused.exit_code != 0 and "no deployment file is given" in refused.stderr

    with pytest.raises(NotFoundError, match="'credit:7' not found"):
        ml_client.models.package_context("credit", version=7, deployment_file=project / "blue.yml", output=out / "i")
    assert not out.exists()

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExistsError, match="not an empty folder"):
        ml_client.models.package_context("credit", "1", deployment_file=project / "blue.yml", output=occupied)
    assert files_of(occupied) == {"keep.txt"} and (occupied / "keep.txt").read_text() == "mine"

    # A deployment file that names another model is a mistake, not a choice between the two.
    (project / "other.yml").write_text(DEPLOYMENT + "model: azureml:credit:1\nendpoint_name: x\n")
    ml_client.models.create_or_update(Model(name="credit", path=str(project / "model")))
    with pytest.raises(InvalidSpecError, match="serves azureml:credit:1, and the package is of azureml:credit:2"):
        ml_client.models.package_context("credit", "2", deployment_file=project / "other.yml", output=out)

    # A failure once writing has begun (here an environment that cannot be built, found after the
    # model and code are copied) leaves neither the folder nor its temporary sibling.
    (project / "conda.yml").write_text("dependencies: [python=3.11, r-base=4.3]\n")
    (project / "r.yml").write_text(DEPLOYMENT + "environment: {conda_file: ./conda.yml}\n")
    with pytest.raises(InvalidSpecError, match="r-base"):
        ml_client.models.package_context("credit", "1", deployment_file=project / "r.yml", output=out / "image")
    assert out.exists() and list(out.iterdir()) == []  # the parent was made; nothing is in it
