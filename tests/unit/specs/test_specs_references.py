"""References in Azure ML files: asset references, datastore URIs, and local paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from smalt.errors import InvalidSpecError
from smalt.specs import AssetRef, DatastoreUri, is_local_path, parse_asset_ref, parse_datastore_uri
from smalt.specs.references import require_asset_ref, resolve_local

LONG = "azureml://subscriptions/0000-1111/resourcegroups/rg-ml/workspaces/ws-1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("azureml:iris:1", AssetRef("iris", "1")),
        ("azureml:iris:2024.06.01", AssetRef("iris", "2024.06.01")),
        ("azureml:my-data_set.v2:10", AssetRef("my-data_set.v2", "10")),
        ("azureml:iris@latest", AssetRef("iris", None, "latest")),
        ("azureml:iris@production", AssetRef("iris", None, "production")),
        ("azureml:iris", AssetRef("iris", None, "latest")),
        (f"{LONG}/data/iris/versions/3", AssetRef("iris", "3")),
        ("azureml://locations/westeurope/workspaces/abc/data/iris/versions/3", AssetRef("iris", "3")),
        ("azureml://registries/azureml/models/resnet/versions/2", AssetRef("resnet", "2")),
        ("azureml://registries/azureml/environments/sklearn/labels/latest", AssetRef("sklearn", None, "latest")),
        (f"{LONG}/components/train", AssetRef("train", None, "latest")),
    ],
)
def test_parse_asset_ref(value: str, expected: AssetRef) -> None:
    assert parse_asset_ref(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "iris",
        "./data/iris.csv",
        "/abs/iris",
        "https://example.com/iris.csv",
        "azureml:",
        "azureml:iris:",
        "azureml:iris@",
        "azureml:iris:1:2",
        "azureml://datastores/workspaceblobstore/paths/iris/",
        "azureml://datastores/workspaceblobstore/paths/data/iris/versions/3",
        # A long-form datastore URI whose path happens to contain models/<x> is still a datastore URI.
        pytest.param(f"{LONG}/datastores/workspaceblobstore/paths/models/resnet", id="long-datastore-uri-models"),
        pytest.param(f"{LONG}/datastores/workspaceblobstore/paths/data/iris/versions/3", id="long-datastore-uri-data"),
    ],
)
def test_non_references_are_none(value: str) -> None:
    assert parse_asset_ref(value) is None


def test_asset_ref_text_round_trips() -> None:
    for text in ("azureml:iris:3", "azureml:iris@latest", "azureml:iris@prod"):
        ref = parse_asset_ref(text)
        assert ref is not None
        assert str(ref) == text
    assert str(parse_asset_ref("azureml:iris")) == "azureml:iris@latest"


def test_require_asset_ref_explains_the_forms() -> None:
    assert require_asset_ref("azureml:iris:1", "environment") == AssetRef("iris", "1")
    with pytest.raises(InvalidSpecError) as info:
        require_asset_ref("./local", "environment")
    (problem,) = info.value.problems
    assert problem.field == "environment"
    assert "azureml:<name>:<version>" in problem.message and "azureml:<name>@latest" in problem.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "azureml://datastores/workspaceblobstore/paths/iris/data.csv",
            DatastoreUri("workspaceblobstore", "iris/data.csv"),
        ),
        ("azureml://datastores/raw/paths/folder/", DatastoreUri("raw", "folder")),
        ("azureml://datastores/raw/paths/", DatastoreUri("raw", "")),
        ("azureml://datastores/raw/paths", DatastoreUri("raw", "")),
        (f"{LONG}/datastores/raw/paths/y/z.csv", DatastoreUri("raw", "y/z.csv")),
        (
            "azureml://subscriptions/s/resourcegroups/rg/providers/Microsoft.MachineLearningServices"
            "/workspaces/w/datastores/raw/paths/y",
            DatastoreUri("raw", "y"),
        ),
    ],
)
def test_parse_datastore_uri(value: str, expected: DatastoreUri) -> None:
    assert parse_datastore_uri(value) == expected


@pytest.mark.parametrize(
    "value",
    ["azureml:iris:1", "azureml://datastores/raw", "https://example.com/a", "./datastores/raw/paths/x", "raw/x"],
)
def test_non_datastore_uris_are_none(value: str) -> None:
    assert parse_datastore_uri(value) is None


def test_datastore_uri_text_is_the_short_form() -> None:
    uri = parse_datastore_uri(f"{LONG}/datastores/raw/paths/a/b")
    assert str(uri) == "azureml://datastores/raw/paths/a/b"


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("data/iris.csv", True),
        ("./iris", True),
        ("../iris", True),
        ("/abs/iris", True),
        ("~/iris", True),
        ("file:///abs/iris", True),
        ("file:iris.csv", True),
        ("http://example.com/iris.csv", False),
        ("https://example.com/iris.csv", False),
        ("s3://bucket/key", False),
        ("abfss://container@account.dfs.core.windows.net/p", False),
        ("azureml:iris:1", False),
        ("azureml:iris@latest", False),
        ("azureml://datastores/raw/paths/x", False),
    ],
)
def test_is_local_path(value: str, local: bool) -> None:
    assert is_local_path(value) is local


def test_resolve_local(tmp_path: Path) -> None:
    assert resolve_local("a/b.csv", tmp_path) == str((tmp_path / "a" / "b.csv").resolve())
    assert resolve_local("file:///abs/x", tmp_path) == "/abs/x"
    assert resolve_local("/abs/x", tmp_path) == "/abs/x"
    assert resolve_local("azureml:iris:1", tmp_path) == "azureml:iris:1"
    assert resolve_local("https://example.com/a", tmp_path) == "https://example.com/a"
