"""Input declarations: the consistency rules Azure ML applies to types, ranges, defaults and enums."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from smalt.entities import CommandJob, Input, Output
from smalt.errors import InvalidSpecError

#: Python callers may meet pydantic's error or smalt's translation of it; the rule is what is tested.
REJECTED = (ValidationError, InvalidSpecError)


def rejected(**fields: Any) -> str:
    with pytest.raises(REJECTED) as info:
        Input(**fields)
    return str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "integer", "default": 3, "min": 1, "max": 20, "optional": True},
        {"type": "number", "default": 1, "min": 0.5, "max": 1.5},
        {"type": "number", "default": 0.5, "min": 0.5, "max": 0.5},
        {"type": "string", "enum": ["adam", "sgd"], "default": "sgd"},
        {"type": "string", "default": "x"},
        {"type": "boolean", "default": False},
        {"type": "uri_folder", "path": "azureml:iris@latest", "mode": "ro_mount"},
        {"type": "uri_file", "default": "azureml://datastores/raw/paths/a.csv"},
    ],
)
def test_consistent_inputs_are_accepted(fields: dict[str, Any]) -> None:
    assert Input(**fields).type == fields["type"]


def test_default_type_is_uri_folder() -> None:
    assert Input().type == "uri_folder"
    assert Output().type == "uri_folder"


@pytest.mark.parametrize("type_", ["string", "boolean", "uri_folder"])
def test_min_and_max_only_on_numbers(type_: str) -> None:
    assert f"min and max apply to integer and number inputs, not {type_}" in rejected(type=type_, min=1)
    assert "min and max apply" in rejected(type=type_, max=1)


def test_min_not_above_max() -> None:
    assert "min (5) is greater than max (1)" in rejected(type="integer", min=5, max=1)


@pytest.mark.parametrize(
    ("type_", "default"),
    [
        ("integer", "ten"),
        ("integer", 1.5),
        ("integer", True),
        ("number", "0.1"),
        ("number", False),
        ("boolean", 1),
        ("boolean", "true"),
        ("uri_file", 3),
    ],
)
def test_default_must_have_the_input_type(type_: str, default: Any) -> None:
    assert f"default {default!r} is not of type {type_}" in rejected(type=type_, default=default)


def test_default_within_range() -> None:
    assert "default 0 is below min 1" in rejected(type="integer", min=1, max=5, default=0)
    assert "default 6 is above max 5" in rejected(type="integer", min=1, max=5, default=6)
    assert "below min 0.5" in rejected(type="number", min=0.5, default=0.25)


def test_enum_only_on_strings() -> None:
    assert "enum applies to string inputs, not integer" in rejected(type="integer", enum=["1", "2"])


def test_default_must_be_in_enum() -> None:
    assert "default 'rmsprop' is not one of enum ['adam', 'sgd']" in rejected(
        type="string", enum=["adam", "sgd"], default="rmsprop"
    )


def test_every_inconsistency_is_reported_together() -> None:
    message = rejected(type="boolean", min=1, enum=["a"])
    assert "min and max apply" in message
    assert "enum applies to string inputs" in message


def test_unknown_input_mode_and_type_are_rejected() -> None:
    with pytest.raises(REJECTED):
        Input(type="uri_folder", mode="mounted")  # type: ignore[arg-type]
    with pytest.raises(REJECTED):
        Input(type="float")  # type: ignore[arg-type]
    with pytest.raises(REJECTED, match="extra|unknown key"):
        Input(type="string", defualt="x")  # type: ignore[call-arg]


def test_azure_legacy_spellings_read_as_azure_reads_them() -> None:
    # `path` ports are folders; `mount` is read-only on an input, read-write on an output.
    assert Input.model_validate({"type": "path", "mode": "mount"}).model_dump(include={"type", "mode"}) == {
        "type": "uri_folder",
        "mode": "ro_mount",
    }
    assert Output.model_validate({"type": "path", "mode": "mount"}).model_dump(include={"type", "mode"}) == {
        "type": "uri_folder",
        "mode": "rw_mount",
    }


def test_an_output_declared_with_no_value_is_a_default_folder() -> None:
    job = CommandJob.model_validate({"command": "echo ${{outputs.model}}", "outputs": {"model": None}})
    assert job.outputs["model"] == Output(type="uri_folder")
    assert Output.model_validate({"version": 3}).version == "3"
