"""Access control end to end (issue 20): identities made on the server's machine, a `smalt server`
with authentication on, and the real CLI (its own interpreter, with only the environment a user or
a CI job would have), the SDK and the MLflow client calling it over HTTP under Azure ML's roles.

One server serves the whole module; each test makes the principals and tokens it needs."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.slow

SMALT = str(Path(sys.executable).with_name("smalt"))
WORKSPACE = "ws"
SCOPE = f"/workspaces/{WORKSPACE}"
JOBS_WRITE = "Microsoft.MachineLearningServices/workspaces/jobs/write"
COMPUTES_WRITE = "Microsoft.MachineLearningServices/workspaces/computes/write"
RUNS_WRITE = "Microsoft.MachineLearningServices/workspaces/experiments/runs/write"
#: What the CLI says of a 401: no credential, or one the server does not accept.
UNAUTHENTICATED = "A valid credential is required"
PASSWORDS = {"admin": "admin-passw0rd-long", "reader": "reader-passw0rd-long", "scientist": "scientist-passw0rd-long"}


# -- helpers ------------------------------------------------------------------------------------
def clean_env(home: Path) -> dict[str, str]:
    """The environment of a fresh shell: nothing of smalt's, Azure's or MLflow's from outside, a home
    and an empty config folder of its own, and commands run in-process (no CLI agent)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("SMALT_", "AZURE_", "MLFLOW_"))}
    config = home / "empty-config"
    config.mkdir(parents=True, exist_ok=True)
    return {**kept, "HOME": str(home), "XDG_CONFIG_HOME": str(config), "SMALT_AGENT": "0",
            "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli(*args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None) -> Done:
    """The installed `smalt` as a shell runs it, with exactly ``env``."""
    done = subprocess.run([SMALT, *args], capture_output=True, text=True, timeout=300, env=env, input=stdin,
                          cwd=cwd)  # fmt: skip
    return Done(done.returncode, done.stdout, done.stderr)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def status_with(site: Site, token: str) -> int:
    """The status of a plain ``GET /api/v1/jobs`` with ``token`` as the bearer token."""
    answer = httpx.get(f"{site.url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return answer.status_code


@dataclass
class Site:
    """The module's server, and how its callers reach it."""

    server: RunningServer
    folder: Path
    ci: dict[str, str]  # the service principal made on the server's machine: client_id, client_secret, tenant_id
    admin_env: dict[str, str]  # an Owner, signed in with `smalt login`

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def workspace(self) -> Path:
        return self.server.workspace

    def env(self, name: str, **extra: str) -> dict[str, str]:
        """A fresh shell of its own (home ``name``) pointed at the server, plus ``extra``."""
        return {**clean_env(self.folder / "homes" / name), "SMALT_URL": self.url, **extra}

    def admin(self, *args: str, stdin: str | None = None) -> Done:
        done = cli(*args, env=self.admin_env, stdin=stdin)
        assert done.code == 0, (args, done.stderr)
        return done

    def token(self, principal: str, name: str) -> str:
        """A new personal access token of ``principal``, made by the Owner."""
        made = self.admin("token", "create", "--name", name, "--principal", principal).json()
        assert made["principal"] == principal and made["token"].startswith("smalt_pat_")
        return str(made["token"])

    def as_token(self, token: str, home: str) -> dict[str, str]:
        return self.env(home, SMALT_TOKEN=token)

    def audit(self, principal: str) -> list[dict[str, Any]]:
        listed = self.admin("audit", "list", "--principal", principal, "-o", "json").json()
        assert isinstance(listed, list)
        return listed


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("access")
    workspace = folder / WORKSPACE
    local = clean_env(folder / "homes" / "operator")  # on the server's machine, without SMALT_URL
    made = cli("-w", str(workspace), "user", "create", "--name", "admin", "--password-stdin", "--role", "Owner",
               env=local, stdin=PASSWORDS["admin"] + "\n")  # fmt: skip
    assert made.code == 0, made.stderr
    ci = cli("-w", str(workspace), "service-principal", "create", "--name", "ci", "--role", "AzureML Data Scientist",
             "--scope", SCOPE, env=local)  # fmt: skip
    assert ci.code == 0, ci.stderr
    assert "AZURE_CLIENT_ID" in ci.stderr  # the hint CI needs, beside the secret shown once
    credentials = ci.json()
    assert set(credentials) >= {"client_id", "client_secret", "tenant_id"}
    server = start_server(workspace, folder / "server.log", env={"HOME": str(folder / "homes" / "operator")})
    try:
        log = server.log.read_text()
        assert "authentication on" in log, log
        admin_env = {**clean_env(folder / "homes" / "admin"), "SMALT_URL": server.url}
        signed_in = cli("login", "--username", "admin", "--password-stdin", env=admin_env,
                        stdin=PASSWORDS["admin"] + "\n")  # fmt: skip
        assert signed_in.code == 0, signed_in.stderr
        here = Site(server, folder, credentials, admin_env)
        here.admin("user", "create", "--name", "reader", "--password-stdin", stdin=PASSWORDS["reader"] + "\n")
        here.admin("role", "assignment", "create", "--assignee", "reader", "--role", "Reader", "--scope", SCOPE)
        here.admin("user", "create", "--name", "scientist", "--password-stdin", "--role", "AzureML Data Scientist",
                   "--scope", SCOPE, stdin=PASSWORDS["scientist"] + "\n")  # fmt: skip
        yield here
    finally:
        server.stop()


# -- 1. a Reader lists but cannot submit ----------------------------------------------------------
def test_a_reader_lists_jobs_and_data_but_cannot_submit(site: Site, tmp_path: Path) -> None:
    rows = write(tmp_path / "rows.csv", "a,b\n1,2\n")
    site.admin("data", "create", "--name", "rows", "--version", "1", "--type", "uri_file", "--path", str(rows))
    reader = site.as_token(site.token("reader", "reader-cli"), "reader")

    data = cli("data", "list", "-o", "json", env=reader)
    assert data.code == 0, data.stderr
    assert "rows" in [d["name"] for d in data.json()]
    jobs = cli("job", "list", "-o", "json", env=reader)
    assert jobs.code == 0, jobs.stderr
    before = {j["name"] for j in jobs.json()}

    spec = write(tmp_path / "job.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        type: command
        command: echo should not run
    """)  # fmt: skip
    refused = cli("job", "create", "-f", str(spec), env=reader)
    assert refused.code != 0
    assert JOBS_WRITE in refused.stderr, refused.stderr
    assert "reader" in refused.stderr
    after = cli("job", "list", "-o", "json", env=reader).json()
    assert {j["name"] for j in after} == before  # nothing was queued

    denied = [e for e in site.audit("reader") if e["action"] == JOBS_WRITE]
    assert denied, site.audit("reader")
    assert denied[0]["outcome"] == "denied" and denied[0]["status"] == 403
    assert denied[0]["workspace"] == WORKSPACE and denied[0]["request_id"] and denied[0]["client"]


# -- 2. a Data Scientist submits jobs but cannot create a compute ---------------------------------
def test_a_data_scientist_runs_a_job_but_cannot_create_a_compute(site: Site, tmp_path: Path) -> None:
    scientist = site.as_token(site.token("scientist", "scientist-cli"), "scientist")
    spec = write(tmp_path / "job.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        type: command
        command: echo "hello from $WHO"
        environment_variables: {WHO: a data scientist}
        experiment_name: access
    """)  # fmt: skip
    created = cli("job", "create", "-f", str(spec), "--stream", env=scientist)
    assert created.code == 0, created.stderr
    assert "hello from a data scientist" in created.stdout
    finished = re.search(r"Job (\S+) finished: (\w+)", created.stderr)
    assert finished is not None and finished.group(2) == "Completed", created.stderr
    shown = cli("job", "show", "-n", finished.group(1), "-o", "json", env=scientist).json()
    assert shown["creation_context"]["created_by"] == "scientist"

    refused = cli("compute", "create", "--name", "big", "--type", "amlcompute", "--max-instances", "2", env=scientist)
    assert refused.code != 0
    assert COMPUTES_WRITE in refused.stderr, refused.stderr
    denied = [e for e in site.audit("scientist") if e["action"] == COMPUTES_WRITE]
    assert denied and denied[0]["status"] == 403 and denied[0]["outcome"] == "denied", site.audit("scientist")
    computes = site.admin("compute", "list", "-o", "json").json()
    assert "big" not in [c["name"] for c in computes]


# -- 3. a service principal from CI -----------------------------------------------------------------
def test_a_service_principal_submits_a_pipeline_with_azures_environment_variables(site: Site, tmp_path: Path) -> None:
    write(tmp_path / "src" / "prep.py", """
        import pathlib, sys
        rows = pathlib.Path(sys.argv[1]).read_text().splitlines()
        pathlib.Path(sys.argv[2], "count.txt").write_text(str(len(rows) - 1))
    """)  # fmt: skip
    write(tmp_path / "data" / "rows.csv", "a,b\n1,2\n3,4\n")
    spec = write(tmp_path / "pipeline.yml", """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        display_name: ci-pipeline
        experiment_name: ci
        inputs:
          rows:
            type: uri_file
            path: ./data/rows.csv
        jobs:
          prep:
            type: command
            code: ./src
            command: python prep.py ${{inputs.rows}} ${{outputs.counted}}
            inputs:
              rows: ${{parent.inputs.rows}}
            outputs:
              counted:
                type: uri_folder
          report:
            type: command
            command: echo "rows counted $(cat ${{inputs.counted}}/count.txt)"
            inputs:
              counted: ${{parent.jobs.prep.outputs.counted}}
    """)  # fmt: skip
    ci = site.ci
    env = site.env("ci-runner", AZURE_CLIENT_ID=ci["client_id"], AZURE_CLIENT_SECRET=ci["client_secret"],
                   AZURE_TENANT_ID=ci["tenant_id"])  # fmt: skip
    assert "SMALT_TOKEN" not in env and not list(Path(env["XDG_CONFIG_HOME"]).iterdir())
    created = cli("job", "create", "-f", str(spec), "--stream", env=env, cwd=tmp_path)
    assert created.code == 0, created.stderr
    assert "rows counted 2" in created.stdout, created.stdout
    finished = re.search(r"Job (\S+) finished: (\w+)", created.stderr)
    assert finished is not None and finished.group(2) == "Completed", created.stderr
    name = finished.group(1)

    shown = cli("job", "show", "-n", name, "-o", "json", env=env)
    assert shown.code == 0, shown.stderr
    job = shown.json()
    assert job["type"] == "pipeline" and job["status"] == "Completed"
    assert job["creation_context"]["created_by"] == "ci"
    steps = cli("job", "list", "--parent", name, "-o", "json", env=env).json()
    assert sorted(s["display_name"] for s in steps) == ["prep", "report"]
    assert {s["creation_context"]["created_by"] for s in steps} == {"ci"}
    # Nothing was stored on the CI machine: the secret was exchanged for a token each time.
    assert not list(Path(env["XDG_CONFIG_HOME"]).iterdir())


# -- 4. expired and revoked credentials ------------------------------------------------------------
def test_a_revoked_token_is_refused(site: Site) -> None:
    token = site.token("reader", "revoked-unused")
    site.admin("token", "revoke", "--name", "revoked-unused", "--principal", "reader")
    refused = cli("job", "list", env=site.as_token(token, "reader"))
    assert refused.code != 0
    assert UNAUTHENTICATED in refused.stderr, refused.stderr
    assert status_with(site, token) == 401
    listed = site.admin("token", "list", "--principal", "reader", "-o", "json").json()
    assert next(t for t in listed if t["name"] == "revoked-unused")["revoked_at"] is not None
    assert all(t.get("token") is None for t in listed)  # a token's secret is shown once, when made


def test_a_token_revoked_right_after_use_is_refused_on_the_next_command(site: Site) -> None:
    token = site.token("reader", "revoked-used")
    env = site.as_token(token, "reader")
    assert cli("job", "list", env=env).code == 0
    site.admin("token", "revoke", "--name", "revoked-used", "--principal", "reader")
    refused = cli("job", "list", env=env)
    assert refused.code != 0, "a revoked token was still accepted (the server kept it from the command before)"
    assert UNAUTHENTICATED in refused.stderr, refused.stderr
    assert status_with(site, token) == 401


def test_an_expired_token_is_refused(site: Site) -> None:
    # Never used before it expires: the server keeps a token it checked for up to 30 s.
    token = site.token("reader", "expired")
    with closing(sqlite3.connect(site.workspace / "metadata.db")) as db, db:
        stored = db.execute("SELECT expires_at FROM access_tokens WHERE name = 'expired'").fetchone()[0]
        past = "2000-01-01 00:00:00" + stored[19:]  # in the format the server wrote
        changed = db.execute("UPDATE access_tokens SET expires_at = ? WHERE name = 'expired'", (past,))
        assert changed.rowcount == 1
    listed = site.admin("token", "list", "--principal", "reader", "-o", "json").json()
    assert next(t for t in listed if t["name"] == "expired")["expires_at"].startswith("2000-01-01")
    before = len([e for e in site.audit("anonymous") if e["status"] == 401])
    refused = cli("job", "list", env=site.as_token(token, "reader"))
    assert refused.code != 0
    assert UNAUTHENTICATED in refused.stderr, refused.stderr
    assert status_with(site, token) == 401
    denied = [e for e in site.audit("anonymous") if e["status"] == 401]
    assert len(denied) >= before + 2 and denied[0]["outcome"] == "denied"


def test_a_service_principal_whose_secret_was_reset_is_refused(site: Site) -> None:
    from smalt import MLClient
    from smalt.client.credentials import ClientSecretCredential
    from smalt.errors import AuthenticationError

    made = site.admin("service-principal", "create", "--name", "rotated", "--role", "Reader", "--scope", SCOPE).json()

    def jobs(secret: str) -> list[Any]:
        credential = ClientSecretCredential(made["tenant_id"], made["client_id"], secret)
        with MLClient(credential, url=site.url, workspace_name=WORKSPACE) as client:
            return list(client.jobs.list())

    jobs(made["client_secret"])  # works
    reset = site.admin("service-principal", "reset-secret", "--name", "rotated").json()
    assert reset["client_id"] == made["client_id"] and reset["client_secret"] != made["client_secret"]
    with pytest.raises(AuthenticationError, match="refused"):
        jobs(made["client_secret"])
    jobs(reset["client_secret"])  # the new one works


# -- 5. MLflow clients -----------------------------------------------------------------------------
MLFLOW_SCENARIO = """
import json, sys
import mlflow
from mlflow.tracking import MlflowClient

client, out = MlflowClient(), {}
try:
    out["experiments"] = [e.name for e in client.search_experiments()]
except Exception as exc:
    out["search_error"] = f"{type(exc).__name__}: {exc}"
try:
    mlflow.set_experiment("access-mlflow") if sys.argv[1] == "write" else None
    experiment = client.get_experiment_by_name("access-mlflow") if sys.argv[1] == "write" else None
    run = client.create_run(experiment.experiment_id if experiment else "0")
    client.log_metric(run.info.run_id, "acc", 0.75)
    client.set_terminated(run.info.run_id)
    out["metrics"] = client.get_run(run.info.run_id).data.metrics
except Exception as exc:
    out["run_error"] = f"{type(exc).__name__}: {exc}"
print("RESULT " + json.dumps(out))
"""


def mlflow_client(site: Site, tmp_path: Path, mode: str, **credentials: str) -> dict[str, Any]:
    script = write(tmp_path / "scenario.py", MLFLOW_SCENARIO)
    env = {**site.env("mlflow"), "MLFLOW_TRACKING_URI": site.url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           **credentials}  # fmt: skip
    done = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def test_mlflow_logs_a_metric_with_a_data_scientists_tracking_token(site: Site, tmp_path: Path) -> None:
    scientist = site.token("scientist", "mlflow")
    logged = mlflow_client(site, tmp_path, "write", MLFLOW_TRACKING_TOKEN=scientist)
    assert "search_error" not in logged and "run_error" not in logged, logged
    assert logged["metrics"] == {"acc": 0.75}
    assert "Default" in logged["experiments"]


def test_mlflow_with_a_readers_name_and_password_searches_but_cannot_create_a_run(site: Site, tmp_path: Path) -> None:
    reader = mlflow_client(site, tmp_path, "read", MLFLOW_TRACKING_USERNAME="reader",
                           MLFLOW_TRACKING_PASSWORD=PASSWORDS["reader"])  # fmt: skip
    assert "search_error" not in reader, reader
    assert "Default" in reader["experiments"]
    assert "metrics" not in reader
    # Refused as MLflow's protocol says: 403 PERMISSION_DENIED (not a 500 the client retries).
    assert "PERMISSION_DENIED" in reader["run_error"] and "runs/write" in reader["run_error"], reader
    denied = [e for e in site.audit("reader") if e["action"] == RUNS_WRITE]
    assert denied and denied[0]["status"] == 403 and denied[0]["outcome"] == "denied", site.audit("reader")


def test_mlflow_without_credentials_or_with_a_wrong_password_is_refused(site: Site, tmp_path: Path) -> None:
    nobody = mlflow_client(site, tmp_path, "read")
    assert "experiments" not in nobody and "metrics" not in nobody, nobody
    for error in (nobody["search_error"], nobody["run_error"]):
        assert "UNAUTHENTICATED" in error, nobody
    wrong = mlflow_client(site, tmp_path, "read", MLFLOW_TRACKING_USERNAME="reader",
                          MLFLOW_TRACKING_PASSWORD="not-the-password")  # fmt: skip
    assert "experiments" not in wrong and "UNAUTHENTICATED" in wrong["search_error"], wrong


# -- 6. signing in ---------------------------------------------------------------------------------
def test_login_keeps_a_token_its_owner_alone_can_read(site: Site) -> None:
    env = site.env("scientist-login")
    config = Path(env["XDG_CONFIG_HOME"])
    signed_in = cli("login", "--username", "scientist", "--password-stdin", env=env,
                    stdin=PASSWORDS["scientist"] + "\n")  # fmt: skip
    assert signed_in.code == 0, signed_in.stderr
    stored = config / "smalt" / "credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert (config / "smalt").stat().st_mode & 0o077 == 0
    assert PASSWORDS["scientist"] not in stored.read_text()
    assert "SMALT_TOKEN" not in env
    listed = cli("job", "list", "-o", "json", env=env)
    assert listed.code == 0, listed.stderr
    whoami = cli("token", "list", "-o", "json", env=env)  # the caller's own tokens: the login's among them
    assert whoami.code == 0, whoami.stderr
    assert any(t["name"].startswith("login-") and t["principal"] == "scientist" for t in whoami.json())

    wrong = cli("login", "--username", "scientist", "--password-stdin", env=site.env("wrong-login"),
                stdin="not-the-password\n")  # fmt: skip
    assert wrong.code != 0 and "refused" in wrong.stderr

    cli("logout", env=env)
    refused = cli("job", "list", env=env)
    assert refused.code != 0 and UNAUTHENTICATED in refused.stderr, refused.stderr


def test_without_credentials_nothing_is_answered(site: Site) -> None:
    refused = cli("job", "list", env=site.env("stranger"))
    assert refused.code != 0
    assert UNAUTHENTICATED in refused.stderr, refused.stderr
