"""A file says what it is (``$schema``): another kind is refused with the command that takes it,
and a kind smalt lacks is refused as such; nothing is created as a different kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from smalt import specs
from smalt.errors import InvalidSpecError

BASE = "https://azuremlschemas.azureedge.net/latest/"


def spec(tmp_path: Path, schema: str, body: str) -> Path:
    path = tmp_path / "file.yml"
    path.write_text(f"$schema: {BASE}{schema}.schema.json\n{body}")
    return path


BATCH_ENDPOINT = "name: scorer\nauth_mode: aad_token\n"


def test_a_batch_endpoint_file_never_becomes_an_online_endpoint(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        specs.load("online-endpoint", spec(tmp_path, "batchEndpoint", BATCH_ENDPOINT))
    problem = caught.value.problems[0]
    assert "this is a batchEndpoint file, not supported yet" in problem.message
    assert (problem.field, problem.line) == ("$schema", 1)


@pytest.mark.parametrize(("kind", "schema", "body", "noun"), [
    ("data", "commandJob", "command: echo hi\n", "job"),
    ("job", "commandComponent", "name: c\ncommand: echo hi\n", "component"),
    ("model", "data", "name: d\npath: azureml://datastores/x/paths/y\n", "data"),
    ("online-deployment", "managedOnlineEndpoint", "name: ep\n", "online-endpoint"),
    ("compute", "azureBlob", "name: b\naccount_name: a\ncontainer_name: c\n", "datastore"),
])  # fmt: skip
def test_a_file_of_another_kind_names_the_command_that_takes_it(
    tmp_path: Path, kind: str, schema: str, body: str, noun: str
) -> None:
    article = "an" if schema[0] in "aeiou" else "a"
    with pytest.raises(InvalidSpecError, match=f"this is {article} {schema} file; `smalt {noun} create -f` takes it"):
        specs.load(kind, spec(tmp_path, schema, body))


@pytest.mark.parametrize("schema", ["sweepJob", "sparkJob", "autoMLJob"])
def test_a_job_kind_smalt_lacks_is_refused_as_such(tmp_path: Path, schema: str) -> None:
    article = "an" if schema[0] in "aeiou" else "a"
    with pytest.raises(InvalidSpecError, match=f"this is {article} {schema} file, not supported yet") as caught:
        specs.load("job", spec(tmp_path, schema, "command: echo hi\n"))
    assert "\n" not in caught.value.message  # one line


@pytest.mark.parametrize(("kind", "schema"), [
    ("job", "commandJob"), ("job", "someFutureJob"), ("data", "data"),
])  # fmt: skip
def test_a_file_of_the_commands_kind_or_an_unknown_schema_loads(tmp_path: Path, kind: str, schema: str) -> None:
    body = "command: echo hi\n" if kind == "job" else "name: d\npath: azureml://datastores/x/paths/y\n"
    assert specs.load(kind, spec(tmp_path, schema, body)) is not None
