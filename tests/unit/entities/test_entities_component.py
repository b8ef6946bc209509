"""CommandComponent: a command may only bind to declared ports."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smalt.entities import CommandComponent, Input, Output
from smalt.errors import InvalidSpecError

#: Python callers may meet pydantic's error or smalt's translation of it; the rule is what is tested.
REJECTED = (ValidationError, InvalidSpecError)


def test_bindings_to_declared_ports_are_accepted() -> None:
    component = CommandComponent(
        name="train",
        command="python train.py --data ${{inputs.data}} $[[--depth ${{ inputs.depth }}]] --out ${{outputs.model}}",
        inputs={"data": Input(type="uri_file"), "depth": Input(type="integer", optional=True)},
        outputs={"model": Output(type="custom_model")},
    )
    assert set(component.inputs) == {"data", "depth"}


def test_undeclared_input_is_rejected_by_name() -> None:
    with pytest.raises(REJECTED) as info:
        CommandComponent(name="train", command="python train.py --lr ${{inputs.lr}}")
    assert "command refers to undeclared inputs.lr" in str(info.value)


def test_undeclared_ports_are_all_named_once() -> None:
    with pytest.raises(REJECTED) as info:
        CommandComponent(
            name="train",
            command="run ${{inputs.b}} ${{inputs.a}} ${{inputs.b}} ${{outputs.model}}",
            inputs={"x": Input(type="string")},
        )
    assert "undeclared inputs.a, inputs.b, outputs.model" in str(info.value)


def test_an_input_name_does_not_count_as_an_output() -> None:
    with pytest.raises(REJECTED, match="undeclared outputs.data"):
        CommandComponent(name="c", command="cp ${{inputs.data}} ${{outputs.data}}", inputs={"data": Input()})


def test_component_version_and_tags_become_strings() -> None:
    component = CommandComponent.model_validate(
        {"name": "c", "version": 2, "command": "echo", "tags": {"epochs": 10, "fast": True}}
    )
    assert component.version == "2"
    assert component.tags == {"epochs": "10", "fast": "true"}


@pytest.mark.parametrize("name", ["", "-lead", "has space", "x" * 256])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(REJECTED):
        CommandComponent(name=name, command="echo")
