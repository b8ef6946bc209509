"""The quick start as a user runs it: `make demo`'s tour, in a fresh workspace, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tour_registers_lists_and_shows_every_kind(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    env = {**os.environ, "SMALT_DEMO_WORKSPACE": str(workspace), "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tour.py")], env=env, text=True, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    for name in ("iris", "sklearn", "train_iris", "iris-tree", "cpu-cluster"):
        assert name in result.stdout

    smalt = str(Path(sys.executable).with_name("smalt"))

    def listed(noun: str, *extra: str) -> list[dict[str, object]]:
        out = subprocess.run(
            [smalt, "--workspace", str(workspace), noun, "list", *extra, "-o", "json"],
            env=env, text=True, capture_output=True, check=True,
        )  # fmt: skip
        return list(json.loads(out.stdout))

    assert [d["version"] for d in listed("data", "--name", "iris")] == ["2", "1"]
    assert [c["environment"] for c in listed("component")] == ["azureml:sklearn:1"]
    assert [m["name"] for m in listed("model")] == ["iris-centroids", "iris-tree"]
    assert [m["version"] for m in listed("model", "--name", "iris-centroids")] == ["2", "1"]
    jobs = listed("job")  # newest first: the training pipeline twice, the report pipeline twice, the command job
    assert [(j["type"], j["status"]) for j in jobs] == [("pipeline", "Completed")] * 4 + [("command", "Completed")]
    # Deployed, scored, traffic moved to the second version, then stopped: nothing left running.
    assert result.stdout.count('["setosa", "virginica"]') == 2
    (endpoint,) = listed("online-endpoint")
    assert endpoint["traffic"] == {"blue": 0, "green": 100} and endpoint["state"] == "Stopped"
    assert "accuracy" in result.stdout
    assert "[report] Completed (reused: nothing changed since" in result.stdout
    impact = subprocess.run(
        [smalt, "--workspace", str(workspace), "data", "impact", "--name", "iris", "-o", "json"],
        env=env, text=True, capture_output=True, check=True,
    )  # fmt: skip
    derived = {node["id"] for node in json.loads(impact.stdout)["nodes"]}
    # The command job read iris:2 and registered iris-summary:1; in each report pipeline,
    # summarize read it and report read summarize's output; in each training pipeline, prepare,
    # train and evaluate, and the model train registered: 1 + 2 x 2 + 2 x 3 jobs.
    assert {"data:iris-summary:1", "model:iris-centroids:1", "model:iris-centroids:2"} <= derived
    assert len([n for n in derived if n.startswith("job:")]) == 11
    summary = listed("data", "--name", "iris-summary")
    assert [d["type"] for d in summary] == ["uri_folder"]
    assert "hello: 6 rows, 3 species" in result.stdout
    # The two data versions come from one file: its bytes are stored once.
    uploads = list((workspace / "blobs" / "LocalUpload").rglob("iris.csv"))
    assert len(uploads) == 1
    downloaded = workspace / "downloads" / "iris-tree" / "model" / "model.pkl"
    assert downloaded.read_bytes() == (ROOT / "examples" / "model" / "model.pkl").read_bytes()
