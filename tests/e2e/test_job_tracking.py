"""A command job whose script logs with mlflow and never calls start_run: everything lands in the
job's run, through the tracking server the job's supervisor starts for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.test_jobs import Smalt, show, submit, wait, write


@pytest.mark.slow
def test_job_logs_into_its_run_with_no_start_run(smalt: Smalt, tmp_path: Path) -> None:
    write(tmp_path / "src" / "train.py", """
        import mlflow
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression

        mlflow.autolog()
        mlflow.log_param("lr", "0.1")
        for step in range(3):
            mlflow.log_metric("acc", 0.5 + step / 10, step=step)
        X, y = load_iris(return_X_y=True)
        LogisticRegression(max_iter=300).fit(X, y)
        mlflow.log_text("hello", "notes/hello.txt")
    """)  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        command: python train.py
        code: ./src
        experiment_name: tracked
        tags: {team: vision}
        environment:
          image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
          conda_file:
            name: mlflow-env
            dependencies:
              - python=3.11
              - pip
              - pip:
                  - mlflow-skinny==3.17.2
                  - scikit-learn==1.9.1
                  - pandas
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name, timeout=240)
    assert job["status"] == "Completed", job

    # The latest value of each metric, and the params, including those autolog recorded.
    assert job["metrics"]["acc"] == pytest.approx(0.7)
    assert job["metrics"]["training_accuracy_score"] > 0.9
    assert job["params"]["lr"] == "0.1"
    assert job["params"]["max_iter"] == "300"

    history = smalt("job", "metrics", "--name", name, "--key", "acc", "-o", "json")
    assert history.exit_code == 0, history.stderr
    assert [(p["step"], p["value"]) for p in history.json()] == [(0, 0.5), (1, 0.6), (2, 0.7)]

    listed = smalt("job", "list", "--experiment", "tracked", "--columns", "metrics.acc,params.lr,tags.team",
                   "-o", "json")  # fmt: skip
    assert listed.json() == [{"name": name, "display_name": None, "status": "Completed", "metrics.acc": 0.7,
                              "params.lr": "0.1", "tags.team": "vision"}]  # fmt: skip

    # What the script logged as artifacts sits beside the job's own logs.
    downloaded = smalt("job", "download", "--name", name, "--all", "--download-path", str(tmp_path / "dl"))
    assert downloaded.exit_code == 0, downloaded.stderr
    artifacts = tmp_path / "dl" / "artifacts"
    assert (artifacts / "notes" / "hello.txt").read_text() == "hello"
    assert (artifacts / "system_logs" / "std_log.txt").exists()
    # The script's mlflow end_run() at exit did not finish the job early: the supervisor did.
    assert show(smalt, name)["status"] == "Completed"


def test_a_job_that_never_logs_starts_no_tracking_server(smalt: Smalt, tmp_path: Path, workspace_path: Path) -> None:
    spec = write(tmp_path / "job.yml", """
        command: echo "$MLFLOW_TRACKING_URI $MLFLOW_RUN_ID $MLFLOW_EXPERIMENT_ID" && test -n "$MLFLOW_TRACKING_TOKEN"
        environment: azureml://registries/azureml/environments/minimal-py311-inference/labels/latest
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name)
    assert job["status"] == "Completed", job
    log = (workspace_path / "jobs" / name / "logs" / "std_log.txt").read_text()
    uri, run_id, experiment_id = log.split()
    assert uri.startswith("http://127.0.0.1:")
    assert run_id == name and experiment_id == "0"
    # Socket activation: nothing connected, so no server process ever wrote its log.
    server_log = workspace_path / "jobs" / name / "logs" / "tracking_server.txt"
    assert not server_log.exists() or server_log.read_text() == ""
