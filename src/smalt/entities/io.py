"""Inputs and outputs of components and jobs (Azure ML's ``Input`` and ``Output``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, field_validator, model_validator

from smalt.entities.base import Description, Entity, to_str

PRIMITIVE_TYPES = ("string", "integer", "number", "boolean")
ASSET_TYPES = ("uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model")

InputType = Literal[
    "string", "integer", "number", "boolean",
    "uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model",
]  # fmt: skip
OutputType = InputType
#: How an input reaches the command, and how an output leaves it (Azure ML keeps the two apart).
InputMode = Literal["ro_mount", "download", "direct", "eval_mount", "eval_download"]
OutputMode = Literal["rw_mount", "upload", "direct"]


#: Azure ML's older spellings, read as it reads them: a ``path`` port is a folder, and ``mount``
#: is a read-only mount for an input and a read-write one for an output.
_LEGACY_TYPES = {"path": "uri_folder"}
_MOUNT = {"input": "ro_mount", "output": "rw_mount"}


def _legacy(data: Any, direction: str) -> Any:
    if not isinstance(data, dict):
        return data
    type_, mode = data.get("type"), data.get("mode")
    if type_ in _LEGACY_TYPES or mode == "mount":
        data = {**data}
        if type_ in _LEGACY_TYPES:
            data["type"] = _LEGACY_TYPES[type_]
        if mode == "mount":
            data["mode"] = _MOUNT[direction]
    return data


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
    optional: bool = False
    # min, max and enum come before default: the default is checked against them.
    min: int | float | None = None
    max: int | float | None = None
    enum: list[str] | None = None
    default: Any = None
    mode: InputMode | None = None
    description: Description | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_legacy(cls, data: Any) -> Any:
        return _legacy(data, "input")

    @field_validator("min", "max")
    @classmethod
    def _numeric_only(cls, value: Any, info: ValidationInfo) -> Any:
        type_ = info.data.get("type")
        if value is not None and type_ not in ("integer", "number"):
            raise ValueError(f"min and max apply to integer and number inputs, not {type_}")
        low = info.data.get("min")
        if info.field_name == "max" and value is not None and low is not None and low > value:
            raise ValueError(f"min ({low:g}) is greater than max ({value:g})")
        return value

    @field_validator("enum")
    @classmethod
    def _strings_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("type") != "string":
            raise ValueError(f"enum applies to string inputs, not {info.data.get('type')}")
        return value

    @field_validator("default")
    @classmethod
    def _default_fits(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or "type" not in info.data:
            return value
        type_: str = info.data["type"]
        low, high, enum = (info.data.get(k) for k in ("min", "max", "enum"))
        problems: list[str] = []
        if not _type_matches(type_, value):
            problems.append(f"default {value!r} is not of type {type_}")
        elif type_ in ("integer", "number"):
            if low is not None and value < low:
                problems.append(f"default {value} is below min {low:g}")
            if high is not None and value > high:
                problems.append(f"default {value} is above max {high:g}")
        if enum is not None and str(value) not in enum:
            problems.append(f"default {value!r} is not one of enum {enum}")
        if problems:
            raise ValueError("; ".join(problems))
        return value


class Output(Entity):
    """An output: its type, and for a job where it goes and whether it is registered as data.

    Example::

        Output(type="uri_folder", name="prepared", version="3")
    """

    type: OutputType = "uri_folder"
    path: str | None = None
    mode: OutputMode | None = None
    name: str | None = None
    version: Annotated[str, BeforeValidator(to_str)] | None = None
    description: Description | None = None
    is_control: bool | None = None
    early_available: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_legacy(cls, data: Any) -> Any:
        return _legacy(data, "output")


def _declared(value: Any) -> Any:
    # `outputs: {model: }` declares an output with every default, as in Azure ML.
    return {} if value is None else value


#: An output as a file declares it: an empty value is a default ``uri_folder`` output.
OutputDecl = Annotated[Output, BeforeValidator(_declared)]


def _asset_output(output: Output) -> Output:
    if output.type in PRIMITIVE_TYPES and not output.is_control:
        raise ValueError(f"a job's output is data, not {output.type}; one of {', '.join(ASSET_TYPES)} "
                         "(a component's control output may be a value)")  # fmt: skip
    return output


#: An output of a job (not of a component): data of one of the asset types, as Azure ML's job schema.
JobOutput = Annotated[OutputDecl, AfterValidator(_asset_output)]
