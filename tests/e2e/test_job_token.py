"""A job's own token (issue 20): the MLflow server its supervisor starts for it answers the job's
token for the job's run and the runs nested under it, for experiments' reads and for models, and
for nothing else; it ends with the job."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_jobs import Smalt, show, submit, wait, write

PROBE = """
    import json, os, urllib.error, urllib.request

    base, token = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_TRACKING_TOKEN"]
    mine, other = os.environ["MLFLOW_RUN_ID"], os.environ["OTHER_RUN"]

    def call(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method, headers={
            "Authorization": "Bearer " + token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    metric = {"key": "m", "value": 1, "timestamp": 0}
    results = {
        "own": call("POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": mine, **metric}),
        "other": call("POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": other, **metric}),
        "top_level_run": call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0"}),
        "nested_run": call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "tags": [
            {"key": "mlflow.parentRunId", "value": mine}]}),
        "search": call("POST", "/api/2.0/mlflow/experiments/search", {"max_results": 1}),
        "delete_experiment": call("POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": "0"}),
        "data": call("GET", "/api/v1/workspaces/ws/data"),
        "no_token": urllib.request.urlopen(base + "/health").status,
    }
    print("RESULTS " + json.dumps(results))
"""


def test_a_jobs_token_reaches_its_own_run_and_nothing_else(smalt: Smalt, tmp_path: Path, ml_client: object) -> None:
    from smalt.services.tracking import TrackingService

    other = TrackingService(ml_client._context).create_run(0, run_name="someone-elses")  # type: ignore[attr-defined]
    write(tmp_path / "src" / "probe.py", PROBE)
    spec = write(tmp_path / "job.yml", f"""
        command: python probe.py
        code: ./src
        environment_variables:
          OTHER_RUN: {other.info.run_id}
    """)  # fmt: skip
    name = submit(smalt, spec)
    job = wait(smalt, name, timeout=120)
    assert job["status"] == "Completed", job
    log = next((tmp_path / "ws" / "jobs" / name / "logs").glob("std_log*.txt")).read_text()
    line = next(line for line in log.splitlines() if line.startswith("RESULTS "))
    import json

    assert json.loads(line.removeprefix("RESULTS ")) == {
        "own": 200, "other": 403, "top_level_run": 403, "nested_run": 200, "search": 200,
        "delete_experiment": 403, "data": 403, "no_token": 200,
    }  # fmt: skip
    assert show(smalt, name)["metrics"] == {"m": 1.0}
