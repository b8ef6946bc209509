"""The asset nouns (data, environment, component, model) driven through the CLI as a user would."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Smalt = Callable[..., Any]

_LOCAL_UPLOAD = "azureml://datastores/workspaceblobstore/paths/LocalUpload/"


def ok(smalt: Smalt, *args: str) -> Any:
    """Run a command that must succeed; its JSON output (or None when it prints nothing)."""
    result = smalt(*args)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.json() if result.stdout.strip() else None


def register_environment(smalt: Smalt) -> dict[str, Any]:
    return ok(smalt, "environment", "create", "-f", str(EXAMPLES / "environment.yml"))  # type: ignore[no-any-return]


def versions(smalt: Smalt, noun: str, name: str, *extra: str) -> list[str]:
    return [item["version"] for item in ok(smalt, noun, "list", "--name", name, *extra)]


def uploaded_files(workspace: Path, file_name: str) -> list[Path]:
    return sorted((workspace / "blobs" / "LocalUpload").rglob(file_name))


# -- create from a file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("noun", "file", "name", "type_"),
    [
        ("data", "data.yml", "iris", "uri_file"),
        ("model", "model.yml", "iris-tree", "custom_model"),
        ("environment", "environment.yml", "sklearn", None),
    ],
)
def test_create_from_file_prints_the_registered_version(
    smalt: Smalt, noun: str, file: str, name: str, type_: str | None
) -> None:
    created = ok(smalt, noun, "create", "-f", str(EXAMPLES / file), "-o", "json")

    assert created["name"] == name
    assert created["version"] == "1"
    assert created.get("type") == type_
    assert created["creation_context"]["created_at"]
    assert created["creation_context"]["created_by"]
    if noun in ("data", "model"):
        # the local file or folder was uploaded and the version points at the stored copy
        assert created["path"].startswith(_LOCAL_UPLOAD)
    shown = ok(smalt, noun, "show", "--name", name, "--version", "1")
    assert shown == created


def test_environment_from_file_pins_the_conda_file_content(smalt: Smalt) -> None:
    env = register_environment(smalt)

    assert env["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    # the conda file is read at registration, so the version keeps what it was then
    assert env["conda_file"]["name"] == "sklearn-env"
    assert "python=3.11" in env["conda_file"]["dependencies"]


def test_component_from_file_resolves_its_environment_and_uploads_its_code(smalt: Smalt) -> None:
    register_environment(smalt)
    register_environment(smalt)  # sklearn:2 is now the latest

    component = ok(smalt, "component", "create", "-f", str(EXAMPLES / "component.yml"))

    assert component["name"] == "train_iris"
    assert component["version"] == "1"
    assert component["type"] == "command"
    assert component["display_name"] == "Train on iris"
    assert component["environment"] == "azureml:sklearn:2"  # @latest pinned to a concrete version
    assert component["code"].startswith(_LOCAL_UPLOAD) and component["code"].endswith("/train-src")
    assert set(component["inputs"]) == {"data", "max_depth"}
    assert component["inputs"]["max_depth"]["default"] == 3
    assert component["outputs"]["model_output"]["type"] == "custom_model"
    assert component["creation_context"]["created_at"]


def test_second_registration_without_version_gets_the_next_integer(smalt: Smalt) -> None:
    first = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    second = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))

    assert (first["version"], second["version"]) == ("1", "2")
    assert versions(smalt, "data", "iris") == ["2", "1"]


def test_explicit_version_with_the_same_content_is_the_same_version(smalt: Smalt) -> None:
    first = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"), "--version", "5")
    again = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"), "--version", "5")

    assert again == first  # same creation time: nothing new was written
    assert versions(smalt, "data", "iris") == ["5"]
    # a later registration without a version continues after the highest number
    assert ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))["version"] == "6"


# -- create from flags ----------------------------------------------------------------------


def test_data_create_from_flags_alone(smalt: Smalt, isolated: Path) -> None:
    (isolated / "notes.txt").write_text("some notes\n")

    created = ok(smalt, "data", "create", "--name", "notes", "--path", "notes.txt", "--type", "uri_file")

    assert (created["name"], created["version"], created["type"]) == ("notes", "1", "uri_file")
    assert created["path"].startswith(_LOCAL_UPLOAD) and created["path"].endswith("/notes.txt")


def test_model_create_from_flags_alone_takes_a_folder(smalt: Smalt, isolated: Path) -> None:
    folder = isolated / "weights"
    (folder / "sub").mkdir(parents=True)
    (folder / "w.bin").write_bytes(b"\x00\x01\x02")
    (folder / "sub" / "config.json").write_text("{}")

    created = ok(smalt, "model", "create", "--name", "mymodel", "--path", str(folder))

    assert (created["name"], created["version"], created["type"]) == ("mymodel", "1", "custom_model")
    assert created["path"].endswith("/weights")


def test_environment_create_from_flags_alone(smalt: Smalt) -> None:
    created = ok(smalt, "environment", "create", "--name", "py311", "--image", "python:3.11")

    assert (created["name"], created["version"], created["image"]) == ("py311", "1", "python:3.11")
    assert ok(smalt, "environment", "show", "--name", "py311", "--label", "latest") == created


def test_set_overrides_fields_of_the_file(smalt: Smalt) -> None:
    created = ok(
        smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"),
        "--set", "tags.stage=dev", "--set", "description=Changed on the command line",
    )  # fmt: skip

    assert created["tags"] == {"source": "examples", "stage": "dev"}
    assert created["description"] == "Changed on the command line"
    assert created["type"] == "uri_file"


def test_set_works_with_flags_alone(smalt: Smalt, isolated: Path) -> None:
    (isolated / "notes.txt").write_text("some notes\n")

    created = ok(
        smalt, "data", "create", "--name", "notes", "--path", "notes.txt", "--type", "uri_file",
        "--set", "description=from --set", "--set", "tags.stage=dev",
    )  # fmt: skip

    assert created["description"] == "from --set"
    assert created["tags"] == {"stage": "dev"}


def test_name_and_version_flags_win_over_the_file(smalt: Smalt) -> None:
    created = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"), "--name", "flowers", "--version", "7")

    assert (created["name"], created["version"]) == ("flowers", "7")
    assert [d["name"] for d in ok(smalt, "data", "list")] == ["flowers"]
    assert ok(smalt, "data", "show", "--name", "flowers", "--version", "7") == created


def test_component_name_and_version_flags_win_over_the_file(smalt: Smalt) -> None:
    register_environment(smalt)

    created = ok(
        smalt, "component", "create", "-f", str(EXAMPLES / "component.yml"), "--name", "train2", "--version", "3"
    )

    assert (created["name"], created["version"]) == ("train2", "3")
    assert [c["name"] for c in ok(smalt, "component", "list")] == ["train2"]


# -- show and list --------------------------------------------------------------------------


def test_show_by_version_and_by_latest_label(smalt: Smalt) -> None:
    v1 = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"), "--set", "tags.n=1")
    v2 = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"), "--set", "tags.n=2")

    assert ok(smalt, "data", "show", "--name", "iris", "--version", "1") == v1
    assert ok(smalt, "data", "show", "--name", "iris", "--label", "latest") == v2


def test_list_shows_every_name_once_and_every_version_of_one_name(smalt: Smalt, isolated: Path) -> None:
    (isolated / "a.txt").write_text("a")
    for _ in range(3):
        ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    ok(smalt, "data", "create", "--name", "alpha", "--path", "a.txt", "--type", "uri_file")

    listed = ok(smalt, "data", "list")

    assert [(d["name"], d["version"]) for d in listed] == [("alpha", "1"), ("iris", "3")]
    assert versions(smalt, "data", "iris") == ["3", "2", "1"]


def test_list_of_an_empty_workspace_is_an_empty_list(smalt: Smalt) -> None:
    for noun in ("data", "environment", "component", "model"):
        assert ok(smalt, noun, "list") == []


# -- archive and restore --------------------------------------------------------------------


def test_archive_and_restore_one_version(smalt: Smalt) -> None:
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))

    assert ok(smalt, "data", "archive", "--name", "iris", "--version", "2") is None

    assert versions(smalt, "data", "iris") == ["1"]
    assert versions(smalt, "data", "iris", "--include-archived") == ["2", "1"]
    assert ok(smalt, "data", "show", "--name", "iris", "--label", "latest")["version"] == "1"
    assert [d["version"] for d in ok(smalt, "data", "list")] == ["1"]
    # an archived version stays usable by its number
    assert ok(smalt, "data", "show", "--name", "iris", "--version", "2")["version"] == "2"

    ok(smalt, "data", "restore", "--name", "iris", "--version", "2")

    assert versions(smalt, "data", "iris") == ["2", "1"]
    assert ok(smalt, "data", "show", "--name", "iris", "--label", "latest")["version"] == "2"


@pytest.mark.parametrize(
    ("noun", "file", "name"),
    [("data", "data.yml", "iris"), ("model", "model.yml", "iris-tree"), ("environment", "environment.yml", "sklearn")],
)
def test_archive_and_restore_a_whole_asset(smalt: Smalt, noun: str, file: str, name: str) -> None:
    ok(smalt, noun, "create", "-f", str(EXAMPLES / file))
    ok(smalt, noun, "create", "-f", str(EXAMPLES / file))

    ok(smalt, noun, "archive", "--name", name)

    assert ok(smalt, noun, "list") == []
    assert [a["name"] for a in ok(smalt, noun, "list", "--include-archived")] == [name]
    latest = smalt(noun, "show", "--name", name, "--label", "latest")
    assert latest.exit_code == 1
    assert f"'{name}' has no version that is not archived" in latest.stderr
    assert ok(smalt, noun, "show", "--name", name, "--version", "1")["version"] == "1"

    ok(smalt, noun, "restore", "--name", name)

    assert [(a["name"], a["version"]) for a in ok(smalt, noun, "list")] == [(name, "2")]
    assert versions(smalt, noun, name) == ["2", "1"]


def test_restoring_a_version_of_an_asset_archived_as_a_whole_says_what_to_do(smalt: Smalt) -> None:
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    ok(smalt, "data", "archive", "--name", "iris")

    result = smalt("data", "restore", "--name", "iris", "--version", "1")

    assert result.exit_code == 1
    assert "archived as a whole" in result.stderr
    assert "smalt data restore --name iris" in result.stderr
    assert ok(smalt, "data", "list") == []


# -- download -------------------------------------------------------------------------------


def test_data_download_puts_the_file_under_download_path_and_name(smalt: Smalt, tmp_path: Path) -> None:
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    target = tmp_path / "downloads"

    result = smalt("data", "download", "--name", "iris", "--version", "1", "--download-path", str(target))

    assert result.exit_code == 0, result.stderr
    landed = target / "iris" / "iris.csv"
    assert landed.read_bytes() == (EXAMPLES / "data" / "iris.csv").read_bytes()
    assert Path(result.stdout.strip()) == landed


def test_model_download_keeps_the_folder(smalt: Smalt, tmp_path: Path) -> None:
    ok(smalt, "model", "create", "-f", str(EXAMPLES / "model.yml"))
    target = tmp_path / "downloads"

    result = smalt("model", "download", "--name", "iris-tree", "--label", "latest", "--download-path", str(target))

    assert result.exit_code == 0, result.stderr
    landed = target / "iris-tree" / "model" / "model.pkl"
    assert landed.read_bytes() == (EXAMPLES / "model" / "model.pkl").read_bytes()
    assert sorted(p.name for p in (target / "iris-tree").rglob("*")) == ["model", "model.pkl"]


def test_download_without_version_takes_the_latest(smalt: Smalt, tmp_path: Path, isolated: Path) -> None:
    source = isolated / "v.txt"
    source.write_text("first")
    ok(smalt, "data", "create", "--name", "v", "--path", "v.txt", "--type", "uri_file")
    source.write_text("second")
    ok(smalt, "data", "create", "--name", "v", "--path", "v.txt", "--type", "uri_file")

    assert smalt("data", "download", "--name", "v", "--download-path", str(tmp_path / "dl")).exit_code == 0
    assert (tmp_path / "dl" / "v" / "v.txt").read_text() == "second"

    assert smalt("data", "download", "--name", "v", "-v", "1", "--download-path", str(tmp_path / "dl1")).exit_code == 0
    assert (tmp_path / "dl1" / "v" / "v.txt").read_text() == "first"


def test_a_registered_version_keeps_its_bytes_when_the_local_file_changes(smalt: Smalt, tmp_path: Path) -> None:
    work = tmp_path / "project"
    shutil.copytree(EXAMPLES, work)
    ok(smalt, "data", "create", "-f", str(work / "data.yml"))
    original = (work / "data" / "iris.csv").read_bytes()
    (work / "data" / "iris.csv").write_text("changed,after,registration\n")

    result = smalt("data", "download", "--name", "iris", "--version", "1", "--download-path", str(tmp_path / "dl"))

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "dl" / "iris" / "iris.csv").read_bytes() == original


# -- content addressing ---------------------------------------------------------------------


def test_the_same_bytes_are_stored_once(smalt: Smalt, workspace_path: Path, isolated: Path) -> None:
    csv = EXAMPLES / "data" / "iris.csv"
    first = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    second = ok(smalt, "data", "create", "--name", "iris-again", "--path", str(csv), "--type", "uri_file")
    model = ok(smalt, "model", "create", "--name", "csv-model", "--path", str(csv))

    assert first["path"] == second["path"] == model["path"]
    assert len(uploaded_files(workspace_path, "iris.csv")) == 1

    other = isolated / "iris.csv"
    other.write_bytes(csv.read_bytes() + b"5.0,3.3,1.4,0.2,setosa\n")
    ok(smalt, "data", "create", "--name", "iris-more", "--path", str(other), "--type", "uri_file")

    assert len(uploaded_files(workspace_path, "iris.csv")) == 2


# -- output formats -------------------------------------------------------------------------


def _register(smalt: Smalt, noun: str) -> None:
    register_environment(smalt)
    if noun != "environment":
        ok(smalt, noun, "create", "-f", str(EXAMPLES / f"{noun}.yml"))


@pytest.mark.parametrize(
    ("noun", "name", "type_", "has_path"),
    [
        ("data", "iris", "uri_file", True),
        ("model", "iris-tree", "custom_model", True),
        ("environment", "sklearn", None, False),
        ("component", "train_iris", "command", False),
    ],
)
def test_json_objects_carry_the_fields_a_user_reads(
    smalt: Smalt, noun: str, name: str, type_: str | None, has_path: bool
) -> None:
    _register(smalt, noun)

    for item in [ok(smalt, noun, "show", "--name", name, "--version", "1", "-o", "json"), *ok(smalt, noun, "list")]:
        assert item["name"] == name
        assert item["version"] == "1"
        assert item.get("type") == type_
        assert ("path" in item) is has_path
        assert set(item["creation_context"]) >= {"created_at", "created_by"}


@pytest.mark.parametrize("noun", ["data", "environment", "component", "model"])
def test_yaml_output_is_the_same_object_as_json(smalt: Smalt, noun: str) -> None:
    _register(smalt, noun)
    name = ok(smalt, noun, "list")[0]["name"]

    shown = smalt(noun, "show", "--name", name, "--label", "latest", "-o", "yaml")
    listed = smalt(noun, "list", "-o", "yaml")

    assert shown.exit_code == 0 and listed.exit_code == 0
    yaml = YAML(typ="safe", pure=True)
    assert yaml.load(shown.stdout) == ok(smalt, noun, "show", "--name", name, "--label", "latest")
    assert yaml.load(listed.stdout) == ok(smalt, noun, "list")


@pytest.mark.parametrize("noun", ["data", "environment", "component", "model"])
def test_table_output_prints_the_names(smalt: Smalt, noun: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    _register(smalt, noun)
    name = ok(smalt, noun, "list")[0]["name"]

    listed = smalt(noun, "list", "-o", "table")
    shown = smalt(noun, "show", "--name", name, "--version", "1", "-o", "table")

    assert listed.exit_code == 0 and shown.exit_code == 0
    assert name in listed.stdout and name in shown.stdout
    for out in (listed.stdout, shown.stdout):
        with pytest.raises(json.JSONDecodeError):
            json.loads(out)


def test_json_is_the_default_when_output_is_not_a_terminal(smalt: Smalt) -> None:
    ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))

    plain = smalt("data", "list")

    assert plain.exit_code == 0
    assert json.loads(plain.stdout) == smalt("data", "list", "-o", "json").json()


def test_unknown_output_format_is_refused(smalt: Smalt) -> None:
    result = smalt("data", "list", "-o", "xml")

    assert result.exit_code == 1
    assert "unknown output format 'xml'" in result.stderr
    assert "json, yaml, table" in result.stderr
    assert result.stdout == ""
