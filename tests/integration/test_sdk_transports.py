"""One SDK, two transports (issue 19, first step): the asset operation groups behave and fail the
same way in-process and over HTTP through `smalt server`."""

from __future__ import annotations

import getpass
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.conftest import start_server

from smalt import MLClient, command
from smalt.artifacts.content import path_digest
from smalt.entities import CommandComponent, Compute, Data, Datastore, Environment, Model
from smalt.errors import (
    AlreadyExistsError,
    InvalidSpecError,
    InvalidStateError,
    NotFoundError,
    SmaltError,
    UserCodeError,
    VersionConflictError,
)

URI = "azureml://datastores/workspaceblobstore/paths/raw/iris.csv"
UPLOADS = "azureml://datastores/workspaceblobstore/paths/LocalUpload"


def digest(path: Path) -> str:
    return path_digest(path)[:32]


@pytest.fixture(params=["in-process", "http"])
def client(request: pytest.FixtureRequest, workspace_path: Path, tmp_path: Path) -> Iterator[MLClient]:
    MLClient(workspace=workspace_path).close()  # the workspace exists before a server opens it
    if request.param == "in-process":
        with MLClient(workspace=workspace_path) as local:
            yield local
        return
    # The named workspaces live where the in-process SDK keeps them: ~/.smalt/<name>.
    server = start_server(workspace_path, tmp_path / "server.log", args=("--home", str(Path.home() / ".smalt")))
    try:
        with MLClient(url=server.url) as remote:
            yield remote
    finally:
        server.stop()


def plain(entity: Any) -> dict[str, Any]:
    data: dict[str, Any] = entity.to_dict()
    data.pop("creation_context", None)
    return data


def failure(call: Any) -> tuple[type[SmaltError], str, str | None]:
    with pytest.raises(SmaltError) as caught:
        call()
    return type(caught.value), caught.value.message, caught.value.hint


def test_asset_verbs_give_the_same_entities(client: MLClient) -> None:
    first = client.data.create_or_update(Data(name="iris", path=URI, type="uri_file", tags={"stage": "raw"}))
    second = client.data.create_or_update(Data(name="iris", path=URI.replace("iris", "iris2"), type="uri_file"))
    assert (first.version, second.version) == ("1", "2")
    assert plain(client.data.get("iris", version=1)) == plain(first)
    assert plain(client.data.get("iris", label="latest")) == plain(second)
    assert [d.version for d in client.data.list("iris")] == ["2", "1"]
    client.data.archive("iris", version=2)
    assert client.data.get("iris", label="latest").version == "1"
    assert [d.version for d in client.data.list("iris", include_archived=True)] == ["2", "1"]
    client.data.restore("iris", version=2)
    assert [d.name for d in client.data.list()] == ["iris"]
    env = client.environments.create_or_update(Environment(name="slim", image="python:3.11-slim", version="3"))
    assert plain(client.environments.get("slim", version="3")) == plain(env)
    model = client.models.create_or_update(Model(name="m", path="https://example.com/m.pkl"))
    assert model.version == "1" and client.models.list()[0].name == "m"


def test_asset_errors_are_the_same_errors(client: MLClient) -> None:
    client.data.create_or_update(Data(name="iris", path=URI, type="uri_file", version="1"))
    assert failure(lambda: client.data.get("iris", version=7)) == (
        NotFoundError, "Data asset 'iris:7' not found. Versions: 1.", "smalt data list --name iris"
    )
    kind, message, _ = failure(
        lambda: client.data.create_or_update(Data(name="iris", path=URI.replace("iris", "other"), version="1"))
    )
    assert kind is VersionConflictError and "iris:1" in message
    with pytest.raises(InvalidSpecError) as caught:
        client.data.get("iris")
    assert caught.value.problems[0].field == "version"


def test_a_server_reads_no_path_a_client_names(workspace_path: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's own file")
    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        with MLClient(url=server.url) as remote:
            body = {"name": "leak", "type": "uri_file", "path": str(secret)}
            with pytest.raises(InvalidSpecError, match="is a path on the client's machine"):
                remote._rest.call("POST", f"/workspaces/{remote.workspace_name}/data", body)
            with pytest.raises(InvalidSpecError, match="leads outside"):
                remote._rest.call("POST", f"/workspaces/{remote.workspace_name}/uploads", {
                    "name": "x", "files": {"../../etc/passwd": "0" * 64},
                })  # fmt: skip
            assert remote.data.list() == []
            with pytest.raises(NotFoundError, match="Workspace 'elsewhere' not found"):
                MLClient(url=server.url, workspace_name="elsewhere")
            with pytest.raises(InvalidSpecError, match="a local datastore names a folder on the server's disk"):
                remote.datastores.create_or_update(Datastore(name="disk", type="local", path="/etc"))
            with pytest.raises(NotFoundError, match="'m:1' not found"):  # packaged by the server, as in-process
                remote.models.package_context("m", version=1, output=tmp_path / "ctx")
            with MLClient(workspace=workspace_path) as local:
                assert remote.workspace_name == local.workspace_name
    finally:
        server.stop()


def test_local_files_travel_as_content_and_land_where_a_local_upload_would(
    client: MLClient, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('train')\n")
    (src / "pkg" / "util.py").write_text("X = 1\n")
    (tmp_path / "iris.csv").write_text("a,b\n1,2\n")
    (tmp_path / "conda.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - six\n")
    data = client.data.create_or_update(Data(name="iris", path=str(tmp_path / "iris.csv"), type="uri_file"))
    component = client.components.create_or_update(
        CommandComponent(name="train", command="python train.py", code=str(src))
    )
    env = client.environments.create_or_update(Environment(name="e", conda_file=str(tmp_path / "conda.yml")))
    # Content-addressed: the same URIs whichever way the files travelled.
    assert data.path == f"{UPLOADS}/{digest(tmp_path / 'iris.csv')}/iris.csv"
    assert component.code == f"{UPLOADS}/{digest(src)}/src"
    assert env.conda_file == {"dependencies": ["python=3.11", {"pip": ["six"]}]}


def test_a_folder_sent_again_sends_only_what_changed(workspace_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(20):
        (folder / f"part-{i}.bin").write_bytes(bytes([i]) * 1000)
    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        with MLClient(url=server.url) as remote:
            sent: list[str] = []
            put = remote._rest.put_file
            remote._rest.put_file = lambda path, file, **kw: (sent.append(file.name), put(path, file, **kw))  # type: ignore[method-assign]
            first = remote.data.create_or_update(Data(name="big", path=str(folder), type="uri_folder"))
            assert len(sent) == 20
            sent.clear()
            (folder / "part-3.bin").write_bytes(b"changed")
            second = remote.data.create_or_update(Data(name="big", path=str(folder), type="uri_folder"))
            assert sent == ["part-3.bin"]
            assert (first.version, second.version) == ("1", "2") and first.path != second.path
            stored = workspace_path / "blobs" / second.path.split("/paths/", 1)[1]
            assert sorted(p.name for p in stored.iterdir()) == sorted(f"part-{i}.bin" for i in range(20))
            assert (stored / "part-3.bin").read_bytes() == b"changed"
            # A pooled file written to through a stored copy is not trusted again: it is sent anew.
            (stored / "part-5.bin").write_bytes(b"tampered")
            sent.clear()
            (folder / "part-3.bin").write_bytes(b"changed again")
            remote.data.create_or_update(Data(name="big", path=str(folder), type="uri_folder"))
            assert sorted(sent) == ["part-3.bin", "part-5.bin"]
    finally:
        server.stop()


def test_a_code_folder_that_every_step_names_is_sent_once(workspace_path: Path, tmp_path: Path) -> None:
    from smalt import load_job

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "step.py").write_text("print('step')\n")
    steps = {f"s{i}": {"type": "command", "code": "./src", "command": "python step.py"} for i in range(3)}
    spec = tmp_path / "pipeline.yml"
    spec.write_text(json.dumps({"type": "pipeline", "settings": {"default_compute": "local"}, "jobs": steps}))
    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        with MLClient(url=server.url) as remote:
            named: list[str] = []
            call = remote._rest.call
            remote._rest.call = lambda method, path, *a, **kw: (  # type: ignore[method-assign]
                named.append(path) if path.endswith("/uploads") else None, call(method, path, *a, **kw))[1]
            job = remote.jobs.create_or_update(load_job(spec))
            assert len(named) == 1, named
            assert remote.jobs.stream(job.name).status == "Completed"
            codes = {step.code for step in remote.jobs.list(parent_job_name=job.name)}
            assert len(codes) == 1 and next(iter(codes)).startswith("azureml://datastores/workspaceblobstore/paths/")
    finally:
        server.stop()


def test_computes_and_datastores_give_the_same_entities_and_errors(client: MLClient) -> None:
    cluster = client.compute.create_or_update(Compute(name="cpu", type="amlcompute", max_instances=2))
    assert plain(client.compute.get("cpu")) == plain(cluster)
    assert [c.name for c in client.compute.list()] == ["local", "cpu"]
    client.compute.delete("cpu")
    assert failure(lambda: client.compute.get("cpu")) == (
        NotFoundError, "Compute 'cpu' not found. Computes: local.", "smalt compute create --name cpu --type amlcompute"
    )
    store = client.datastores.create_or_update(Datastore(
        name="lake", type="azure_blob", account_name="acct", container_name="c",
        credentials={"account_key": "s3cr3t"},  # type: ignore[arg-type]
    ))  # fmt: skip
    assert store.credentials is not None and store.credentials.account_key is None  # secrets never come back
    assert "s3cr3t" not in str(client.datastores.get("lake").to_dict())
    assert {d.name for d in client.datastores.list()} == {"workspaceblobstore", "lake"}
    assert client.datastores.get_default().name == "workspaceblobstore"
    client.datastores.delete("lake")
    assert failure(lambda: client.datastores.get("lake"))[0] is NotFoundError


def test_the_cli_with_smalt_url_works_on_the_servers_workspace(smalt: Any, remote: Any, tmp_path: Path) -> None:
    (tmp_path / "iris.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data.yml").write_text("name: iris\ntype: uri_file\npath: ./iris.csv\n")
    created = smalt("data", "create", "-f", str(tmp_path / "data.yml"), "-o", "json")
    assert created.exit_code == 0, created.stderr
    assert created.json()["path"] == f"{UPLOADS}/{digest(tmp_path / 'iris.csv')}/iris.csv"
    listed = smalt("data", "list", "--query", "[].name", "-o", "tsv")
    assert listed.stdout == "iris\n"
    assert smalt("compute", "create", "--name", "cpu", "--type", "amlcompute").exit_code == 0
    with MLClient(workspace=remote.workspace) as local:  # the server's workspace holds them
        assert [c.name for c in local.compute.list()] == ["local", "cpu"]
        assert local.data.get("iris", version=1).path == created.json()["path"]
    assert smalt("online-endpoint", "list", "-o", "json").json() == []
    assert smalt("data", "impact", "--name", "iris", "--version", "1", "-o", "json").json()["root"] == "data:iris:1"
    missing = smalt("model", "package", "--name", "m", "--version", "1", "--output", str(tmp_path / "ctx"))
    assert missing.exit_code == 1 and "'m:1' not found" in missing.stderr


SCORE = """\
import json, os

def init():
    global weights
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.json")) as f:
        weights = json.load(f)

def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return {"scores": [sum(w * x for w, x in zip(weights, r)) for r in rows]}
"""


@pytest.mark.slow
def test_an_online_endpoint_serves_the_same_through_either_transport(
    client: MLClient, tmp_path: Path, serving: None
) -> None:
    from smalt.entities import CodeConfiguration, EndpointAuthKeys, OnlineDeployment, OnlineEndpoint
    from smalt.entities.endpoint import InlineModel

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.json").write_text("[1, 2]")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE)
    endpoint = client.online_endpoints.begin_create_or_update(OnlineEndpoint(name="credit")).result()
    assert endpoint.auth_mode == "key"
    deployment = client.online_deployments.begin_create_or_update(OnlineDeployment(
        name="blue", endpoint_name="credit", model=InlineModel(path=str(tmp_path / "model")),
        code_configuration=CodeConfiguration(code=str(tmp_path / "src"), scoring_script="score.py"),
    ), all_traffic=True).result()  # fmt: skip
    assert deployment.provisioning_state == "Succeeded"
    answer = client.online_endpoints.invoke("credit", request='{"data": [[1, 2], [3, 4]]}')
    assert json.loads(answer) == {"scores": [5, 11]}
    keys = client.online_endpoints.get_keys("credit")
    assert isinstance(keys, EndpointAuthKeys) and keys.primary_key
    assert [d.name for d in client.online_deployments.list("credit")] == ["blue"]
    assert isinstance(client.online_deployments.get_logs("blue", "credit"), str)
    assert client.online_endpoints.get("credit").traffic == {"blue": 100}
    with pytest.raises(UserCodeError, match="answered 4"):
        client.online_endpoints.invoke("credit", request="not json")
    client.online_endpoints.begin_delete("credit").result()
    assert failure(lambda: client.online_endpoints.get("credit"))[0] is NotFoundError


def test_jobs_run_and_fail_the_same_through_either_transport(client: MLClient, tmp_path: Path) -> None:
    from smalt import Input, Output, command

    src = tmp_path / "src"
    src.mkdir()
    (src / "count.py").write_text(
        "import sys, pathlib\n"
        "rows = pathlib.Path(sys.argv[1]).read_text().splitlines()\n"
        "pathlib.Path(sys.argv[2], 'n.txt').write_text(str(len(rows)))\n"
        "print('counted', len(rows))\n"
    )
    (tmp_path / "rows.csv").write_text("a\nb\nc\n")
    job = command(
        code=str(src), command="python count.py ${{inputs.rows}} ${{outputs.out}}",
        inputs={"rows": Input(type="uri_file", path=str(tmp_path / "rows.csv"))},
        outputs={"out": Output(type="uri_folder")}, experiment_name="transports",
    )  # fmt: skip
    submitted = client.jobs.create_or_update(job)
    out = io.StringIO()
    done = client.jobs.stream(submitted.name or "", out=out)
    assert done.status == "Completed", done.error
    assert "counted 3" in out.getvalue()
    assert [j.name for j in client.jobs.list(experiment_name="transports")] == [submitted.name]
    assert client.jobs.get(submitted.name or "").code == f"{UPLOADS}/{digest(src)}/src"
    assert client.jobs.get_metrics(submitted.name or "") == {}
    got = client.jobs.download(submitted.name or "", download_path=tmp_path / "got", output_name="out")
    assert got == [tmp_path / "got" / "named-outputs" / "out"]
    assert (got[0] / "n.txt").read_text() == "3"
    graph = client.jobs.lineage(submitted.name or "")
    assert graph.to_dict() == client.jobs.lineage(submitted.name or "").to_dict() and graph.nodes
    again = client.jobs.rerun(submitted.name or "")
    assert client.jobs.stream(again.name or "", out=io.StringIO()).status == "Completed"
    broken = command(command="echo", compute="azureml:gpu-cluster")
    with pytest.raises(InvalidSpecError) as caught:
        client.jobs.create_or_update(broken)
    assert [(p.field, p.message.split(".")[0]) for p in caught.value.problems] == [
        ("compute", "Compute 'gpu-cluster' not found")
    ]
    assert failure(lambda: client.jobs.get("no_such_job"))[0] is NotFoundError


def test_aliases_lineage_and_downloads_are_the_same_through_either_transport(client: MLClient, tmp_path: Path) -> None:
    (tmp_path / "weights.txt").write_text("w")
    (tmp_path / "iris.csv").write_text("a\n1\n")
    client.data.create_or_update(Data(name="iris", path=str(tmp_path / "iris.csv"), type="uri_file"))
    for _ in range(2):
        client.models.create_or_update(Model(name="m", path=str(tmp_path / "weights.txt")))
    moved = client.models.set_alias("m", "production", version=1)
    assert (moved.alias, moved.version) == ("production", "1")
    client.models.set_alias("m", "production", version=2)
    assert [(a.alias, a.version) for a in client.models.aliases("m")] == [("production", "2")]
    assert [(m.version, m.previous_version) for m in client.models.alias_history("m")] == [("1", None), ("2", "1")]
    client.models.remove_alias("m", "production")
    assert client.models.aliases("m") == []
    assert client.models.lineage("m", version=1).to_dict()["nodes"]
    assert client.models.compare("m", [1, 2]).to_dict()["versions"] == ["1", "2"]
    assert client.data.impact("iris", version=1).to_dict()["nodes"]
    got = client.data.download("iris", version=1, download_path=tmp_path / "dl")
    assert got == tmp_path / "dl" / "iris" / "iris.csv" and got.read_text() == "a\n1\n"
    assert failure(lambda: client.data.download("nope", version=1, download_path=tmp_path))[0] is NotFoundError


@pytest.mark.parametrize("through_server", [False, True])
def test_a_key_ignored_in_a_job_file_is_a_warning_either_way(
    smalt: Any, tmp_path: Path, workspace_path: Path, monkeypatch: pytest.MonkeyPatch, through_server: bool
) -> None:
    spec = tmp_path / "pipe.yml"
    spec.write_text("type: pipeline\nsettings:\n  on_init: setup\njobs:\n  a:\n    command: echo\n")
    server = None
    if through_server:
        MLClient(workspace=workspace_path).close()
        server = start_server(workspace_path, tmp_path / "server.log")
        monkeypatch.setenv("SMALT_URL", server.url)
    try:
        result = smalt("job", "validate", "-f", str(spec))
    finally:
        if server is not None:
            server.stop()
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        f"Warning: {spec}:3: settings.on_init: ignored, as Azure ML ignores it; smalt reads only default_compute, "
        "default_datastore, continue_on_step_failure, force_rerun here\n"
    )


def test_workspaces_are_created_listed_shown_and_set_aside_by_name(client: MLClient, tmp_path: Path) -> None:
    current = client.workspaces.get()
    assert current.name == client.workspace_name == "ws"
    made = client.workspaces.begin_create(SimpleNamespace(name="team")).result()  # an Azure Workspace has .name
    assert (made.name, Path(made.path)) == ("team", Path.home() / ".smalt" / "team")
    assert [w.name for w in client.workspaces.list()] == ["ws", "team"]  # the client's own first
    assert client.workspaces.get("team") == made
    assert failure(lambda: client.workspaces.begin_create("team")) == (
        AlreadyExistsError, "Workspace 'team' already exists.", "smalt workspace show")
    assert failure(lambda: client.workspaces.begin_create("a/b"))[0] is InvalidSpecError
    assert failure(lambda: client.workspaces.get("nope")) == (
        NotFoundError, "Workspace 'nope' not found.", "smalt workspace list")

    # Each workspace holds its own assets.
    (tmp_path / "a.txt").write_text("a")
    with (MLClient(url=client._rest.url, workspace_name="team") if client._context is None
          else MLClient(workspace_name="team")) as team:  # fmt: skip
        team.data.create_or_update(Data(name="only_in_team", path=str(tmp_path / "a.txt"), type="uri_file"))
        assert [d.name for d in team.data.list()] == ["only_in_team"]
        # ... and its own jobs, run there.
        job = team.jobs.create_or_update(command(command="echo in team", display_name="team_job"))
        assert team.jobs.stream(job.name).status == "Completed"
        assert [j.name for j in team.jobs.list()] == [job.name]
        assert team.jobs.get(job.name).display_name == "team_job"
    assert client.data.list() == []
    assert list(client.jobs.list()) == []
    assert failure(lambda: client.jobs.get(job.name))[0] is NotFoundError

    client.workspaces.begin_delete("team").result()
    assert [w.name for w in client.workspaces.list()] == ["ws"]
    assert [p.name.split("-")[0] for p in (Path.home() / ".smalt" / ".deleted").iterdir()] == ["team"]
    assert failure(lambda: client.workspaces.begin_delete("ws"))[0] is InvalidStateError


def test_the_cli_names_a_servers_workspaces(
    smalt: Any, tmp_path: Path, workspace_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log", args=("--home", str(tmp_path / "home")))
    monkeypatch.setenv("SMALT_URL", server.url)
    try:
        def names(*args: str) -> str:
            result = smalt(*args, "--query", "[].name", "-o", "tsv", workspace=False)
            assert result.exit_code == 0, result.stderr
            return str(result.stdout)

        assert smalt("workspace", "create", "--name", "team", "-o", "json", workspace=False).json()["name"] == "team"
        assert names("workspace", "list") == "ws\nteam\n"
        (tmp_path / "a.txt").write_text("a")
        made = smalt("--workspace", "team", "data", "create", "--name", "t", "--path", str(tmp_path / "a.txt"),
                     "--type", "uri_file", workspace=False)  # fmt: skip
        assert made.exit_code == 0, made.stderr
        assert names("data", "list") == ""  # no --workspace: the server's first
        assert names("data", "list", "-w", "team") == "t\n"
        assert (tmp_path / "home" / "team" / "workspace.json").is_file()
        refused = smalt("workspace", "create", "--path", str(tmp_path / "here"), workspace=False)
        assert refused.exit_code == 1 and "names its workspaces" in refused.stderr
        assert smalt("workspace", "delete", "--name", "team", workspace=False).exit_code == 0
        assert names("workspace", "list") == "ws\n"
        missing = smalt("data", "list", "-w", "team", workspace=False)
        assert missing.exit_code == 1 and "Workspace 'team' not found." in missing.stderr
    finally:
        server.stop()


def test_a_server_of_one_workspace_creates_no_other(smalt: Any, remote: Any) -> None:
    refused = smalt("workspace", "create", "--name", "team", workspace=False)
    assert refused.exit_code == 1
    assert "cannot create others" in refused.stderr and "--home" in refused.stderr


def test_a_list_returns_its_first_page_newest_first(client: MLClient) -> None:
    for i in range(3):
        client.data.create_or_update(Data(name="paged", path=f"{URI}?{i}", type="uri_file"))
    client.data.create_or_update(Data(name="other", path=URI, type="uri_file"))
    assert [d.version for d in client.data.list("paged", max_results=2)] == ["3", "2"]
    assert [d.name for d in client.data.list()] == ["other", "paged"]  # by name
    assert [d.name for d in client.data.list(max_results=1)] == ["other"]


def test_the_caller_a_request_names_is_recorded_as_created_by(workspace_path: Path, tmp_path: Path) -> None:
    import httpx

    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        data = f"{server.url}/api/v1/workspaces/ws/data"
        body = {"name": "by_alice", "type": "uri_file", "path": URI}
        made = httpx.post(data, json=body, headers={"Smalt-Caller": "alice@contoso.com"}, timeout=30)
        assert made.status_code == 201, made.text
        assert made.json()["creation_context"]["created_by"] == "alice@contoso.com"
        refused = httpx.post(data, json={**body, "name": "x"}, headers={"Smalt-Caller": "a b\\c"}, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidSpec"
        with MLClient(url=server.url) as client:  # the SDK names this process's user
            client.data.create_or_update(Data(name="by_me", path=URI, type="uri_file"))
            assert client.data.get("by_me", version=1).creation_context.created_by == getpass.getuser()
        with MLClient(workspace=workspace_path) as local:  # recorded, not only answered
            assert local.data.get("by_alice", version=1).creation_context.created_by == "alice@contoso.com"
    finally:
        server.stop()


def test_a_transfer_that_lasts_says_how_far_it_is(workspace_path: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from smalt.client import progress

    monkeypatch.setattr(progress, "DELAY_S", 0.0)  # as if every transfer lasted more than a second
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.bin").write_bytes(bytes(500_000))
    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        with MLClient(url=server.url) as client:
            capsys.readouterr()
            client.data.create_or_update(Data(name="corpus", path=str(folder), type="uri_folder"))
            said = capsys.readouterr().err
            assert said.startswith("Uploading corpus: ") and " of 0.5 MB (" in said  # 3 files, 1 content: sent once
            assert said.splitlines()[-1].startswith("Uploading corpus: 0.5 MB in ")
            client.data.download("corpus", version="1", download_path=tmp_path / "back")
            assert "Downloading corpus:" in capsys.readouterr().err
    finally:
        server.stop()


def test_connections_keep_their_secrets_on_both_transports(client: MLClient) -> None:
    from smalt.entities.connection import WorkspaceConnection
    from smalt.errors import InvalidSpecError, NotFoundError

    made = client.connections.create_or_update(WorkspaceConnection(
        name="feeds", type="custom", configs={"region": "west"}, secrets={"token": "t0k-3n"},
    ))  # fmt: skip
    assert made.secrets is None and made.credentials is not None and made.credentials.type == "custom_keys"
    assert [c.name for c in client.connections.list()] == ["feeds"]
    assert "t0k-3n" not in client.connections.get("feeds").model_dump_json()
    assert client.connections.get("feeds", populate_secrets=True).secrets == {"token": "t0k-3n"}
    with pytest.raises(InvalidSpecError, match="needs a secret"):
        client.connections.create_or_update(WorkspaceConnection(name="empty", type="custom"))
    client.connections.delete("feeds")
    with pytest.raises(NotFoundError, match="Connection 'feeds' not found"):
        client.connections.get("feeds")


def test_principals_roles_and_the_audit_log_on_both_transports(client: MLClient) -> None:
    from smalt.errors import AlreadyExistsError, InvalidStateError, NotFoundError

    client.principals.create_user("alice", "correct horse battery")
    ci = client.principals.create_service_principal("ci")
    assert ci.client_secret and ci.tenant_id and ci.client_id == client.principals.get("ci").id
    with pytest.raises(AlreadyExistsError):
        client.principals.create_user("alice", "another password")
    assert {(p.name, p.kind) for p in client.principals.list()} == {("alice", "user"), ("ci", "service_principal")}
    token = client.principals.create_token("alice", "laptop", expires_in_days=7)
    assert token.token and token.token.startswith("smalt_pat_")
    assert [(t.name, t.token) for t in client.principals.list_tokens("alice")] == [("laptop", None)]
    client.principals.revoke_token("alice", "laptop")
    assert client.principals.list_tokens("alice")[0].revoked_at is not None
    custom = client.roles.create_or_update({"Name": "Job Reader", "Actions": [
        "Microsoft.MachineLearningServices/workspaces/jobs/read"]})  # fmt: skip
    assert custom.is_custom and "Job Reader" in [r.name for r in client.roles.list()]
    with pytest.raises(InvalidStateError, match="built-in"):
        client.roles.delete("Reader")
    scope = f"/workspaces/{client.workspace_name}"
    given = client.role_assignments.create("alice", "Job Reader", scope)
    assert [(a.principal, a.role, a.scope) for a in client.role_assignments.list(assignee="alice")] == [
        ("alice", "Job Reader", scope)]  # fmt: skip
    with pytest.raises(InvalidStateError, match="assigned"):
        client.roles.delete("Job Reader")
    client.role_assignments.delete(given.id)
    client.roles.delete("Job Reader")
    with pytest.raises(NotFoundError):
        client.role_assignments.create("nobody", "Reader")
    actions = [e.action for e in client.audit.list()]
    assert "Microsoft.Authorization/roleAssignments/delete" in actions
    assert "Microsoft.Authorization/principals/write" in actions
    client.principals.delete("alice")
    assert [p.name for p in client.principals.list()] == ["ci"]
