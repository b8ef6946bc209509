"""``from smalt import dsl``: pipelines written as Python functions, as Azure ML's ``azure.ai.ml.dsl``.

Example::

    from smalt import MLClient, Input, dsl, load_component

    prep, train = load_component("prep.yml"), load_component("train.yml")

    @dsl.pipeline(default_compute="local")
    def training(raw: Input, lr: float = 0.1):
        prepared = prep(data=raw)
        trained = train(data=prepared.outputs.out, lr=lr)
        return {"model": trained.outputs.model}

    job = training(raw=Input(type="uri_folder", path="./data"))
    MLClient().jobs.create_or_update(job)

Called at the top level, the function gives a ``PipelineJob``; called inside another pipeline
function, it is one step of that pipeline (a nested pipeline component).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from smalt.entities import Input, Output, PipelineComponent, PipelineJob, PipelineSettings
from smalt.entities.builder import (
    Builder,
    ConditionBuilder,
    PipelineInputRef,
    StepBuilder,
    StepOutput,
    binding_of,
    building,
    call_component,
)

__all__ = ["condition", "pipeline"]

_PRIMITIVES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def pipeline(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    display_name: str | None = None,
    description: str | None = None,
    experiment_name: str | None = None,
    tags: dict[str, str] | None = None,
    default_compute: str | None = None,
    default_datastore: str | None = None,
    continue_on_step_failure: bool | None = None,
    force_rerun: bool | None = None,
    compute: str | None = None,
) -> Any:
    """Make ``func`` a pipeline: its parameters are the pipeline's inputs, the components it calls
    its steps, and the dict it returns (``{"name": step.outputs.port}``) its outputs."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)
        for parameter in signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"@dsl.pipeline function {function.__name__} cannot take *args or **kwargs")

        @functools.wraps(function)
        def build(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            values = dict(bound.arguments)
            for parameter in signature.parameters.values():
                if parameter.name not in values and parameter.default is not parameter.empty:
                    values[parameter.name] = parameter.default
            declared = {p.name: _declared(p, values.get(p.name)) for p in signature.parameters.values()}
            builder = Builder()
            returned = builder.run(function, {k: PipelineInputRef(k, v) for k, v in declared.items()})
            builder.assign_names()
            jobs = {node.name: _node(node) for node in builder.nodes}
            outputs = _outputs(function.__name__, returned, jobs)
            settings = {
                "default_compute": default_compute, "default_datastore": default_datastore,
                "continue_on_step_failure": continue_on_step_failure, "force_rerun": force_rerun,
            }  # fmt: skip
            if building() is not None:
                component = PipelineComponent(
                    name=name or function.__name__, version=version, display_name=display_name,
                    description=description or inspect.getdoc(function), inputs=declared, outputs=outputs, jobs=jobs,
                )  # fmt: skip
                given = {k: v for k, v in values.items() if v is not None}
                return call_component(component, given)
            return PipelineJob(
                display_name=display_name or name or function.__name__, description=description,
                experiment_name=experiment_name, tags=tags or {}, compute=compute,
                inputs={k: _job_input(v, declared[k]) for k, v in values.items()},
                outputs=outputs, jobs=jobs,
                settings=PipelineSettings(**{k: v for k, v in settings.items() if v is not None}),
            )  # fmt: skip

        return build

    return decorate(func) if func is not None else decorate


def condition(condition: Any, *, true_block: Any = None, false_block: Any = None) -> ConditionBuilder:
    """Azure ML's ``dsl.condition``: run ``true_block`` when ``condition`` (a boolean step output, a
    pipeline input or a literal) is true, else ``false_block``; the other branch is skipped."""
    builder = building()
    if builder is None:
        raise TypeError("dsl.condition is used inside a function decorated with @dsl.pipeline")
    node = ConditionBuilder(condition, true_block, false_block)
    builder.add(node)
    return node


def _declared(parameter: inspect.Parameter, value: Any) -> Input:
    """The input a parameter declares: from its annotation, else its default, else its value."""
    annotation = parameter.annotation
    if isinstance(annotation, Input):
        return annotation
    if isinstance(annotation, str):  # from __future__ import annotations
        annotation = {"bool": bool, "int": int, "float": float, "str": str, "Input": Input}.get(annotation, annotation)
    if annotation in _PRIMITIVES:
        default = parameter.default if parameter.default is not parameter.empty else None
        return Input(type=_PRIMITIVES[annotation], default=default, optional=default is None and value is None)
    if isinstance(value, Input):
        return Input(type=value.type, mode=value.mode)
    if isinstance(value, StepOutput):
        return Input(type=value.type)
    if isinstance(value, bool | int | float | str):
        return Input(type=_PRIMITIVES[type(value)])
    return Input(type="uri_folder", optional=value is None)


def _job_input(value: Any, declared: Input) -> Any:
    if value is None:
        return Input(type=declared.type, optional=True)
    if isinstance(value, StepOutput | PipelineInputRef):
        raise TypeError("a top-level pipeline's inputs are literals or Input(...), not another step's output")
    return value


def _node(node: StepBuilder | ConditionBuilder) -> dict[str, Any]:
    if isinstance(node, ConditionBuilder):
        value = node.condition
        return {
            "type": "if_else",
            "condition": value if isinstance(value, bool) else binding_of(value),
            "true_block": [f"${{{{parent.jobs.{s.name}}}}}" for s in node.true_block],
            "false_block": [f"${{{{parent.jobs.{s.name}}}}}" for s in node.false_block],
        }
    spec: dict[str, Any] = {
        "type": "pipeline" if isinstance(node.component, PipelineComponent) else "command",
        "component": node.component,
        "inputs": {k: binding_of(v) for k, v in vars(node.inputs)["_values"].items() if v is not None},
        "outputs": {},
        "run_after": [other.name for other in node._after],
    }
    for port in node.outputs:
        settings = node.outputs[port].settings
        if settings:
            spec["outputs"][port] = Output(type=node.outputs[port].type, **settings)
    for key in ("display_name", "compute", "resources", "distribution", "limits", "retry_settings",
                "is_deterministic"):  # fmt: skip
        value = getattr(node, key)
        if value is not None:
            spec[key] = value
    if node.environment_variables:
        spec["environment_variables"] = dict(node.environment_variables)
    return spec


def _outputs(function: str, returned: Any, jobs: dict[str, dict[str, Any]]) -> dict[str, Output]:
    """The pipeline's outputs from what its function returned; each bound step output is marked."""
    if returned is None:
        return {}
    if not isinstance(returned, dict) or not all(isinstance(v, StepOutput) for v in returned.values()):
        raise TypeError(f"@dsl.pipeline function {function} must return None or a dict of step outputs "
                        "({'model': train.outputs.model})")  # fmt: skip
    outputs: dict[str, Output] = {}
    for name, ref in returned.items():
        outputs[name] = Output(type=ref.type, **ref.settings)
        jobs[ref.step.name]["outputs"][ref.port] = f"${{{{parent.outputs.{name}}}}}"
    return outputs
