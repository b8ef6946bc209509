"""How the CLI prints results: JSON when piped or asked for, YAML on request, a table on a terminal."""

from __future__ import annotations

import io
import json
import sys

import pytest
from ruamel.yaml import YAML

from smalt.cli.output import choose, emit
from smalt.entities import Data
from smalt.errors import InvalidSpecError


class Terminal(io.StringIO):
    """A stdout that says it is a terminal, as a user's shell is."""

    def isatty(self) -> bool:
        return True


def test_json_is_the_default_when_stdout_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not sys.stdout.isatty()
    assert choose(None) == "json"


def test_table_is_the_default_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert choose(None) == "table"


@pytest.mark.parametrize("fmt", ["json", "yaml", "table"])
def test_an_explicit_format_wins(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose(fmt) == fmt
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert choose(fmt) == fmt


def test_an_unknown_format_names_the_choices() -> None:
    with pytest.raises(InvalidSpecError) as info:
        choose("xml")
    (problem,) = info.value.problems
    assert problem.field == "--output"
    assert "'xml'" in problem.message and "json, yaml, table" in problem.message


def test_emit_json_of_an_entity_leaves_out_unset_fields(capsys: pytest.CaptureFixture[str]) -> None:
    emit(Data(name="iris", version="1", path="azureml://datastores/d/paths/iris.csv", tags={"k": "v"}), "json")
    assert json.loads(capsys.readouterr().out) == {
        "name": "iris",
        "version": "1",
        "path": "azureml://datastores/d/paths/iris.csv",
        "type": "uri_folder",
        "tags": {"k": "v"},
        "properties": {},
    }


def test_emit_json_of_a_list_is_a_list(capsys: pytest.CaptureFixture[str]) -> None:
    emit([Data(name="a", path="/a"), {"name": "b"}], None)
    out = json.loads(capsys.readouterr().out)
    assert [item["name"] for item in out] == ["a", "b"]


def test_emit_json_of_plain_values(capsys: pytest.CaptureFixture[str]) -> None:
    emit([], "json")
    assert json.loads(capsys.readouterr().out) == []


def test_emit_yaml_parses_back_to_the_same_data(capsys: pytest.CaptureFixture[str]) -> None:
    data = Data(name="iris", version="2", path="/x", tags={"epochs": "10"}, description="a: b")
    emit(data, "yaml")
    out = capsys.readouterr().out
    assert YAML(typ="safe", pure=True).load(out) == data.to_dict()
    assert not out.lstrip().startswith("{")


def test_emit_table_shows_the_asked_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    emit([Data(name="iris", version="3", path="/data/iris.csv")], "table", columns=("name", "version", "path"))
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "name" in line)
    assert header.index("name") < header.index("version") < header.index("path")
    assert "iris" in out and "/data/iris.csv" in out
    assert "uri_folder" not in out
