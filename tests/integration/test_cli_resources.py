"""Compute targets and datastores through the CLI; datastore secrets never come back out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ACCOUNT_KEY = "bm90LWEtcmVhbC1rZXktLWp1c3QtYW4tZXhhbXBsZQ=="  # the key in examples/datastore.yml
Smalt = Callable[..., Any]


def ok(smalt: Smalt, *args: str) -> Any:
    result = smalt(*args)
    assert result.exit_code == 0, result.stderr
    return result.json() if result.stdout.strip() else None


def fails(smalt: Smalt, *args: str) -> str:
    """Run a command that must fail as a known error; its stderr."""
    result = smalt(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr
    return str(result.stderr)


# -- compute --------------------------------------------------------------------------------


def test_compute_create_from_flags(smalt: Smalt) -> None:
    created = ok(
        smalt, "compute", "create", "--name", "cpu", "--type", "amlcompute",
        "--min-instances", "0", "--max-instances", "2", "--idle-time-before-scale-down", "60",
    )  # fmt: skip

    assert created["name"] == "cpu"
    assert created["type"] == "amlcompute"
    assert (created["min_instances"], created["max_instances"]) == (0, 2)
    assert created["idle_time_before_scale_down"] == 60
    assert created["creation_context"]["created_at"]
    assert ok(smalt, "compute", "show", "--name", "cpu") == created


def test_compute_create_from_the_example_file(smalt: Smalt) -> None:
    created = ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"))

    assert created["name"] == "cpu-cluster"
    assert created["size"] == "STANDARD_DS3_v2"
    assert (created["min_instances"], created["max_instances"]) == (0, 2)
    assert created["idle_time_before_scale_down"] == 120


def test_compute_create_again_replaces_it(smalt: Smalt) -> None:
    ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"))

    updated = ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"), "--set", "max_instances=6")

    assert updated["max_instances"] == 6
    assert ok(smalt, "compute", "show", "--name", "cpu-cluster")["max_instances"] == 6
    assert [c["name"] for c in ok(smalt, "compute", "list")].count("cpu-cluster") == 1


def test_local_compute_is_always_listed(smalt: Smalt) -> None:
    assert [c["name"] for c in ok(smalt, "compute", "list")] == ["local"]

    ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"))

    assert [c["name"] for c in ok(smalt, "compute", "list")] == ["local", "cpu-cluster"]
    local = ok(smalt, "compute", "show", "--name", "local")
    assert local["type"] == "local"


def test_compute_delete(smalt: Smalt) -> None:
    ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"))

    assert smalt("compute", "delete", "--name", "cpu-cluster").exit_code == 0

    assert [c["name"] for c in ok(smalt, "compute", "list")] == ["local"]
    err = fails(smalt, "compute", "show", "--name", "cpu-cluster")
    assert "Compute 'cpu-cluster' not found" in err
    assert "Compute 'cpu-cluster' not found" in fails(smalt, "compute", "delete", "--name", "cpu-cluster")


def test_local_compute_cannot_be_deleted_or_redefined(smalt: Smalt) -> None:
    assert "cannot be deleted" in fails(smalt, "compute", "delete", "--name", "local")
    assert "cannot be redefined" in fails(smalt, "compute", "create", "--name", "local", "--type", "amlcompute")
    assert [c["name"] for c in ok(smalt, "compute", "list")] == ["local"]


def test_unknown_compute_suggests_the_name_meant(smalt: Smalt) -> None:
    ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"))

    err = fails(smalt, "compute", "show", "--name", "cpu-clustr")

    assert "Did you mean 'cpu-cluster'?" in err


def test_compute_table_lists_the_names(smalt: Smalt, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    ok(smalt, "compute", "create", "-f", str(EXAMPLES / "compute.yml"))

    table = smalt("compute", "list", "-o", "table")

    assert table.exit_code == 0
    assert "local" in table.stdout and "cpu-cluster" in table.stdout


# -- datastores -----------------------------------------------------------------------------


def test_workspaceblobstore_exists_and_is_the_default(smalt: Smalt, workspace_path: Path) -> None:
    listed = ok(smalt, "datastore", "list")

    assert [d["name"] for d in listed] == ["workspaceblobstore"]
    default = ok(smalt, "datastore", "show", "--name", "workspaceblobstore")
    assert default["is_default"] is True
    assert default["type"] == "local"
    assert Path(default["path"]) == workspace_path / "blobs"


@pytest.mark.embedded_only  # a local datastore / a local workspace folder
def test_workspaceblobstore_cannot_be_deleted_or_replaced(smalt: Smalt, tmp_path: Path) -> None:
    assert "cannot be deleted" in fails(smalt, "datastore", "delete", "--name", "workspaceblobstore")

    spec = tmp_path / "ds.yml"
    spec.write_text(f"name: workspaceblobstore\ntype: local\npath: {tmp_path}\n")
    assert "cannot be replaced" in fails(smalt, "datastore", "create", "-f", str(spec))

    shown = ok(smalt, "datastore", "show", "--name", "workspaceblobstore")
    assert shown["is_default"] is True
    assert Path(shown["path"]) != tmp_path


def test_azure_blob_datastore_from_the_example_file(smalt: Smalt) -> None:
    created = ok(smalt, "datastore", "create", "-f", str(EXAMPLES / "datastore.yml"))

    assert created["name"] == "blob_example"
    assert created["type"] == "azure_blob"
    assert created["account_name"] == "mytestblobstore"
    assert created["container_name"] == "data-container"
    assert created["credentials"] == {"type": "account_key"}
    assert created["is_default"] is False
    assert [d["name"] for d in ok(smalt, "datastore", "list")] == ["blob_example", "workspaceblobstore"]


@pytest.mark.parametrize("output", ["json", "yaml", "table"])
def test_datastore_secrets_are_never_printed(smalt: Smalt, output: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    created = smalt("datastore", "create", "-f", str(EXAMPLES / "datastore.yml"), "-o", output)
    shown = smalt("datastore", "show", "--name", "blob_example", "-o", output)
    listed = smalt("datastore", "list", "-o", output)

    for result in (created, shown, listed):
        assert result.exit_code == 0, result.stderr
        assert "blob_example" in result.stdout
        assert ACCOUNT_KEY not in result.stdout
        assert ACCOUNT_KEY not in result.stderr
    if output == "yaml":
        assert YAML(typ="safe", pure=True).load(shown.stdout)["credentials"] == {"type": "account_key"}


def test_datastore_secrets_are_not_stored_in_clear(smalt: Smalt, workspace_path: Path) -> None:
    ok(smalt, "datastore", "create", "-f", str(EXAMPLES / "datastore.yml"))
    ok(smalt, "datastore", "list")

    database_files = sorted(workspace_path.glob("metadata.db*"))
    assert workspace_path / "metadata.db" in database_files
    for file in database_files:
        assert ACCOUNT_KEY.encode() not in file.read_bytes(), file
    for file in workspace_path.rglob("*"):
        if file.is_file():
            assert ACCOUNT_KEY.encode() not in file.read_bytes(), file


@pytest.mark.embedded_only  # a local datastore / a local workspace folder
def test_local_datastore_from_yaml_resolves_its_path_against_the_file(smalt: Smalt, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "shared-data").mkdir(parents=True)
    spec = project / "local-ds.yml"
    spec.write_text("name: shared\ntype: local\npath: ./shared-data\ndescription: A shared folder.\n")

    created = ok(smalt, "datastore", "create", "-f", str(spec))

    assert created["type"] == "local"
    assert Path(created["path"]) == project / "shared-data"
    assert "credentials" not in created
    assert ok(smalt, "datastore", "show", "--name", "shared") == created


@pytest.mark.embedded_only  # a local datastore / a local workspace folder
def test_data_asset_on_a_local_datastore_downloads_its_bytes(smalt: Smalt, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "raw").mkdir(parents=True)
    (store / "raw" / "points.csv").write_bytes(b"x,y\n1,2\n")
    spec = tmp_path / "ds.yml"
    spec.write_text(f"name: shared\ntype: local\npath: {store}\n")
    ok(smalt, "datastore", "create", "-f", str(spec))

    data = ok(
        smalt, "data", "create", "--name", "points", "--type", "uri_file",
        "--path", "azureml://datastores/shared/paths/raw/points.csv",
    )  # fmt: skip
    assert data["path"] == "azureml://datastores/shared/paths/raw/points.csv"  # not copied

    result = smalt("data", "download", "--name", "points", "--version", "1", "--download-path", str(tmp_path / "dl"))

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "dl" / "points" / "points.csv").read_bytes() == b"x,y\n1,2\n"


def test_data_asset_on_an_unknown_datastore_is_refused(smalt: Smalt) -> None:
    err = fails(
        smalt, "data", "create", "--name", "points", "--type", "uri_file",
        "--path", "azureml://datastores/nowhere/paths/a.csv",
    )  # fmt: skip

    assert "Datastore 'nowhere' not found" in err
    assert ok(smalt, "data", "list") == []


def test_datastore_delete_leaves_the_others(smalt: Smalt) -> None:
    ok(smalt, "datastore", "create", "-f", str(EXAMPLES / "datastore.yml"))

    assert smalt("datastore", "delete", "--name", "blob_example").exit_code == 0

    assert [d["name"] for d in ok(smalt, "datastore", "list")] == ["workspaceblobstore"]
    err = fails(smalt, "datastore", "show", "--name", "blob_example")
    assert "Datastore 'blob_example' not found" in err


def test_unknown_datastore_suggests_the_name_meant(smalt: Smalt) -> None:
    ok(smalt, "datastore", "create", "-f", str(EXAMPLES / "datastore.yml"))

    err = fails(smalt, "datastore", "show", "--name", "blob_exampel")

    assert "Did you mean 'blob_example'?" in err
    assert "workspaceblobstore" in err


# -- connections, identities and roles (the same with and without a server) --------------------


def test_connection_secrets_are_never_printed(smalt: Smalt, tmp_path: Path) -> None:
    spec = tmp_path / "openai.yml"
    spec.write_text("name: openai\ntype: api_key\napi_base: https://api.example.com\napi_key: sk-not-shown-1\n")
    made = ok(smalt, "connection", "create", "-f", str(spec), "-o", "json")
    assert made["credentials"] == {"type": "api_key"} and "api_key" not in made
    for output in ("json", "yaml", "table"):
        for args in (("show", "--name", "openai"), ("list",)):
            result = smalt("connection", *args, "-o", output)
            assert result.exit_code == 0 and "sk-not-shown-1" not in result.stdout, result.stderr
    assert "openai" in fails(smalt, "connection", "show", "--name", "opneai")  # "Did you mean 'openai'?"
    ok(smalt, "connection", "delete", "--name", "openai")
    assert ok(smalt, "connection", "list", "-o", "json") == []


def test_a_custom_connection_needs_a_secret(smalt: Smalt, tmp_path: Path) -> None:
    spec = tmp_path / "feeds.yml"
    spec.write_text("name: feeds\ntype: custom\nconfigs: {region: west}\n")
    assert "needs a secret" in fails(smalt, "connection", "create", "-f", str(spec))


def test_users_roles_and_assignments_through_the_cli(smalt: Smalt, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    user = ok(smalt, "user", "create", "--name", "ada", "--password-stdin", "-o", "json")
    assert user["kind"] == "user" and "password" not in str(user)
    made = ok(smalt, "service-principal", "create", "--name", "ci", "--role", "Reader", "-o", "json")
    assert made["client_secret"] and made["tenant_id"]
    role = tmp_path / "role.json"
    role.write_text('{"Name": "Job Submitter", "IsCustom": true, "Description": "submit jobs",'
                    ' "Actions": ["Microsoft.MachineLearningServices/workspaces/jobs/*"], "NotActions": [],'
                    ' "AssignableScopes": ["/"]}')  # fmt: skip
    assert ok(smalt, "role", "create", "--role-definition", str(role))["Name"] == "Job Submitter"
    names = [r["Name"] for r in ok(smalt, "role", "list", "-o", "json")]
    assert {"Owner", "Reader", "AzureML Data Scientist", "Job Submitter"} <= set(names)
    given = ok(smalt, "role", "assignment", "create", "--assignee", "ada", "--role", "Job Submitter", "-o", "json")
    listed = ok(smalt, "role", "assignment", "list", "--assignee", "ada", "-o", "json")
    assert [(a["principal"], a["role"], a["scope"]) for a in listed] == [("ada", "Job Submitter", "/")]
    assert "assigned" in fails(smalt, "role", "delete", "--name", "Job Submitter")
    ok(smalt, "role", "assignment", "delete", "--id", given["id"])
    ok(smalt, "role", "delete", "--name", "Job Submitter")
    token = ok(smalt, "token", "create", "--name", "laptop", "--principal", "ada")
    assert token["token"].startswith("smalt_pat_")
    assert [t["name"] for t in ok(smalt, "token", "list", "--principal", "ada", "-o", "json")] == ["laptop"]
    ok(smalt, "token", "revoke", "--name", "laptop", "--principal", "ada")
    actions = [e["action"] for e in ok(smalt, "audit", "list", "-o", "json")]
    assert "Microsoft.Authorization/roleDefinitions/delete" in actions
    assert "Microsoft.Authorization/principals/tokens/delete" in actions
    ok(smalt, "user", "delete", "--name", "ada")
    assert [p["name"] for p in ok(smalt, "user", "list", "-o", "json")] == ["ci"]
