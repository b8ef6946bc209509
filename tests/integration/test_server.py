"""`smalt server` through its real entry point, and the server's own behaviour over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import RunningServer, free_port, start_server, wait_until_listening

SMALT = str(Path(sys.executable).with_name("smalt"))


def test_smalt_server_serves_the_workspace_and_stops_on_sigterm(workspace_path: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "cli-server.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([SMALT, "--workspace", str(workspace_path), "server", "--port", str(port)],
                                   stdout=handle, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_listening(port, process, log)
        default = httpx.get(f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}).json()
        assert default["experiment"]["name"] == "Default"
        paths = httpx.get(f"{url}/openapi.json").json()["paths"]
        assert "/api/2.0/mlflow/runs/log-batch" in paths and "/api/2.0/mlflow/registered-models/create" in paths
        # The workspace it serves is the one the CLI resolved.
        assert (workspace_path / "metadata.db").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the parent sees why it ended.
        assert process.wait(15) in (0, -signal.SIGTERM)


@pytest.fixture
def guarded(workspace_path: Path, tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(workspace_path, tmp_path / "server.log", env={"TOKEN_FOR_TEST": "s3cret"},
                          args=("--token-env", "TOKEN_FOR_TEST"))  # fmt: skip
    try:
        yield server
    finally:
        server.stop()


def test_a_token_guarded_server_refuses_requests_without_it(guarded: RunningServer) -> None:
    path = f"{guarded.url}/api/2.0/mlflow/experiments/get"
    refused = httpx.get(path, params={"experiment_id": "0"})
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "UNAUTHENTICATED"
    wrong = httpx.get(path, params={"experiment_id": "0"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = httpx.get(path, params={"experiment_id": "0"}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_errors_have_mlflow_bodies_and_codes(smalt_server: RunningServer) -> None:
    base = f"{smalt_server.url}/api/2.0/mlflow"
    missing = httpx.get(f"{base}/runs/get", params={"run_id": "nope"})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = httpx.post(f"{base}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.acc >>> 1"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "metrics.acc >>> 1" in bad.json()["message"]
    malformed = httpx.post(f"{base}/runs/log-metric", json={"run_id": "x", "key": "acc", "value": "not a number"})
    assert malformed.status_code == 400 and malformed.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_batch_body_is_validated_from_its_bytes_with_the_same_errors(smalt_server: RunningServer) -> None:
    """log-batch reads its body with json_body (pydantic on the raw bytes): its errors, its values
    and the OpenAPI document are those of any other body."""
    base = f"{smalt_server.url}/api/2.0/mlflow"
    run_id = httpx.post(f"{base}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]

    json_type = {"content-type": "application/json"}
    not_json = httpx.post(f"{base}/runs/log-batch", content=b'{"run_id": ', headers=json_type)
    assert not_json.status_code == 400 and not_json.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    wrong = httpx.post(f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": [
        {"key": "a", "value": 1.0, "timestamp": 1, "step": 0},
        {"key": "b", "value": "high", "timestamp": 1}]})  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "metrics.1.value" in wrong.json()["message"]
    # Nothing of the refused batch was recorded.
    assert "metrics" not in httpx.get(f"{base}/runs/get", params={"run_id": run_id}).json()["run"]["data"]

    # MLflow's JSON: int64 as strings, NaN as "NaN", a missing step is 0.
    logged = httpx.post(f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": [
        {"key": "loss", "value": "NaN", "timestamp": "1700000000000", "step": "3"},
        {"key": "acc", "value": 0.5, "timestamp": "1700000000001"}]})  # fmt: skip
    assert logged.status_code == 200, logged.text
    data = httpx.get(f"{base}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    metrics = {m["key"]: m for m in data["metrics"]}
    assert int(metrics["loss"]["step"]) == 3 and str(metrics["loss"]["value"]) == "NaN"
    assert metrics["acc"]["value"] == 0.5 and int(metrics["acc"]["step"]) == 0

    body = httpx.get(f"{smalt_server.url}/openapi.json").json()["paths"]["/api/2.0/mlflow/runs/log-batch"]["post"]
    schema = body["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]["metrics"]["items"]["properties"]) >= {"key", "value", "timestamp", "step"}
