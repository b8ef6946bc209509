"""Connection secrets as issue 20 asks: they reach a job and a deployment through Azure ML's
injection syntax, and appear in no show, list, captured log or database dump; key rotation keeps
every secret readable whenever it is killed (``kill -9`` at each step), and finishes when run again."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.test_endpoint_supervision import kill, wait_for, workers_of

SECRET = "sk-live-4f7Q9zV2pL8xR3mN6tB1"
CUSTOM = "tok-custom-Y8d2Kq5Wn3Hs"

API_KEY_CONNECTION = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/connection.schema.json
name: openai
type: api_key
api_base: https://api.example.com/v1
api_key: {SECRET}
"""
CUSTOM_CONNECTION = f"""\
name: feeds
type: custom
configs:
  region: westeurope
secrets:
  token: {CUSTOM}
"""
# The secret printed whole, split across two writes, and the job checks what it was given.
JOB = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: >-
  echo "key=$API_KEY" && python -c "import os, sys, hashlib;
  k = os.environ['API_KEY']; sys.stdout.write(k[:7]); sys.stdout.flush(); sys.stdout.write(k[7:] + '\\n');
  print('custom', hashlib.sha256(os.environ['TOKEN'].encode()).hexdigest())"
environment_variables:
  API_KEY: ${{azureml://connections/openai/credentials/key}}
  TOKEN: ${{azureml://connections/feeds/credentials/token}}
  PLAIN: not-a-secret
"""
SCORE = """\
import hashlib, os

def init():
    print("init: key is", os.environ["API_KEY"], flush=True)

def run(raw_data):
    return {"sha": hashlib.sha256(os.environ["API_KEY"].encode()).hexdigest(), "pid": os.getpid()}
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def files_holding(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def dump(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return "\n".join(connection.iterdump())


@pytest.fixture
def connections(smalt: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "openai.yml").write_text(API_KEY_CONNECTION)
    (folder / "feeds.yml").write_text(CUSTOM_CONNECTION)
    for name in ("openai", "feeds"):
        made = smalt("connection", "create", "-f", str(folder / f"{name}.yml"), "-o", "json")
        assert made.exit_code == 0, made.stderr
    return folder


def test_a_secret_reaches_a_job_and_no_show_list_log_or_dump(smalt: Any, ml_client: Any, connections: Path,
                                                              workspace_path: Path) -> None:  # fmt: skip
    shown = smalt("connection", "show", "--name", "openai", "-o", "json")
    listed = smalt("connection", "list", "-o", "json")
    assert shown.exit_code == 0 and listed.exit_code == 0
    assert json.loads(shown.stdout)["credentials"] == {"type": "api_key"}
    for text in (shown.stdout, listed.stdout):
        assert SECRET not in text and CUSTOM not in text
    (connections / "job.yml").write_text(JOB)
    ran = smalt("job", "create", "-f", str(connections / "job.yml"), "--stream", "-o", "json")
    assert ran.exit_code == 0, ran.stderr
    assert "key=***" in ran.stdout and f"custom {sha(CUSTOM)}" in ran.stdout
    assert SECRET not in ran.stdout + ran.stderr and "sk-live" not in ran.stdout  # the split write masked too
    job = ml_client.jobs.list()[0]
    shown_job = smalt("job", "show", "--name", job.name, "-o", "json")
    assert "${{azureml://connections/openai/credentials/key}}" in shown_job.stdout and SECRET not in shown_job.stdout
    # Nowhere on disk in the clear: logs, artifacts, job folders, the database file and its dump.
    assert files_holding(workspace_path, SECRET) == [] and files_holding(workspace_path, CUSTOM) == []
    assert SECRET not in dump(workspace_path / "metadata.db")
    # Reading the secrets was recorded, by the job that read them; asking for them is its own read.
    reads = [e for e in ml_client.audit.list() if e.action.endswith("connections/listsecrets/action")]
    assert {e.resource for e in reads} == {"/connections/openai", "/connections/feeds"}
    assert all(e.principal == f"job {job.name}" for e in reads)
    assert ml_client.connections.get("feeds", populate_secrets=True).secrets == {"token": CUSTOM}
    assert len([e for e in ml_client.audit.list() if e.action.endswith("listsecrets/action")]) == 3


def test_a_reference_to_a_missing_connection_or_key_is_refused_naming_the_line(smalt: Any, connections: Path,
                                                                               ml_client: Any) -> None:  # fmt: skip
    (connections / "job.yml").write_text(JOB.replace("openai/credentials/key", "openia/credentials/key")
                                          .replace("feeds/credentials/token", "feeds/credentials/nope"))  # fmt: skip
    refused = smalt("job", "create", "-f", str(connections / "job.yml"))
    assert refused.exit_code != 0
    assert "environment_variables.API_KEY: connection 'openia' not found; did you mean 'openai'?" in refused.stderr
    assert "environment_variables.TOKEN: connection 'feeds' has no credential 'nope'" in refused.stderr
    assert "job.yml:" in refused.stderr
    assert ml_client.jobs.list() == []


@pytest.mark.slow
def test_a_secret_reaches_a_deployment_and_its_restarts_but_not_its_logs(
    ml_client: Any, connections: Path, workspace_path: Path, serving: None, smalt: Any
) -> None:
    from smalt import load_online_deployment, load_online_endpoint

    (connections / "src").mkdir()
    (connections / "src" / "score.py").write_text(SCORE)
    (connections / "endpoint.yml").write_text("name: chat\nauth_mode: key\n")
    (connections / "blue.yml").write_text(
        "name: blue\nendpoint_name: chat\ncode_configuration:\n  code: ./src\n  scoring_script: score.py\n"
        "environment_variables:\n  API_KEY: ${{azureml://connections/openai/credentials/key}}\n"
        "instance_type: Standard_DS3_v2\ninstance_count: 1\n"
    )
    ml_client.online_endpoints.begin_create_or_update(load_online_endpoint(connections / "endpoint.yml")).result()
    ml_client.online_deployments.begin_create_or_update(load_online_deployment(connections / "blue.yml")).result()
    endpoint = ml_client.online_endpoints.get("chat")
    headers = {"Authorization": f"Bearer {ml_client.online_endpoints.get_keys('chat').primary_key}",
               "azureml-model-deployment": "blue"}
    with httpx.Client(timeout=30) as http:
        answer = http.post(endpoint.scoring_uri, content="{}", headers=headers)
        assert answer.status_code == 200, answer.text
        first = answer.json()
        assert first["sha"] == sha(SECRET)
        # The router restarts a killed instance: the secret reaches the new one too, from a sealed record.
        kill(first["pid"])
        folder = workspace_path / "endpoints" / "chat"
        wait_for("the instance restarted", lambda: [p for p in workers_of(folder) if p != first["pid"]])

        def answered() -> Any:
            answer = http.post(endpoint.scoring_uri, content="{}", headers=headers)
            return answer.status_code == 200 and answer.json()

        again = wait_for("the restarted instance answers", answered)
        assert again["sha"] == sha(SECRET) and again["pid"] != first["pid"]
        # Stopped, the key rotated twice (the sealed copies go along), started: the router starts
        # the instances from its sealed record, and they get the secret still.
        ml_client.online_endpoints.begin_stop("chat").result()
        for _ in range(2):
            assert ml_client.workspaces.begin_sync_keys().result()["endpoints"] == 1
        assert not (workspace_path / "secret.key.next").exists()
        ml_client.online_endpoints.begin_start("chat").result()
        restarted = wait_for("the endpoint answers after two key rotations", answered)
        assert restarted["sha"] == sha(SECRET)
    logs = list(folder.rglob("instance-*.log"))
    assert logs and all("init: key is ***" in log.read_text() for log in logs), [log.read_text() for log in logs]
    assert files_holding(workspace_path, SECRET) == []
    assert SECRET not in dump(workspace_path / "metadata.db")
    assert SECRET not in smalt("online-deployment", "show", "--name", "blue", "--endpoint-name", "chat").stdout


def sync_keys(workspace: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMALT_AGENT": "0"}
    if crash_at:
        env.update(SMALT_CRASH_AT=crash_at, SMALT_CRASH_FLAG=str(workspace / f"crashed-{crash_at}"))
    command = [str(Path(sys.executable).with_name("smalt")), "-w", str(workspace), "workspace", "sync-keys"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.embedded_only
@pytest.mark.parametrize("crash_at", ["keys.next-written", "keys.resealed", "keys.previous-kept"])
def test_key_rotation_killed_at_any_step_loses_nothing(ml_client: Any, connections: Path, workspace_path: Path,
                                                       crash_at: str) -> None:  # fmt: skip
    from smalt.entities import Datastore

    ml_client.datastores.create_or_update(Datastore(
        name="lake", type="azure_blob", account_name="acct", container_name="c",
        credentials={"account_key": "YWNjb3VudC1rZXktc2VjcmV0"},
    ))  # fmt: skip
    before = (workspace_path / "secret.key").read_bytes()
    killed = sync_keys(workspace_path, crash_at)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, at that step
    # Readable in the middle: by this process's box, and by a new process's.
    assert ml_client.connections.get("openai", populate_secrets=True).api_key == SECRET
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from smalt import MLClient; c = MLClient(workspace=sys.argv[1]); "
         "print(c.connections.get('feeds', populate_secrets=True).secrets['token'])", str(workspace_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert probe.stdout.strip() == CUSTOM, probe.stderr
    finished = sync_keys(workspace_path)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == {"datastores": 1, "connections": 2, "endpoints": 0}
    after = (workspace_path / "secret.key").read_bytes()
    assert after != before and not (workspace_path / "secret.key.next").exists()
    from smalt import MLClient

    with MLClient(workspace=workspace_path) as fresh:
        assert fresh.connections.get("openai", populate_secrets=True).api_key == SECRET
        assert fresh.connections.get("feeds", populate_secrets=True).secrets == {"token": CUSTOM}
    # The old key alone opens nothing any more; the new one opens everything.
    from cryptography.fernet import Fernet, InvalidToken

    with sqlite3.connect(workspace_path / "metadata.db") as connection:
        query = "select secrets from connections union all select secrets from datastores where secrets is not null"
        sealed = [row[0] for row in connection.execute(query)]
    assert len(sealed) == 3
    for token in sealed:
        Fernet(after.strip()).decrypt(token.encode())
        with pytest.raises(InvalidToken):
            Fernet(before.strip()).decrypt(token.encode())


def test_rotation_refuses_a_key_from_the_environment(smalt: Any, connections: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from cryptography.fernet import Fernet

    monkeypatch.setenv("SMALT_SECRET_KEY", Fernet.generate_key().decode())
    refused = smalt("workspace", "sync-keys")
    assert refused.exit_code != 0 and "SMALT_SECRET_KEY" in refused.stderr
