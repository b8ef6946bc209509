"""The quick start as a user runs it: `make demo`'s tour, in a fresh workspace, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


@pytest.mark.slow
@pytest.mark.postgres
def test_the_tour_runs_through_a_team_server_on_postgresql_and_object_storage(
    tmp_path: Path, postgres_url: str
) -> None:
    """`smalt server` on PostgreSQL and an S3-compatible store, and the tour's commands through it
    (SMALT_URL): the server, not the client, holds the metadata, the bytes and the jobs."""
    import boto3
    from moto.server import ThreadedMotoServer
    from tests.conftest import free_port, start_server

    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    client = boto3.client("s3", endpoint_url=keys["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    client.create_bucket(Bucket="team")
    home = tmp_path / "home"  # the test's own HOME (conftest.isolated made it)
    server_env = {**keys, "HOME": str(home), "SMALT_DATABASE_URL": postgres_url,
                  "SMALT_BLOBSTORE_URL": "s3://team/ws"}  # fmt: skip
    server = start_server(tmp_path / "ws", tmp_path / "server.log", env=server_env,
                          args=("--home", str(tmp_path / "workspaces")))  # fmt: skip
    try:
        # The client has neither the database's address nor the store's keys: only the server's URL.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMALT_DATABASE", "SMALT_BLOB"))}
        env.update({"SMALT_URL": server.url, "SMALT_DEMO_WORKSPACE": str(tmp_path / "demo"), "HOME": str(home)})
        result = subprocess.run([sys.executable, str(ROOT / "examples" / "tour.py")], env=env, text=True,
                                capture_output=True, timeout=1200)  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr + server.log.read_text()[-3000:]
        assert result.stdout.count('["setosa", "virginica"]') == 2
        assert "[report] Completed (reused: nothing changed since" in result.stdout
        assert "postgresql" in result.stdout and "s3://team/ws" in result.stdout  # `workspace show`
        # The server made its workspace `ws` there: its blobs under its name in the store.
        stored = [o["Key"] for o in client.list_objects_v2(Bucket="team", Prefix="ws/").get("Contents", [])]
        assert any(key.startswith("ws/ws/LocalUpload/") for key in stored), stored[:10]
        assert not (tmp_path / "ws" / "metadata.db").exists() and not (tmp_path / "ws" / "blobs").exists()
        _a_second_workspace_on_the_same_stores(server.url, postgres_url, client, tmp_path)
    finally:
        server.stop()
        client.close()
        s3.stop()


def _a_second_workspace_on_the_same_stores(url: str, postgres_url: str, s3: Any, tmp_path: Path) -> None:
    """A workspace created over REST lives in the server's database (a schema of its own) and its
    blob store (under its name), and runs jobs there; the first workspace sees none of it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from smalt import MLClient, command
    from smalt.entities import Output

    with MLClient(url=url) as first:
        first.workspaces.begin_create("team2").result()
        jobs_before = len(list(first.jobs.list()))
    with MLClient(url=url, workspace_name="team2") as team:
        job = team.jobs.create_or_update(command(command="echo made > ${{outputs.out}}/made.txt",
                                                 outputs={"out": Output(type="uri_folder")}))  # fmt: skip
        assert team.jobs.stream(job.name).status == "Completed"
        assert [j.name for j in team.jobs.list()] == [job.name]
    with MLClient(url=url) as first:
        assert len(list(first.jobs.list())) == jobs_before
    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            names = connection.execute(text('SELECT name FROM "smalt_team2".jobs')).scalars().all()
    finally:
        engine.dispose()
    assert names == [job.name]
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket="team", Prefix="ws/team2/").get("Contents", [])]
    assert f"ws/team2/azureml/{job.name}/out/made.txt" in stored, stored[:10]
    assert not (tmp_path / "workspaces" / "team2" / "metadata.db").exists()
