"""One SDK, two transports (issue 19, first step): the asset operation groups behave and fail the
same way in-process and over HTTP through `smalt server`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import start_server

from smalt import MLClient
from smalt.entities import Data, Environment, Model
from smalt.errors import ConfigurationError, InvalidSpecError, NotFoundError, SmaltError, VersionConflictError

URI = "azureml://datastores/workspaceblobstore/paths/raw/iris.csv"


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


def test_a_server_reads_no_path_of_the_clients_machine(workspace_path: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's own file")
    MLClient(workspace=workspace_path).close()
    server = start_server(workspace_path, tmp_path / "server.log")
    try:
        with MLClient(url=server.url) as remote:
            with pytest.raises(InvalidSpecError, match="is a path on the client's machine"):
                remote.data.create_or_update(Data(name="leak", path=str(secret), type="uri_file"))
            assert remote.data.list() == []
            with pytest.raises(NotFoundError, match="Workspace 'elsewhere' not found"):
                MLClient(url=server.url, workspace_name="elsewhere")
            with pytest.raises(ConfigurationError, match=r"ml_client.jobs.list is not served over HTTP yet"):
                remote.jobs.list()
            with MLClient(workspace=workspace_path) as local:
                assert remote.workspace_name == local.workspace_name
    finally:
        server.stop()
