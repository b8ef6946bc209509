"""The real MLflow client, 3.x (this environment) and 2.22 (its own uv environment), against `smalt server`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smalt.client import MLClient

SCENARIO = Path(__file__).with_name("scripts") / "mlflow_client_scenario.py"
# Kept between runs beside the bootstrap tools (ignored by git), so only the first run builds it.
MLFLOW_2_ENVS = Path(__file__).resolve().parents[2] / ".tools" / "test-envs"


def _run(python: str, url: str, model_name: str) -> dict[str, object]:
    done = subprocess.run(
        [python, str(SCENARIO), model_name], capture_output=True, text=True, timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"scenario failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    result: dict[str, object] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def _check(result: dict[str, object], workspace: Path, model_name: str) -> None:
    run = result["run"]
    assert isinstance(run, dict)
    assert run["status"] == "FINISHED"
    assert run["name"] == "train"
    assert run["metrics"]["acc"] == 0.9  # the latest value: highest step
    assert run["metrics"]["loss"] == pytest.approx(1 / 1500)
    assert run["params"] == {"lr": "0.1", "bs": "32"}
    assert run["team"] == "vision"
    assert result["history"] == [[0, 0.5], [1, 0.9]]
    assert result["loss_points"] == 1500  # a 1,500-metric batch arrives as two requests
    assert result["found"] == ["train"]
    assert result["ordered"] == ["train", "other"]
    assert "notes.txt" in result["artifacts"] and "config" in result["artifacts"]
    assert result["notes"] == "first model"
    assert result["predict"] == [0, 0, 1, 1]
    assert result["alias_version"] == "1"
    assert result["alias_predict"] == [0, 0, 1, 1]
    assert result["model_run"] is True
    # Registered through MLflow, it is a smalt model, linked to the run that logged it.
    with MLClient(workspace=workspace) as ml_client:
        model = ml_client.models.get(model_name, version="1")
    assert model.type == "mlflow_model"
    assert model.job_name is not None


@pytest.mark.slow
def test_mlflow_3_client(smalt_server, workspace_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _run(sys.executable, smalt_server.url, "clf3")
    assert str(result["version"]).startswith("3.")
    _check(result, workspace_path, "clf3")


@pytest.fixture(scope="session")
def mlflow_2_python() -> str:
    """mlflow 2.22 in its own environment, built once with uv and kept between runs."""
    from uv import find_uv_bin

    venv = MLFLOW_2_ENVS / "mlflow-2.22"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        uv = find_uv_bin()
        subprocess.run([uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python), "mlflow-skinny==2.22.*", "scikit-learn",
             "pandas"],
            check=True,
        )  # fmt: skip
        (venv / ".complete").touch()
    return str(python)


@pytest.mark.slow
def test_mlflow_2_client(smalt_server, workspace_path: Path, mlflow_2_python: str) -> None:  # type: ignore[no-untyped-def]
    result = _run(mlflow_2_python, smalt_server.url, "clf2")
    assert str(result["version"]).startswith("2.22")
    _check(result, workspace_path, "clf2")
