"""The SDK (``MLClient``) and the CLI give the same results and fail the same way."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smalt import MLClient, load_component, load_data, load_datastore, load_environment, load_model
from smalt.entities import AccountKeyConfiguration, AzureBlobDatastore, Compute, Data, Environment, Model
from smalt.errors import (
    InvalidSpecError,
    InvalidStateError,
    NotFoundError,
    SmaltError,
    VersionConflictError,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ACCOUNT_KEY = "bm90LWEtcmVhbC1rZXktLWp1c3QtYW4tZXhhbXBsZQ=="
Smalt = Callable[..., Any]


def ok(smalt: Smalt, *args: str) -> Any:
    result = smalt(*args)
    assert result.exit_code == 0, result.stderr
    return result.json() if result.stdout.strip() else None


def plain(entity: Any) -> Any:
    """An SDK object as the CLI prints it in JSON."""
    return json.loads(json.dumps(entity.to_dict(), default=str))


def without_context(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("version", "creation_context")}


# -- same results ---------------------------------------------------------------------------


def test_sdk_and_cli_register_the_same_content(smalt: Smalt, ml_client: MLClient) -> None:
    from_sdk = ml_client.data.create_or_update(load_data(EXAMPLES / "data.yml"))
    from_cli = ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))

    assert (from_sdk.version, from_cli["version"]) == ("1", "2")
    assert without_context(plain(from_sdk)) == without_context(from_cli)
    assert ok(smalt, "data", "show", "--name", "iris", "--version", "1") == plain(from_sdk)
    assert plain(ml_client.data.get("iris", version="2")) == from_cli


@pytest.mark.parametrize(
    ("noun", "group", "loader", "file"),
    [
        ("environment", "environments", load_environment, "environment.yml"),
        ("model", "models", load_model, "model.yml"),
    ],
)
def test_loaders_give_what_create_dash_f_gives(
    smalt: Smalt, ml_client: MLClient, noun: str, group: str, loader: Any, file: str
) -> None:
    from_sdk = getattr(ml_client, group).create_or_update(loader(EXAMPLES / file))
    from_cli = ok(smalt, noun, "create", "-f", str(EXAMPLES / file))

    assert without_context(plain(from_sdk)) == without_context(from_cli)


def test_component_through_the_sdk_resolves_like_the_cli(smalt: Smalt, ml_client: MLClient) -> None:
    ml_client.environments.create_or_update(load_environment(EXAMPLES / "environment.yml"))

    from_sdk = ml_client.components.create_or_update(load_component(EXAMPLES / "component.yml"))
    from_cli = ok(smalt, "component", "show", "--name", "train_iris", "--version", "1")

    assert from_sdk.environment == "azureml:sklearn:1"
    assert plain(from_sdk) == from_cli


def test_entities_built_in_python_match_flags(smalt: Smalt, ml_client: MLClient, isolated: Path) -> None:
    shutil.copy(EXAMPLES / "data" / "iris.csv", isolated / "iris.csv")
    shutil.copytree(EXAMPLES / "model", isolated / "model")

    data = ml_client.data.create_or_update(Data(name="iris", path="iris.csv", type="uri_file"))
    model = ml_client.models.create_or_update(Model(name="tree", path="model"))
    env = ml_client.environments.create_or_update(Environment(name="py", image="python:3.11"))

    cli_data = ok(smalt, "data", "create", "--name", "iris", "--path", "iris.csv", "--type", "uri_file")
    cli_model = ok(smalt, "model", "create", "--name", "tree", "--path", "model")
    cli_env = ok(smalt, "environment", "create", "--name", "py", "--image", "python:3.11")

    assert without_context(plain(data)) == without_context(cli_data)
    assert without_context(plain(model)) == without_context(cli_model)
    assert without_context(plain(env)) == without_context(cli_env)
    assert data.path.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")


def test_get_and_list_match_the_cli(smalt: Smalt, ml_client: MLClient) -> None:
    for _ in range(2):
        ok(smalt, "data", "create", "-f", str(EXAMPLES / "data.yml"))
    ok(smalt, "model", "create", "-f", str(EXAMPLES / "model.yml"))

    assert plain(ml_client.data.get("iris", version=1)) == ok(smalt, "data", "show", "--name", "iris", "--version", "1")
    assert plain(ml_client.data.get("iris", label="latest")) == ok(
        smalt, "data", "show", "--name", "iris", "--label", "latest"
    )
    assert [plain(d) for d in ml_client.data.list()] == ok(smalt, "data", "list")
    assert [plain(d) for d in ml_client.data.list("iris")] == ok(smalt, "data", "list", "--name", "iris")
    assert [plain(m) for m in ml_client.models.list()] == ok(smalt, "model", "list")


def test_archive_through_one_is_seen_by_the_other(smalt: Smalt, ml_client: MLClient) -> None:
    ml_client.data.create_or_update(load_data(EXAMPLES / "data.yml"))
    ml_client.data.create_or_update(load_data(EXAMPLES / "data.yml"))

    ml_client.data.archive("iris", version=2)
    assert [d["version"] for d in ok(smalt, "data", "list", "--name", "iris")] == ["1"]

    ok(smalt, "data", "restore", "--name", "iris", "--version", "2")
    assert [d.version for d in ml_client.data.list("iris")] == ["2", "1"]

    ok(smalt, "data", "archive", "--name", "iris")
    assert ml_client.data.list() == []
    assert [d.name for d in ml_client.data.list(list_view_type="All")] == ["iris"]

    ml_client.data.restore("iris")
    assert [d["name"] for d in ok(smalt, "data", "list")] == ["iris"]


def test_sdk_download_lands_where_the_cli_puts_it(smalt: Smalt, ml_client: MLClient, tmp_path: Path) -> None:
    ml_client.data.create_or_update(load_data(EXAMPLES / "data.yml"))
    ml_client.models.create_or_update(load_model(EXAMPLES / "model.yml"))

    data_file = ml_client.data.download("iris", version=1, download_path=tmp_path / "sdk")
    model_dir = ml_client.models.download("iris-tree", label="latest", download_path=tmp_path / "sdk")
    result = smalt("data", "download", "--name", "iris", "--version", "1", "--download-path", str(tmp_path / "cli"))

    assert result.exit_code == 0, result.stderr

    assert data_file == tmp_path / "sdk" / "iris" / "iris.csv"
    assert model_dir == tmp_path / "sdk" / "iris-tree" / "model"
    assert data_file.read_bytes() == (EXAMPLES / "data" / "iris.csv").read_bytes()
    assert (model_dir / "model.pkl").read_bytes() == (EXAMPLES / "model" / "model.pkl").read_bytes()
    assert (tmp_path / "cli" / "iris" / "iris.csv").read_bytes() == data_file.read_bytes()


def test_compute_through_the_sdk_matches_the_cli(smalt: Smalt, ml_client: MLClient) -> None:
    compute = Compute(name="cpu", type="amlcompute", min_instances=0, max_instances=2, idle_time_before_scale_down=60)

    created = ml_client.compute.begin_create_or_update(compute).result()
    from_cli = ok(
        smalt, "compute", "create", "--name", "cpu2", "--type", "amlcompute",
        "--min-instances", "0", "--max-instances", "2", "--idle-time-before-scale-down", "60",
    )  # fmt: skip

    assert {**without_context(plain(created)), "name": "cpu2"} == without_context(from_cli)
    assert ok(smalt, "compute", "show", "--name", "cpu") == plain(ml_client.compute.get("cpu"))
    assert ok(smalt, "compute", "list") == [plain(c) for c in ml_client.compute.list()]
    assert [c.name for c in ml_client.compute.list()] == ["local", "cpu", "cpu2"]

    ml_client.compute.begin_delete("cpu").result()
    assert [c["name"] for c in ok(smalt, "compute", "list")] == ["local", "cpu2"]


def test_datastores_through_the_sdk_keep_secrets_in(smalt: Smalt, ml_client: MLClient) -> None:
    datastore = AzureBlobDatastore(
        name="blob_example", account_name="mytestblobstore", container_name="data-container",
        credentials=AccountKeyConfiguration(account_key=ACCOUNT_KEY),
    )  # fmt: skip

    created = ml_client.datastores.create_or_update(datastore)

    assert created.credentials is not None
    assert created.credentials.account_key is None
    assert ACCOUNT_KEY not in json.dumps(plain(created))
    assert ACCOUNT_KEY not in repr(ml_client.datastores.get("blob_example"))
    from_file = load_datastore(EXAMPLES / "datastore.yml")
    assert without_context(plain(created)) == without_context(
        {**plain(from_file.model_copy(update={"description": None})), "credentials": {"type": "account_key"}}
    )
    assert ok(smalt, "datastore", "show", "--name", "blob_example") == plain(ml_client.datastores.get("blob_example"))
    assert ok(smalt, "datastore", "list") == [plain(d) for d in ml_client.datastores.list()]
    assert ml_client.datastores.get_default().name == "workspaceblobstore"


def test_every_smalt_error_is_a_smalt_error_and_a_spec_error_lists_problems(ml_client: MLClient) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        ml_client.data.create_or_update(Data(name="x", path="nope.csv", type="uri_file"))

    assert isinstance(caught.value, SmaltError)
    assert [p.field for p in caught.value.problems] == ["path"]
    assert "does not exist" in caught.value.problems[0].message


def test_invalid_field_values_in_python_raise_a_smalt_error(isolated: Path) -> None:
    (isolated / "iris.csv").write_text("a,b\n")

    with pytest.raises(InvalidSpecError) as caught:
        Data(name="iris", path="iris.csv", type="uri_fle")  # type: ignore[arg-type]

    assert [p.field for p in caught.value.problems] == ["type"]


# -- same errors ----------------------------------------------------------------------------


def cli_text(exc: SmaltError) -> str:
    """What the CLI prints after 'Error: ' for ``exc``: the message, then the hint on its own line."""
    return exc.message + (f"\nHint: {exc.hint}" if exc.hint else "")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace for the error cases (none of them changes its metadata): iris:1,2, sklearn:1,
    a compute, a model archived as a whole, and broken files beside it."""
    root = tmp_path_factory.mktemp("errors")
    workspace = root / "ws"
    with pytest.MonkeyPatch.context() as env:
        # module fixtures come before the per-test isolation: keep outside settings out here too
        for name in ("SMALT_WORKSPACE", "SMALT_DATABASE_URL", "SMALT_BLOBSTORE_URL", "SMALT_SECRET_KEY"):
            env.delenv(name, raising=False)
        _populate(workspace)
    project = root / "project"
    shutil.copytree(EXAMPLES, project)
    (project / "typo.yml").write_text("name: iris\ntype: uri_fle\npth: data/iris.csv\nversion: [1]\n")
    (project / "broken.yml").write_text("name: iris\ntags: {a: 1\n")
    component = (project / "component.yml").read_text().replace("azureml:sklearn@latest", "azureml:nope:1")
    (project / "badref.yml").write_text(component)
    return root


def _populate(workspace: Path) -> None:
    with MLClient(workspace=workspace) as client:
        client.environments.create_or_update(load_environment(EXAMPLES / "environment.yml"))
        client.data.create_or_update(load_data(EXAMPLES / "data.yml"))
        client.data.create_or_update(load_data(EXAMPLES / "data.yml"))
        client.models.create_or_update(load_model(EXAMPLES / "model.yml"))
        client.models.archive("iris-tree")
        client.compute.begin_create_or_update(Compute(name="cpu-cluster")).result()


def _case(cli: list[str], sdk: Callable[[MLClient, Path], Any], error: type[SmaltError]) -> Any:
    return (cli, sdk, error)


ERROR_CASES = {
    "unknown-version": _case(
        ["data", "show", "--name", "iris", "--version", "9"], lambda c, r: c.data.get("iris", version=9), NotFoundError
    ),
    "unknown-name": _case(
        ["data", "show", "--name", "irsi", "--label", "latest"],
        lambda c, r: c.data.get("irsi", label="latest"),
        NotFoundError,
    ),
    "no-version-or-label": _case(["data", "show", "--name", "iris"], lambda c, r: c.data.get("iris"), InvalidSpecError),
    "all-archived": _case(
        ["model", "show", "--name", "iris-tree", "--label", "latest"],
        lambda c, r: c.models.get("iris-tree", label="latest"),
        NotFoundError,
    ),
    "restore-version-of-archived": _case(
        ["model", "restore", "--name", "iris-tree", "--version", "1"],
        lambda c, r: c.models.restore("iris-tree", version=1),
        InvalidStateError,
    ),
    "version-conflict": _case(
        ["environment", "create", "--name", "sklearn", "--version", "1", "--image", "python:3.12"],
        lambda c, r: c.environments.create_or_update(Environment(name="sklearn", version="1", image="python:3.12")),
        VersionConflictError,
    ),
    "invalid-file": _case(
        ["data", "create", "-f", "{root}/project/typo.yml"],
        lambda c, r: c.data.create_or_update(load_data(r / "project" / "typo.yml")),
        InvalidSpecError,
    ),
    "invalid-yaml": _case(
        ["data", "create", "-f", "{root}/project/broken.yml"],
        lambda c, r: c.data.create_or_update(load_data(r / "project" / "broken.yml")),
        InvalidSpecError,
    ),
    "missing-path": _case(
        ["data", "create", "--name", "x", "--type", "uri_file", "--path", "{root}/nope.csv"],
        lambda c, r: c.data.create_or_update(Data(name="x", type="uri_file", path=str(r / "nope.csv"))),
        InvalidSpecError,
    ),
    "unknown-environment-reference": _case(
        ["component", "create", "-f", "{root}/project/badref.yml"],
        lambda c, r: c.components.create_or_update(load_component(r / "project" / "badref.yml")),
        NotFoundError,
    ),
    "unknown-compute": _case(
        ["compute", "show", "--name", "cpu-clustr"], lambda c, r: c.compute.get("cpu-clustr"), NotFoundError
    ),
    "delete-local-compute": _case(
        ["compute", "delete", "--name", "local"], lambda c, r: c.compute.delete("local"), InvalidStateError
    ),
    "unknown-datastore": _case(
        ["datastore", "show", "--name", "nope"], lambda c, r: c.datastores.get("nope"), NotFoundError
    ),
    "delete-default-datastore": _case(
        ["datastore", "delete", "--name", "workspaceblobstore"],
        lambda c, r: c.datastores.delete("workspaceblobstore"),
        InvalidStateError,
    ),
}


@pytest.mark.parametrize(("cli", "sdk", "error"), list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_sdk_raises_what_the_cli_prints(
    smalt: Smalt, shared: Path, cli: list[str], sdk: Callable[[MLClient, Path], Any], error: type[SmaltError]
) -> None:
    args = [a.replace("{root}", str(shared)) for a in cli]
    result = smalt("--workspace", str(shared / "ws"), *args, workspace=False)

    with MLClient(workspace=shared / "ws") as client, pytest.raises(SmaltError) as caught:
        sdk(client, shared)

    assert type(caught.value) is error
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {cli_text(caught.value)}\n"
