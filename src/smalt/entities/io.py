"""Inputs and outputs of components and jobs (Azure ML's ``Input`` and ``Output``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from smalt.entities.base import Entity

PRIMITIVE_TYPES = ("string", "integer", "number", "boolean")
ASSET_TYPES = ("uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model")

InputType = Literal[
    "string", "integer", "number", "boolean",
    "uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model",
]  # fmt: skip
OutputType = InputType
InputMode = Literal["ro_mount", "rw_mount", "download", "direct", "upload", "eval_mount", "eval_download"]


def _type_matches(type_: str, value: Any) -> bool:
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_ == "string":
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    return isinstance(value, str)


class Input(Entity):
    """An input: in a component, its declaration; in a job, the value bound to it.

    Examples::

        Input(type="integer", default=10, min=1, max=100)
        Input(type="uri_folder", path="azureml:iris@latest", mode="ro_mount")
    """

    type: InputType = "uri_folder"
    path: str | None = None
    default: Any = None
    optional: bool = False
    min: int | float | None = None
    max: int | float | None = None
    enum: list[str] | None = None
    mode: InputMode | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Input:
        problems: list[str] = []
        numeric = self.type in ("integer", "number")
        if (self.min is not None or self.max is not None) and not numeric:
            problems.append(f"min and max apply to integer and number inputs, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append(f"min ({self.min:g}) is greater than max ({self.max:g})")
        if self.enum is not None and self.type != "string":
            problems.append(f"enum applies to string inputs, not {self.type}")
        if self.default is not None:
            if not _type_matches(self.type, self.default):
                problems.append(f"default {self.default!r} is not of type {self.type}")
            elif numeric:
                if self.min is not None and self.default < self.min:
                    problems.append(f"default {self.default} is below min {self.min:g}")
                if self.max is not None and self.default > self.max:
                    problems.append(f"default {self.default} is above max {self.max:g}")
            if self.enum is not None and str(self.default) not in self.enum:
                problems.append(f"default {self.default!r} is not one of enum {self.enum}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Output(Entity):
    """An output: its type, and for a job where it goes and whether it is registered as data.

    Example::

        Output(type="uri_folder", name="prepared", version="3")
    """

    type: OutputType = "uri_folder"
    path: str | None = None
    mode: InputMode | None = None
    name: str | None = None
    version: str | None = None
    description: str | None = None
    is_control: bool | None = None
    early_available: bool | None = None
