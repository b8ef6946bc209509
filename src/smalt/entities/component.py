"""Components: reusable, typed steps (Azure ML ``commandComponent``)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from smalt.entities.base import Asset, DisplayName, EnvironmentRef, StrDict
from smalt.entities.environment import InlineEnvironment
from smalt.entities.expressions import bindings
from smalt.entities.io import Input, OutputDecl
from smalt.entities.settings import Distribution, Resources


class CommandComponent(Asset):
    """A command component.

    Example::

        CommandComponent(
            name="train", command="python train.py --lr ${{inputs.lr}}", code="./src",
            environment="azureml:sklearn:1", inputs={"lr": Input(type="number", default=0.1)},
        )
    """

    kind: ClassVar[str] = "component"

    type: Literal["command"] = "command"
    display_name: DisplayName | None = None
    command: str
    code: str | None = None
    environment: EnvironmentRef | InlineEnvironment | None = None
    inputs: dict[str, Input] = Field(default_factory=dict)
    outputs: dict[str, OutputDecl] = Field(default_factory=dict)
    is_deterministic: bool = True
    additional_includes: list[str] = Field(default_factory=list)
    environment_variables: StrDict = Field(default_factory=dict)
    resources: Resources | None = None
    distribution: Distribution | None = None

    def __call__(self, **inputs: Any) -> Any:
        """Inside a ``@dsl.pipeline`` function: add a step running this component with ``inputs``."""
        from smalt.entities.builder import call_component

        return call_component(self, inputs)

    @model_validator(mode="after")
    def _bindings_exist(self) -> CommandComponent:
        # ${{inputs.x}} inside an optional $[[ ... ]] segment may name an optional input; any
        # binding must still name a declared port.
        unknown = [
            f"{group}.{port}"
            for group, port, _ in bindings(self.command)
            if port not in (self.inputs if group == "inputs" else self.outputs)
        ]
        if unknown:
            raise ValueError("command refers to undeclared " + ", ".join(sorted(set(unknown))))
        return self
