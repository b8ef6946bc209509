"""Rough edges a newcomer met (issue 18): a silent environment build under ``--stream``, MLflow's
"View run" link leading nowhere, and ``runs:/<run>/model`` for a model MLflow 3 logged."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import RunningServer, cli_probe, start_server
from tests.e2e.test_jobs import Smalt, log, submit, wait, write

mlflow = pytest.importorskip("mlflow")


# -- 1. the environment build, streamed ---------------------------------------------------------
def _wheel(folder: Path, dist: str, version: str, code: str = "") -> None:
    """A pure-Python wheel of one module, made by hand: what uv installs without the network."""
    module = dist.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": code,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: smalt-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(folder / f"{module}-{version}-py3-none-any.whl", "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(text.encode())}")
        archive.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")


@pytest.fixture
def offline_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """uv finds packages only in a local folder (and its own empty cache), never on the network:
    the package ``smalt-tiny`` the jobs ask for, and the pip, setuptools and wheel a virtual
    environment is seeded with (the first two from the interpreter's ensurepip)."""
    import ensurepip

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for bundled in (Path(ensurepip.__file__).parent / "_bundled").glob("*.whl"):
        (wheels / bundled.name).write_bytes(bundled.read_bytes())
    _wheel(wheels, "wheel", "0.0.1")  # seeded by uv for Python < 3.12; never used here
    _wheel(wheels, "smalt-tiny", "0.1", "VALUE = 'tiny 0.1'\n")
    env = {"UV_FIND_LINKS": str(wheels), "UV_NO_INDEX": "1", "UV_OFFLINE": "1",
           "UV_CACHE_DIR": str(tmp_path / "uv-cache")}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


TINY_JOB = """
    command: python -c "import smalt_tiny; print(smalt_tiny.VALUE)"
    environment:
      name: tiny
      version: "1"
      conda_file:
        dependencies:
          - pip
          - pip:
              - smalt-tiny==0.1
"""


def _assert_build_was_streamed(streamed: str) -> None:
    lines = streamed.splitlines()
    building = next((i for i, line in enumerate(lines) if line.startswith("smalt: Preparing: building ")), None)
    assert building is not None, streamed
    assert lines[building].startswith("smalt: Preparing: building environment tiny:1 (digest ")
    assert lines[building].endswith("; 2 packages)")
    phases = lines[building + 1 :]
    assert any(line.startswith("smalt: Preparing: resolving 2 requirements (") for line in phases), streamed
    assert any(line.startswith("smalt: Preparing: installing (1 package downloaded or built) (") for line in phases)
    ready = next(i for i, line in enumerate(lines) if line.startswith("smalt: Preparing: environment tiny:1 ready in "))
    # The build's lines come before the job's own output; uv's own output is not among them.
    assert lines.index("tiny 0.1") > ready > building
    assert not any(line.startswith(("Resolved ", " + ", "$ uv")) for line in lines), streamed


def test_stream_shows_the_environment_being_built(smalt: Smalt, tmp_path: Path, workspace_path: Path,
                                                  offline_index: dict[str, str]) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", TINY_JOB)
    streamed = smalt("job", "create", "-f", str(spec), "--stream")
    assert streamed.exit_code == 0, streamed.stderr
    _assert_build_was_streamed(streamed.stdout)
    assert "Resolved 2 packages" in log(workspace_path, _job_name(streamed.stderr), "build_log.txt")

    # Built once: the next job's log says nothing of it.
    again = smalt("job", "create", "-f", str(spec), "--stream")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines() == ["tiny 0.1"]


def test_stream_through_a_server_shows_the_environment_being_built(tmp_path: Path, workspace_path: Path,
                                                                   offline_index: dict[str, str]) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", TINY_JOB)
    server = start_server(workspace_path, tmp_path / "server.log", env=offline_index)
    try:
        out, err, report = cli_probe("job", "create", "-f", str(spec), "--stream", watched=(),
                                     env={"SMALT_URL": server.url})  # fmt: skip
    finally:
        server.stop()
    assert report["code"] == 0, err
    _assert_build_was_streamed(out)


def _job_name(stderr: str) -> str:
    # "Job <name> submitted; streaming its logs."
    return stderr.split("Job ", 1)[1].split()[0]


# -- 2. the link MLflow prints ----------------------------------------------------------------
@pytest.fixture
def tracking(smalt_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", smalt_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(smalt_server.url)
    yield smalt_server
    mlflow.set_tracking_uri(None)


def test_the_view_run_link_mlflow_prints_opens_a_page_naming_the_run(tracking: RunningServer) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), mlflow.start_run(run_name="newcomer") as run:
        mlflow.log_metric("acc", 0.75)
        mlflow.log_param("lr", "0.1")
    run_id, experiment_id = run.info.run_id, run.info.experiment_id
    links = dict(line.split(" at: ", 1) for line in printed.getvalue().splitlines() if " at: " in line)
    run_link = links["🏃 View run newcomer"]
    assert run_link == f"{tracking.url}/#/experiments/{experiment_id}/runs/{run_id}"

    # The browser asks for the link without its fragment: a page whose script reads it.
    landing = httpx.get(run_link)
    assert landing.status_code == 200 and landing.headers["content-type"].startswith("text/html")
    assert "window.location.hash" in landing.text and "run_id" in landing.text
    # ... and asks again with what the fragment names: the run's page.
    page = httpx.get(f"{tracking.url}/", params={"experiment_id": experiment_id, "run_id": run_id})
    assert page.status_code == 200
    assert f"Run <code>{run_id}</code> (newcomer)" in page.text and "FINISHED" in page.text
    assert f"smalt job show -n {run_id}" in page.text
    assert "<td>acc</td><td>0.75</td>" in page.text and "<td>lr</td><td>0.1</td>" in page.text
    experiment = httpx.get(f"{tracking.url}/", params={"experiment_id": experiment_id})
    assert experiment.status_code == 200 and run_id in experiment.text
    missing = httpx.get(f"{tracking.url}/", params={"run_id": "no_such_run"})
    assert "There is no run <code>no_such_run</code>" in missing.text


def test_a_jobs_own_mlflow_server_serves_the_page_and_the_job_says_where_its_run_stays(
    smalt: Smalt, tmp_path: Path, workspace_path: Path
) -> None:
    # The job opens the page as a browser would: no token. Its server then names the run and
    # shows nothing of the workspace.
    write(tmp_path / "src" / "open.py", """
        import os, urllib.request
        url = os.environ["MLFLOW_TRACKING_URI"] + "/?run_id=" + os.environ["MLFLOW_RUN_ID"]
        print(urllib.request.urlopen(url, timeout=30).read().decode())
    """)  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: python open.py
        code: ./src
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)
    assert job["status"] == "Completed", job.get("error")
    text = log(workspace_path, name)
    assert f"<p>Run <code>{name}</code>.</p>" in text and f"smalt job show -n {name}" in text
    assert "Completed" not in text and "Running" not in text  # no token, no status
    last = text.splitlines()[-1]
    assert last.startswith("smalt: this job's MLflow server (http://127.0.0.1:")
    assert last.endswith(f"stopped with the job; see run {name} with: smalt job show -n {name}")


def test_a_job_that_never_talks_to_mlflow_says_nothing_of_its_server(smalt: Smalt, tmp_path: Path,
                                                                     workspace_path: Path) -> None:  # fmt: skip
    name = submit(smalt, write(tmp_path / "job.yml", "command: echo hello\n"))
    assert wait(smalt, name)["status"] == "Completed"
    assert log(workspace_path, name).splitlines() == ["hello"]


# -- 3. runs:/<run>/model for a model MLflow 3 logged ------------------------------------------
@pytest.mark.slow
def test_runs_model_finds_the_model_mlflow_3_logged(tracking: RunningServer, smalt: Smalt, ml_client: Any,
                                                     tmp_path: Path) -> None:  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow's import warns about its own agent types
        import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0, 0.1], [1.0, 0.9], [0.1, 0.0], [0.9, 1.1]], [0, 1, 0, 1])
    with mlflow.start_run() as run, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow warns that it cannot infer a signature's types
        # Explicit requirements: inferring them starts a subprocess that loads the model (slow).
        logged = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    run_id = run.info.run_id
    # MLflow 3 keeps the files with the logged model, not in the run's artifacts.
    assert mlflow.MlflowClient().list_artifacts(run_id) == []
    assert logged.model_id.startswith("m-")

    created = smalt("model", "create", "--name", "clf", "--path", f"runs:/{run_id}/model", "-o", "json")
    assert created.exit_code == 0, created.stderr
    version = created.json()
    assert version["path"].endswith(f"/models/{logged.model_id}/artifacts")
    assert version["job_name"] == run_id
    downloaded = smalt("model", "download", "--name", "clf", "--version", "1", "--download-path", str(tmp_path / "dl"))
    assert downloaded.exit_code == 0, downloaded.stderr
    [mlmodel] = (tmp_path / "dl").rglob("MLmodel")
    assert f"model_id: {logged.model_id}" in mlmodel.read_text()
    assert {p.name for p in mlmodel.parent.iterdir()} >= {"MLmodel", "conda.yaml", "requirements.txt"}

    # The SDK, with a path inside the model, and MLflow's registry take the same source.
    from smalt.entities import Model

    inside = ml_client.models.create_or_update(Model(name="clf-file", path=f"runs:/{run_id}/model/MLmodel"))
    assert inside.path.endswith(f"/models/{logged.model_id}/artifacts/MLmodel")
    registered = ml_client.models.create_or_update(Model(name="clf", path=f"runs:/{run_id}/model",
                                                         type="mlflow_model"))  # fmt: skip
    assert registered.version == "2" and "sklearn" in (registered.flavors or {})
    client = mlflow.MlflowClient()
    client.create_registered_model("from-run")
    client.create_model_version("from-run", f"runs:/{run_id}/model", run_id=run_id)
    fetched = Path(mlflow.artifacts.download_artifacts("models:/from-run/1", dst_path=str(tmp_path / "mv")))
    assert (fetched / "MLmodel").exists()

    # A name the run logged nothing under says what it did log.
    wrong = smalt("model", "create", "--name", "clf", "--path", f"runs:/{run_id}/modle")
    assert wrong.exit_code != 0
    assert "no model it logged is named 'modle'" in wrong.stderr and "the models it logged: model" in wrong.stderr

