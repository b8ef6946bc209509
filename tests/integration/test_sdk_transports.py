"""One SDK, two transports (issue 19, first step): the asset operation groups behave and fail the
same way in-process and over HTTP through `smalt server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import start_server

from smalt import MLClient
from smalt.artifacts.content import path_digest
from smalt.entities import CommandComponent, Data, Environment, Model
from smalt.errors import ConfigurationError, InvalidSpecError, NotFoundError, SmaltError, VersionConflictError

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
    server = start_server(workspace_path, tmp_path / "server.log")
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
            with pytest.raises(ConfigurationError, match=r"ml_client.jobs.list is not served over HTTP yet"):
                remote.jobs.list()
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
            remote._rest.put_file = lambda path, file: (sent.append(file.name), put(path, file))  # type: ignore[method-assign]
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
