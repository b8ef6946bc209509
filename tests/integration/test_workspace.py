"""Which workspace a command or an MLClient opens, and creating and showing workspaces."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smalt import MLClient
from smalt.errors import ConfigurationError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Smalt = Callable[..., Any]


def shown_path(smalt: Smalt, *flags: str) -> Path:
    """The workspace folder ``smalt [flags] workspace show`` reports (no --workspace added)."""
    result = smalt(*flags, "workspace", "show", "-o", "json", workspace=False)
    assert result.exit_code == 0, result.stderr
    return Path(result.json()["path"])


def is_workspace(folder: Path) -> bool:
    return (folder / "workspace.json").is_file() and (folder / "metadata.db").is_file()


# -- resolution order -----------------------------------------------------------------------


def test_resolution_order_flag_env_nearest_folder_default(
    smalt: Smalt, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path.home()
    project = isolated / "project"
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)

    # nothing set: ~/.smalt/default, created on first use
    assert shown_path(smalt) == home / ".smalt" / "default"
    assert is_workspace(home / ".smalt" / "default")

    # the nearest .smalt/ above the current directory
    (project / ".smalt").mkdir()
    monkeypatch.chdir(deep)
    assert shown_path(smalt) == project / ".smalt"

    # SMALT_WORKSPACE beats the nearest folder
    monkeypatch.setenv("SMALT_WORKSPACE", str(tmp_path / "from-env"))
    assert shown_path(smalt) == tmp_path / "from-env"

    # --workspace beats SMALT_WORKSPACE
    assert shown_path(smalt, "--workspace", str(tmp_path / "from-flag")) == tmp_path / "from-flag"

    for folder in (project / ".smalt", tmp_path / "from-env", tmp_path / "from-flag"):
        assert is_workspace(folder), folder


def test_the_nearest_smalt_folder_wins_over_one_further_up(
    smalt: Smalt, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / ".smalt").mkdir()
    inner = isolated / "team" / "project"
    (inner / ".smalt").mkdir(parents=True)
    (inner / "notebooks").mkdir()

    monkeypatch.chdir(inner / "notebooks")
    assert shown_path(smalt) == inner / ".smalt"
    monkeypatch.chdir(isolated / "team")
    assert shown_path(smalt) == isolated / ".smalt"


def test_the_folder_of_named_workspaces_in_home_is_not_a_workspace(
    smalt: Smalt, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path.home()
    (home / ".smalt" / "default").mkdir(parents=True)
    work = home / "code" / "project"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)

    assert shown_path(smalt) == home / ".smalt" / "default"
    assert not (home / ".smalt" / "workspace.json").exists()


def test_a_workspace_is_created_on_first_use(smalt: Smalt, tmp_path: Path) -> None:
    folder = tmp_path / "brand-new"

    listed = smalt("--workspace", str(folder), "data", "list", workspace=False)

    assert listed.exit_code == 0, listed.stderr
    assert listed.json() == []
    assert is_workspace(folder)
    stores = smalt("--workspace", str(folder), "datastore", "list", workspace=False).json()
    assert [d["name"] for d in stores] == ["workspaceblobstore"]
    assert (folder / "blobs").is_dir()


def test_what_is_registered_stays_in_its_workspace(smalt: Smalt, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"

    created = smalt("--workspace", str(first), "data", "create", "-f", str(EXAMPLES / "data.yml"), workspace=False)

    assert created.exit_code == 0, created.stderr
    assert [d["name"] for d in smalt("--workspace", str(first), "data", "list", workspace=False).json()] == ["iris"]
    assert smalt("--workspace", str(second), "data", "list", workspace=False).json() == []
    assert list((first / "blobs" / "LocalUpload").iterdir())
    assert not (second / "blobs" / "LocalUpload").exists()


# -- smalt workspace create / show ----------------------------------------------------------


def test_workspace_create_makes_dot_smalt_here_and_commands_below_use_it(
    smalt: Smalt, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = smalt("workspace", "create", "-o", "json", workspace=False)

    assert created.exit_code == 0, created.stderr
    assert Path(created.json()["path"]) == isolated / ".smalt"
    assert created.json()["name"] == isolated.name  # named after the project folder
    assert is_workspace(isolated / ".smalt")

    (isolated / "sub").mkdir()
    monkeypatch.chdir(isolated / "sub")
    registered = smalt("data", "create", "-f", str(EXAMPLES / "data.yml"), workspace=False)
    assert registered.exit_code == 0, registered.stderr
    assert shown_path(smalt) == isolated / ".smalt"
    with MLClient() as client:
        assert [d.name for d in client.data.list()] == ["iris"]


def test_workspace_create_with_path_and_name(smalt: Smalt, tmp_path: Path) -> None:
    target = tmp_path / "team-ws"

    created = smalt("workspace", "create", "--path", str(target), "--name", "team", "-o", "json", workspace=False)

    assert created.exit_code == 0, created.stderr
    info = created.json()
    assert (info["name"], Path(info["path"])) == ("team", target)
    assert is_workspace(target)
    shown = smalt("--workspace", str(target), "workspace", "show", "-o", "json", workspace=False).json()
    assert shown == info


def test_workspace_create_twice_keeps_the_first(smalt: Smalt, tmp_path: Path) -> None:
    target = tmp_path / "ws"
    first = smalt("workspace", "create", "--path", str(target), "--name", "one", workspace=False).json()
    assert smalt("--workspace", str(target), "data", "create", "-f", str(EXAMPLES / "data.yml")).exit_code == 0

    again = smalt("workspace", "create", "--path", str(target), "--name", "two", workspace=False)

    assert again.exit_code == 0, again.stderr
    assert again.json()["id"] == first["id"]
    assert [d["name"] for d in smalt("--workspace", str(target), "data", "list", workspace=False).json()] == ["iris"]


def test_workspace_show_json(smalt: Smalt, workspace_path: Path) -> None:
    result = smalt("workspace", "show", "-o", "json")

    assert result.exit_code == 0, result.stderr
    info = result.json()
    assert info["name"] == workspace_path.name
    assert Path(info["path"]) == workspace_path
    assert info["database"].startswith("sqlite:")
    assert info["database"].endswith(str(workspace_path / "metadata.db"))
    assert Path(info["blobstore"]) == workspace_path / "blobs"
    assert info["id"] and info["created_at"]


# The CLI does not close the MLClient it opens (see test_cli_commands_close_their_database_connections);
# its pooled PostgreSQL connections then warn when collected. Collect them here, not in a later test.
@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_workspace_show_hides_the_database_password(
    smalt: Smalt, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    # the test server trusts local connections, so any password gets in
    url = make_url(postgres_url).set(password="hunter2-not-shown").render_as_string(hide_password=False)
    monkeypatch.setenv("SMALT_DATABASE_URL", url)

    shown = smalt("workspace", "show", "-o", "json")
    created = smalt("data", "create", "-f", str(EXAMPLES / "data.yml"))
    gc.collect()

    assert shown.exit_code == 0, shown.stderr
    assert created.exit_code == 0, created.stderr
    assert "hunter2-not-shown" not in shown.stdout
    assert shown.json()["database"].startswith("postgresql")
    assert make_url(postgres_url).database in shown.json()["database"]


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.embedded_only  # the connections of the local workspace
def test_cli_commands_close_their_database_connections(
    smalt: Smalt, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    monkeypatch.setenv("SMALT_DATABASE_URL", postgres_url)
    database = make_url(postgres_url).database
    admin = create_engine(make_url(postgres_url).set(database="postgres"))

    def connections() -> int:
        with admin.connect() as connection:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db")
            return int(connection.execute(query, {"db": database}).scalar_one())

    gc.collect()
    gc.disable()  # a leaked connection must not be closed behind the test's back by the collector
    try:
        for args in (("workspace", "show"), ("data", "list"), ("compute", "list")):
            assert smalt(*args).exit_code == 0
        left_open = connections()
        deadline = time.monotonic() + 2
        while left_open and time.monotonic() < deadline:  # a closed backend may take a moment to go
            time.sleep(0.05)
            left_open = connections()
    finally:
        gc.enable()
        gc.collect()
        admin.dispose()

    assert left_open == 0, f"{left_open} connection(s) to {database} left open after the commands returned"


@pytest.mark.embedded_only  # the local workspace file
def test_a_broken_workspace_file_is_a_clear_error(smalt: Smalt, workspace_path: Path) -> None:
    assert smalt("workspace", "show").exit_code == 0
    (workspace_path / "workspace.json").write_text('{"name": "ws",\n  oops}')

    result = smalt("data", "list")

    assert result.exit_code == 1
    assert f"{workspace_path / 'workspace.json'} is not valid JSON (line 2)" in result.stderr
    assert "Traceback" not in result.stderr


# -- MLClient -------------------------------------------------------------------------------


def test_mlclient_without_arguments_resolves_like_the_cli(
    smalt: Smalt, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MLClient() as client:
        assert Path(client.workspace.path) == Path.home() / ".smalt" / "default"

    (isolated / ".smalt").mkdir()
    with MLClient() as client:
        assert Path(client.workspace.path) == isolated / ".smalt" == shown_path(smalt)

    monkeypatch.setenv("SMALT_WORKSPACE", str(tmp_path / "env-ws"))
    with MLClient() as client:
        assert Path(client.workspace.path) == tmp_path / "env-ws" == shown_path(smalt)


def test_mlclient_with_a_workspace_path(tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALT_WORKSPACE", str(tmp_path / "env-ws"))

    with MLClient(workspace=tmp_path / "explicit") as client:
        assert Path(client.workspace.path) == tmp_path / "explicit"
    with MLClient(workspace="relative/ws") as client:
        assert Path(client.workspace.path) == isolated / "relative" / "ws"
    assert is_workspace(tmp_path / "explicit")
    assert not (tmp_path / "env-ws").exists()


def test_mlclient_with_azure_arguments_opens_a_named_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with MLClient(object(), "sub-id", "rg", "teamws") as client:
        assert Path(client.workspace.path) == Path.home() / ".smalt" / "teamws"
        assert client.workspace_name == "teamws"

    monkeypatch.setenv("SMALT_WORKSPACE", str(tmp_path / "env-ws"))
    with MLClient(object(), "sub-id", "rg", "teamws") as client:
        assert Path(client.workspace.path) == tmp_path / "env-ws"


def test_from_config_with_a_relative_workspace_in_a_parent_folder(
    smalt: Smalt, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = isolated / "repo"
    (repo / "src" / "deep").mkdir(parents=True)
    (repo / "config.json").write_text(json.dumps({"workspace": "relative/folder"}))
    monkeypatch.chdir(repo / "src" / "deep")

    with MLClient.from_config() as client:
        assert Path(client.workspace.path) == repo / "relative" / "folder"
        client.data.create_or_update(_load_data())

    listed = smalt("--workspace", str(repo / "relative" / "folder"), "data", "list", workspace=False)
    assert [d["name"] for d in listed.json()] == ["iris"]


def test_from_config_finds_dot_azureml_config_first(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / ".azureml").mkdir()
    (isolated / ".azureml" / "config.json").write_text(json.dumps({"workspace": "../ws-a"}))
    (isolated / "config.json").write_text(json.dumps({"workspace": "ws-b"}))

    with MLClient.from_config() as client:
        assert Path(client.workspace.path) == isolated / "ws-a"


def test_from_config_with_an_explicit_path(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere" / "my-config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"workspace": "ws"}))

    with MLClient.from_config(path=config) as client:
        assert Path(client.workspace.path) == config.parent / "ws"
    with MLClient.from_config(path=config.parent, file_name="my-config.json") as client:
        assert Path(client.workspace.path) == config.parent / "ws"


def test_from_config_with_an_azure_config(isolated: Path) -> None:
    azure = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": "rg",
        "workspace_name": "teamws",
    }
    (isolated / "config.json").write_text(json.dumps(azure))

    with MLClient.from_config() as client:
        assert Path(client.workspace.path) == Path.home() / ".smalt" / "teamws"
        assert client.workspace.name == "teamws"
    assert is_workspace(Path.home() / ".smalt" / "teamws")


def test_from_config_without_a_config_file(isolated: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MLClient.from_config()

    assert "could not find config.json" in caught.value.message
    assert str(isolated) in caught.value.message
    assert caught.value.hint


def test_from_config_that_names_no_workspace(isolated: Path) -> None:
    (isolated / "config.json").write_text(json.dumps({"subscription_id": "x"}))

    with pytest.raises(ConfigurationError, match="names no workspace"):
        MLClient.from_config()


def test_from_config_that_is_not_json(isolated: Path) -> None:
    (isolated / "config.json").write_text("{not json")

    with pytest.raises(ConfigurationError, match="is not valid JSON"):
        MLClient.from_config()


def _load_data() -> Any:
    from smalt import load_data

    return load_data(EXAMPLES / "data.yml")


def test_a_kept_workspace_stays_kept_for_what_its_children_fork(workspace_path: Path) -> None:
    """The fork server keeps a workspace open; the driver it forks finds it, and so must the step
    supervisors the driver forks in turn (else each opens the workspace again, statements cold)."""
    from smalt.services.workspace import keep_open, open_kept, open_workspace

    context = open_workspace(workspace_path, create=True)
    try:
        keep_open(context)  # its connections are closed: none may cross a fork
        assert open_kept(workspace_path) is context
        assert open_kept(workspace_path) is context  # still kept, for a grandchild
        with context.store.transaction() as tx:  # and still usable: it reconnects
            assert tx.jobs.status("no-such-job") is None
    finally:
        context.close()
