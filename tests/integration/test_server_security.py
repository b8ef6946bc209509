"""`smalt server` probed as an attacker would (issue 17): each finding that gave the server's
machine away is reproduced here and must now be refused, with a 4xx naming what was wrong, and
with nothing read, written or run outside what the client may name."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import RunningServer, free_port, start_server

from smalt import MLClient, load_job

#: The Owner the "auth" server has, made on its machine before it starts (as a team would).
OWNER, OWNER_PASSWORD = "admin", "an-owners-passw0rd"


class Served(RunningServer):
    """The module's server and the bearer token its clients send (None: authentication is off)."""

    def __init__(self, running: RunningServer, token: str | None) -> None:
        super().__init__(running.workspace, running.port, running.process, running.log)
        self.token = token


def client_of(server: RunningServer) -> MLClient:
    """The SDK on ``server``, with its token when it has one."""
    return MLClient(url=server.url, token=server.token if isinstance(server, Served) else None)


@pytest.fixture(scope="module", params=["open", "auth"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server on loopback: "open" with no identities (authentication off), "auth" with an Owner
    made beforehand (authentication on; every request here carries the Owner's token)."""
    folder = tmp_path_factory.mktemp(f"attacked-{request.param}")
    if request.param == "auth":
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SMALT_", "AZURE_"))},
               "HOME": str(folder), "SMALT_AGENT": "0"}  # fmt: skip
        smalt = str(Path(sys.executable).with_name("smalt"))
        made = subprocess.run([smalt, "-w", str(folder / "ws"), "user", "create", "--name", OWNER, "--password-stdin",
                               "--role", "Owner"], input=OWNER_PASSWORD + "\n", capture_output=True, text=True,
                              timeout=120, env=env)  # fmt: skip
        assert made.returncode == 0, made.stderr
    running = start_server(folder / "ws", folder / "server.log")
    try:
        token = None
        if request.param == "auth":
            assert "authentication on" in running.log.read_text()
            form = {"grant_type": "password", "username": OWNER, "password": OWNER_PASSWORD}
            answer = httpx.post(f"{running.url}/api/v1/token", data=form, timeout=60)
            assert answer.status_code == 200, answer.text
            token = answer.json()["access_token"]
        yield Served(running, token)
    finally:
        running.stop()


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as client:
        yield client


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def submit(http: httpx.Client, archive: bytes, file: str = "job.yml", route: str = "/api/v1/jobs",
           **params: Any) -> httpx.Response:  # fmt: skip
    return http.post(route, params={"file": file, **params}, content=archive,
                     headers={"Content-Type": "application/x-tar"})  # fmt: skip


def job_names(http: httpx.Client) -> set[str]:
    return {job["name"] for job in http.get("/api/v1/jobs").json()}


def run(server: RunningServer, spec: Path) -> tuple[dict[str, Any], str]:
    """Submit ``spec`` as the CLI does (with its files) and follow it: the finished job, its log."""
    client, out = client_of(server), io.StringIO()
    try:
        finished = client.jobs.stream(client.jobs.create_or_update(load_job(spec)).name, out=out)
    finally:
        client.close()
    return finished.to_dict(), out.getvalue()


# -- with authentication on, a caller without a credential gets no further than 401 ------------
@pytest.mark.parametrize("server", ["auth"], indirect=True)
def test_without_a_credential_every_attack_ends_at_401(server: Served, http: httpx.Client, tmp_path: Path) -> None:
    before = job_names(http)
    job = tar({"job.yml": b"type: command\ncommand: id\n"})
    stolen = {"name": "stolen", "source": "/etc/passwd"}
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        answers = {
            "plant": anonymous.put("/api/2.0/mlflow-artifacts/artifacts/x/job.yml", content=b"type: command\n"),
            "by path": anonymous.post("/api/v1/jobs", json={"file": str(tmp_path / "job.yml")}),
            "escape": submit(anonymous, job, file="../../etc/passwd", origin="/home/me"),
            "submit": submit(anonymous, job),
            "source": anonymous.post("/api/2.0/mlflow/model-versions/create", json=stolen),
            "read": anonymous.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "../.."}),
            "list": anonymous.get("/api/v1/jobs"),
            "forged": anonymous.get("/api/v1/jobs", headers={"Authorization": "Bearer not-a-token"}),
            "caller": anonymous.get("/api/v1/jobs", headers={"Smalt-Caller": OWNER}),
        }
    assert {what: a.status_code for what, a in answers.items()} == dict.fromkeys(answers, 401)
    assert job_names(http) == before


# -- commands run by anyone who can reach the server ------------------------------------------
def test_a_submission_naming_a_server_path_runs_nothing(http: httpx.Client, tmp_path: Path) -> None:
    # The attack: a job file written through the artifacts proxy, then submitted by its path.
    planted = http.put("/api/2.0/mlflow-artifacts/artifacts/x/job.yml", content=b"type: command\ncommand: id\n")
    assert planted.status_code == 400  # the proxy writes only into runs' and logged models' artifacts
    before = job_names(http)
    by_path = http.post("/api/v1/jobs", json={"file": str(tmp_path / "job.yml")})
    assert by_path.status_code == 400
    # A path inside the archive that leads out of it is refused, whether or not it exists there.
    for file in ("/etc/passwd", "../../etc/passwd", "/nonexistent/job.yml"):
        answer = submit(http, tar({"job.yml": b"type: command\ncommand: id\n"}), file=file, origin="/home/me")
        assert answer.status_code == 400, answer.text
        assert "outside the files sent" in answer.json()["error"]["message"]
    assert job_names(http) == before


@pytest.mark.parametrize("spec", [
    "code: /etc", "code: ../../..", "code: file:///etc", "code: ~/",
    "inputs: {data: {type: uri_file, path: /etc/passwd}}",
    "environment: {image: x, conda_file: ../../../../etc/hostname}",
])  # fmt: skip
def test_a_spec_naming_server_files_is_refused(http: httpx.Client, spec: str) -> None:
    before = job_names(http)
    job = f"type: command\ncommand: cat ${{{{inputs.data}}}} || ls\n{spec}\n".encode()
    if "inputs" not in spec:
        job = f"type: command\ncommand: ls\n{spec}\n".encode()
    for route in ("/api/v1/jobs", "/api/v1/jobs/validate"):
        answer = submit(http, tar({"job.yml": job}), route=route, origin="/home/me/project")
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        text = error["message"] + " ".join(p["message"] for p in error.get("problems", []))
        assert "outside the files sent" in text or "not a path the submission can name" in text
    assert job_names(http) == before


def test_the_validate_route_does_not_tell_whether_a_server_path_exists(http: httpx.Client) -> None:
    answers = []
    for path in ("/etc/passwd", "/etc/no-such-file-at-all"):
        job = f"type: command\ncommand: ls\ninputs: {{d: {{type: uri_file, path: {path}}}}}\n".encode()
        answer = submit(http, tar({"job.yml": job}), route="/api/v1/jobs/validate", origin="/srv")
        answers.append((answer.status_code, answer.json()["error"]["message"].replace(path, "<path>")))
    assert answers[0] == answers[1] and answers[0][0] == 400


def test_an_archive_that_escapes_its_folder_is_refused_whole(http: httpx.Client, server: RunningServer) -> None:
    before = job_names(http)
    escaping = [
        tar({"job.yml": b"type: command\ncommand: ls\n", "../../escaped.txt": b"x"}),
        tar({"job.yml": b"type: command\ncommand: ls\n", "/tmp/escaped-abs.txt": b"x"}),
        tar({"job.yml": b"type: command\ncommand: ls\ncode: src\n"}, links={"src": "/etc"}),
        b"this is not a tar archive",
    ]
    for archive in escaping:
        answer = submit(http, archive, origin="/home/me")
        assert answer.status_code == 400, answer.text
    assert job_names(http) == before
    assert not (server.workspace.parent / "escaped.txt").exists()
    assert not list((server.workspace / "submissions").iterdir())  # nothing is left behind


def test_a_job_with_code_outside_its_folder_travels_with_it(server: RunningServer, tmp_path: Path) -> None:
    # What a client legitimately sends: code in a sibling folder, data named by an absolute path.
    write(tmp_path / "src" / "main.py", "import sys; print(open(sys.argv[1]).read())\n")
    write(tmp_path / "data" / "rows.csv", "a,b\n1,2\n")
    spec = write(tmp_path / "jobs" / "job.yml", f"""
        type: command
        code: ../src
        command: python main.py ${{{{inputs.rows}}}}
        inputs:
          rows: {{type: uri_file, path: {tmp_path / 'data' / 'rows.csv'}}}
    """)  # fmt: skip
    finished, _ = run(server, spec)
    assert finished["status"] == "Completed", finished


# -- any server file can be read ----------------------------------------------------------------
@pytest.mark.parametrize("source", [
    "/etc/shadow", "/etc/passwd", "file:///etc/passwd", "{ws}/secret.key", "{ws}/metadata.db",
    "azureml://datastores/workspaceblobstore/paths/../../", "azureml://datastores/workspaceblobstore/paths/a/%2e%2e/%2e%2e/..",
    "mlflow-artifacts:/../..", "mlflow-artifacts:/azureml/..\\..\\..", "s3://bucket/key",
])  # fmt: skip
def test_a_model_version_source_is_confined(http: httpx.Client, server: RunningServer, source: str) -> None:
    registry = "/api/2.0/mlflow"
    http.post(f"{registry}/registered-models/create", json={"name": "stolen"})
    answer = http.post(f"{registry}/model-versions/create",
                       json={"name": "stolen", "source": source.format(ws=server.workspace)})  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    found = http.get(f"{registry}/model-versions/search", params={"filter": "name='stolen'"}).json()
    assert found.get("model_versions", []) == []


def test_a_runs_source_cannot_climb_out_of_its_run(http: httpx.Client) -> None:
    registry = "/api/2.0/mlflow"
    run = http.post(f"{registry}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    http.post(f"{registry}/registered-models/create", json={"name": "climb"})
    answer = http.post(f"{registry}/model-versions/create",
                       json={"name": "climb", "source": f"runs:/{run['run_id']}/../../.."})  # fmt: skip
    assert answer.status_code == 400, answer.text


# -- stored code can be swapped -----------------------------------------------------------------
def test_snapshots_cannot_be_written_through_the_artifacts_proxy(http: httpx.Client, server: RunningServer,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", "type: command\ncode: src\ncommand: python main.py\n")
    write(tmp_path / "src" / "main.py", "print('the submitted code')\n")
    first, _ = run(server, spec)
    assert first["status"] == "Completed"
    snapshot = first["code"].removeprefix("azureml://datastores/workspaceblobstore/paths/")
    assert snapshot.startswith("LocalUpload/")
    listing = http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": snapshot}).json()
    assert [f["path"] for f in listing["files"]] == ["main.py"]
    swapped = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{snapshot}/main.py", content=b"print('swapped')\n")
    assert swapped.status_code == 400
    for path in ("LocalUpload/x/y.py", f"azureml/{first['name']}/default/x", "azureml/../LocalUpload/x",
                 "a%00b/artifacts/c", "x/%2e%2e/%2e%2e/y"):  # fmt: skip
        assert http.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}", content=b"x").status_code == 400, path


def test_a_changed_snapshot_is_never_run(server: RunningServer, tmp_path: Path) -> None:
    spec = write(tmp_path / "job.yml", "type: command\ncode: src\ncommand: python main.py\n")
    write(tmp_path / "src" / "main.py", "print('the submitted code')\n")
    client = client_of(server)
    try:
        first = client.jobs.create_or_update(load_job(spec)).to_dict()
        assert client.jobs.stream(first["name"], out=io.StringIO()).status == "Completed"
        # However it was changed (a disk shared with others, a bug), the stored copy no longer
        # has its digest: a rerun fails before running it, and a new submission uploads afresh.
        stored = server.workspace / "blobs" / first["code"].split("/paths/", 1)[1] / "main.py"
        stored.write_text("print('swapped')\n")
        rerun = client.jobs.rerun(first["name"])
        out = io.StringIO()
        finished = client.jobs.stream(rerun.name, out=out).to_dict()
        assert finished["status"] == "Failed"
        assert "does not match its digest" in finished["error"]["message"]
        assert "swapped" not in out.getvalue()
        again = client.jobs.create_or_update(load_job(spec))
        out = io.StringIO()
        assert client.jobs.stream(again.name, out=out).status == "Completed"
        assert "the submitted code" in out.getvalue()
    finally:
        client.close()


# -- paths escape the workspace -----------------------------------------------------------------
def test_an_output_path_cannot_leave_its_datastore(http: httpx.Client, server: RunningServer, tmp_path: Path) -> None:
    victim = server.workspace.parent / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "keep.txt").write_text("precious")
    spec = write(tmp_path / "job.yml", """
        type: command
        command: echo x > ${{outputs.out}}/x
        outputs:
          out: {type: uri_folder, path: "azureml://datastores/workspaceblobstore/paths/../../victim"}
    """)  # fmt: skip
    client = client_of(server)
    try:
        with pytest.raises(Exception, match="outside"):
            client.jobs.create_or_update(load_job(spec))
    finally:
        client.close()
    assert (victim / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "x" * 300, "a\x00b"])
def test_a_job_name_follows_azure_rules(http: httpx.Client, server: RunningServer, name: str) -> None:
    answer = submit(http, tar({"job.yml": b"type: command\ncommand: ls\n"}), name=name)
    assert answer.status_code == 400, answer.text
    assert not (server.workspace / "x").exists() and not (server.workspace.parent / "x").exists()


def test_a_published_output_keeps_no_link_that_leads_outside(http: httpx.Client, server: RunningServer,
                                                             tmp_path: Path) -> None:  # fmt: skip
    spec = write(tmp_path / "job.yml", """
        type: command
        command: >-
          ln -s /etc/passwd ${{outputs.out}}/passwd && ln -s / ${{outputs.out}}/root &&
          echo inside > ${{outputs.out}}/real.txt && ln -s real.txt ${{outputs.out}}/alias.txt &&
          mkdir -p outputs && ln -s /etc/passwd outputs/passwd
        outputs:
          out: {type: uri_folder}
    """)  # fmt: skip
    job, _ = run(server, spec)
    assert job["status"] == "Completed"
    base = f"/api/2.0/mlflow-artifacts/artifacts/azureml/{job['name']}"
    for path in ("out/passwd", "out/root/etc/passwd", "artifacts/outputs/passwd"):
        answer = http.get(f"{base}/{path}")
        assert answer.status_code == 404, (path, answer.text[:200])
    assert http.get(f"{base}/out/alias.txt").text == "inside\n"


# -- jobs inherit the platform's secrets; an open address ---------------------------------------
def test_user_code_never_sees_the_platforms_secrets(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    env = {**os.environ, "SMALT_SECRET_KEY": key, "SMALT_DATABASE_URL": f"sqlite:///{tmp_path / 'meta.db'}",
           "AWS_SECRET_ACCESS_KEY": "platform-secret"}  # fmt: skip
    server = start_server(tmp_path / "ws", tmp_path / "server.log", env=env)
    spec = write(tmp_path / "job.yml", "type: command\ncommand: env\nenvironment_variables: {DECLARED: yes}\n")
    try:
        job, seen = run(server, spec)
    finally:
        server.stop()
    assert job["status"] == "Completed"
    assert "DECLARED=yes" in seen and "MLFLOW_TRACKING_URI=" in seen
    for secret in (key, "SMALT_DATABASE_URL", "SMALT_SECRET_KEY", "platform-secret"):
        assert secret not in seen


def test_the_secret_key_file_is_its_owners_alone(server: RunningServer, http: httpx.Client) -> None:
    http.post("/api/2.0/mlflow/experiments/create", json={"name": "touch"})
    from smalt.store.secrets import SecretBox

    key = server.workspace / "secret.key"
    SecretBox.for_workspace(server.workspace)
    assert key.stat().st_mode & 0o777 == 0o600
    key.chmod(0o644)
    SecretBox.for_workspace(server.workspace)
    assert key.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.org"])
def test_an_open_address_needs_a_token(tmp_path: Path, host: str) -> None:
    argv = [sys.executable, "-m", "smalt.server", "--workspace", str(tmp_path / "ws"), "--host", host,
            "--port", str(free_port())]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "SMALT_TOKEN"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "without authentication" in done.stderr and "SMALT_TOKEN" in done.stderr


# -- unbounded input ----------------------------------------------------------------------------
def test_a_failed_jobs_log_tail_is_bounded_in_bytes(http: httpx.Client, server: RunningServer, tmp_path: Path) -> None:
    spec = write(tmp_path / "job.yml", """
        type: command
        command: python -c "print('x' * 5_000_000); print('last words'); raise SystemExit(3)"
        experiment_name: noisy
    """)  # fmt: skip
    finished, _ = run(server, spec)
    assert finished["status"] == "Failed"
    assert "last words" in finished["error"]["log_tail"]
    assert len(finished["error"]["log_tail"]) <= 4096
    listed = http.get("/api/v1/jobs", params={"experiment_name": "noisy"})
    assert len(listed.content) < 16_384


@pytest.mark.parametrize(("spec", "field"), [
    ("type: command\ncommand: ls\ncompute: azureml:x\ndescription: " + "d" * 20_000 + "\n", "description"),
    ("type: command\ncommand: ls\ndisplay_name: " + "n" * 1000 + "\n", "display_name"),
    ("type: command\ncommand: ls\nlimits: {timeout: 10000000000000}\n", "timeout"),
    ("type: command\ncommand: ls\ntags: " + "[" * 100_000 + "]" * 100_000 + "\n", "nest"),
])  # fmt: skip
def test_out_of_range_specs_are_refused_naming_the_field(http: httpx.Client, spec: str, field: str) -> None:
    before = job_names(http)
    answer = submit(http, tar({"job.yml": spec.encode()}), origin="/home/me")
    assert answer.status_code == 400, answer.text[:500]
    assert field in answer.text
    assert job_names(http) == before


def test_a_compute_with_absurd_instances_is_refused() -> None:
    from smalt.entities import Compute
    from smalt.errors import InvalidSpecError

    with pytest.raises(InvalidSpecError, match="max_instances"):
        Compute(name="big", max_instances=10**10)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/2.0/mlflow/runs/log-metric", {"key": "m", "value": 1, "timestamp": 0, "step": 2**70}),
    ("POST", "/api/2.0/mlflow/runs/log-metric", {"key": "m", "value": 1, "timestamp": 2**64, "step": 0}),
    ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "start_time": -(10**15)}),
    ("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "max_results": 10**12}),
    ("GET", "/api/2.0/mlflow/registered-models/search?max_results=100000000000", None),
    ("GET", "/api/v1/jobs?max_results=100000000000", None),
    ("GET", "/api/v1/jobs?max_results=-1", None),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/azureml/r/artifacts/a%00b", None),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/azureml/r/artifacts/a%00b", None),
    ("POST", "/api/2.0/mlflow/experiments/create", {"name": "e" * 1_000_000}),
    ("POST", "/api/2.0/mlflow/registered-models/create", {"name": "m", "description": "d" * 1_000_000}),
])  # fmt: skip
def test_out_of_range_numbers_and_nul_bytes_are_4xx(http: httpx.Client, method: str, path: str,
                                                    body: dict[str, Any] | None) -> None:  # fmt: skip
    if body is not None and "key" in body:
        run = http.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        body = {**body, "run_id": run["run_id"]}
    answer = http.request(method, path, json=body) if body is not None else http.request(method, path, content=b"x")
    assert 400 <= answer.status_code < 500, answer.text[:300]
    assert "Internal error" not in answer.text


def test_the_cli_refuses_a_job_name_that_would_make_a_path(tmp_path: Path) -> None:
    spec = write(tmp_path / "job.yml", "type: command\ncommand: echo hi\n")
    smalt = str(Path(sys.executable).with_name("smalt"))
    env = {k: v for k, v in os.environ.items() if k not in ("SMALT_URL", "SMALT_WORKSPACE")}
    argv = [smalt, "--workspace", str(tmp_path / "ws"), "job", "create", "-f", str(spec), "--name", "../../escaped"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0 and "name" in done.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()
